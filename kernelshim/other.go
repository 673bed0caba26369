//go:build !linux

package kernelshim

import (
	"errors"
	"log/slog"
)

// Linux is the Linux adapter; on other systems it cannot be created.
type Linux struct{}

// NewLinux returns an error on systems other than Linux.
func NewLinux(*slog.Logger) (*Linux, error) {
	return nil, errors.New("kernelshim: the Linux kernel adapter needs Linux")
}
