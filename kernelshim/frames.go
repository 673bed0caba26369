package kernelshim

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/bsdcarp/bsdcarp/carp/osif"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

var (
	broadcastMAC   = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	allNodesMAC    = net.HardwareAddr{0x33, 0x33, 0x00, 0x00, 0x00, 0x01}
	allNodesV6     = netip.MustParseAddr("ff02::1")
	zeroMAC        = net.HardwareAddr{0, 0, 0, 0, 0, 0}
	naFlagOverride = uint8(0x20)
)

// AnnounceFrame builds the Ethernet frame Announce sends: a gratuitous ARP
// request for an IPv4 addr, an unsolicited neighbour advertisement for an
// IPv6 one. The destination MAC is returned too.
func AnnounceFrame(mac net.HardwareAddr, addr netip.Addr) (frame []byte, dst net.HardwareAddr, err error) {
	if len(mac) != 6 {
		return nil, nil, fmt.Errorf("kernelshim: announce %s: bad MAC %q", addr, mac)
	}
	addr = addr.Unmap()
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	switch {
	case addr.Is4():
		ip := addr.AsSlice()
		eth := &layers.Ethernet{SrcMAC: mac, DstMAC: broadcastMAC, EthernetType: layers.EthernetTypeARP}
		arp := &layers.ARP{
			AddrType:          layers.LinkTypeEthernet,
			Protocol:          layers.EthernetTypeIPv4,
			HwAddressSize:     6,
			ProtAddressSize:   4,
			Operation:         layers.ARPRequest,
			SourceHwAddress:   mac,
			SourceProtAddress: ip,
			DstHwAddress:      zeroMAC,
			DstProtAddress:    ip,
		}
		err = gopacket.SerializeLayers(buf, opts, eth, arp)
		dst = broadcastMAC
	case addr.Is6():
		eth := &layers.Ethernet{SrcMAC: mac, DstMAC: allNodesMAC, EthernetType: layers.EthernetTypeIPv6}
		ip6 := &layers.IPv6{
			Version:    6,
			HopLimit:   255,
			NextHeader: layers.IPProtocolICMPv6,
			SrcIP:      addr.AsSlice(),
			DstIP:      allNodesV6.AsSlice(),
		}
		icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborAdvertisement, 0)}
		if err = icmp.SetNetworkLayerForChecksum(ip6); err != nil {
			return nil, nil, fmt.Errorf("kernelshim: announce %s: %w", addr, err)
		}
		na := &layers.ICMPv6NeighborAdvertisement{
			Flags:         naFlagOverride,
			TargetAddress: addr.AsSlice(),
			Options: layers.ICMPv6Options{
				{Type: layers.ICMPv6OptTargetAddress, Data: []byte(mac)},
			},
		}
		err = gopacket.SerializeLayers(buf, opts, eth, ip6, icmp, na)
		dst = allNodesMAC
	default:
		return nil, nil, fmt.Errorf("kernelshim: announce: invalid address %v", addr)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("kernelshim: announce %s: build frame: %w", addr, err)
	}
	return buf.Bytes(), dst, nil
}

// ARPReplyFrame builds the Ethernet frame ReplyARP sends: an ARP reply from
// mac saying that addr is at mac, to toMAC / toIP.
func ARPReplyFrame(mac net.HardwareAddr, addr netip.Addr, toMAC net.HardwareAddr, toIP netip.Addr) ([]byte, error) {
	addr, toIP = addr.Unmap(), toIP.Unmap()
	if len(mac) != 6 || len(toMAC) != 6 || !addr.Is4() || !toIP.Is4() {
		return nil, fmt.Errorf("kernelshim: arp reply %s is-at %s to %s (%s): bad address", addr, mac, toIP, toMAC)
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true}
	eth := &layers.Ethernet{SrcMAC: mac, DstMAC: toMAC, EthernetType: layers.EthernetTypeARP}
	arp := &layers.ARP{
		AddrType:          layers.LinkTypeEthernet,
		Protocol:          layers.EthernetTypeIPv4,
		HwAddressSize:     6,
		ProtAddressSize:   4,
		Operation:         layers.ARPReply,
		SourceHwAddress:   mac,
		SourceProtAddress: addr.AsSlice(),
		DstHwAddress:      toMAC,
		DstProtAddress:    toIP.AsSlice(),
	}
	if err := gopacket.SerializeLayers(buf, opts, eth, arp); err != nil {
		return nil, fmt.Errorf("kernelshim: arp reply %s: build frame: %w", addr, err)
	}
	return buf.Bytes(), nil
}

// ParseARPRequest decodes an Ethernet frame into an osif.ARPRequest; ok is false
// for anything but an Ethernet / IPv4 ARP request.
func ParseARPRequest(frame []byte) (req osif.ARPRequest, ok bool) {
	const ethLen, arpLen = 14, 28
	if len(frame) < ethLen+arpLen {
		return osif.ARPRequest{}, false
	}
	if frame[12] != 0x08 || frame[13] != 0x06 {
		return osif.ARPRequest{}, false
	}
	a := frame[ethLen:]
	// htype 1 (Ethernet), ptype 0x0800, hlen 6, plen 4, op 1 (request)
	if a[0] != 0 || a[1] != 1 || a[2] != 0x08 || a[3] != 0 || a[4] != 6 || a[5] != 4 || a[6] != 0 || a[7] != 1 {
		return osif.ARPRequest{}, false
	}
	req.Broadcast = net.HardwareAddr(frame[0:6]).String() == broadcastMAC.String()
	req.SenderMAC = net.HardwareAddr(append([]byte(nil), a[8:14]...))
	req.SenderIP = netip.AddrFrom4([4]byte(a[14:18]))
	req.TargetIP = netip.AddrFrom4([4]byte(a[24:28]))
	return req, true
}
