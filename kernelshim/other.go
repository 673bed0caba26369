//go:build !linux

package kernelshim

import (
	"errors"
	"log/slog"
	"time"
)

// Linux is the Linux adapter; on other systems it cannot be created.
type Linux struct{}

// NewLinux returns an error on systems other than Linux.
func NewLinux(*slog.Logger) (*Linux, error) {
	return nil, errors.New("kernelshim: the Linux kernel adapter needs Linux")
}

// LoopTimer is the Linux engine timer; on other systems it cannot be created.
type LoopTimer struct{}

// NewLoopTimer returns an error on systems other than Linux.
func NewLoopTimer() (*LoopTimer, error) {
	return nil, errors.New("kernelshim: timerfd needs Linux")
}

// C never receives.
func (t *LoopTimer) C() <-chan time.Time { return nil }

// Set fails.
func (t *LoopTimer) Set(time.Duration) error { return errors.New("kernelshim: timerfd needs Linux") }

// Stop does nothing.
func (t *LoopTimer) Stop() {}
