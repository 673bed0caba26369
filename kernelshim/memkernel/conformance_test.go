package memkernel

import (
	"net"
	"net/netip"
	"testing"

	"github.com/bsdcarp/bsdcarp/kernelshim"
	"github.com/bsdcarp/bsdcarp/kernelshim/kerneltest"
)

// TestConformance runs the kernel contract against Memory; kernelshim's
// TestLinuxConformance runs the same cases against Linux.
func TestConformance(t *testing.T) {
	kerneltest.Run(t, func(t *testing.T) kerneltest.Fixture {
		m := memHost(nil, "10.0.0.2/24")
		t.Cleanup(func() { m.Close() })
		return kerneltest.Fixture{
			Kernel: m,
			Parent: "em0",
			AddMACVLAN: func(t *testing.T, name string, mac net.HardwareAddr, alias string) {
				p, err := m.LinkByName("em0")
				if err != nil {
					t.Fatal(err)
				}
				m.AddLink(kernelshim.Link{Name: name, MAC: mac, MTU: p.MTU, AdminUp: true, Carrier: true,
					Broadcast: true, Multicast: true, Kind: "macvlan", ParentIndex: p.Index, Alias: alias}, nil)
			},
			Addr: func(t *testing.T, link string, p netip.Prefix) (kernelshim.AddrLifetime, bool) {
				return m.AddrLifetime(link, p)
			},
		}
	})
}
