package kernelshim

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/bsdcarp/bsdcarp/carp/osif"
)

// carpTTL is CARP_DFLTTL of FreeBSD's sys/netinet/ip_carp.h: adverts leave
// with IPv4 TTL (IPv6 hop limit) 255, and receivers drop multicast adverts
// with any other (carp_input()), so none can come from beyond the link.
const carpTTL = 255

// Sizes of the headers of an advert frame.
const (
	ethHeaderLen  = 14
	ip4HeaderLen  = 20
	ip6HeaderLen  = 40
	etherTypeIPv4 = 0x0800
	etherTypeIPv6 = 0x86dd
)

// MulticastMAC is the Ethernet destination of IP multicast group dst:
// 01:00:5e and the low 23 bits of an IPv4 group (RFC 1112, section 6.4),
// 33:33 and the low 32 bits of an IPv6 group (RFC 2464, section 7). ok is
// false when dst is not a multicast address.
func MulticastMAC(dst netip.Addr) (mac [6]byte, ok bool) {
	dst = dst.Unmap()
	if !dst.IsMulticast() {
		return mac, false
	}
	if dst.Is4() {
		a := dst.As4()
		return [6]byte{0x01, 0x00, 0x5e, a[1] & 0x7f, a[2], a[3]}, true
	}
	a := dst.As16()
	return [6]byte{0x33, 0x33, a[12], a[13], a[14], a[15]}, true
}

// AdvertFrameLen is the length of the Ethernet frame AppendAdvertFrame
// builds for a payload of n bytes.
func AdvertFrameLen(v6 bool, n int) int {
	if v6 {
		return ethHeaderLen + ip6HeaderLen + n
	}
	return ethHeaderLen + ip4HeaderLen + n
}

// AppendAdvertFrame appends to b the whole Ethernet frame of a CARP advert
// to the multicast group dst, as FreeBSD puts it on the wire: from the
// Ethernet address srcMAC (the vhid's virtual MAC) to dst's multicast MAC;
// for IPv4 a 20-byte header with TOS tos, DF set, identification 0 (an
// atomic datagram, RFC 6864; FreeBSD's default net.inet.ip.rfc6864=1
// does the same), TTL 255 and protocol 112; for IPv6 a header with
// traffic class tos, flow label 0, next header 112 and hop limit 255.
// payload follows unchanged. With cap(b) large enough it does not
// allocate.
func AppendAdvertFrame(b []byte, srcMAC [6]byte, src, dst netip.Addr, tos uint8, payload []byte) ([]byte, error) {
	src, dst = src.Unmap().WithZone(""), dst.Unmap().WithZone("")
	dmac, ok := MulticastMAC(dst)
	if !ok || !src.IsValid() || src.Is4() != dst.Is4() {
		return b, fmt.Errorf("kernelshim: advert frame %v -> %v: want a source and a multicast group of one family", src, dst)
	}
	v6 := dst.Is6()
	if n := len(payload); (v6 && n > 0xffff) || (!v6 && n > 0xffff-ip4HeaderLen) {
		return b, fmt.Errorf("kernelshim: advert frame %v -> %v: payload of %d bytes too long", src, dst, n)
	}
	b = append(b, dmac[:]...)
	b = append(b, srcMAC[:]...)
	if !v6 {
		b = binary.BigEndian.AppendUint16(b, etherTypeIPv4)
		ip := len(b)
		b = append(b, 0x45, tos)
		b = binary.BigEndian.AppendUint16(b, uint16(ip4HeaderLen+len(payload)))
		b = append(b, 0, 0, 0x40, 0, carpTTL, osif.Protocol, 0, 0) // id 0, DF, TTL, protocol, checksum
		s, d := src.As4(), dst.As4()
		b = append(b, s[:]...)
		b = append(b, d[:]...)
		binary.BigEndian.PutUint16(b[ip+10:], ipChecksum(b[ip:ip+ip4HeaderLen]))
	} else {
		b = binary.BigEndian.AppendUint16(b, etherTypeIPv6)
		b = binary.BigEndian.AppendUint32(b, 6<<28|uint32(tos)<<20)
		b = binary.BigEndian.AppendUint16(b, uint16(len(payload)))
		b = append(b, osif.Protocol, carpTTL)
		s, d := src.As16(), dst.As16()
		b = append(b, s[:]...)
		b = append(b, d[:]...)
	}
	b = append(b, payload...)
	return b, nil
}

// ipChecksum is the Internet checksum (RFC 1071) of h, an IPv4 header
// whose checksum field is zero.
func ipChecksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(h[i])<<8 | uint32(h[i+1])
	}
	if len(h)%2 == 1 {
		sum += uint32(h[len(h)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
