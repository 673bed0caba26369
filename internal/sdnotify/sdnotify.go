// Package sdnotify speaks systemd's service notification protocol
// (sd_notify(3)) without a library: one datagram of NAME=value lines to the
// Unix socket named by $NOTIFY_SOCKET, a path or, with a leading '@', an
// abstract name. Without $NOTIFY_SOCKET (not started by systemd as
// Type=notify) every call does nothing.
package sdnotify

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Notifier sends to one socket. The zero value, and a nil *Notifier, send
// nothing.
type Notifier struct {
	addr string
}

// FromEnv returns a Notifier for $NOTIFY_SOCKET and removes the variable
// from the environment, so that the commands the service runs (event
// actions) do not talk to systemd in its name.
func FromEnv() *Notifier {
	addr := os.Getenv("NOTIFY_SOCKET")
	os.Unsetenv("NOTIFY_SOCKET")
	return &Notifier{addr: addr}
}

// Enabled reports whether notifications go anywhere.
func (n *Notifier) Enabled() bool { return n != nil && n.addr != "" }

// Send sends the lines (e.g. "READY=1", "STATUS=...") as one datagram.
func (n *Notifier) Send(lines ...string) error {
	if !n.Enabled() {
		return nil
	}
	name := n.addr
	if name[0] == '@' {
		name = "\x00" + name[1:] // abstract namespace
	} else if name[0] != '/' {
		return fmt.Errorf("sd_notify: NOTIFY_SOCKET=%q: neither a path nor an abstract name", n.addr)
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(strings.Join(lines, "\n") + "\n")); err != nil {
		return fmt.Errorf("sd_notify %s: %w", lines[0], err)
	}
	return nil
}

// Ready says the service is up (READY=1) with a status line.
func (n *Notifier) Ready(status string) error {
	return n.Send("READY=1", "STATUS="+status, "MAINPID="+strconv.Itoa(os.Getpid()))
}

// Reloading says a reload starts; Ready must follow when it is done.
// MONOTONIC_USEC, which systemd 253 and later ask for, is the time of the
// start on CLOCK_MONOTONIC.
func (n *Notifier) Reloading() error {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return fmt.Errorf("sd_notify: clock: %w", err)
	}
	usec := ts.Sec*1_000_000 + ts.Nsec/1_000
	return n.Send("RELOADING=1", "MONOTONIC_USEC="+strconv.FormatInt(usec, 10))
}

// Stopping says the service is shutting down.
func (n *Notifier) Stopping(status string) error {
	return n.Send("STOPPING=1", "STATUS="+status)
}
