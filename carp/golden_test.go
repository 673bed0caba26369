package carp

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// goldenFile holds the ucarp lines of the peer capture (see its header for
// provenance), the frames these tests decode.
const goldenFile = "testdata/golden_vectors.txt"

// captureFile is the peer capture the copy was taken from, itself a
// verbatim copy kept in the repository (see testdata/peers/README.md).
const captureFile = "testdata/peers/golden_vectors.txt"

// readGolden returns the frames of a golden vectors file by name.
func readGolden(t testing.TB, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("golden vectors: %v", err)
	}
	defer f.Close()
	frames := map[string][]byte{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, hx, ok := strings.Cut(line, " ")
		if !ok {
			t.Fatalf("golden vectors: malformed line %q", line)
		}
		b, err := hex.DecodeString(strings.TrimSpace(hx))
		if err != nil {
			t.Fatalf("golden vectors: %s: %v", name, err)
		}
		frames[name] = b
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("golden vectors: %v", err)
	}
	return frames
}

// goldenPeer is what the capture script says about each ucarp frame.
type goldenPeer struct {
	name             string
	pass             string
	vip              netip.Addr
	vhid             uint8
	advbase, advskew uint8
	counter          uint64
}

var goldenPeers = []goldenPeer{
	{"ucarp_vhid1", "secret", netip.MustParseAddr("192.0.2.100"), 1, 1, 0, 0xecc2ad3003827f62},
	{"ucarp_vhid42", "love", netip.MustParseAddr("192.0.2.200"), 42, 2, 100, 0xd3640ce981b4aa7f},
}

// ipv4Frame is the IPv4 part of a golden Ethernet frame, decoded by
// gopacket (which decodes the payload as VRRP; only the IP layer is used).
type ipv4Frame struct {
	payload   []byte
	ttl       int
	multicast bool
}

func decodeFrame(t testing.TB, frame []byte) ipv4Frame {
	t.Helper()
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	ip, ok := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if !ok {
		t.Fatalf("frame has no IPv4 layer: %v", pkt)
	}
	if ip.Protocol != ProtoNumber {
		t.Fatalf("IP protocol %d, want %d", ip.Protocol, ProtoNumber)
	}
	// ucarp's CARP header sits at Ethernet(14)+IPv4(20); gopacket must agree.
	if !bytes.Equal(ip.Payload, frame[34:]) {
		t.Fatalf("IPv4 payload is not at offset 34")
	}
	return ipv4Frame{payload: ip.Payload, ttl: int(ip.TTL), multicast: ip.DstIP.IsMulticast()}
}

func TestGoldenUcarpAdverts(t *testing.T) {
	frames := readGolden(t, goldenFile)
	for _, g := range goldenPeers {
		t.Run(g.name, func(t *testing.T) {
			frame, ok := frames[g.name]
			if !ok {
				t.Fatalf("%s missing from %s", g.name, goldenFile)
			}
			ip := decodeFrame(t, frame)
			wire := ip.payload[:HeaderLen]

			pkt := gopacket.NewPacket(wire, LayerTypeCARP, gopacket.Default)
			if el := pkt.ErrorLayer(); el != nil {
				t.Fatalf("decode: %v", el.Error())
			}
			h, ok := pkt.Layer(LayerTypeCARP).(*Header)
			if !ok {
				t.Fatalf("no CARP layer in %v", pkt)
			}
			want := Header{Version: Version, Type: TypeAdvertisement, VHID: g.vhid, AdvSkew: g.advskew,
				AuthLen: AuthLen, Demote: 0, AdvBase: g.advbase, Counter: g.counter}
			got := *h
			got.contents, got.payload = nil, nil
			got.Checksum = 0
			got.MD = [20]byte{}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("fields = %+v, want %+v", got, want)
			}
			if Checksum(wire) != 0 {
				t.Errorf("checksum %#04x does not verify", h.Checksum)
			}

			addrs := []netip.Addr{g.vip}
			if !VerifyMAC(Key(g.pass), g.vhid, addrs, h.Counter, h.MD) {
				t.Errorf("VerifyMAC with password %q = false", g.pass)
			}
			if VerifyMAC(Key(g.pass+"x"), g.vhid, addrs, h.Counter, h.MD) {
				t.Errorf("VerifyMAC with a wrong password = true")
			}

			built := BuildAdvert(g.vhid, g.advbase, g.advskew, g.counter, Key(g.pass), addrs)
			if !bytes.Equal(built, wire) {
				t.Errorf("BuildAdvert =\n%x\nwant (ucarp)\n%x", built, wire)
			}

			var st Stats
			lookup := func(vhid uint8) ([]byte, []netip.Addr, bool) {
				return Key(g.pass), addrs, vhid == g.vhid
			}
			vh, drop := Validate(&st, Received{Payload: ip.payload, TTL: ip.ttl, Multicast: ip.multicast}, true, lookup)
			if drop != DropNone {
				t.Errorf("Validate = %v, want ok", drop)
			}
			if vh.Counter != g.counter || vh.VHID != g.vhid {
				t.Errorf("Validate header = %+v", vh)
			}
			if st != (Stats{IPackets: 1}) {
				t.Errorf("stats = %+v, want only ipackets 1", st)
			}
		})
	}
}

// The copy in testdata must stay identical to the captured frames.
func TestGoldenCopyMatchesCapture(t *testing.T) {
	capture := readGolden(t, captureFile)
	copied := readGolden(t, goldenFile)
	if len(copied) == 0 {
		t.Fatalf("%s holds no frames", goldenFile)
	}
	for name, frame := range copied {
		if !bytes.Equal(capture[name], frame) {
			t.Errorf("%s differs from %s", name, captureFile)
		}
	}
}
