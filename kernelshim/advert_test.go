package kernelshim

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

func TestMulticastMAC(t *testing.T) {
	for _, c := range []struct {
		group string
		want  [6]byte
		ok    bool
	}{
		{"224.0.0.18", [6]byte{0x01, 0x00, 0x5e, 0, 0, 0x12}, true},
		// Only the low 23 bits of an IPv4 group are mapped (RFC 1112).
		{"239.255.1.2", [6]byte{0x01, 0x00, 0x5e, 0x7f, 0x01, 0x02}, true},
		{"ff02::12", [6]byte{0x33, 0x33, 0, 0, 0, 0x12}, true},
		// The low 32 bits of an IPv6 group (RFC 2464).
		{"ff02::1:ff00:1234", [6]byte{0x33, 0x33, 0xff, 0x00, 0x12, 0x34}, true},
		{"192.0.2.1", [6]byte{}, false},
		{"fe80::1", [6]byte{}, false},
	} {
		got, ok := MulticastMAC(netip.MustParseAddr(c.group))
		if got != c.want || ok != c.ok {
			t.Errorf("MulticastMAC(%s) = %x, %v; want %x, %v", c.group, got, ok, c.want, c.ok)
		}
	}
}

// TestAppendAdvertFrame decodes the frames with gopacket, an independent
// decoder, and checks every header field FreeBSD sets.
func TestAppendAdvertFrame(t *testing.T) {
	src := [6]byte{0, 0, 0x5e, 0, 1, 7}
	payload := make([]byte, 36)
	for i := range payload {
		payload[i] = byte(i * 7)
	}

	prefix := []byte("kept")
	f, err := AppendAdvertFrame(prefix, src, netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("224.0.0.18"), 0xe0, payload)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(f, []byte("kept")) || len(f) != 4+AdvertFrameLen(false, 36) || len(f) != 4+14+56 {
		t.Fatalf("IPv4 frame of %d bytes (%q...)", len(f), f[:4])
	}
	f = f[4:]
	pkt := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
	eth, _ := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	ip, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if eth == nil || ip == nil {
		t.Fatalf("not Ethernet / IPv4: %v", pkt)
	}
	if eth.SrcMAC.String() != "00:00:5e:00:01:07" || eth.DstMAC.String() != "01:00:5e:00:00:12" || eth.EthernetType != layers.EthernetTypeIPv4 {
		t.Errorf("Ethernet header %s -> %s type %v", eth.SrcMAC, eth.DstMAC, eth.EthernetType)
	}
	if ip.Version != 4 || ip.IHL != 5 || ip.TOS != 0xe0 || ip.Length != 56 || ip.Id != 0 || ip.Flags != layers.IPv4DontFragment ||
		ip.FragOffset != 0 || ip.TTL != 255 || ip.Protocol != 112 || !ip.SrcIP.Equal(netip.MustParseAddr("192.0.2.1").AsSlice()) ||
		!ip.DstIP.Equal(netip.MustParseAddr("224.0.0.18").AsSlice()) {
		t.Errorf("IPv4 header % x", f[14:34])
	}
	// A header with its checksum sums to 0xffff (RFC 1071).
	if ipChecksum(f[14:34]) != 0 || binary.BigEndian.Uint16(f[24:]) == 0 {
		t.Errorf("IPv4 header checksum %#04x does not verify", binary.BigEndian.Uint16(f[24:]))
	}
	if !bytes.Equal(ip.Payload, payload) {
		t.Errorf("payload % x, want % x", ip.Payload, payload)
	}

	f, err = AppendAdvertFrame(nil, src, netip.MustParseAddr("fe80::1%em0"), netip.MustParseAddr("ff02::12"), 0xe0, payload)
	if err != nil {
		t.Fatal(err)
	}
	if len(f) != AdvertFrameLen(true, 36) || len(f) != 14+40+36 {
		t.Fatalf("IPv6 frame of %d bytes", len(f))
	}
	pkt = gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
	eth, _ = pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	ip6, _ := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	if eth == nil || ip6 == nil {
		t.Fatalf("not Ethernet / IPv6: %v", pkt)
	}
	if eth.SrcMAC.String() != "00:00:5e:00:01:07" || eth.DstMAC.String() != "33:33:00:00:00:12" || eth.EthernetType != layers.EthernetTypeIPv6 {
		t.Errorf("Ethernet header %s -> %s type %v", eth.SrcMAC, eth.DstMAC, eth.EthernetType)
	}
	if ip6.Version != 6 || ip6.TrafficClass != 0xe0 || ip6.FlowLabel != 0 || ip6.Length != 36 || ip6.NextHeader != 112 ||
		ip6.HopLimit != 255 || !ip6.SrcIP.Equal(netip.MustParseAddr("fe80::1").AsSlice()) || !ip6.DstIP.Equal(netip.MustParseAddr("ff02::12").AsSlice()) {
		t.Errorf("IPv6 header % x", f[14:54])
	}
	if !bytes.Equal(f[54:], payload) {
		t.Errorf("payload % x, want % x", f[54:], payload)
	}

	for _, c := range [][2]string{{"192.0.2.1", "192.0.2.2"}, {"192.0.2.1", "ff02::12"}, {"fe80::1", "224.0.0.18"}} {
		if _, err := AppendAdvertFrame(nil, src, netip.MustParseAddr(c[0]), netip.MustParseAddr(c[1]), 0, payload); err == nil {
			t.Errorf("AppendAdvertFrame(%s -> %s) succeeded", c[0], c[1])
		}
	}
	if _, err := AppendAdvertFrame(nil, src, netip.Addr{}, netip.MustParseAddr("224.0.0.18"), 0, payload); err == nil {
		t.Error("AppendAdvertFrame without a source succeeded")
	}
}

// TestAppendAdvertFrameAllocs: into a buffer of the right size, building
// an advert frame allocates nothing.
func TestAppendAdvertFrameAllocs(t *testing.T) {
	src, dst := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("224.0.0.18")
	payload := make([]byte, 36)
	buf := make([]byte, 0, AdvertFrameLen(false, len(payload)))
	if n := testing.AllocsPerRun(100, func() {
		_, _ = AppendAdvertFrame(buf, [6]byte{}, src, dst, 0xe0, payload)
	}); n != 0 {
		t.Errorf("%v allocations per frame, want 0", n)
	}
}

func BenchmarkAppendAdvertFrame(b *testing.B) {
	mac := [6]byte{0, 0, 0x5e, 0, 1, 1}
	payload := make([]byte, 36)
	for _, c := range []struct{ name, src, dst string }{{"IPv4", "192.0.2.1", "224.0.0.18"}, {"IPv6", "fe80::1", "ff02::12"}} {
		src, dst := netip.MustParseAddr(c.src), netip.MustParseAddr(c.dst)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, AdvertFrameLen(dst.Is6(), len(payload)))
			for b.Loop() {
				if _, err := AppendAdvertFrame(buf, mac, src, dst, 0xe0, payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
