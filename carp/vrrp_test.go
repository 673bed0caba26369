package carp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// goldenVRRP is what the capture script says about each keepalived frame
// (see the comments of testdata/peers/golden_vectors.txt).
var goldenVRRP = []struct {
	name     string
	vrid     uint8
	prio     uint8
	interval uint16
	vip      netip.Addr
}{
	{"ka_v3_prio150", 51, 150, 100, netip.MustParseAddr("192.0.2.150")},
	{"ka_v3_prio100", 51, 100, 100, netip.MustParseAddr("192.0.2.150")},
	{"ka_v3_vmac", 51, 150, 100, netip.MustParseAddr("192.0.2.150")},
	{"ka_v3_ipv6_vmac", 51, 150, 100, netip.MustParseAddr("2001:db8::150")},
}

// ipFrame splits a golden Ethernet frame into its IP addresses, TTL and
// the bytes after the IP header, with gopacket.
func ipFrame(t *testing.T, frame []byte) (src, dst netip.Addr, ttl uint8, payload []byte) {
	t.Helper()
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	if ip, ok := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ok {
		src, _ = netip.AddrFromSlice(ip.SrcIP)
		dst, _ = netip.AddrFromSlice(ip.DstIP)
		return src.Unmap(), dst.Unmap(), ip.TTL, ip.Payload
	}
	if ip, ok := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6); ok {
		src, _ = netip.AddrFromSlice(ip.SrcIP)
		dst, _ = netip.AddrFromSlice(ip.DstIP)
		return src, dst, ip.HopLimit, ip.Payload
	}
	t.Fatalf("frame has no IP layer: %v", pkt)
	return
}

// TestGoldenKeepalivedVRRP: keepalived's VRRPv3 adverts (IPv4, IPv6, with
// and without its virtual MAC) decode, verify with the RFC checksum, and
// our encoder reproduces them byte for byte.
func TestGoldenKeepalivedVRRP(t *testing.T) {
	frames := readGolden(t, captureFile)
	for _, g := range goldenVRRP {
		t.Run(g.name, func(t *testing.T) {
			frame, ok := frames[g.name]
			if !ok {
				t.Fatalf("no frame %s in %s", g.name, captureFile)
			}
			src, dst, ttl, payload := ipFrame(t, frame)
			if ttl != TTL {
				t.Errorf("TTL %d, want %d", ttl, TTL)
			}
			a, sum, err := ParseVRRP(payload, src, dst)
			if err != nil {
				t.Fatalf("ParseVRRP: %v", err)
			}
			if sum != VRRPChecksumRFC {
				t.Errorf("checksum dialect %v, want RFC", sum)
			}
			if a.VRID != g.vrid || a.Priority != g.prio || a.Interval != g.interval || len(a.Addrs) != 1 || a.Addrs[0] != g.vip {
				t.Errorf("decoded %+v, want vrid %d prio %d interval %d addrs [%v]", a, g.vrid, g.prio, g.interval, g.vip)
			}
			if got := AppendVRRP(nil, a, src, dst); !bytes.Equal(got, payload) {
				t.Errorf("encoder:\n got %x\nwant %x", got, payload)
			}
		})
	}
}

// TestVRRPChecksumDialects: an IPv4 advert checksummed without the
// pseudo-header (Cisco, keepalived's v3_checksum_as_v2) is accepted and
// told apart; over IPv6 only the RFC form is; a wrong one is refused.
func TestVRRPChecksumDialects(t *testing.T) {
	src4, dst4 := netip.MustParseAddr("192.0.2.11"), GroupV4
	a := VRRPAdvert{VRID: 7, Priority: 200, Interval: 1, Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr("192.0.2.8")}}
	rfc := AppendVRRP(nil, a, src4, dst4)
	v2 := bytes.Clone(rfc)
	v2[6], v2[7] = 0, 0
	binary.BigEndian.PutUint16(v2[6:], Checksum(v2))
	if bytes.Equal(rfc, v2) {
		t.Fatal("the two dialects gave the same checksum")
	}
	for _, c := range []struct {
		name string
		b    []byte
		want VRRPChecksum
	}{{"rfc", rfc, VRRPChecksumRFC}, {"no pseudo-header", v2, VRRPChecksumNoPseudo}} {
		got, sum, err := ParseVRRP(c.b, src4, dst4)
		if err != nil || sum != c.want || got.Priority != 200 || got.Interval != 1 || len(got.Addrs) != 2 {
			t.Errorf("%s: %+v %v %v", c.name, got, sum, err)
		}
	}
	// Mixed or missing families are refused, not a panic.
	for _, c := range [][2]netip.Addr{{netip.MustParseAddr("fe80::1"), {}}, {netip.MustParseAddr("fe80::1"), dst4}, {{}, {}}} {
		if _, _, err := ParseVRRP(rfc, c[0], c[1]); err == nil {
			t.Errorf("ParseVRRP from %v to %v: no error", c[0], c[1])
		}
	}
	// A checksum that also covers trailing bytes (FreeBSD sums the whole
	// payload) is accepted.
	trail := append(bytes.Clone(rfc), 0xde, 0xad)
	trail[6], trail[7] = 0, 0
	binary.BigEndian.PutUint16(trail[6:], vrrpSum(trail, src4, dst4))
	if _, sum, err := ParseVRRP(trail, src4, dst4); err != nil || sum != VRRPChecksumRFC {
		t.Errorf("checksum over trailing bytes: %v %v", sum, err)
	}
	// The same bytes from another source fail the RFC checksum.
	if _, _, err := ParseVRRP(rfc, netip.MustParseAddr("192.0.2.12"), dst4); !errors.Is(err, ErrVRRPChecksum) {
		t.Errorf("rfc checksum from another source: err %v, want ErrVRRPChecksum", err)
	}
	src6, dst6 := netip.MustParseAddr("fe80::1"), GroupV6
	a6 := VRRPAdvert{VRID: 7, Priority: 100, Interval: 100, Addrs: []netip.Addr{netip.MustParseAddr("2001:db8::7")}}
	b6 := AppendVRRP(nil, a6, src6, dst6)
	if _, sum, err := ParseVRRP(b6, src6, dst6); err != nil || sum != VRRPChecksumRFC {
		t.Errorf("IPv6 rfc: %v %v", sum, err)
	}
	b6[6], b6[7] = 0, 0
	binary.BigEndian.PutUint16(b6[6:], Checksum(b6))
	if _, _, err := ParseVRRP(b6, src6, dst6); !errors.Is(err, ErrVRRPChecksum) {
		t.Errorf("IPv6 without pseudo-header: err %v, want ErrVRRPChecksum", err)
	}
}

// TestVRRPParseErrors: each malformed advert fails with the error of its
// carpstats counter.
func TestVRRPParseErrors(t *testing.T) {
	src, dst := netip.MustParseAddr("192.0.2.11"), GroupV4
	good := AppendVRRP(nil, VRRPAdvert{VRID: 1, Priority: 100, Interval: 100, Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.1")}}, src, dst)
	carp := BuildAdvert(1, 1, 0, 1, Key("x"), nil)
	count := bytes.Clone(good)
	count[3] = 2
	for _, c := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrVRRPShort},
		{"seven bytes", good[:7], ErrVRRPShort},
		{"count beyond the end", count, ErrVRRPShort},
		{"CARP", carp, ErrVRRPVersion},
		{"type 2", append([]byte{0x32}, good[1:]...), ErrVRRPVersion},
		{"flipped bit", append(bytes.Clone(good[:9]), good[9]^1, good[10], good[11]), ErrVRRPChecksum},
	} {
		if _, _, err := ParseVRRP(c.b, src, dst); !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.want)
		}
	}
}

// TestAppendVRRPFamilies: only addresses of the destination's family are
// listed, and the interval keeps 12 bits.
func TestAppendVRRPFamilies(t *testing.T) {
	addrs := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("192.0.2.2")}
	b := AppendVRRP(nil, VRRPAdvert{VRID: 9, Priority: 1, Interval: 0xf123, Addrs: addrs}, netip.MustParseAddr("192.0.2.11"), GroupV4)
	if len(b) != VRRPHeaderLen+8 || b[3] != 2 {
		t.Fatalf("IPv4 advert %x: want 2 addresses", b)
	}
	if iv := binary.BigEndian.Uint16(b[4:6]); iv != 0x0123 {
		t.Errorf("interval field %#04x, want 0x0123", iv)
	}
	b6 := AppendVRRP(nil, VRRPAdvert{VRID: 9, Priority: 1, Interval: 100, Addrs: addrs}, netip.MustParseAddr("fe80::1"), GroupV6)
	if len(b6) != VRRPHeaderLen+16 || b6[3] != 1 {
		t.Fatalf("IPv6 advert %x: want 1 address", b6)
	}
}

// TestVRRPTimers: RFC 9568's skew and master-down interval, exact in
// microseconds also at 10 ms intervals.
func TestVRRPTimers(t *testing.T) {
	for _, c := range []struct {
		prio     uint8
		interval uint16
		skew, md time.Duration
	}{
		{100, 100, 609375 * time.Microsecond, 3*time.Second + 609375*time.Microsecond},
		{254, 100, 7812 * time.Microsecond, 3*time.Second + 7812*time.Microsecond},
		{100, 1, 6093 * time.Microsecond, 30*time.Millisecond + 6093*time.Microsecond},
		{1, 4095, 40790039 * time.Microsecond, 3*40950*time.Millisecond + 40790039*time.Microsecond},
	} {
		if got := VRRPSkew(c.prio, c.interval); got != c.skew {
			t.Errorf("VRRPSkew(%d, %d) = %v, want %v", c.prio, c.interval, got, c.skew)
		}
		if got := VRRPMasterDown(c.prio, c.interval); got != c.md {
			t.Errorf("VRRPMasterDown(%d, %d) = %v, want %v", c.prio, c.interval, got, c.md)
		}
	}
}

// FuzzVRRP: ParseVRRP never panics, and whatever it accepts re-encodes to
// the same bytes in the dialect it verified with.
func FuzzVRRP(f *testing.F) {
	src4, src6 := netip.MustParseAddr("192.0.2.11"), netip.MustParseAddr("fe80::1")
	f.Add(AppendVRRP(nil, VRRPAdvert{VRID: 51, Priority: 150, Interval: 100, Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.150")}}, src4, GroupV4), false)
	f.Add(AppendVRRP(nil, VRRPAdvert{VRID: 51, Priority: 150, Interval: 1, Addrs: []netip.Addr{netip.MustParseAddr("2001:db8::150")}}, src6, GroupV6), true)
	f.Add([]byte{0x31, 1, 0, 0, 0, 100, 0, 0}, false)
	f.Add([]byte{}, true)
	f.Fuzz(func(t *testing.T, b []byte, v6 bool) {
		src, dst := src4, GroupV4
		if v6 {
			src, dst = src6, GroupV6
		}
		if len(b) > 0 && b[0]&1 == 1 {
			_, _, _ = ParseVRRP(b, src, GroupV6) // mixed families: an error, never a panic
		}
		a, sum, err := ParseVRRP(b, src, dst)
		if err != nil {
			if sum != VRRPChecksumBad {
				t.Fatalf("error %v with dialect %v", err, sum)
			}
			return
		}
		n := VRRPHeaderLen + len(a.Addrs)*len(dst.AsSlice())
		want := bytes.Clone(b[:n])
		if want[4]&0xf0 != 0 {
			return // reserved bits are not kept
		}
		if sum == VRRPChecksumRFC && vrrpSum(want, src, dst) != 0 {
			return // the checksum covered bytes after the addresses
		}
		got := AppendVRRP(nil, a, src, dst)
		if sum == VRRPChecksumNoPseudo {
			got[6], got[7] = 0, 0
			binary.BigEndian.PutUint16(got[6:], Checksum(got))
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("re-encoded %x, want %x", got, want)
		}
	})
}
