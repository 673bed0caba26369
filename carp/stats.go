package carp

import (
	"net/netip"
	"strconv"

	"github.com/bsdcarp/bsdcarp/carp/api"
	"github.com/google/gopacket"
)

// Stats is FreeBSD's struct carpstats: the 16 counters in the kernel's
// order, as `netstat -s -p carp` and the net.inet.carp.stats sysctl show
// them (sys/netinet/ip_carp.h, struct carpstats).
type Stats struct {
	IPackets  uint64 // packets received (IPv4)
	IPackets6 uint64 // packets received (IPv6)
	BadIf     uint64 // packets discarded for bad interface
	BadTTL    uint64 // packets discarded for wrong TTL
	// HDrops: packets shorter than header. FreeBSD counts a failed
	// m_pullup of the IP and CARP headers; here, a datagram whose IPv4
	// header is incomplete (Received.ShortHeader). Linux's IP layer drops
	// such datagrams before a raw socket sees them, so on a real kernel it
	// stays 0 unless that ever changes.
	HDrops  uint64
	BadSum  uint64 // discarded for bad checksums
	BadVer  uint64 // discarded packets with a bad version
	BadLen  uint64 // discarded because packet too short
	BadAuth uint64 // discarded for bad authentication
	BadVHID uint64 // discarded for bad vhid
	// BadAddrs: discarded because of a bad address list. Neither FreeBSD
	// 14 nor OpenBSD ever counts it: the address list is part of the HMAC,
	// so a differing list is counted in BadAuth. Kept at 0 likewise.
	BadAddrs  uint64
	OPackets  uint64 // packets sent (IPv4)
	OPackets6 uint64 // packets sent (IPv6)
	// ONoMem: send failed due to mbuf memory error. FreeBSD counts an
	// mbuf (or tag) allocation failure while building an advert; the
	// Linux equivalent is a send refused with ENOBUFS or ENOMEM.
	ONoMem uint64
	// OStates: state updates sent. Reserved for a state-sync protocol
	// that was never written: FreeBSD and OpenBSD never count it (their
	// netstat prints it under "#if notyet"), and it stays 0 here.
	OStates uint64
	// Preempt: transitions to master. FreeBSD 14 never counts it;
	// OpenBSD, where the counter comes from and whose netstat prints it
	// as "transitions to master", counts every change to MASTER
	// (carp_master_down), and so does bsdcarp.
	Preempt uint64

	// Replay counts authenticated adverts dropped because their counter
	// was already seen (see Counter.Fresh). It is bsdcarp's addition and
	// not part of FreeBSD's struct carpstats: Named leaves it out.
	Replay uint64
}

// NamedCounter is one carpstats counter with its kernel name without the
// carps_ prefix.
type NamedCounter struct {
	Name  string
	Value uint64
}

// Named returns the counters in FreeBSD's struct order, named as
// api.CarpstatsNames.
func (s *Stats) Named() []NamedCounter {
	vals := [len(api.CarpstatsNames)]uint64{
		s.IPackets, s.IPackets6, s.BadIf, s.BadTTL, s.HDrops, s.BadSum, s.BadVer, s.BadLen,
		s.BadAuth, s.BadVHID, s.BadAddrs, s.OPackets, s.OPackets6, s.ONoMem, s.OStates, s.Preempt,
	}
	out := make([]NamedCounter, len(api.CarpstatsNames))
	for i, name := range api.CarpstatsNames {
		out[i] = NamedCounter{name, vals[i]}
	}
	return out
}

// Drop is why Validate dropped a packet (DropNone: it did not).
type Drop int

// The drop reasons, in the order Validate checks them after DropDisabled.
const (
	// DropNone: the advert is valid.
	DropNone Drop = iota
	// DropDisabled: net.inet.carp.allow is 0; dropped silently, no counter.
	DropDisabled
	// DropHdr: the IP header itself was incomplete (Received.ShortHeader).
	DropHdr
	// DropBadLen: shorter than 8 bytes, or a CARP header shorter than 36.
	DropBadLen
	// DropBadVer: version not 2, or type not advertisement.
	DropBadVer
	// DropBadSum: the checksum does not verify.
	DropBadSum
	// DropBadVHID: no address of this family with this vhid on the
	// receiving interface.
	DropBadVHID
	// DropBadIf: IPv6 packet on an interface without any CARP.
	DropBadIf
	// DropBadTTL: sent to a multicast group with TTL / hop limit not 255.
	DropBadTTL
	// DropBadAuth: the HMAC does not match the local configuration.
	DropBadAuth
	// DropReplay: a valid advert whose counter was already seen, counted
	// in Stats.Replay (the caller checks it: see Counter.Fresh).
	DropReplay
)

var dropNames = [...]string{"ok", "disabled", api.StatHDrops, api.StatBadLen, api.StatBadVer, api.StatBadSum, api.StatBadVHID, api.StatBadIf, api.StatBadTTL, api.StatBadAuth, api.StatReplay}

// String returns "ok", "disabled", or the carpstats counter name the drop
// is counted in ("badlen", "badver", ...).
func (d Drop) String() string {
	if d >= 0 && int(d) < len(dropNames) {
		return dropNames[d]
	}
	return "Drop(" + strconv.Itoa(int(d)) + ")"
}

// Received is one CARP packet as the receiving socket delivered it.
type Received struct {
	// Payload is the bytes after the IP header.
	Payload []byte
	// IPv6 is true for packets that arrived over IPv6.
	IPv6 bool
	// TTL is the IPv4 TTL or IPv6 hop limit as received.
	TTL int
	// Multicast is true when the destination was a multicast group: only
	// then must the TTL be 255 (FreeBSD 14 unicast peers may be routed).
	Multicast bool
	// ShortHeader is true when the datagram's IP header was incomplete,
	// so that no CARP payload could be found (counted in hdrops).
	ShortHeader bool
	// NoCARP is true when the receiving interface has no CARP vhid at all.
	// For IPv6 FreeBSD then counts badif instead of badvhid; for IPv4 it
	// changes nothing. (An addition to the brief's API: VHIDLookup alone
	// cannot tell the two cases apart.)
	NoCARP bool
}

// VHIDLookup returns the local HMAC key and virtual addresses of vhid for
// the family and interface a packet arrived on; ok is false when the
// receiving interface has no address of that family with that vhid.
type VHIDLookup func(vhid uint8) (key []byte, addrs []netip.Addr, ok bool)

// Validate checks a received packet in FreeBSD's order (sys/netinet/ip_carp.c,
// carp_input() or carp6_input(), then carp_input_c()) and
// counts it in st: ipackets or ipackets6 for every packet; then, the first
// failure only being counted,
//
//	allow false                      -> DropDisabled (no counter)
//	IP header incomplete             -> hdrops
//	shorter than 8 bytes             -> badlen
//	version not 2 or type not 1      -> badver
//	shorter than 36 bytes            -> badlen
//	checksum wrong                   -> badsum
//	lookup not ok                    -> badvhid (IPv6 with NoCARP: badif)
//	multicast and TTL != 255         -> badttl
//	HMAC over the local addresses    -> badauth
//
// so a packet with both a bad checksum and a bad TTL counts badsum. The
// header is returned as far as it could be decoded (zero when shorter than
// 36 bytes). A nil st or lookup is tolerated. Validate never panics.
func Validate(st *Stats, p Received, allow bool, lookup VHIDLookup) (Header, Drop) {
	if st == nil {
		st = new(Stats)
	}
	if p.IPv6 {
		st.IPackets6++
	} else {
		st.IPackets++
	}
	if !allow {
		return Header{}, DropDisabled
	}
	if p.ShortHeader {
		st.HDrops++
		return Header{}, DropHdr
	}
	b := p.Payload
	// FreeBSD first needs the 8 bytes shared with VRRPv3 to see the
	// version, then the real minimum length of that version.
	if len(b) < 8 {
		st.BadLen++
		return Header{}, DropBadLen
	}
	if b[0]>>4 != Version || b[0]&0x0f != TypeAdvertisement {
		st.BadVer++
		return Header{}, DropBadVer
	}
	var h Header
	if err := h.DecodeFromBytes(b, gopacket.NilDecodeFeedback); err != nil {
		st.BadLen++
		return Header{}, DropBadLen
	}
	if Checksum(b[:HeaderLen]) != 0 {
		st.BadSum++
		return h, DropBadSum
	}
	var key []byte
	var addrs []netip.Addr
	ok := false
	if lookup != nil {
		key, addrs, ok = lookup(h.VHID)
	}
	if !ok {
		if p.IPv6 && p.NoCARP {
			st.BadIf++
			return h, DropBadIf
		}
		st.BadVHID++
		return h, DropBadVHID
	}
	if p.Multicast && p.TTL != TTL {
		st.BadTTL++
		return h, DropBadTTL
	}
	if !VerifyMAC(key, h.VHID, addrs, h.Counter, h.MD) {
		st.BadAuth++
		return h, DropBadAuth
	}
	return h, DropNone
}
