package sdnotify

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// listen opens the receiving end as systemd does: a datagram socket.
func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func recv(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	return string(buf[:n])
}

func TestPathAndAbstractSockets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	abstract := fmt.Sprintf("@bsdcarp-sdnotify-test-%d", os.Getpid())
	for _, addr := range []string{path, abstract} {
		// Go names an abstract socket with a leading '@' too.
		c := listen(t, addr)
		t.Setenv("NOTIFY_SOCKET", addr)
		n := FromEnv()
		if v, set := os.LookupEnv("NOTIFY_SOCKET"); set {
			t.Errorf("NOTIFY_SOCKET=%q left for children", v)
		}
		if !n.Enabled() {
			t.Fatalf("%s: not enabled", addr)
		}
		if err := n.Ready("serving on /run/carpd/carpd.sock"); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("READY=1\nSTATUS=serving on /run/carpd/carpd.sock\nMAINPID=%d\n", os.Getpid())
		if got := recv(t, c); got != want {
			t.Errorf("%s: got %q, want %q", addr, got, want)
		}
		if err := n.Reloading(); err != nil {
			t.Fatal(err)
		}
		if got := recv(t, c); !strings.HasPrefix(got, "RELOADING=1\nMONOTONIC_USEC=") || len(got) < len("RELOADING=1\nMONOTONIC_USEC=1\n") {
			t.Errorf("%s: got %q, want RELOADING=1 and MONOTONIC_USEC", addr, got)
		}
		if err := n.Stopping("SIGTERM"); err != nil {
			t.Fatal(err)
		}
		if got := recv(t, c); got != "STOPPING=1\nSTATUS=SIGTERM\n" {
			t.Errorf("%s: got %q", addr, got)
		}
	}
}

func TestUnsetSendsNothing(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	os.Unsetenv("NOTIFY_SOCKET")
	n := FromEnv()
	if n.Enabled() {
		t.Fatal("enabled without NOTIFY_SOCKET")
	}
	if err := n.Ready("x"); err != nil {
		t.Fatalf("Ready without NOTIFY_SOCKET: %v", err)
	}
	var none *Notifier
	if err := none.Stopping("x"); err != nil || none.Enabled() {
		t.Fatalf("nil Notifier: %v", err)
	}
}

func TestGoneSocketIsAnError(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "absent"))
	if err := FromEnv().Ready("x"); err == nil || !strings.Contains(err.Error(), "sd_notify") {
		t.Fatalf("err = %v, want an sd_notify error", err)
	}
	t.Setenv("NOTIFY_SOCKET", "relative")
	if err := FromEnv().Ready("x"); err == nil {
		t.Fatal("a relative NOTIFY_SOCKET accepted")
	}
}
