package carp

import (
	"net/netip"
	"testing"
)

func TestValidateInFreeBSDOrder(t *testing.T) {
	key := Key("pw")
	vip := addrs("10.0.0.1")
	good := BuildAdvert(1, 1, 0, 12345, key, vip)
	// mod returns a copy of good changed by f; keep the checksum right
	// unless the test breaks it.
	mod := func(f func(b []byte), fixSum bool) []byte {
		b := append([]byte{}, good...)
		f(b)
		if fixSum {
			b[6], b[7] = 0, 0
			s := Checksum(b[:HeaderLen])
			b[6], b[7] = byte(s>>8), byte(s)
		}
		return b
	}
	badSum := mod(func(b []byte) { b[7]++ }, false)
	badVer := mod(func(b []byte) { b[0] = 0x31 }, true)
	badType := mod(func(b []byte) { b[0] = 0x22 }, true)
	otherVHID := mod(func(b []byte) { b[1] = 2 }, true)
	badMD := mod(func(b []byte) { b[35] ^= 1 }, true)

	lookup := func(vhid uint8) ([]byte, []netip.Addr, bool) { return key, vip, vhid == 1 }
	tests := []struct {
		name  string
		p     Received
		allow bool
		want  Drop
		stats Stats
	}{
		{"valid multicast advert is accepted",
			Received{Payload: good, TTL: 255, Multicast: true}, true, DropNone, Stats{IPackets: 1}},
		{"valid IPv6 advert counts ipackets6",
			Received{Payload: good, TTL: 255, Multicast: true, IPv6: true}, true, DropNone, Stats{IPackets6: 1}},
		{"unicast peer advert may have any TTL",
			Received{Payload: good, TTL: 63}, true, DropNone, Stats{IPackets: 1}},
		{"trailing bytes after the header are ignored",
			Received{Payload: append(append([]byte{}, good...), 0, 0), TTL: 255, Multicast: true}, true, DropNone, Stats{IPackets: 1}},
		{"allow=0 drops silently but still counts ipackets",
			Received{Payload: good, TTL: 255, Multicast: true}, false, DropDisabled, Stats{IPackets: 1}},
		{"allow=0 is checked before the length",
			Received{Payload: nil, TTL: 255}, false, DropDisabled, Stats{IPackets: 1}},
		{"fewer than 8 bytes is badlen",
			Received{Payload: good[:7], TTL: 255, Multicast: true}, true, DropBadLen, Stats{IPackets: 1, BadLen: 1}},
		{"empty payload is badlen",
			Received{TTL: 255, Multicast: true, IPv6: true}, true, DropBadLen, Stats{IPackets6: 1, BadLen: 1}},
		{"VRRPv3 version 3 is badver",
			Received{Payload: badVer, TTL: 255, Multicast: true}, true, DropBadVer, Stats{IPackets: 1, BadVer: 1}},
		{"type other than advertisement is badver",
			Received{Payload: badType, TTL: 255, Multicast: true}, true, DropBadVer, Stats{IPackets: 1, BadVer: 1}},
		{"version is checked before the full length",
			Received{Payload: badVer[:8], TTL: 255, Multicast: true}, true, DropBadVer, Stats{IPackets: 1, BadVer: 1}},
		{"version 2 shorter than 36 bytes is badlen",
			Received{Payload: good[:35], TTL: 255, Multicast: true}, true, DropBadLen, Stats{IPackets: 1, BadLen: 1}},
		{"wrong checksum is badsum",
			Received{Payload: badSum, TTL: 255, Multicast: true}, true, DropBadSum, Stats{IPackets: 1, BadSum: 1}},
		{"bad checksum and bad TTL counts badsum",
			Received{Payload: badSum, TTL: 1, Multicast: true}, true, DropBadSum, Stats{IPackets: 1, BadSum: 1}},
		{"vhid not configured here is badvhid",
			Received{Payload: otherVHID, TTL: 255, Multicast: true}, true, DropBadVHID, Stats{IPackets: 1, BadVHID: 1}},
		{"unknown vhid and bad TTL counts badvhid",
			Received{Payload: otherVHID, TTL: 64, Multicast: true}, true, DropBadVHID, Stats{IPackets: 1, BadVHID: 1}},
		{"IPv6 on an interface without any CARP is badif",
			Received{Payload: otherVHID, TTL: 255, Multicast: true, IPv6: true, NoCARP: true}, true, DropBadIf, Stats{IPackets6: 1, BadIf: 1}},
		{"IPv4 on an interface without any CARP is badvhid",
			Received{Payload: otherVHID, TTL: 255, Multicast: true, NoCARP: true}, true, DropBadVHID, Stats{IPackets: 1, BadVHID: 1}},
		{"multicast with TTL 254 is badttl",
			Received{Payload: good, TTL: 254, Multicast: true}, true, DropBadTTL, Stats{IPackets: 1, BadTTL: 1}},
		{"bad TTL and bad HMAC counts badttl",
			Received{Payload: badMD, TTL: 1, Multicast: true}, true, DropBadTTL, Stats{IPackets: 1, BadTTL: 1}},
		{"HMAC mismatch is badauth",
			Received{Payload: badMD, TTL: 255, Multicast: true}, true, DropBadAuth, Stats{IPackets: 1, BadAuth: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var st Stats
			h, got := Validate(&st, tt.p, tt.allow, lookup)
			if got != tt.want {
				t.Errorf("drop = %v, want %v", got, tt.want)
			}
			if st != tt.stats {
				t.Errorf("stats = %+v, want %+v", st, tt.stats)
			}
			if got == DropNone && (h.VHID != 1 || h.Counter != 12345 || h.AdvBase != 1) {
				t.Errorf("header = %+v", h)
			}
		})
	}
}

func TestValidateAgainstLocalConfiguration(t *testing.T) {
	adv := BuildAdvert(1, 1, 0, 7, Key("pw"), addrs("10.0.0.1", "10.0.0.2"))
	p := Received{Payload: adv, TTL: 255, Multicast: true}
	tests := []struct {
		name  string
		key   []byte
		addrs []netip.Addr
		want  Drop
	}{
		{"same set in another order", Key("pw"), addrs("10.0.0.2", "10.0.0.1"), DropNone},
		{"one address missing locally (classic misconfiguration)", Key("pw"), addrs("10.0.0.1"), DropBadAuth},
		{"wrong password", Key("wp"), addrs("10.0.0.1", "10.0.0.2"), DropBadAuth},
		{"no password locally", nil, addrs("10.0.0.1", "10.0.0.2"), DropBadAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got := Validate(&Stats{}, p, true, func(uint8) ([]byte, []netip.Addr, bool) { return tt.key, tt.addrs, true })
			if got != tt.want {
				t.Errorf("drop = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestValidateToleratesNilStatsAndLookup(t *testing.T) {
	if _, d := Validate(nil, Received{Payload: BuildAdvert(1, 1, 0, 0, nil, nil)}, true, nil); d != DropBadVHID {
		t.Errorf("drop = %v, want badvhid", d)
	}
}

func TestDropStringIsTheCounterName(t *testing.T) {
	want := map[Drop]string{DropNone: "ok", DropDisabled: "disabled", DropHdr: "hdrops", DropBadLen: "badlen", DropBadVer: "badver",
		DropBadSum: "badsum", DropBadVHID: "badvhid", DropBadIf: "badif", DropBadTTL: "badttl", DropBadAuth: "badauth", DropReplay: "replay",
		Drop(99): "Drop(99)"}
	for d, s := range want {
		if d.String() != s {
			t.Errorf("%d.String() = %q, want %q", int(d), d.String(), s)
		}
	}
}

func TestStatsNamedInFreeBSDOrder(t *testing.T) {
	s := Stats{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}
	names := []string{"ipackets", "ipackets6", "badif", "badttl", "hdrops", "badsum", "badver", "badlen",
		"badauth", "badvhid", "badaddrs", "opackets", "opackets6", "onomem", "ostates", "preempt"}
	got := s.Named()
	if len(got) != len(names) {
		t.Fatalf("%d counters, want %d", len(got), len(names))
	}
	for i, n := range got {
		if n.Name != names[i] || n.Value != uint64(i+1) {
			t.Errorf("counter %d = %+v, want {%s %d}", i, n, names[i], i+1)
		}
	}
}

func TestIncompleteIPHeaderCountsHDrops(t *testing.T) {
	var st Stats
	lookup := func(uint8) ([]byte, []netip.Addr, bool) {
		t.Fatal("lookup of a packet without a header")
		return nil, nil, false
	}
	if _, d := Validate(&st, Received{Payload: []byte{}, ShortHeader: true, TTL: 255, Multicast: true}, true, lookup); d != DropHdr {
		t.Fatalf("drop = %v, want hdrops", d)
	}
	if st.HDrops != 1 || st.IPackets != 1 || st.BadLen != 0 {
		t.Fatalf("stats = %+v, want 1 ipackets, 1 hdrops, no badlen", st)
	}
	// allow = 0 drops before any counter but ipackets, as for every packet.
	if _, d := Validate(&st, Received{ShortHeader: true}, false, lookup); d != DropDisabled || st.HDrops != 1 {
		t.Fatalf("with allow 0: drop %v, hdrops %d", d, st.HDrops)
	}
}
