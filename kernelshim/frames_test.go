package kernelshim

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/bsdcarp/bsdcarp/carp/osif"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

var vmac = net.HardwareAddr{0, 0, 0x5e, 0, 1, 1}

func TestAnnounceFrames(t *testing.T) {
	f, dst, err := AnnounceFrame(vmac, netip.MustParseAddr("10.0.0.1"))
	if err != nil || dst.String() != "ff:ff:ff:ff:ff:ff" || len(f) != 60 {
		t.Fatalf("GARP: len %d dst %v err %v", len(f), dst, err)
	}
	arp := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default).Layer(layers.LayerTypeARP).(*layers.ARP)
	if arp.Operation != layers.ARPRequest || !bytes.Equal(arp.SourceHwAddress, vmac) ||
		!bytes.Equal(arp.SourceProtAddress, []byte{10, 0, 0, 1}) || !bytes.Equal(arp.DstProtAddress, []byte{10, 0, 0, 1}) {
		t.Fatalf("GARP %+v", arp)
	}

	f, dst, err = AnnounceFrame(vmac, netip.MustParseAddr("2001:db8::1"))
	if err != nil || dst.String() != "33:33:00:00:00:01" {
		t.Fatalf("NA: dst %v err %v", dst, err)
	}
	pkt := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
	ip6 := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	na := pkt.Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement)
	if ip6.HopLimit != 255 || ip6.DstIP.String() != "ff02::1" || ip6.SrcIP.String() != "2001:db8::1" ||
		!na.Override() || na.Solicited() || na.Router() || na.TargetAddress.String() != "2001:db8::1" ||
		len(na.Options) != 1 || na.Options[0].Type != layers.ICMPv6OptTargetAddress || !bytes.Equal(na.Options[0].Data, vmac) {
		t.Fatalf("NA %v", pkt)
	}
	// ICMPv6 checksum, computed independently over the pseudo-header.
	icmp := f[14+40:]
	if len(icmp) != 32 {
		t.Fatalf("ICMPv6 length %d, want 32", len(icmp))
	}
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
	}
	add(f[14+8 : 14+40]) // src + dst
	add([]byte{0, 0, 0, byte(len(icmp)), 0, 0, 0, 58})
	add(icmp)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	if sum != 0xffff {
		t.Fatalf("ICMPv6 checksum wrong (folded sum %#x)", sum)
	}
	if _, _, err := AnnounceFrame(net.HardwareAddr{1}, netip.MustParseAddr("10.0.0.1")); err == nil {
		t.Fatal("bad MAC accepted")
	}
}

func TestLifetimeSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int{0: 0, -1: 0, 1: 1, time.Second: 1, 1001 * time.Millisecond: 2, 3 * time.Second: 3} {
		if got := osif.LifetimeSeconds(d); got != want {
			t.Errorf("osif.LifetimeSeconds(%v) = %d, want %d", d, got, want)
		}
	}
}
