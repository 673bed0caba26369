package carp

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/binary"
	"net/netip"
	"slices"
	"strings"
)

// Key returns the HMAC key ifconfig would store for the password pass: its
// first MaxKeyLen bytes. ifconfig copies the password with strlcpy into a
// 20-byte buffer, so a longer password is cut silently and a C string ends
// at its first NUL; the kernel zero-pads the buffer, which HMAC's own zero
// padding makes equivalent to the shorter key. An empty password gives an
// empty key, which is still used: unauthenticated CARP does not exist.
func Key(pass string) []byte {
	if i := strings.IndexByte(pass, 0); i >= 0 {
		pass = pass[:i]
	}
	if len(pass) > MaxKeyLen {
		pass = pass[:MaxKeyLen]
	}
	return []byte(pass)
}

// MAC returns the HMAC-SHA1 an advertisement of vhid carries
// (sys/netinet/ip_carp.c, carp_hmac_prepare() and carp_hmac_generate()):
//
//	HMAC-SHA1(key, 0x02 0x01 vhid || IPv4 addresses || IPv6 addresses || counter)
//
// where the IPv4 addresses are sorted ascending, each once, without 0.0.0.0
// and 255.255.255.255, and the IPv6 addresses sorted bytewise, each once,
// without :: and the all-ones address, zones stripped. This is what
// FreeBSD's carp_hmac_prepare builds by repeated minimum search, so the
// order the addresses were configured in does not matter, but both peers
// must configure the same set. The key is used as given: pass Key(pass).
func MAC(key []byte, vhid uint8, addrs []netip.Addr, counter uint64) [20]byte {
	return mac(key, vhid, addrs, counter, false)
}

// VerifyMAC reports in constant time whether md is the HMAC of an advert of
// vhid with counter, computed over the locally configured addrs (the
// receiver never trusts the sender's address list). It also accepts
// OpenBSD's variant, which leaves link-local IPv6 addresses out of the hash:
// OpenBSD accepts both forms itself, and doing the same costs one more HMAC
// only when a link-local address is configured.
func VerifyMAC(key []byte, vhid uint8, addrs []netip.Addr, counter uint64, md [20]byte) bool {
	want := mac(key, vhid, addrs, counter, false)
	if hmac.Equal(want[:], md[:]) {
		return true
	}
	if !slices.ContainsFunc(addrs, scopeEmbedded) {
		return false
	}
	want = mac(key, vhid, addrs, counter, true)
	return hmac.Equal(want[:], md[:])
}

// scopeEmbedded is IN6_IS_SCOPE_EMBED: the addresses whose kernel form
// carries a scope id, which OpenBSD's HMAC_NOV6LL variant skips.
func scopeEmbedded(a netip.Addr) bool {
	return a.Is6() && (a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast())
}

var (
	v4Broadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})
	v6AllOnes   = netip.AddrFrom16([16]byte{
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	})
)

func mac(key []byte, vhid uint8, addrs []netip.Addr, counter uint64, skipLinkLocal bool) [20]byte {
	// The sorted address lists and the message live on the stack for the
	// usual handful of addresses: one advert sent or checked allocates
	// nothing.
	var v4buf [16][4]byte
	var v6buf [8][16]byte
	v4, v6 := v4buf[:0], v6buf[:0]
	for _, a := range addrs {
		switch {
		case !a.IsValid():
		case a.Is4():
			// FreeBSD's minimum search runs strictly between 0 and
			// 0xffffffff, so those two can never be hashed.
			if !a.IsUnspecified() && a != v4Broadcast {
				v4 = append(v4, a.As4())
			}
		default:
			// The kernel zeroes the embedded scope id before hashing:
			// the zone is not part of the address.
			a = a.WithZone("")
			if skipLinkLocal && scopeEmbedded(a) {
				continue
			}
			if !a.IsUnspecified() && a != v6AllOnes {
				v6 = append(v6, a.As16())
			}
		}
	}
	slices.SortFunc(v4, func(x, y [4]byte) int { return bytes.Compare(x[:], y[:]) })
	v4 = slices.Compact(v4)
	slices.SortFunc(v6, func(x, y [16]byte) int { return bytes.Compare(x[:], y[:]) })
	v6 = slices.Compact(v6)

	// HMAC (RFC 2104) over SHA-1, spelled out so that both hashes run
	// over stack buffers: H(K^opad || H(K^ipad || message)).
	var k [sha1.BlockSize]byte
	if len(key) > sha1.BlockSize {
		d := sha1.Sum(key)
		copy(k[:], d[:])
	} else {
		copy(k[:], key)
	}
	var buf [256]byte
	m := buf[:0]
	for _, b := range k {
		m = append(m, b^0x36)
	}
	m = append(m, Version, TypeAdvertisement, vhid)
	for _, a := range v4 {
		m = append(m, a[:]...)
	}
	for _, a := range v6 {
		m = append(m, a[:]...)
	}
	m = binary.BigEndian.AppendUint64(m, counter)
	inner := sha1.Sum(m)
	var outer [sha1.BlockSize + sha1.Size]byte
	for i, b := range k {
		outer[i] = b ^ 0x5c
	}
	copy(outer[sha1.BlockSize:], inner[:])
	return sha1.Sum(outer[:])
}

// BuildAdvert returns the 36 bytes of a signed advertisement as FreeBSD
// sends it: version 2, type 1, authlen 7, demote 0 (FreeBSD and ucarp send
// 0 there), the counter, the HMAC over addrs with key, and the checksum.
// Pass the effective skew (see Machine.AdvertParams) as advskew.
func BuildAdvert(vhid, advbase, advskew uint8, counter uint64, key []byte, addrs []netip.Addr) []byte {
	h := Header{
		Version: Version,
		Type:    TypeAdvertisement,
		VHID:    vhid,
		AdvSkew: advskew,
		AuthLen: AuthLen,
		AdvBase: advbase,
		Counter: counter,
		MD:      MAC(key, vhid, addrs, counter),
	}
	b := make([]byte, HeaderLen)
	h.put(b, true)
	return b
}

// ReplayWindow is how far behind the newest counter of a chain a received
// counter may be and still count as a replay. Counters only move forward on
// a segment (every host sends its own counter + 1 and adopts what it
// receives), so a captured advert replayed later is behind; a peer that
// reboots draws a fresh random 64-bit counter, which lands inside one
// chain's window with probability 2^32 / 2^64. 2^32 adverts are 136 years
// at one advert a second.
const ReplayWindow = 1 << 32

// MaxChains is how many counter chains Counter remembers per address
// family. A chain is the run of counters that starts at one random draw
// (a host's first advert after it started) and goes on +1 per advert, from
// host to host as they adopt each other's value. A new chain appears only
// when a host starts with a fresh counter, so 1024 cover the restarts of
// the peers of a vhid for years, and a replay of old chains cannot push the
// live one out (the least recently advanced is forgotten first, and the
// live chain advances every interval). A fresh random counter lands inside
// one of their windows with probability at most 1024 * 2^32 / 2^64
// (2.4e-7). The memory is 8 bytes a chain, and most vhids see one or two.
const MaxChains = 1024

// Counter is a vhid's advertisement counter (sys/netinet/ip_carp.c,
// carp_prepare_ad() and carp_input_c()): random 64 bits
// at the first send, +1 per advert sent (wrapping), and the received value
// adopted from valid adverts, so a node that becomes MASTER continues at the
// old master's value + 1.
//
// FreeBSD does no replay check ("XXX Replay protection goes here"); Counter
// adds one that FreeBSD, OpenBSD and ucarp peers cannot notice: per address
// family it remembers the newest counter sent or accepted of each chain it
// has seen (up to MaxChains, the least recently advanced forgotten first),
// and Fresh refuses a counter equal to one of them or up to ReplayWindow
// behind it. A captured advert replayed later (from any source address) is
// therefore dropped, also after a peer rebooted and the segment moved to
// its new chain, while a peer that takes over (it adopted our counter: it
// sends ours + 1) or reboots (a random counter, almost surely outside every
// window) is accepted at once. Adoption only moves a chain forward, so a
// replay can never pull the counter back. The zero value is ready to use.
type Counter struct {
	v     uint64
	set   bool
	heads [2][]uint64 // per family (0: IPv4, 1: IPv6): newest counter of each chain, least recently advanced first
}

func familyIndex(ipv6 bool) int {
	if ipv6 {
		return 1
	}
	return 0
}

// behind reports whether v is equal to ref or at most ReplayWindow behind it,
// in wrapping 64-bit arithmetic.
func behind(v, ref uint64) bool {
	return ref-v <= ReplayWindow
}

// Next returns the counter for the advert being sent now. On the first call
// (and if nothing was adopted before) it draws the start value from random,
// as FreeBSD's carp_prepare_ad does with two arc4random() calls; a nil
// random starts at 0. The value counts as seen on both families: a copy of
// our own advert replayed to us is stale.
func (c *Counter) Next(random func() uint64) uint64 {
	if !c.set {
		c.set = true
		c.v = 0
		if random != nil {
			c.v = random()
		}
	} else {
		c.v++
	}
	for f := range c.heads {
		c.note(f, c.v)
	}
	return c.v
}

// note records v on family f: it advances the chain v is on (at most
// ReplayWindow ahead of its head), changes nothing if v is behind a head,
// and otherwise starts a new chain, forgetting the least recently advanced
// one beyond MaxChains.
func (c *Counter) note(f int, v uint64) {
	hs := c.heads[f]
	for i, h := range hs {
		if behind(v, h) {
			return
		}
		if behind(h, v) {
			// Advance this chain and make it the most recent.
			copy(hs[i:], hs[i+1:])
			hs[len(hs)-1] = v
			return
		}
	}
	if len(hs) == MaxChains {
		hs = append(hs[:0], hs[1:]...)
	}
	c.heads[f] = append(hs, v)
}

// Fresh reports whether an authenticated advert with counter v, received
// over IPv6 or IPv4, is new: false for a replay (equal to the newest counter
// of a chain seen on that family or up to ReplayWindow behind it).
func (c *Counter) Fresh(ipv6 bool, v uint64) bool {
	for _, h := range c.heads[familyIndex(ipv6)] {
		if behind(v, h) {
			return false
		}
	}
	return true
}

// Adopt records that a valid, fresh advert with counter v was received over
// IPv6 or IPv4. The next Next returns v+1 unless the counter is already at or
// ahead of v (adoption never moves it back).
func (c *Counter) Adopt(ipv6 bool, v uint64) {
	c.note(familyIndex(ipv6), v)
	if !c.set || !behind(v, c.v) {
		c.v = v
		c.set = true
	}
}

// CounterState is what a Counter remembers, for keeping it across a restart
// of the engine: the last counter sent or adopted and, per family, the
// newest counter of each chain seen, least recently advanced first.
type CounterState struct {
	Value uint64   `json:"value"`
	Set   bool     `json:"set,omitempty"`
	IPv4  []uint64 `json:"ipv4,omitempty"`
	IPv6  []uint64 `json:"ipv6,omitempty"`
}

// State returns a copy of what c remembers.
func (c *Counter) State() CounterState {
	return CounterState{Value: c.v, Set: c.set, IPv4: slices.Clone(c.heads[0]), IPv6: slices.Clone(c.heads[1])}
}

// RestoreMargin is how far ahead of a restored value the counter goes on:
// a crash loses the adverts sent since the state was last written, and
// peers that saw them would drop ours as replays if we sent those counters
// again. It stays on the same chain (far inside ReplayWindow).
const RestoreMargin = 1 << 20

// Restore makes c remember s, its own counter RestoreMargin ahead; chains
// beyond MaxChains (the oldest) are dropped, so a damaged state cannot make
// c grow.
func (c *Counter) Restore(s CounterState) {
	keep := func(hs []uint64) []uint64 {
		if len(hs) > MaxChains {
			hs = hs[len(hs)-MaxChains:]
		}
		return slices.Clone(hs)
	}
	c.v, c.set = s.Value, s.Set
	if c.set {
		c.v += RestoreMargin
	}
	c.heads = [2][]uint64{keep(s.IPv4), keep(s.IPv6)}
}

// Value returns the last counter sent or adopted, and false before either.
func (c *Counter) Value() (uint64, bool) { return c.v, c.set }
