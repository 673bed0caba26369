package carp

import (
	"net/netip"
	"testing"
)

func BenchmarkBuildAdvert(b *testing.B) {
	key := Key("lanpasswd")
	a := addrs("10.0.0.1", "10.0.0.2", "2001:db8::1")
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		BuildAdvert(1, 1, 100, uint64(i), key, a)
	}
}

// BenchmarkAdvert is what the engine does per advert it sends: the key
// from the password, then the signed advert over the vhid's one address.
func BenchmarkAdvert(b *testing.B) {
	a := addrs("10.99.1.2")
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		BuildAdvert(1, 1, 0, uint64(i), Key("p1"), a)
	}
}

func BenchmarkMAC(b *testing.B) {
	key := Key("lanpasswd")
	a := addrs("10.0.0.1", "10.0.0.2", "2001:db8::1")
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		MAC(key, 1, a, uint64(i))
	}
}

func BenchmarkValidate(b *testing.B) {
	key := Key("lanpasswd")
	a := addrs("10.0.0.1", "10.0.0.2", "2001:db8::1")
	p := Received{Payload: BuildAdvert(1, 1, 100, 42, key, a), TTL: 255, Multicast: true}
	lookup := func(uint8) ([]byte, []netip.Addr, bool) { return key, a, true }
	var st Stats
	b.ReportAllocs()
	for b.Loop() {
		if _, d := Validate(&st, p, true, lookup); d != DropNone {
			b.Fatal(d)
		}
	}
}

// BenchmarkValidateBadAuth is an advert signed with another key: the
// whole check runs and fails at the HMAC.
func BenchmarkValidateBadAuth(b *testing.B) {
	key := Key("lanpasswd")
	a := addrs("10.0.0.1", "10.0.0.2", "2001:db8::1")
	p := Received{Payload: BuildAdvert(1, 1, 100, 42, Key("other"), a), TTL: 255, Multicast: true}
	lookup := func(uint8) ([]byte, []netip.Addr, bool) { return key, a, true }
	var st Stats
	b.ReportAllocs()
	for b.Loop() {
		if _, d := Validate(&st, p, true, lookup); d != DropBadAuth {
			b.Fatal(d)
		}
	}
}
