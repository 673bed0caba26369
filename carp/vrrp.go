package carp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// VRRP version 3 (RFC 9568), the second protocol FreeBSD 14's carp(4)
// speaks (`ifconfig ... carpver 3`). It shares IP protocol 112, the groups
// 224.0.0.18 and ff02::12 and byte 0's layout with CARP; the rest differs:
//
//	byte 0    version 3 (high nibble), type 1 (advertisement)
//	byte 1    VRID (the vhid)
//	byte 2    priority: 1..254 for backups, 255 for the address owner,
//	          0 for a master that is giving up
//	byte 3    count of addresses
//	bytes 4-5 4 reserved bits, then the maximum advertisement interval
//	          in centiseconds (12 bits: 1..4095)
//	bytes 6-7 checksum over the pseudo-header and the whole message
//	          (RFC 9568 section 5.2.8)
//	then      count addresses of the packet's family (4 or 16 bytes each)
//
// There is no authentication and no counter.
const (
	// VRRPVersion is the version nibble of a VRRPv3 advertisement.
	VRRPVersion = 3
	// VRRPHeaderLen is the fixed part of an advertisement; the addresses
	// follow it.
	VRRPHeaderLen = 8
	// VRRPDefaultPriority is the priority of a new vhid in VRRPv3 mode
	// (RFC 9568 section 6.1, FreeBSD's default vrrpprio).
	VRRPDefaultPriority = 100
	// VRRPDefaultInterval is the advertisement interval of a new vhid in
	// centiseconds (1 s; RFC 9568 section 6.1).
	VRRPDefaultInterval = 100
	// VRRPMaxInterval is the largest interval the 12-bit field holds.
	VRRPMaxInterval = 4095
	// VRRPMaxPriority is the highest priority a vhid can be given: 255
	// belongs to the address owner, which carp(4) never is.
	VRRPMaxPriority = 254
	// VRRPMaxAddrs is the most addresses one advertisement carries (the
	// count is one byte).
	VRRPMaxAddrs = 255
)

// VRRPChecksum says how a received advertisement's checksum verified.
type VRRPChecksum uint8

const (
	// VRRPChecksumBad: it verifies neither way.
	VRRPChecksumBad VRRPChecksum = iota
	// VRRPChecksumRFC: over the pseudo-header and the message, as RFC 9568
	// says and FreeBSD, keepalived and MikroTik send.
	VRRPChecksumRFC
	// VRRPChecksumNoPseudo: over the message alone, as VRRPv2 did; what
	// Cisco IOS sends in v3 and keepalived with v3_checksum_as_v2. Only
	// IPv4 advertisements are accepted this way.
	VRRPChecksumNoPseudo
)

// VRRPAdvert is a decoded VRRPv3 advertisement.
type VRRPAdvert struct {
	// VRID is the virtual router id (the vhid), 1..255.
	VRID uint8
	// Priority is the sender's priority; 0 means its master is leaving.
	Priority uint8
	// Interval is the sender's advertisement interval in centiseconds.
	Interval uint16
	// Addrs are the virtual addresses the advertisement lists.
	Addrs []netip.Addr
}

// The ways ParseVRRP fails; each maps to one carpstats counter.
var (
	// ErrVRRPShort: shorter than its header, or than its address count
	// says (badlen).
	ErrVRRPShort = errors.New("vrrp: advertisement too short")
	// ErrVRRPVersion: not version 3 type 1 (badver).
	ErrVRRPVersion = errors.New("vrrp: not a VRRPv3 advertisement")
	// ErrVRRPChecksum: the checksum verifies in no dialect (badsum).
	ErrVRRPChecksum = errors.New("vrrp: bad checksum")
)

// IntervalDuration returns an interval in centiseconds as a time.Duration.
func IntervalDuration(cs uint16) time.Duration {
	return time.Duration(cs) * 10 * time.Millisecond
}

// VRRPSkew is RFC 9568's Skew_Time, ((256 - priority) * interval) / 256,
// computed in microseconds so that short intervals keep their skew: at
// interval 1 (10 ms) and priority 100 it is 6.093 ms.
func VRRPSkew(prio uint8, interval uint16) time.Duration {
	us := (256 - int64(prio)) * int64(interval) * 10000 / 256
	return time.Duration(us) * time.Microsecond
}

// VRRPMasterDown is RFC 9568's Master_Down_Interval: three times the
// master's advertisement interval plus the local skew.
func VRRPMasterDown(prio uint8, masterInterval uint16) time.Duration {
	return 3*IntervalDuration(masterInterval) + VRRPSkew(prio, masterInterval)
}

// AppendVRRP appends the advertisement a, sent from src to dst, to b with
// the RFC 9568 checksum (pseudo-header of src and dst). Addresses of the
// other family than dst are left out; more than VRRPMaxAddrs are cut. The
// interval is masked to 12 bits.
func AppendVRRP(b []byte, a VRRPAdvert, src, dst netip.Addr) []byte {
	start := len(b)
	v6 := dst.Unmap().Is6()
	n := 0
	b = append(b, VRRPVersion<<4|TypeAdvertisement, a.VRID, a.Priority, 0, byte(a.Interval>>8)&0x0f, byte(a.Interval), 0, 0)
	for _, ad := range a.Addrs {
		ad = ad.Unmap()
		if ad.Is6() != v6 || n == VRRPMaxAddrs {
			continue
		}
		b = append(b, ad.AsSlice()...)
		n++
	}
	b[start+3] = byte(n)
	binary.BigEndian.PutUint16(b[start+6:], vrrpSum(b[start:], src, dst))
	return b
}

// ParseVRRP decodes a VRRPv3 advertisement b (the bytes after the IP
// header) that travelled from src to dst and verifies its checksum: first
// as RFC 9568 says, then, for IPv4 only, without the pseudo-header. Bytes
// after the listed addresses are not decoded (a checksum that covers them
// too is accepted: FreeBSD sums the whole payload). Addresses of different
// or no families are refused. It never panics.
func ParseVRRP(b []byte, src, dst netip.Addr) (VRRPAdvert, VRRPChecksum, error) {
	src, dst = src.Unmap(), dst.Unmap()
	if !src.IsValid() || !dst.IsValid() || src.Is4() != dst.Is4() {
		return VRRPAdvert{}, VRRPChecksumBad, fmt.Errorf("%w: addresses %v -> %v", ErrVRRPChecksum, src, dst)
	}
	if len(b) < VRRPHeaderLen {
		return VRRPAdvert{}, VRRPChecksumBad, fmt.Errorf("%w: %d bytes", ErrVRRPShort, len(b))
	}
	if b[0]>>4 != VRRPVersion || b[0]&0x0f != TypeAdvertisement {
		return VRRPAdvert{}, VRRPChecksumBad, fmt.Errorf("%w: byte 0 is %#02x", ErrVRRPVersion, b[0])
	}
	v6 := dst.Unmap().Is6()
	size := 4
	if v6 {
		size = 16
	}
	count := int(b[3])
	end := VRRPHeaderLen + count*size
	if len(b) < end {
		return VRRPAdvert{}, VRRPChecksumBad, fmt.Errorf("%w: %d addresses need %d bytes, have %d", ErrVRRPShort, count, end, len(b))
	}
	a := VRRPAdvert{VRID: b[1], Priority: b[2], Interval: binary.BigEndian.Uint16(b[4:6]) & 0x0fff}
	if count > 0 {
		a.Addrs = make([]netip.Addr, 0, count)
	}
	for off := VRRPHeaderLen; off < end; off += size {
		if v6 {
			a.Addrs = append(a.Addrs, netip.AddrFrom16([16]byte(b[off:off+16])))
		} else {
			a.Addrs = append(a.Addrs, netip.AddrFrom4([4]byte(b[off:off+4])))
		}
	}
	msg := b[:end]
	switch {
	case vrrpSum(msg, src, dst) == 0:
		return a, VRRPChecksumRFC, nil
	case end < len(b) && vrrpSum(b, src, dst) == 0:
		// FreeBSD sums the whole IP payload: a sender may have covered
		// bytes after the addresses.
		return a, VRRPChecksumRFC, nil
	case !v6 && Checksum(msg) == 0:
		return a, VRRPChecksumNoPseudo, nil
	}
	return a, VRRPChecksumBad, fmt.Errorf("%w: %#04x", ErrVRRPChecksum, binary.BigEndian.Uint16(b[6:8]))
}

// vrrpSum is the Internet checksum of msg preceded by the pseudo-header of
// src and dst (RFC 768 for IPv4, RFC 8200 section 8.1 for IPv6) with
// protocol 112. Over a message whose checksum field holds the right value
// it is 0; over one with the field zero it is the value to put there.
func vrrpSum(msg []byte, src, dst netip.Addr) uint16 {
	src, dst = src.Unmap(), dst.Unmap()
	var sum uint64
	add := func(b []byte) {
		for len(b) >= 2 {
			sum += uint64(b[0])<<8 | uint64(b[1])
			b = b[2:]
		}
		if len(b) == 1 {
			sum += uint64(b[0]) << 8
		}
	}
	if dst.Is6() {
		s, d := src.As16(), dst.As16()
		add(s[:])
		add(d[:])
		sum += uint64(len(msg)>>16) + uint64(len(msg)&0xffff)
	} else {
		s, d := src.As4(), dst.As4()
		add(s[:])
		add(d[:])
		sum += uint64(len(msg))
	}
	sum += ProtoNumber
	add(msg)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
