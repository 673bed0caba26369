//go:build linux

package kernelshim

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/bsdcarp/bsdcarp/carp/osif"
	"golang.org/x/sys/unix"
)

// TestLinuxSendCARPsBatches: the adverts of a SendCARPs call that leave as
// frames go out up to sendBatchMax to a sendmmsg, each from the MAC of the
// link it names (a macvlan's virtual MAC, out of its parent), whole on the
// wire. An advert SendCARP refuses (no such link) stays out of the batch; a
// frame the kernel refuses (longer than the link's MTU), first of the
// batch or in the middle of a call, gets SendCARP's error, and the frames
// after it still go, in the calls that follow.
func TestLinuxSendCARPsBatches(t *testing.T) {
	k, b := openedPair(t)
	macs := []net.HardwareAddr{{0, 0, 0x5e, 0, 1, 1}, {0, 0, 0x5e, 0, 1, 2}}
	for i, name := range []string{"carp1", "carp2"} {
		if err := k.CreateMACVLAN(name, "veth0", macs[i]); err != nil {
			t.Fatal(err)
		}
	}
	sn := newSniffer(t, b, "veth0")
	src := netip.MustParseAddr("192.0.2.1")
	const n = 2*sendBatchMax + 10
	ads := make([]osif.Advert, n)
	for i := range ads {
		p := make([]byte, 36)
		p[0], p[1], p[2], p[3] = 0x21, byte(i%2+1), byte(i>>8), byte(i)
		ads[i] = osif.Advert{Out: []string{"carp1", "carp2"}[i%2], Src: src, Dst: osif.GroupV4, TOS: 0xe0, Payload: p}
	}
	ads[sendBatchMax-1].Out = "nope0" // refused before the batch is sent
	tooLong := map[int]bool{0: true, 10: true}
	for i := range tooLong {
		ads[i].Payload = append(ads[i].Payload, make([]byte, 1500)...)
	}
	errs := make([]error, n)
	before := k.mmsgCalls.Load()
	k.SendCARPs(ads, errs)
	// Frames 1-9, then 11-74, then the rest (the refused ones start a
	// call each, which sends nothing).
	if calls := k.mmsgCalls.Load() - before; calls != 3 {
		t.Errorf("%d frames took %d sendmmsg calls that sent, want 3 (%d a call)", n-3, calls, sendBatchMax)
	}
	for i, err := range errs {
		switch {
		case i == sendBatchMax-1:
			if !errors.Is(err, osif.ErrNoLink) {
				t.Errorf("advert %d out of nope0: err = %v, want ErrNoLink", i, err)
			}
		case tooLong[i]:
			if !errors.Is(err, unix.EMSGSIZE) {
				t.Errorf("advert %d, longer than the MTU: err = %v, want EMSGSIZE", i, err)
			}
		case err != nil:
			t.Errorf("advert %d (out of %s): %v", i, ads[i].Out, err)
		}
	}
	seen := map[int]bool{}
	for len(seen) < n-3 {
		f := sn.next(5*time.Second, func(f []byte) bool { return len(f) == 14+20+36 && f[12] == 8 && f[14+9] == 112 })
		if f == nil {
			t.Fatalf("%d of %d frames arrived", len(seen), n-3)
		}
		p := f[14+20:]
		i := int(p[2])<<8 | int(p[3])
		if i >= n || seen[i] || i == sendBatchMax-1 || tooLong[i] {
			t.Fatalf("frame of advert %d: unexpected or a second copy", i)
		}
		seen[i] = true
		if !bytes.Equal(p, ads[i].Payload) || !bytes.Equal(f[6:12], macs[i%2]) ||
			!bytes.Equal(f[:6], []byte{1, 0, 0x5e, 0, 0, 0x12}) || !bytes.Equal(f[14+12:14+16], src.AsSlice()) || f[14+8] != 255 || f[14+1] != 0xe0 {
			t.Fatalf("frame of advert %d: % x", i, f)
		}
	}
}

// TestLinuxSendCARPsWithoutIPv6: on a host whose IPv6 CARP socket could not
// be opened, SendCARPs refuses an IPv6 advert as SendCARP does (it is not
// sent as a frame behind the engine's back) and still sends the IPv4 ones.
func TestLinuxSendCARPsWithoutIPv6(t *testing.T) {
	k, b := openedPair(t)
	// As OpenCARP leaves it when IPv6 fails; put back for Close.
	k.mu.Lock()
	p6 := k.p6
	k.p6 = nil
	k.mu.Unlock()
	defer func() { k.mu.Lock(); k.p6 = p6; k.mu.Unlock() }()
	if err := k.CreateMACVLAN("carp1", "veth0", net.HardwareAddr{0, 0, 0x5e, 0, 1, 1}); err != nil {
		t.Fatal(err)
	}
	sn := newSniffer(t, b, "veth0")
	v4 := osif.Advert{Out: "carp1", Src: netip.MustParseAddr("192.0.2.1"), Dst: osif.GroupV4, Payload: make([]byte, 36)}
	v6 := osif.Advert{Out: "carp1", Src: netip.MustParseAddr("fe80::1"), Dst: osif.GroupV6, Payload: make([]byte, 36)}
	v4.Payload[1], v6.Payload[1] = 4, 6
	single := k.SendCARP(v6.Out, v6.Src, v6.Dst, 0, v6.Payload)
	errs := make([]error, 2)
	k.SendCARPs([]osif.Advert{v6, v4}, errs)
	if single == nil || errs[0] == nil || errs[0].Error() != single.Error() {
		t.Errorf("the IPv6 advert: SendCARPs says %v, SendCARP %v; want both the same refusal", errs[0], single)
	}
	if errs[1] != nil {
		t.Errorf("the IPv4 advert: %v", errs[1])
	}
	// The IPv4 advert arrives, and no IPv6 one comes before it.
	f := sn.next(5*time.Second, func(f []byte) bool {
		return len(f) > 14 && (f[12] == 0x86 && f[13] == 0xdd || f[12] == 8 && f[13] == 0 && f[14+9] == 112)
	})
	if f == nil || f[12] != 8 {
		t.Fatalf("first CARP frame at the peer: % x, want the IPv4 advert", f)
	}
}

// openedPair is a veth pair of two namespaces, and a Linux adapter in the
// first with OpenCARP done; it returns the adapter and the second namespace.
func openedPair(t *testing.T) (*Linux, string) {
	t.Helper()
	requireRoot(t)
	a, b := vethPair(t)
	k := kernelIn(t, a)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := k.OpenCARP(ctx, make(chan osif.Packet, 16)); err != nil {
		t.Fatal(err)
	}
	return k, b
}
