package kernelshim

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// LoopTimer is a wake-up timer for carpd's engine loop on a timerfd in the
// runtime's poller, instead of a Go timer: the runtime's monitor thread
// (sysmon) sleeps until the next Go timer and wakes with it, then polls
// every 20 µs while the program runs, so every timed wake-up of the loop
// cost a second thread's wake-ups too (a third of an idle MASTER's CPU).
// A timerfd wakes only the thread waiting in the poller. Setting it is one
// raw, non-blocking system call.
type LoopTimer struct {
	f    *os.File
	rc   syscall.RawConn
	c    chan time.Time
	fail atomic.Pointer[error] // why the timer stopped working, if it did
	stop atomic.Bool           // Stop was called
}

// NewLoopTimer returns a stopped timer; Stop releases it.
func NewLoopTimer() (*LoopTimer, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("kernelshim: timerfd: %w", err)
	}
	t := &LoopTimer{f: os.NewFile(uintptr(fd), "carpd-timer"), c: make(chan time.Time, 1)}
	if t.rc, err = t.f.SyscallConn(); err != nil {
		t.f.Close()
		return nil, fmt.Errorf("kernelshim: timerfd: %w", err)
	}
	if !pollable(t.f) {
		t.f.Close()
		return nil, errors.New("kernelshim: timerfd: not pollable")
	}
	go t.run()
	return t, nil
}

// run passes every expiry to C until Stop. Should the timer fail (any
// error but Stop's), it says so once on C, and Set reports the error from
// then on: the engine then falls back to a Go timer.
func (t *LoopTimer) run() {
	var n [8]byte // the count of expiries
	for {
		var errno syscall.Errno
		err := t.rc.Read(func(fd uintptr) bool {
			for {
				_, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&n[0])), uintptr(len(n)))
				switch e {
				case unix.EINTR:
					continue
				case unix.EAGAIN:
					return false // wait in the poller
				}
				errno = e
				return true
			}
		})
		if err == nil && errno != 0 {
			err = errno
		}
		if err != nil {
			if !t.stop.Load() {
				err = fmt.Errorf("kernelshim: timerfd read: %w", err)
				t.fail.Store(&err)
				select {
				case t.c <- time.Now():
				default:
				}
			}
			return
		}
		select {
		case t.c <- time.Now():
		default: // one wake-up pending is enough
		}
	}
}

// C receives when the time the last Set named has come; rarely once more
// for a setting that Set replaced just as it expired.
func (t *LoopTimer) C() <-chan time.Time { return t.c }

// Set arms the timer to expire d from now (at once for d <= 0), replacing
// the last setting. It first drops an expiry not yet received: after the
// new setting that could be the new one's (d <= 0 expires at once), and the
// loop would wait for good. An old expiry already read but not yet passed
// on still arrives: an early wake-up, with nothing due.
func (t *LoopTimer) Set(d time.Duration) error {
	if err := t.fail.Load(); err != nil {
		return *err
	}
	select {
	case <-t.c:
	default:
	}
	its := unix.ItimerSpec{Value: unix.NsecToTimespec(max(int64(d), 1))} // 0 would disarm it
	var errno syscall.Errno
	if err := t.rc.Control(func(fd uintptr) {
		_, _, errno = unix.RawSyscall6(unix.SYS_TIMERFD_SETTIME, fd, 0, uintptr(unsafe.Pointer(&its)), 0, 0, 0)
	}); err != nil {
		return fmt.Errorf("kernelshim: timerfd: %w", err)
	}
	if errno != 0 {
		return fmt.Errorf("kernelshim: timerfd_settime: %w", errno)
	}
	return nil
}

// Stop releases the timer; it never fires again.
func (t *LoopTimer) Stop() {
	t.stop.Store(true)
	t.f.Close()
}
