//go:build !linux

package kernelshim

import "errors"

// NewLinux returns an error on systems other than Linux.
func NewLinux() (Kernel, error) {
	return nil, errors.New("kernelshim: the Linux kernel adapter needs Linux")
}
