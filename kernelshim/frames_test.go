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

// TestFramesMatchGopacket checks the hand-built frames byte for byte
// against the same frames serialized by gopacket's layers (which carpd no
// longer links: their global tables cost 8 MB of memory that every garbage
// collection scans).
func TestFramesMatchGopacket(t *testing.T) {
	macs := []net.HardwareAddr{vmac, {0x02, 0xab, 0xcd, 0xef, 0x01, 0xff}, {0, 0, 0x5e, 0, 1, 255}}
	addrs := []string{"10.0.0.1", "192.168.255.254", "::ffff:10.1.2.3", "2001:db8::1", "fe80::1:2:3:4", "ff02::12"}
	for _, mac := range macs {
		for _, s := range addrs {
			a := netip.MustParseAddr(s)
			got, dst, err := AnnounceFrame(mac, a)
			if err != nil {
				t.Fatalf("AnnounceFrame(%v, %v): %v", mac, a, err)
			}
			want, wantDst := gopacketAnnounce(t, mac, a.Unmap())
			if !bytes.Equal(got, want) || !bytes.Equal(dst, wantDst) {
				t.Errorf("AnnounceFrame(%v, %v) =\n%x to %v, gopacket builds\n%x to %v", mac, a, got, dst, want, wantDst)
			}
			if !a.Unmap().Is4() {
				continue
			}
			for _, to := range []string{"10.0.0.2", "172.16.9.9"} {
				toIP := netip.MustParseAddr(to)
				got, err := ARPReplyFrame(mac, a, macs[1], toIP)
				if err != nil {
					t.Fatalf("ARPReplyFrame: %v", err)
				}
				if want := gopacketARP(t, layers.ARPReply, mac, a.Unmap(), macs[1], macs[1], toIP); !bytes.Equal(got, want) {
					t.Errorf("ARPReplyFrame(%v, %v, %v) =\n%x, gopacket builds\n%x", mac, a, toIP, got, want)
				}
			}
		}
	}
	if _, _, err := AnnounceFrame(vmac, netip.Addr{}); err == nil {
		t.Error("invalid address accepted")
	}
	if _, err := ARPReplyFrame(vmac, netip.MustParseAddr("2001:db8::1"), vmac, netip.MustParseAddr("10.0.0.2")); err == nil {
		t.Error("ARP reply for an IPv6 address accepted")
	}
}

// gopacketARP serializes an ARP frame with gopacket's layers (padded to 60
// bytes by its Ethernet layer).
func gopacketARP(t *testing.T, op uint16, mac net.HardwareAddr, addr netip.Addr, ethDst, hwDst net.HardwareAddr, dstIP netip.Addr) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	eth := &layers.Ethernet{SrcMAC: mac, DstMAC: ethDst, EthernetType: layers.EthernetTypeARP}
	arp := &layers.ARP{
		AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
		HwAddressSize: 6, ProtAddressSize: 4, Operation: op,
		SourceHwAddress: mac, SourceProtAddress: addr.AsSlice(),
		DstHwAddress: hwDst, DstProtAddress: dstIP.AsSlice(),
	}
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, arp); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// gopacketAnnounce is AnnounceFrame built with gopacket's layers.
func gopacketAnnounce(t *testing.T, mac net.HardwareAddr, addr netip.Addr) ([]byte, net.HardwareAddr) {
	t.Helper()
	if addr.Is4() {
		return gopacketARP(t, layers.ARPRequest, mac, addr, broadcastMAC, zeroMAC, addr), broadcastMAC
	}
	buf := gopacket.NewSerializeBuffer()
	eth := &layers.Ethernet{SrcMAC: mac, DstMAC: allNodesMAC, EthernetType: layers.EthernetTypeIPv6}
	ip6 := &layers.IPv6{Version: 6, HopLimit: 255, NextHeader: layers.IPProtocolICMPv6, SrcIP: addr.AsSlice(), DstIP: allNodesV6.AsSlice()}
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborAdvertisement, 0)}
	if err := icmp.SetNetworkLayerForChecksum(ip6); err != nil {
		t.Fatal(err)
	}
	na := &layers.ICMPv6NeighborAdvertisement{
		Flags: naFlagOverride, TargetAddress: addr.AsSlice(),
		Options: layers.ICMPv6Options{{Type: layers.ICMPv6OptTargetAddress, Data: []byte(mac)}},
	}
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip6, icmp, na); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), allNodesMAC
}

func TestLifetimeSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int{0: 0, -1: 0, 1: 1, time.Second: 1, 1001 * time.Millisecond: 2, 3 * time.Second: 3} {
		if got := osif.LifetimeSeconds(d); got != want {
			t.Errorf("osif.LifetimeSeconds(%v) = %d, want %d", d, got, want)
		}
	}
}
