//go:build linux

package kernelshim_test

import (
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/bsdcarp/bsdcarp/internal/netlab"
	"github.com/bsdcarp/bsdcarp/kernelshim"
	"github.com/bsdcarp/bsdcarp/kernelshim/kerneltest"
	"github.com/vishvananda/netlink"
)

// TestLinuxConformance runs the kernel contract against the Linux adapter,
// each case in a fresh namespace whose parent link em0 is one end of a veth
// pair (both ends up). memkernel's TestConformance runs the same cases.
func TestLinuxConformance(t *testing.T) {
	netlab.Require(t)
	kerneltest.Run(t, func(t *testing.T) kerneltest.Fixture {
		ns := netlab.New(t, "").NewNS("ks")
		ip := func(t *testing.T, args ...string) {
			t.Helper()
			if out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput(); err != nil {
				t.Fatalf("ip -n %s %s: %v\n%s", ns, strings.Join(args, " "), err, out)
			}
		}
		ip(t, "link", "add", "em0", "type", "veth", "peer", "name", "em0p")
		ip(t, "link", "set", "em0p", "up")
		ip(t, "link", "set", "em0", "up")
		var k *kernelshim.Linux
		if err := kernelshim.DoIn(ns, func() (err error) { k, err = kernelshim.NewLinux(nil); return err }); err != nil {
			t.Fatalf("NewLinux in %s: %v", ns, err)
		}
		t.Cleanup(func() { k.Close() })
		return kerneltest.Fixture{
			Kernel: k,
			Parent: "em0",
			AddMACVLAN: func(t *testing.T, name string, mac net.HardwareAddr, alias string) {
				ip(t, "link", "add", name, "link", "em0", "address", mac.String(), "up", "type", "macvlan", "mode", "bridge")
				if alias != "" {
					ip(t, "link", "set", name, "alias", alias)
				}
			},
			Addr: func(t *testing.T, link string, p netip.Prefix) (kernelshim.AddrLifetime, bool) {
				t.Helper()
				var out kernelshim.AddrLifetime
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
						out = kernelshim.AddrLifetime{Index: a.LinkIndex, Prefix: p, Flags: uint32(a.Flags)}
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
