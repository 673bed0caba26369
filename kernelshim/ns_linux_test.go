//go:build linux

package kernelshim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/bsdcarp/bsdcarp/carp/osif"
	"golang.org/x/sys/unix"
)

// Namespace helpers. Every namespace is created by the test that uses it
// (named bsdcarp-ks-<random>) and deleted in t.Cleanup, which also removes
// the links inside it. Nothing is created in the caller's namespace.

// requireRoot skips a namespace test outside CI when it cannot run; in CI
// (CI set) it fails instead, since a skip there would hide the real test.
func requireRoot(t *testing.T) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "needs root: creates network namespaces, veth pairs and raw sockets"
	} else if _, err := exec.LookPath("ip"); err != nil {
		why = "needs iproute2's ip command"
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s (CI must run this test)", why)
	}
	t.Skip(why)
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// newNS creates a fresh network namespace with lo up and returns its name.
func newNS(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "bsdcarp-ks-" + hex.EncodeToString(b)
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v\n%s", name, err, out)
		}
	})
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
	return name
}

// ipn runs "ip -n ns args...".
func ipn(t *testing.T, ns string, args ...string) string {
	t.Helper()
	return run(t, append([]string{"ip", "-n", ns}, args...)...)
}

// doIn runs f on an OS thread switched into namespace ns; the thread is
// switched back (or discarded) afterwards.
func doIn(ns string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(orig)
		target, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		ferr := f()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err == nil {
			runtime.UnlockOSThread()
		}
		errc <- ferr
	}()
	return <-errc
}

// kernelIn returns a Linux Kernel bound to namespace ns, closed in Cleanup.
func kernelIn(t *testing.T, ns string) *Linux {
	t.Helper()
	var k *Linux
	if err := doIn(ns, func() (err error) { k, err = NewLinux(nil); return }); err != nil {
		t.Fatalf("NewLinux in %s: %v", ns, err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

// vethPair creates two namespaces joined by a veth pair named veth0 on both
// sides, up, with 192.0.2.1/24 + fe80::1/64 (A) and 192.0.2.2/24 +
// fe80::2/64 (B), IPv6 addresses without DAD.
func vethPair(t *testing.T) (a, b string) {
	t.Helper()
	a, b = newNS(t), newNS(t)
	for _, ns := range []string{a, b} {
		// No DAD in these private namespaces: addresses are usable at once.
		if err := doIn(ns, func() error {
			for _, f := range []string{"net/ipv6/conf/all/accept_dad", "net/ipv6/conf/default/accept_dad"} {
				if err := os.WriteFile("/proc/sys/"+f, []byte("0"), 0o644); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	ipn(t, a, "link", "add", "veth0", "type", "veth", "peer", "name", "veth0", "netns", b)
	ipn(t, a, "addr", "add", "192.0.2.1/24", "dev", "veth0")
	ipn(t, b, "addr", "add", "192.0.2.2/24", "dev", "veth0")
	ipn(t, a, "addr", "add", "fe80::1/64", "dev", "veth0", "nodad")
	ipn(t, b, "addr", "add", "fe80::2/64", "dev", "veth0", "nodad")
	ipn(t, a, "link", "set", "veth0", "up")
	ipn(t, b, "link", "set", "veth0", "up")
	return a, b
}

// sniffer is an AF_PACKET socket in a namespace, bound to one interface.
type sniffer struct{ fd int }

func newSniffer(t *testing.T, ns, ifname string) *sniffer {
	t.Helper()
	var fd int
	err := doIn(ns, func() error {
		ifi, err := netInterfaceIndex(ifname)
		if err != nil {
			return err
		}
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi})
	})
	if err != nil {
		t.Fatalf("sniffer on %s/%s: %v", ns, ifname, err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return &sniffer{fd}
}

// netInterfaceIndex reads the index from /sys of the calling thread's
// namespace... /sys is per mount namespace, so ask the kernel via ioctl.
func netInterfaceIndex(name string) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return 0, err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		return 0, fmt.Errorf("SIOCGIFINDEX %s: %w", name, err)
	}
	return int(ifr.Uint32()), nil
}

// next returns the next frame for which match is true, or nil at timeout.
func (s *sniffer) next(timeout time.Duration, match func([]byte) bool) []byte {
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 4096)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return nil
		}
		tv := unix.NsecToTimeval(left.Nanoseconds())
		_ = unix.SetsockoptTimeval(s.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
		n, _, err := unix.Recvfrom(s.fd, buf, 0)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return nil
		}
		if match(buf[:n]) {
			return append([]byte(nil), buf[:n]...)
		}
	}
}

func recvPacket(ch <-chan osif.Packet, timeout time.Duration) (osif.Packet, bool) {
	select {
	case p := <-ch:
		return p, true
	case <-time.After(timeout):
		return osif.Packet{}, false
	}
}

func openCARP(t *testing.T, k *Linux) <-chan osif.Packet {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch := make(chan osif.Packet, 16)
	if err := k.OpenCARP(ctx, ch); err != nil {
		t.Fatalf("OpenCARP: %v", err)
	}
	return ch
}
