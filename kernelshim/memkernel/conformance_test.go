package memkernel

import (
	"net"
	"net/netip"
	"testing"

	"github.com/bsdcarp/bsdcarp/carp/osif"
	"github.com/bsdcarp/bsdcarp/kernelshim/kerneltest"
)

// TestConformance runs the kernel contract against Memory; kernelshim's
// TestLinuxConformance runs the same cases against Linux.
func TestConformance(t *testing.T) {
	kerneltest.Run(t, func(t *testing.T) kerneltest.Fixture {
		seg := NewSegment()
		m := memHost(seg, "10.0.0.2/24")
		t.Cleanup(func() { m.Close() })
		return kerneltest.Fixture{
			Kernel: m,
			Parent: "em0",
			AddMACVLAN: func(t *testing.T, name string, mac net.HardwareAddr, alias string) {
				p, err := m.LinkByName("em0")
				if err != nil {
					t.Fatal(err)
				}
				m.AddLink(osif.Link{Name: name, MAC: mac, MTU: p.MTU, AdminUp: true, Carrier: true,
					Broadcast: true, Multicast: true, Kind: "macvlan", ParentIndex: p.Index, Alias: alias}, nil)
			},
			Peer: func(t *testing.T) kerneltest.Peer {
				b := NewMemory()
				b.AddLink(osif.Link{Name: "em0", MAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, MTU: 1500, AdminUp: true,
					Carrier: true, Broadcast: true, Multicast: true, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.3/24")}}, seg)
				t.Cleanup(func() { b.Close() })
				return kerneltest.Peer{Kernel: b, Parent: "em0", IPv6: true, Sniff: func(t *testing.T) <-chan []byte {
					return tapFrames(t, b)
				}}
			},
			Addr: func(t *testing.T, link string, p netip.Prefix) (osif.AddrLifetime, bool) {
				return m.AddrLifetime(link, p)
			},
		}
	})
}

// tapFrames returns the frames arriving on m's physical links from now on
// until the test ends; beyond the channel's buffer they are dropped.
func tapFrames(t *testing.T, m *Memory) <-chan []byte {
	ch := make(chan []byte, 256)
	m.mu.Lock()
	m.frameTap = func(_ string, f []byte) {
		select {
		case ch <- f:
		default:
		}
	}
	m.mu.Unlock()
	t.Cleanup(func() {
		m.mu.Lock()
		m.frameTap = nil
		m.mu.Unlock()
	})
	return ch
}
