package carp

import (
	"bytes"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/google/gopacket"
)

func TestChecksum(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want uint16
	}{
		{"empty input is all ones", nil, 0xffff},
		// RFC 1071 §3 example: words 0001 f203 f4f5 f6f7 sum to ddf2.
		{"RFC 1071 example", []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}, ^uint16(0xddf2)},
		{"odd length pads the last byte with zero", []byte{0x01}, ^uint16(0x0100)},
		{"carries fold back in", []byte{0xff, 0xff, 0x00, 0x01}, ^uint16(0x0001)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Checksum(tt.in); got != tt.want {
				t.Errorf("Checksum(%x) = %#04x, want %#04x", tt.in, got, tt.want)
			}
		})
	}
}

func TestDecodeTooShortSaysSo(t *testing.T) {
	var h Header
	err := h.DecodeFromBytes(make([]byte, 12), gopacket.NilDecodeFeedback)
	if !errors.Is(err, ErrTooShort) {
		t.Fatalf("err = %v, want ErrTooShort", err)
	}
	if want := "carp: advertisement too short: 12 bytes"; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
	pkt := gopacket.NewPacket(make([]byte, 35), LayerTypeCARP, gopacket.Default)
	if pkt.ErrorLayer() == nil || !strings.Contains(pkt.ErrorLayer().Error().Error(), "35 bytes") {
		t.Errorf("gopacket decode of 35 bytes: error layer %v", pkt.ErrorLayer())
	}
}

func TestDecodeKeepsTrailingBytesAsPayload(t *testing.T) {
	b := append(BuildAdvert(7, 1, 0, 1, nil, nil), 0xde, 0xad)
	pkt := gopacket.NewPacket(b, LayerTypeCARP, gopacket.Default)
	h := pkt.Layer(LayerTypeCARP).(*Header)
	if len(h.LayerContents()) != HeaderLen || !bytes.Equal(h.LayerPayload(), []byte{0xde, 0xad}) {
		t.Errorf("contents %d bytes, payload %x", len(h.LayerContents()), h.LayerPayload())
	}
	if pkt.Layer(gopacket.LayerTypePayload) == nil {
		t.Errorf("trailing bytes not decoded as payload")
	}
}

func TestSerialize(t *testing.T) {
	h := Header{Version: Version, Type: TypeAdvertisement, VHID: 9, AdvSkew: 3, AuthLen: AuthLen,
		AdvBase: 1, Counter: 0x0102030405060708, Checksum: 0xbeef}
	h.MD[0], h.MD[19] = 0xaa, 0xbb

	t.Run("without ComputeChecksums the checksum is written as is", func(t *testing.T) {
		buf := gopacket.NewSerializeBuffer()
		hh := h
		if err := hh.SerializeTo(buf, gopacket.SerializeOptions{}); err != nil {
			t.Fatal(err)
		}
		b := buf.Bytes()
		want := []byte{0x21, 9, 3, 7, 0, 1, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 0xaa}
		if !bytes.Equal(b[:17], want) || b[35] != 0xbb || len(b) != HeaderLen {
			t.Errorf("bytes = %x", b)
		}
	})
	t.Run("with ComputeChecksums the checksum covers the 36 bytes only", func(t *testing.T) {
		buf := gopacket.NewSerializeBuffer()
		hh := h
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, &hh); err != nil {
			t.Fatal(err)
		}
		if Checksum(buf.Bytes()) != 0 {
			t.Errorf("checksum does not verify: %x", buf.Bytes())
		}
		if hh.Checksum == 0xbeef {
			t.Errorf("Header.Checksum not updated")
		}
	})
	t.Run("BuildAdvert equals the serialized layer", func(t *testing.T) {
		adv := BuildAdvert(9, 1, 3, h.Counter, []byte("k"), nil)
		var d Header
		if err := d.DecodeFromBytes(adv, nil); err != nil {
			t.Fatal(err)
		}
		buf := gopacket.NewSerializeBuffer()
		if err := d.SerializeTo(buf, gopacket.SerializeOptions{ComputeChecksums: true}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), adv) {
			t.Errorf("%x != %x", buf.Bytes(), adv)
		}
	})
}

func TestVirtualMAC(t *testing.T) {
	want := net.HardwareAddr{0, 0, 0x5e, 0, 1, 42}
	if got := VirtualMAC(42); !bytes.Equal(got, want) {
		t.Errorf("VirtualMAC(42) = %v, want %v", got, want)
	}
	if GroupV4.String() != "224.0.0.18" || GroupV6.String() != "ff02::12" {
		t.Errorf("groups %v %v", GroupV4, GroupV6)
	}
}
