package carp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/google/gopacket"
)

// Wire constants of the CARP advertisement (FreeBSD sys/netinet/ip_carp.h,
// struct carp_header and the CARP_* constants).
const (
	// ProtoNumber is the IP protocol number (IPv4) and next header (IPv6)
	// CARP is carried in. VRRP uses the same number.
	ProtoNumber = 112
	// HeaderLen is the size of a CARP advertisement: 8 bytes of header,
	// 8 bytes of counter and 20 bytes of HMAC-SHA1.
	HeaderLen = 36
	// Version is the only CARP version; the high nibble of byte 0.
	Version = 2
	// TypeAdvertisement is the only CARP message type; the low nibble of byte 0.
	TypeAdvertisement = 1
	// AuthLen is the authlen field: counter plus HMAC in 32-bit words
	// ((8 + 20) / 4).
	AuthLen = 7
	// MaxVHID is CARP_MAXVHID, the highest vhid (1..255).
	MaxVHID = 255
	// MaxAdvSkew is the highest advskew carp_ioctl() accepts (advskew
	// >= 255 is EINVAL); advbase takes 1..255, a whole byte.
	MaxAdvSkew = 254
	// MaxKeyLen is the longest usable password: ifconfig copies the key with
	// strlcpy into a 20-byte buffer, so longer keys are cut silently to 19
	// bytes and both sides must agree on the cut to authenticate.
	MaxKeyLen = 19
	// BowOutAdvBase and BowOutAdvSkew are the values of the last advert a
	// MASTER sends when it is taken down (FreeBSD <= 9, OpenBSD): any backup
	// then hits the "master will time out" rule and takes over at once.
	BowOutAdvBase = 255
	BowOutAdvSkew = 255
	// MaxEffectiveSkew is CARP_MAXSKEW: advskew plus demotion is clamped to
	// it, so 241..254 are advertised and compared as 240.
	MaxEffectiveSkew = 240
	// TTL is CARP_DFLTTL: adverts leave with IPv4 TTL (IPv6 hop limit) 255,
	// and carp_input() drops a multicast advert that arrives with any other
	// (badttl), so none can have been forwarded by a router.
	TTL = 255
)

// GroupV4 is the IPv4 multicast group adverts are sent to (Ethernet
// 01:00:5e:00:00:12).
var GroupV4 = netip.AddrFrom4([4]byte{224, 0, 0, 18})

// GroupV6 is the IPv6 multicast group adverts are sent to (Ethernet
// 33:33:00:00:00:12).
var GroupV6 = netip.MustParseAddr("ff02::12")

// ErrTooShort is wrapped by the errors of DecodeFromBytes when fewer than
// HeaderLen bytes are given.
var ErrTooShort = errors.New("advertisement too short")

// LayerTypeCARP is the gopacket layer type of a CARP advertisement. gopacket
// itself decodes protocol 112 as VRRPv2 and "succeeds" with garbage on CARP
// (whose header differs after byte 0, sys/netinet/ip_carp.h, struct
// carp_header), so CARP bytes must be decoded with this type explicitly,
// for example gopacket.NewPacket(ipPayload, LayerTypeCARP, gopacket.Default).
var LayerTypeCARP = gopacket.RegisterLayerType(1112, gopacket.LayerTypeMetadata{
	Name:    "CARP",
	Decoder: gopacket.DecodeFunc(decodeCARP),
})

// Header is a CARP advertisement as it travels on the wire (FreeBSD
// sys/netinet/ip_carp.h, struct carp_header),
// usable as a gopacket layer (decoding and serializing).
type Header struct {
	// contents and payload are the bytes DecodeFromBytes read the header
	// from and what followed them (gopacket's LayerContents and
	// LayerPayload).
	contents, payload []byte
	// Version is the high nibble of byte 0 (2 for CARP, 3 for VRRPv3).
	Version uint8
	// Type is the low nibble of byte 0 (1: advertisement).
	Type uint8
	// VHID is the virtual host id, 1..255.
	VHID uint8
	// AdvSkew is the sender's effective skew; 255 only in a bow-out.
	AdvSkew uint8
	// AuthLen is the length of counter plus HMAC in 32-bit words: 7.
	AuthLen uint8
	// Demote is the pad byte: FreeBSD and ucarp send 0, OpenBSD its demote
	// count; FreeBSD ignores it on receive.
	Demote uint8
	// AdvBase is the sender's base interval in seconds.
	AdvBase uint8
	// Checksum is the Internet checksum of the 36 bytes, no pseudo-header.
	Checksum uint16
	// Counter is the 64-bit anti-replay counter, big-endian on the wire.
	Counter uint64
	// MD is the HMAC-SHA1 of the advertisement (see MAC).
	MD [20]byte
}

// LayerContents returns the 36 bytes h was decoded from.
func (h *Header) LayerContents() []byte { return h.contents }

// LayerPayload returns the bytes after the header h was decoded from.
func (h *Header) LayerPayload() []byte { return h.payload }

// LayerType returns LayerTypeCARP.
func (h *Header) LayerType() gopacket.LayerType { return LayerTypeCARP }

// CanDecode returns LayerTypeCARP, for gopacket.DecodingLayerParser.
func (h *Header) CanDecode() gopacket.LayerClass { return LayerTypeCARP }

// NextLayerType returns gopacket.LayerTypePayload: CARP carries nothing after
// its 36 bytes, so anything there is opaque trailing data.
func (h *Header) NextLayerType() gopacket.LayerType { return gopacket.LayerTypePayload }

// DecodeFromBytes decodes the first HeaderLen bytes of data into h. It checks
// only the length: version, type, checksum and HMAC are the receiver's
// business (see Validate), because FreeBSD counts each failure separately.
func (h *Header) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < HeaderLen {
		if df != nil {
			df.SetTruncated()
		}
		return fmt.Errorf("carp: %w: %d bytes", ErrTooShort, len(data))
	}
	h.Version = data[0] >> 4
	h.Type = data[0] & 0x0f
	h.VHID = data[1]
	h.AdvSkew = data[2]
	h.AuthLen = data[3]
	h.Demote = data[4]
	h.AdvBase = data[5]
	h.Checksum = binary.BigEndian.Uint16(data[6:8])
	h.Counter = binary.BigEndian.Uint64(data[8:16])
	copy(h.MD[:], data[16:36])
	h.contents = data[:HeaderLen]
	h.payload = data[HeaderLen:]
	return nil
}

// SerializeTo writes the 36 bytes of h in front of b. With
// opts.ComputeChecksums the checksum is computed over the 36 bytes with the
// field zero (no pseudo-header: sys/netinet/ip_carp.c, carp_send_ad_locked()
// and carp_input() checksum the CARP header alone) and stored in h.Checksum;
// otherwise h.Checksum is written as is. Version and Type share byte 0, so
// only their low nibbles are kept.
func (h *Header) SerializeTo(b gopacket.SerializeBuffer, opts gopacket.SerializeOptions) error {
	buf, err := b.PrependBytes(HeaderLen)
	if err != nil {
		return fmt.Errorf("carp: serialize: %w", err)
	}
	h.put(buf, opts.ComputeChecksums)
	return nil
}

// put writes h into buf[:HeaderLen], optionally computing the checksum.
func (h *Header) put(buf []byte, computeChecksum bool) {
	buf[0] = h.Version<<4 | h.Type&0x0f
	buf[1] = h.VHID
	buf[2] = h.AdvSkew
	buf[3] = h.AuthLen
	buf[4] = h.Demote
	buf[5] = h.AdvBase
	binary.BigEndian.PutUint64(buf[8:16], h.Counter)
	copy(buf[16:36], h.MD[:])
	if computeChecksum {
		buf[6], buf[7] = 0, 0
		h.Checksum = Checksum(buf[:HeaderLen])
	}
	binary.BigEndian.PutUint16(buf[6:8], h.Checksum)
}

func decodeCARP(data []byte, p gopacket.PacketBuilder) error {
	h := &Header{}
	if err := h.DecodeFromBytes(data, p); err != nil {
		return err
	}
	p.AddLayer(h)
	return p.NextDecoder(h.NextLayerType())
}

// Checksum returns the RFC 1071 Internet checksum of b (one's complement of
// the one's complement sum of its 16-bit big-endian words, an odd last byte
// padded with zero). CARP computes it over the 36 header bytes alone, with
// no pseudo-header; a received header is intact when Checksum of all 36
// bytes, checksum field included, is 0.
func Checksum(b []byte) uint16 {
	var sum uint64
	for len(b) >= 2 {
		sum += uint64(b[0])<<8 | uint64(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint64(b[0]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// VirtualMAC returns the virtual router MAC 00:00:5e:00:01:<vhid> that
// FreeBSD sends multicast adverts from and answers ARP with (the IANA VRRP
// IPv4 range). ucarp uses 00:00:5e:00:00:<vhid> by a known bug; this is the
// FreeBSD one.
func VirtualMAC(vhid uint8) net.HardwareAddr {
	return net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x01, vhid}
}
