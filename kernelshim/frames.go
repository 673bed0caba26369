package kernelshim

import (
	"fmt"
	"net"
	"net/netip"

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
