package carp

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
)

// FuzzDecode feeds arbitrary bytes to the decoder and to Validate: neither
// may panic, a successful decode must serialize back to the same 36 bytes,
// and Validate must count exactly one drop counter for every drop.
// Crashers found by `go test -fuzz=FuzzDecode` stay in testdata/fuzz as
// regression cases.
func FuzzDecode(f *testing.F) {
	for _, frame := range readGolden(f, goldenFile) {
		f.Add(frame[34:], false, uint8(255), true, true)
	}
	f.Add(BuildAdvert(1, 1, 0, 0, nil, nil), true, uint8(64), false, true)
	f.Add([]byte{0x31, 51, 150, 1, 0, 100, 0xd3, 0x35, 192, 0, 2, 150}, false, uint8(255), true, true)
	f.Add([]byte{}, false, uint8(0), false, false)

	lookup := func(vhid uint8) ([]byte, []netip.Addr, bool) {
		switch vhid {
		case 1:
			return Key("secret"), []netip.Addr{netip.MustParseAddr("192.0.2.100")}, true
		case 42:
			return Key("love"), []netip.Addr{netip.MustParseAddr("192.0.2.200")}, true
		}
		return nil, nil, false
	}
	f.Fuzz(func(t *testing.T, data []byte, ipv6 bool, ttl uint8, multicast, allow bool) {
		var h Header
		if err := h.DecodeFromBytes(data, gopacket.NilDecodeFeedback); err == nil {
			buf := gopacket.NewSerializeBuffer()
			if err := h.SerializeTo(buf, gopacket.SerializeOptions{}); err != nil {
				t.Fatalf("serialize: %v", err)
			}
			if !bytes.Equal(buf.Bytes(), data[:HeaderLen]) {
				t.Fatalf("round trip\n%x\n%x", buf.Bytes(), data[:HeaderLen])
			}
		} else if len(data) >= HeaderLen {
			t.Fatalf("decode of %d bytes failed: %v", len(data), err)
		}
		gopacket.NewPacket(data, LayerTypeCARP, gopacket.Default)

		var st Stats
		_, drop := Validate(&st, Received{Payload: data, IPv6: ipv6, TTL: int(ttl), Multicast: multicast, NoCARP: ipv6 && ttl%2 == 0}, allow, lookup)
		var total uint64
		for _, c := range st.Named() {
			total += c.Value
		}
		wantTotal := uint64(2)
		if drop == DropNone || drop == DropDisabled {
			wantTotal = 1
		}
		if total != wantTotal {
			t.Fatalf("drop %v counted %d, want %d: %+v", drop, total, wantTotal, st)
		}
		if drop == DropNone && (len(data) < HeaderLen || Checksum(data[:HeaderLen]) != 0) {
			t.Fatalf("accepted an invalid packet %x", data)
		}
	})
}
