//go:build linux

package kernelshim_test

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/bsdcarp/bsdcarp/carp/osif"
	"github.com/bsdcarp/bsdcarp/internal/netlab"
	"github.com/bsdcarp/bsdcarp/kernelshim"
	"github.com/bsdcarp/bsdcarp/kernelshim/kerneltest"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestLinuxConformance runs the kernel contract against the Linux adapter,
// each case in a fresh namespace whose parent link em0 is one end of a veth
// pair (both ends up). For the cases that need a Peer, the other end moves
// to a namespace of its own, is renamed em0 there and gets its own adapter.
// memkernel's TestConformance runs the same cases.
func TestLinuxConformance(t *testing.T) {
	netlab.Require(t)
	kerneltest.Run(t, func(t *testing.T) kerneltest.Fixture {
		lab := netlab.New(t, "")
		ns := lab.NewNS("ks")
		ip := func(t *testing.T, args ...string) {
			t.Helper()
			if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
				t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
		ip(t, "-n", ns, "link", "add", "em0", "type", "veth", "peer", "name", "em0p")
		ip(t, "-n", ns, "link", "set", "em0p", "up")
		ip(t, "-n", ns, "link", "set", "em0", "up")
		k := linuxIn(t, ns)
		return kerneltest.Fixture{
			Kernel: k,
			Parent: "em0",
			AddMACVLAN: func(t *testing.T, name string, mac net.HardwareAddr, alias string) {
				ip(t, "-n", ns, "link", "add", name, "link", "em0", "address", mac.String(), "up", "type", "macvlan", "mode", "bridge")
				if alias != "" {
					ip(t, "-n", ns, "link", "set", name, "alias", alias)
				}
			},
			Peer: func(t *testing.T) kerneltest.Peer {
				pns := lab.NewNS("peer")
				ip(t, "-n", ns, "link", "set", "em0p", "netns", pns)
				ip(t, "-n", pns, "link", "set", "em0p", "name", "em0")
				ip(t, "-n", pns, "link", "set", "em0", "up")
				pk := linuxIn(t, pns)
				// The veth's carrier comes back (asynchronously) once both
				// ends are up again.
				if _, ok := netlab.Eventually(5*time.Second, func() bool {
					a, aerr := k.LinkByName("em0")
					b, berr := pk.LinkByName("em0")
					return aerr == nil && berr == nil && a.Carrier && b.Carrier
				}); !ok {
					t.Fatal("no carrier on em0 in both namespaces within 5s")
				}
				_, err := os.Stat("/proc/sys/net/ipv6")
				return kerneltest.Peer{Kernel: pk, Parent: "em0", IPv6: err == nil,
					Sniff: func(t *testing.T) <-chan []byte { return sniff(t, pns, pk) }}
			},
			Addr: func(t *testing.T, link string, p netip.Prefix) (osif.AddrLifetime, bool) {
				t.Helper()
				var out osif.AddrLifetime
				found := false
				err := kernelshim.DoIn(ns, func() error {
					l, err := netlink.LinkByName(link)
					if err != nil {
						return err
					}
					as, err := netlink.AddrList(l, netlink.FAMILY_ALL)
					if err != nil {
						return err
					}
					for _, a := range as {
						ones, _ := a.Mask.Size()
						ip, _ := netip.AddrFromSlice(a.IP)
						if netip.PrefixFrom(ip.Unmap(), ones) != p {
							continue
						}
						found = true
						out = osif.AddrLifetime{Index: a.LinkIndex, Prefix: p, Flags: uint32(a.Flags)}
						if a.ValidLft != 0 && uint32(a.ValidLft) != 0xffffffff { // INFINITY_LIFE_TIME: permanent
							out.Lifetime = time.Duration(a.ValidLft) * time.Second
						}
					}
					return nil
				})
				if err != nil {
					t.Fatalf("list addresses of %s in %s: %v", link, ns, err)
				}
				return out, found
			},
		}
	})
}

func linuxIn(t *testing.T, ns string) *kernelshim.Linux {
	t.Helper()
	var k *kernelshim.Linux
	if err := kernelshim.DoIn(ns, func() (err error) { k, err = kernelshim.NewLinux(nil); return err }); err != nil {
		t.Fatalf("NewLinux in %s: %v", ns, err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

// sniff captures the frames arriving on em0 in namespace ns with a packet
// socket, until the test ends; beyond the channel's buffer they are dropped.
func sniff(t *testing.T, ns string, k *kernelshim.Linux) <-chan []byte {
	t.Helper()
	l, err := k.LinkByName("em0")
	if err != nil {
		t.Fatal(err)
	}
	const ethPAll = 0x0300 // htons(ETH_P_ALL)
	var fd int
	if err := kernelshim.DoIn(ns, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, ethPAll)
		if err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: ethPAll, Ifindex: l.Index})
	}); err != nil {
		t.Fatalf("packet socket on em0 in %s: %v", ns, err)
	}
	// Non-blocking in an os.File: closing the file wakes the reader.
	f := os.NewFile(uintptr(fd), "sniff")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		t.Fatal(err)
	}
	ch := make(chan []byte, 256)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			var n int
			var rerr error
			if err := rc.Read(func(fd uintptr) bool {
				n, _, rerr = unix.Recvfrom(int(fd), buf, 0)
				return !errors.Is(rerr, unix.EAGAIN)
			}); err != nil {
				return // closed
			}
			if errors.Is(rerr, unix.EINTR) || errors.Is(rerr, unix.ENETDOWN) {
				continue
			}
			if rerr != nil {
				return
			}
			select {
			case ch <- append([]byte(nil), buf[:n]...):
			default:
			}
		}
	}()
	t.Cleanup(func() { f.Close(); <-done })
	return ch
}
