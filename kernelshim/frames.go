package kernelshim

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	"github.com/bsdcarp/bsdcarp/carp/osif"
)

var (
	broadcastMAC   = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	allNodesMAC    = net.HardwareAddr{0x33, 0x33, 0x00, 0x00, 0x00, 0x01}
	allNodesV6     = netip.MustParseAddr("ff02::1")
	zeroMAC        = net.HardwareAddr{0, 0, 0, 0, 0, 0}
	naFlagOverride = uint8(0x20)
)

// Sizes and codes of the frames below: ARP over Ethernet (RFC 826), the
// least Ethernet frame without its FCS, and an ICMPv6 neighbour
// advertisement with one target link-layer address option (RFC 4861,
// section 4.4).
const (
	etherTypeARP     = 0x0806
	arpLen           = 28
	arpRequest       = 1
	arpReply         = 2
	minFrameLen      = 60
	icmpv6NA         = 136
	naLen            = 24 // header and target address; the option follows
	optTargetLinkAdr = 2
	protoICMPv6      = 58
)

// AnnounceFrame builds the Ethernet frame Announce sends: a gratuitous ARP
// request for an IPv4 addr (padded to the least Ethernet frame), an
// unsolicited neighbour advertisement (override flag, hop limit 255, to
// ff02::1) for an IPv6 one. The destination MAC is returned too.
func AnnounceFrame(mac net.HardwareAddr, addr netip.Addr) (frame []byte, dst net.HardwareAddr, err error) {
	if len(mac) != 6 {
		return nil, nil, fmt.Errorf("kernelshim: announce %s: bad MAC %q", addr, mac)
	}
	addr = addr.Unmap()
	switch {
	case addr.Is4():
		return arpFrame(arpRequest, mac, addr, broadcastMAC, zeroMAC, addr), broadcastMAC, nil
	case addr.Is6():
		return naFrame(mac, addr), allNodesMAC, nil
	default:
		return nil, nil, fmt.Errorf("kernelshim: announce: invalid address %v", addr)
	}
}

// ARPReplyFrame builds the Ethernet frame ReplyARP sends: an ARP reply from
// mac saying that addr is at mac, to toMAC / toIP.
func ARPReplyFrame(mac net.HardwareAddr, addr netip.Addr, toMAC net.HardwareAddr, toIP netip.Addr) ([]byte, error) {
	addr, toIP = addr.Unmap(), toIP.Unmap()
	if len(mac) != 6 || len(toMAC) != 6 || !addr.Is4() || !toIP.Is4() {
		return nil, fmt.Errorf("kernelshim: arp reply %s is-at %s to %s (%s): bad address", addr, mac, toIP, toMAC)
	}
	return arpFrame(arpReply, mac, addr, toMAC, toMAC, toIP), nil
}

// arpFrame is an Ethernet / IPv4 ARP frame of operation op from srcMAC
// (Ethernet and sender hardware address) for srcIP, to ethDst, with target
// hardware address dstHW and target IP dstIP, padded with zeros to
// minFrameLen. The MACs are 6 bytes and the addresses IPv4 (checked by
// the callers).
func arpFrame(op uint16, srcMAC net.HardwareAddr, srcIP netip.Addr, ethDst, dstHW net.HardwareAddr, dstIP netip.Addr) []byte {
	b := make([]byte, 0, minFrameLen)
	b = append(b, ethDst...)
	b = append(b, srcMAC...)
	b = binary.BigEndian.AppendUint16(b, etherTypeARP)
	b = append(b, 0, 1, 0x08, 0x00, 6, 4) // Ethernet, IPv4, address sizes
	b = binary.BigEndian.AppendUint16(b, op)
	s, d := srcIP.As4(), dstIP.As4()
	b = append(b, srcMAC...)
	b = append(b, s[:]...)
	b = append(b, dstHW...)
	b = append(b, d[:]...)
	return b[:minFrameLen] // the zero padding: make cleared the capacity
}

// naFrame is the unsolicited neighbour advertisement for addr, an IPv6
// address, from mac (6 bytes) to all nodes.
func naFrame(mac net.HardwareAddr, addr netip.Addr) []byte {
	const icmpLen = naLen + 8
	b := make([]byte, 0, ethHeaderLen+ip6HeaderLen+icmpLen)
	b = append(b, allNodesMAC...)
	b = append(b, mac...)
	b = binary.BigEndian.AppendUint16(b, etherTypeIPv6)
	b = binary.BigEndian.AppendUint32(b, 6<<28)
	b = binary.BigEndian.AppendUint16(b, icmpLen)
	b = append(b, protoICMPv6, 255)
	s, d := addr.As16(), allNodesV6.As16()
	b = append(b, s[:]...)
	b = append(b, d[:]...)
	icmp := len(b)
	b = append(b, icmpv6NA, 0, 0, 0, naFlagOverride, 0, 0, 0)
	b = append(b, s[:]...)
	b = append(b, optTargetLinkAdr, 1) // one 8-byte unit
	b = append(b, mac...)
	// The checksum covers the pseudo-header (source, destination, length,
	// next header) and the ICMPv6 message (RFC 4443, section 2.3).
	var sum uint32
	add := func(p []byte) {
		for i := 0; i+1 < len(p); i += 2 {
			sum += uint32(p[i])<<8 | uint32(p[i+1])
		}
	}
	add(b[ethHeaderLen+8 : ethHeaderLen+ip6HeaderLen])
	sum += icmpLen + protoICMPv6
	add(b[icmp:])
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(b[icmp+2:], ^uint16(sum))
	return b
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
