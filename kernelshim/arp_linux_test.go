//go:build linux

package kernelshim

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"os/exec"
	"testing"
	"time"

	"github.com/bsdcarp/bsdcarp/carp/osif"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// TestLinuxARPListenAndReply: ListenARP sees the peer's broadcast request
// (sender, target, arrival interface), ReplyARP's frame reaches the peer as
// a reply from the given MAC, and a listener stopped by its context can be
// opened again.
func TestLinuxARPListenAndReply(t *testing.T) {
	requireRoot(t)
	a, b := vethPair(t)
	ka := kernelIn(t, a)
	idx, err := netIndexIn(a, "veth0")
	if err != nil {
		t.Fatal(err)
	}
	bMAC := ipnMAC(t, b, "veth0")
	target := netip.MustParseAddr("192.0.2.77") // nobody's: b's kernel asks
	mac := net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x01, 0x07}

	listen := func() (chan osif.ARPRequest, context.CancelFunc) {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		ch := make(chan osif.ARPRequest, 16)
		if err := ka.ListenARP(ctx, ch); err != nil {
			t.Fatal(err)
		}
		return ch, cancel
	}
	ask := func(ch chan osif.ARPRequest, target netip.Addr) osif.ARPRequest {
		t.Helper()
		// One ARP request from b; ping fails (no answer yet), as intended.
		_ = exec.Command("ip", "netns", "exec", b, "ping", "-n", "-q", "-c", "1", "-W", "1", target.String()).Run()
		deadline := time.After(3 * time.Second)
		for {
			select {
			case r := <-ch:
				if r.TargetIP == target {
					return r
				}
			case <-deadline:
				t.Fatal("the peer's ARP request was not delivered")
			}
		}
	}

	ch, stop := listen()
	r := ask(ch, target)
	if !r.Broadcast || r.SenderIP != netip.MustParseAddr("192.0.2.2") || r.SenderMAC.String() != bMAC || r.IfIndex != idx {
		t.Fatalf("request = %+v, want broadcast from 192.0.2.2 (%s) on ifindex %d", r, bMAC, idx)
	}

	sniff := newSniffer(t, b, "veth0")
	if err := ka.ReplyARP("veth0", mac, target, r.SenderMAC, r.SenderIP); err != nil {
		t.Fatal(err)
	}
	f := sniff.next(2*time.Second, func(f []byte) bool { return len(f) >= 42 && f[12] == 0x08 && f[13] == 0x06 && f[21] == 2 })
	if f == nil {
		t.Fatal("ARP reply not seen on the peer")
	}
	pkt := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
	arp, _ := pkt.Layer(layers.LayerTypeARP).(*layers.ARP)
	eth, _ := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	if arp == nil || eth == nil || !bytes.Equal(arp.SourceHwAddress, mac) || !bytes.Equal(arp.SourceProtAddress, target.AsSlice()) ||
		arp.DstHwAddress == nil || net.HardwareAddr(arp.DstHwAddress).String() != bMAC || !bytes.Equal(arp.DstProtAddress, []byte{192, 0, 2, 2}) ||
		!bytes.Equal(eth.SrcMAC, mac) || eth.DstMAC.String() != bMAC {
		t.Fatalf("bad ARP reply: %v", pkt)
	}

	stop()
	ch2, _ := listen()
	// Another address: b may have learnt the first from our reply.
	if r := ask(ch2, netip.MustParseAddr("192.0.2.78")); r.SenderIP != netip.MustParseAddr("192.0.2.2") {
		t.Fatalf("second listener: %+v", r)
	}
	if err := ka.ReplyARP("nope0", mac, target, r.SenderMAC, r.SenderIP); err == nil {
		t.Error("reply on a missing link: no error")
	}
}

// netIndexIn is the ifindex of ifname in namespace ns.
func netIndexIn(ns, ifname string) (int, error) {
	var idx int
	err := doIn(ns, func() (err error) { idx, err = netInterfaceIndex(ifname); return })
	return idx, err
}

// ipnMAC is the MAC of ifname in namespace ns, as ip(8) prints it.
func ipnMAC(t *testing.T, ns, ifname string) string {
	t.Helper()
	out, err := exec.Command("ip", "-n", ns, "-br", "link", "show", ifname).Output()
	if err != nil {
		t.Fatal(err)
	}
	f := bytes.Fields(out)
	if len(f) < 3 {
		t.Fatalf("ip -br link: %q", out)
	}
	return string(f[2])
}
