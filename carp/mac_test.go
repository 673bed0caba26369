package carp

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

// stdMAC is MAC through crypto/hmac, over the message built the plain way:
// the reference the stack-buffer HMAC in mac must match.
func stdMAC(key []byte, vhid uint8, addrs []netip.Addr, counter uint64) [20]byte {
	var v4, v6 [][]byte
	for _, a := range addrs {
		switch {
		case !a.IsValid():
		case a.Is4():
			if !a.IsUnspecified() && a != v4Broadcast {
				b := a.As4()
				v4 = append(v4, b[:])
			}
		default:
			a = a.WithZone("")
			if !a.IsUnspecified() && a != v6AllOnes {
				b := a.As16()
				v6 = append(v6, b[:])
			}
		}
	}
	slices.SortFunc(v4, bytes.Compare)
	slices.SortFunc(v6, bytes.Compare)
	h := hmac.New(sha1.New, key)
	h.Write([]byte{Version, TypeAdvertisement, vhid})
	for _, l := range [][][]byte{slices.CompactFunc(v4, bytes.Equal), slices.CompactFunc(v6, bytes.Equal)} {
		for _, a := range l {
			h.Write(a)
		}
	}
	h.Write(binary.BigEndian.AppendUint64(nil, counter))
	var md [20]byte
	h.Sum(md[:0])
	return md
}

// Keys of every length up to beyond SHA-1's block (hashed first) and
// address sets from none to more than the stack buffers hold.
func TestMACMatchesCryptoHMAC(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		key := make([]byte, i%100)
		for j := range key {
			key[j] = byte(r.Uint32())
		}
		n := r.IntN(40)
		if i%50 == 0 {
			n = 100
		}
		var as []netip.Addr
		for range n {
			switch r.IntN(3) {
			case 0:
				as = append(as, netip.AddrFrom4([4]byte{10, 0, byte(r.IntN(2)), byte(r.IntN(4))}))
			case 1:
				var b [16]byte
				b[0], b[1], b[15] = 0x20, 0x01, byte(r.IntN(4))
				as = append(as, netip.AddrFrom16(b))
			default:
				as = append(as, netip.AddrFrom4([4]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())}))
			}
		}
		vhid, counter := uint8(r.Uint32()), r.Uint64()
		if got, want := MAC(key, vhid, as, counter), stdMAC(key, vhid, as, counter); got != want {
			t.Fatalf("key %x vhid %d addrs %v counter %d: MAC %x, crypto/hmac %x", key, vhid, as, counter, got, want)
		}
	}
}
