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
