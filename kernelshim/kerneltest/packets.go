package kerneltest

// The packet side of the contract: CARP adverts (OpenCARP, JoinGroup,
// LeaveGroup, SendCARP) and ARP (Announce, ListenARP, ReplyARP), checked
// between the kernel under test and a Peer on the same L2 segment.
//
// A packet that must not arrive is checked with a marker: a packet sent
// after it on the same path that must arrive. The marker arriving first
// shows the other was not delivered, without waiting for a time to pass.

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/bsdcarp/bsdcarp/carp/engine"
	"github.com/bsdcarp/bsdcarp/carp/osif"
)

// PacketIO is the packet side of the kernel under test.
type PacketIO interface {
	engine.CARPIO
	engine.ARP
}

// Peer is a second kernel of the same implementation as a Fixture's,
// whose link Parent is on the same L2 segment as the Fixture's Parent.
type Peer struct {
	// Kernel is the second kernel.
	Kernel Kernel
	// Parent names its Ethernet link on the segment: admin up with
	// carrier, IPv4 and IPv6 enabled, a MAC other than the Fixture's
	// Parent's.
	Parent string
	// IPv6 is false when the kernels cannot open IPv6 CARP sockets (a
	// host without IPv6): SendCARP to ff02::12 must then fail.
	IPv6 bool
	// Sniff starts capturing the Ethernet frames that arrive on Parent
	// from now on (a packet socket on Linux, a tap on memkernel's segment)
	// and returns them; frames beyond the channel's buffer are dropped.
	// It observes from outside the kernel: it is no part of the contract.
	Sniff func(t *testing.T) <-chan []byte
}

// packetCases are the cases of this file; Run runs them after the others.
var packetCases = []struct {
	name string
	run  func(t *testing.T, f Fixture)
}{
	{"CARPErrors", carpErrors},
	{"CARPAdvertsIPv4", func(t *testing.T, f Fixture) { carpAdverts(t, f, false) }},
	{"CARPAdvertsIPv6", func(t *testing.T, f Fixture) { carpAdverts(t, f, true) }},
	{"CARPAdvertBatch", carpAdvertBatch},
	{"CARPJoinedOnMACVLAN", carpJoinedOnMACVLAN},
	{"AnnounceSeenByPeer", announceSeenByPeer},
	{"AnnounceFromMACVLAN", announceFromMACVLAN},
	{"ReplyARP", replyARP},
}

// waitFor bounds every wait for a packet or frame that must arrive.
const waitFor = 5 * time.Second

func peer(t *testing.T, f Fixture) (a, b Kernel, p Peer) {
	t.Helper()
	if f.Peer == nil {
		t.Fatal("the fixture has no Peer: the packet cases need one")
	}
	p = f.Peer(t)
	return f.Kernel, p.Kernel, p
}

// advert is a CARP-sized payload told apart by n; the checksum bytes are
// arbitrary, so a kernel that rewrote them would show.
func advert(n byte) []byte {
	b := make([]byte, 36)
	b[0], b[1], b[3], b[5], b[6], b[7] = 0x21, n, 7, 1, 0xde, 0xad
	for i := 8; i < len(b); i++ {
		b[i] = byte(i) ^ n
	}
	return b
}

func openCARP(t *testing.T, k PacketIO) chan osif.Packet {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch := make(chan osif.Packet, 64)
	if err := k.OpenCARP(ctx, ch); err != nil {
		t.Fatalf("OpenCARP: %v", err)
	}
	return ch
}

func listenARP(t *testing.T, k PacketIO) chan osif.ARPRequest {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch := make(chan osif.ARPRequest, 64)
	if err := k.ListenARP(ctx, ch); err != nil {
		t.Fatalf("ListenARP: %v", err)
	}
	return ch
}

func replace(t *testing.T, k Kernel, link, p string) {
	t.Helper()
	if _, err := k.ReplaceAddr(link, netip.MustParsePrefix(p), 0); err != nil {
		t.Fatalf("ReplaceAddr(%s, %s): %v", link, p, err)
	}
}

func send(t *testing.T, k PacketIO, out string, src, dst netip.Addr, payload []byte) {
	t.Helper()
	if err := k.SendCARP(out, src, dst, 0xe0, payload); err != nil {
		t.Fatalf("SendCARP(%s, %s -> %s): %v", out, src, dst, err)
	}
}

// wantPacket takes the next packet from ch and checks it is want.
func wantPacket(t *testing.T, ch <-chan osif.Packet, what string, want osif.Packet) {
	t.Helper()
	select {
	case p := <-ch:
		if !bytes.Equal(p.Payload, want.Payload) || p.Src != want.Src || p.Dst != want.Dst ||
			p.IfIndex != want.IfIndex || p.TTL != want.TTL || p.IPv6 != want.IPv6 || p.ShortHeader {
			t.Fatalf("%s: got %+v,\nwant %+v", what, p, want)
		}
	case <-time.After(waitFor):
		t.Fatalf("%s: nothing received within %v (want %+v)", what, waitFor, want)
	}
}

func carpErrors(t *testing.T, f Fixture) {
	k := f.Kernel
	src, dst := netip.MustParseAddr("192.0.2.1"), osif.GroupV4
	if err := k.JoinGroup(f.Parent); !errors.Is(err, osif.ErrClosed) {
		t.Errorf("JoinGroup before OpenCARP: err = %v, want one wrapping ErrClosed", err)
	}
	if err := k.SendCARP(f.Parent, src, dst, 0, advert(1)); !errors.Is(err, osif.ErrClosed) {
		t.Errorf("SendCARP before OpenCARP: err = %v, want one wrapping ErrClosed", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := make(chan osif.Packet, 1)
	if err := k.OpenCARP(ctx, ch); err != nil {
		t.Fatalf("OpenCARP: %v", err)
	}
	if err := k.OpenCARP(ctx, ch); err == nil {
		t.Error("a second OpenCARP succeeded")
	}
	wantNoLink(t, "JoinGroup(nope0)", k.JoinGroup("nope0"))
	wantNoLink(t, "LeaveGroup(nope0)", k.LeaveGroup("nope0"))
	wantNoLink(t, "SendCARP(nope0)", k.SendCARP("nope0", src, dst, 0, advert(1)))
	if err := k.LeaveGroup(f.Parent); err != nil {
		t.Errorf("LeaveGroup of a group never joined: %v, want nil", err)
	}
	for range 2 {
		if err := k.JoinGroup(f.Parent); err != nil {
			t.Errorf("JoinGroup(%s) (twice is no error): %v", f.Parent, err)
		}
	}
	if err := k.SendCARP(f.Parent, src, osif.GroupV6, 0, advert(1)); err == nil {
		t.Error("SendCARP from an IPv4 source to an IPv6 group succeeded")
	}
	wantNoLink(t, "Announce(nope0)", k.Announce("nope0", vmac, src))
	if err := k.Announce(f.Parent, net.HardwareAddr{1, 2, 3}, src); err == nil {
		t.Error("Announce with a 3-byte MAC succeeded")
	}
	wantNoLink(t, "ReplyARP(nope0)", k.ReplyARP("nope0", vmac, src, other, netip.MustParseAddr("192.0.2.2")))
	if err := k.ReplyARP(f.Parent, vmac, osif.GroupV6, other, src); err == nil {
		t.Error("ReplyARP for an IPv6 address succeeded")
	}
	// Once its context has ended, the kernel can be opened again.
	cancel()
	deadline := time.Now().Add(waitFor)
	for {
		ctx2, cancel2 := context.WithCancel(context.Background())
		defer cancel2()
		err := k.OpenCARP(ctx2, ch)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("OpenCARP after the first context ended: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// carpAdverts: an advert to the group reaches the peer once it has joined
// and not after it left, with source, destination, TTL 255, the arrival
// interface and the payload intact, and never comes back to its sender.
func carpAdverts(t *testing.T, f Fixture, v6 bool) {
	a, b, p := peer(t, f)
	cha, chb := openCARP(t, a), openCARP(t, b)
	aSrc, bSrc, group := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), osif.GroupV4
	bits := "/24"
	if v6 {
		// Link-local addresses, without DAD (ReplaceAddr), as carpd's
		// adverts leave from the carpdev's link-local address.
		aSrc, bSrc, group, bits = netip.MustParseAddr("fe80::1"), netip.MustParseAddr("fe80::2"), osif.GroupV6, "/64"
		if !p.IPv6 {
			if err := a.SendCARP(f.Parent, aSrc, group, 0, advert(1)); err == nil {
				t.Fatal("no IPv6, yet SendCARP to ff02::12 succeeded")
			}
			return
		}
	}
	replace(t, f.Kernel, f.Parent, aSrc.String()+bits)
	replace(t, p.Kernel, p.Parent, bSrc.String()+bits)
	al, bl := mustLink(t, f.Kernel, f.Parent), mustLink(t, p.Kernel, p.Parent)
	at := func(n byte, src, dst netip.Addr, l osif.Link) osif.Packet {
		return osif.Packet{Payload: advert(n), Src: src, Dst: dst, IfIndex: l.Index, TTL: 255, IPv6: v6}
	}
	if err := a.JoinGroup(f.Parent); err != nil {
		t.Fatal(err)
	}

	send(t, a, f.Parent, aSrc, group, advert(1)) // the peer has not joined
	send(t, a, f.Parent, aSrc, bSrc, advert(2))  // marker: unicast to the peer
	wantPacket(t, chb, "at the peer, before it joined (the unicast marker, not the advert)", at(2, aSrc, bSrc, bl))

	for range 2 {
		if err := b.JoinGroup(p.Parent); err != nil {
			t.Fatalf("peer JoinGroup(%s): %v", p.Parent, err)
		}
	}
	send(t, a, f.Parent, aSrc, group, advert(3))
	wantPacket(t, chb, "at the peer, joined", at(3, aSrc, group, bl))
	// As carpd sends: out of a macvlan (the virtual MAC), which has no
	// address, from the parent's address.
	create(t, f, "carp0")
	send(t, a, "carp0", aSrc, group, advert(7))
	wantPacket(t, chb, "at the peer, sent out of a macvlan", at(7, aSrc, group, bl))

	// The sender heard none of its own adverts: the peer's is its first.
	send(t, b, p.Parent, bSrc, group, advert(4))
	wantPacket(t, cha, "at the sender (the peer's advert, none of its own)", at(4, bSrc, group, al))

	if err := b.LeaveGroup(p.Parent); err != nil {
		t.Fatalf("peer LeaveGroup(%s): %v", p.Parent, err)
	}
	send(t, a, f.Parent, aSrc, group, advert(5))
	send(t, a, f.Parent, aSrc, bSrc, advert(6))
	wantPacket(t, chb, "at the peer, after it left (the unicast marker, not the advert)", at(6, aSrc, bSrc, bl))
}

// carpAdvertBatch: SendCARPs sends every advert of a batch as SendCARP
// would: more adverts to the group than one system call takes on Linux,
// out of the parent and out of a macvlan, a unicast one, and among them
// adverts SendCARP refuses (a link that does not exist, a source and a
// group of different families), whose errors come at their own index
// without stopping the others; IPv6 too when the peer has it.
func carpAdvertBatch(t *testing.T, f Fixture) {
	a, b, p := peer(t, f)
	_ = openCARP(t, a)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	chb := make(chan osif.Packet, 512)
	if err := b.OpenCARP(ctx, chb); err != nil {
		t.Fatalf("peer OpenCARP: %v", err)
	}
	aSrc, bSrc, group := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), osif.GroupV4
	replace(t, f.Kernel, f.Parent, aSrc.String()+"/24")
	replace(t, p.Kernel, p.Parent, bSrc.String()+"/24")
	create(t, f, "carp0")
	if err := b.JoinGroup(p.Parent); err != nil {
		t.Fatalf("peer JoinGroup(%s): %v", p.Parent, err)
	}
	// payload n of the batch: advert(n % 256) with byte 2 set to n / 256,
	// so that every advert of the batch is told apart.
	pl := func(n int) []byte {
		b := advert(byte(n))
		b[2] = byte(n >> 8)
		return b
	}
	var ads []osif.Advert
	bad := map[int]string{}
	for n := range 150 {
		ad := osif.Advert{Out: f.Parent, Src: aSrc, Dst: group, TOS: 0xe0, Payload: pl(n)}
		switch n {
		case 3, 100:
			ad.Out = "carp0"
		case 5:
			ad.Dst = bSrc
		case 7, 120:
			ad.Out = "nope0"
			bad[n] = "no link"
		case 64:
			ad.Dst = osif.GroupV6
			bad[n] = "families"
		}
		ads = append(ads, ad)
	}
	if p.IPv6 {
		replace(t, f.Kernel, f.Parent, "fe80::1/64")
		replace(t, p.Kernel, p.Parent, "fe80::2/64")
		ads = append(ads, osif.Advert{Out: "carp0", Src: netip.MustParseAddr("fe80::1"), Dst: osif.GroupV6, Payload: pl(150)})
	}
	errs := make([]error, len(ads))
	for i := range errs {
		errs[i] = errors.New("not set by SendCARPs")
	}
	a.SendCARPs(ads, errs)
	for i, err := range errs {
		switch bad[i] {
		case "no link":
			wantNoLink(t, "SendCARPs: the advert out of nope0", err)
		case "families":
			if err == nil {
				t.Errorf("SendCARPs: advert %d from an IPv4 source to an IPv6 group: no error", i)
			}
		default:
			if err != nil {
				t.Errorf("SendCARPs: advert %d (out of %s to %s): %v", i, ads[i].Out, ads[i].Dst, err)
			}
		}
	}
	want := map[string]osif.Advert{}
	for i, ad := range ads {
		if bad[i] == "" {
			want[string(ad.Payload)] = ad
		}
	}
	deadline := time.After(waitFor)
	for len(want) > 0 {
		select {
		case pk := <-chb:
			ad, ok := want[string(pk.Payload)]
			if !ok {
				t.Fatalf("at the peer: %+v, no advert of the batch (or a second copy)", pk)
			}
			if pk.Src != ad.Src || pk.Dst != ad.Dst || pk.TTL != 255 {
				t.Fatalf("at the peer: %+v, sent as %+v", pk, ad)
			}
			delete(want, string(pk.Payload))
		case <-deadline:
			t.Fatalf("%d adverts of the batch did not reach the peer within %v", len(want), waitFor)
		}
	}
}

// carpJoinedOnMACVLAN: a peer that joined the group on a macvlan of its
// parent receives the advert there (IfIndex of the macvlan); joined on both,
// it receives one copy on each.
func carpJoinedOnMACVLAN(t *testing.T, f Fixture) {
	a, b, p := peer(t, f)
	_, chb := openCARP(t, a), openCARP(t, b)
	aSrc, bSrc, group := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), osif.GroupV4
	replace(t, f.Kernel, f.Parent, aSrc.String()+"/24")
	replace(t, p.Kernel, p.Parent, bSrc.String()+"/24")
	if err := b.CreateMACVLAN("carp0", p.Parent, other); err != nil {
		t.Fatalf("peer CreateMACVLAN(carp0, %s): %v", p.Parent, err)
	}
	bl, bm := mustLink(t, p.Kernel, p.Parent), mustLink(t, p.Kernel, "carp0")
	if err := b.JoinGroup("carp0"); err != nil {
		t.Fatalf("peer JoinGroup(carp0): %v", err)
	}
	send(t, a, f.Parent, aSrc, group, advert(1))
	want := osif.Packet{Payload: advert(1), Src: aSrc, Dst: group, IfIndex: bm.Index, TTL: 255}
	wantPacket(t, chb, "at the peer joined on its macvlan", want)

	if err := b.JoinGroup(p.Parent); err != nil {
		t.Fatalf("peer JoinGroup(%s): %v", p.Parent, err)
	}
	send(t, a, f.Parent, aSrc, group, advert(2))
	got := map[int]bool{}
	for range 2 {
		select {
		case pk := <-chb:
			if !bytes.Equal(pk.Payload, advert(2)) || pk.Dst != group || got[pk.IfIndex] {
				t.Fatalf("at the peer joined on both links: %+v (so far on %v)", pk, got)
			}
			got[pk.IfIndex] = true
		case <-time.After(waitFor):
			t.Fatalf("at the peer joined on both links: copies on %v only within %v", got, waitFor)
		}
	}
	if !got[bl.Index] || !got[bm.Index] {
		t.Fatalf("copies arrived on ifindexes %v, want %d (%s) and %d (carp0)", got, bl.Index, p.Parent, bm.Index)
	}
	// Marker: no third copy comes before it. (Its arrival link is not
	// checked: Linux may have answered the ARP for bSrc from carp0.)
	send(t, a, f.Parent, aSrc, bSrc, advert(3))
	select {
	case pk := <-chb:
		if !bytes.Equal(pk.Payload, advert(3)) || pk.Src != aSrc || pk.Dst != bSrc {
			t.Fatalf("at the peer after the two copies: %+v, want the unicast marker", pk)
		}
	case <-time.After(waitFor):
		t.Fatalf("the unicast marker did not reach the peer within %v", waitFor)
	}
}

// wantARP takes requests from ch until one whose TargetIP is among
// targets arrives (kernels may ask for other addresses meanwhile) and
// checks it is want.
func wantARP(t *testing.T, ch <-chan osif.ARPRequest, what string, want osif.ARPRequest, targets ...netip.Addr) {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		select {
		case r := <-ch:
			if !slices.Contains(targets, r.TargetIP) {
				continue
			}
			if r.IfIndex != want.IfIndex || r.Broadcast != want.Broadcast || r.SenderMAC.String() != want.SenderMAC.String() ||
				r.SenderIP != want.SenderIP || r.TargetIP != want.TargetIP {
				t.Fatalf("%s: got %+v,\nwant %+v", what, r, want)
			}
			return
		case <-deadline:
			t.Fatalf("%s: no ARP request within %v (want %+v)", what, waitFor, want)
		}
	}
}

// wantFrame takes frames from ch until one matches and returns it.
func wantFrame(t *testing.T, ch <-chan []byte, what string, match func([]byte) bool) []byte {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		select {
		case f := <-ch:
			if match(f) {
				return f
			}
		case <-deadline:
			t.Fatalf("%s: no such frame within %v", what, waitFor)
		}
	}
}

// announceSeenByPeer: a gratuitous ARP (Announce of an IPv4 address) is an
// ARP request with sender = target, broadcast: the peer's ListenARP
// delivers it, the sender's own does not. An IPv6 Announce reaches the
// peer as an unsolicited neighbour advertisement.
func announceSeenByPeer(t *testing.T, f Fixture) {
	a, b, p := peer(t, f)
	al, bl := mustLink(t, f.Kernel, f.Parent), mustLink(t, p.Kernel, p.Parent)
	cha, chb := listenARP(t, a), listenARP(t, b)
	vip, vip2 := netip.MustParseAddr("192.0.2.50"), netip.MustParseAddr("192.0.2.51")
	if err := a.Announce(f.Parent, vmac, vip); err != nil {
		t.Fatalf("Announce(%s, %s): %v", f.Parent, vip, err)
	}
	wantARP(t, chb, "the announcement at the peer",
		osif.ARPRequest{IfIndex: bl.Index, Broadcast: true, SenderMAC: vmac, SenderIP: vip, TargetIP: vip}, vip, vip2)
	// The sender's listener skipped its own: the peer's is its first.
	if err := b.Announce(p.Parent, other, vip2); err != nil {
		t.Fatalf("peer Announce(%s, %s): %v", p.Parent, vip2, err)
	}
	wantARP(t, cha, "at the sender (the peer's announcement, not its own)",
		osif.ARPRequest{IfIndex: al.Index, Broadcast: true, SenderMAC: other, SenderIP: vip2, TargetIP: vip2}, vip, vip2)

	sniff := p.Sniff(t)
	v6 := netip.MustParseAddr("2001:db8::50")
	if err := a.Announce(f.Parent, vmac, v6); err != nil {
		t.Fatalf("Announce(%s, %s): %v", f.Parent, v6, err)
	}
	wantFrame(t, sniff, "the neighbour advertisement at the peer", func(fr []byte) bool {
		// Ethernet to 33:33:00:00:00:01 from vmac, IPv6 (hop limit 255)
		// from v6, ICMPv6 type 136 whose target is v6.
		const ip, icmp = 14, 14 + 40
		return len(fr) >= icmp+24 && bytes.Equal(fr[:6], []byte{0x33, 0x33, 0, 0, 0, 1}) && bytes.Equal(fr[6:12], vmac) &&
			fr[12] == 0x86 && fr[13] == 0xdd && fr[ip+6] == 58 && fr[ip+7] == 255 &&
			bytes.Equal(fr[ip+8:ip+24], v6.AsSlice()) && fr[icmp] == 136 && bytes.Equal(fr[icmp+8:icmp+24], v6.AsSlice())
	})
}

// announceFromMACVLAN: a gratuitous ARP sent out of a macvlan (as carpd
// sends it) reaches the peer, out of the parent's wire, and none of the
// sender's other macvlans on that parent (FreeBSD sends it out of the
// parent; a copy to each sibling only cost the host work); the peer's
// announcement arrives on the parent and on each of its macvlans.
func announceFromMACVLAN(t *testing.T, f Fixture) {
	a, b, p := peer(t, f)
	create(t, f, "carp0")
	if err := a.CreateMACVLAN("carp1", f.Parent, other); err != nil {
		t.Fatalf("CreateMACVLAN(carp1, %s): %v", f.Parent, err)
	}
	al, l0, l1 := mustLink(t, f.Kernel, f.Parent), mustLink(t, f.Kernel, "carp0"), mustLink(t, f.Kernel, "carp1")
	bl := mustLink(t, p.Kernel, p.Parent)
	cha, chb := listenARP(t, a), listenARP(t, b)
	vip, vip2 := netip.MustParseAddr("192.0.2.52"), netip.MustParseAddr("192.0.2.53")
	if err := a.Announce("carp0", vmac, vip); err != nil {
		t.Fatalf("Announce(carp0, %s): %v", vip, err)
	}
	wantARP(t, chb, "the announcement at the peer",
		osif.ARPRequest{IfIndex: bl.Index, Broadcast: true, SenderMAC: vmac, SenderIP: vip, TargetIP: vip}, vip, vip2)

	// Marker: the peer's announcement; no copy of the sender's own (on
	// carp1, or anywhere) comes before its three copies.
	if err := b.Announce(p.Parent, other2, vip2); err != nil {
		t.Fatalf("peer Announce(%s, %s): %v", p.Parent, vip2, err)
	}
	seen := map[int]bool{}
	deadline := time.After(waitFor)
	for len(seen) < 3 {
		select {
		case r := <-cha:
			if r.TargetIP == vip {
				t.Fatalf("the sender's listener got its own announcement (a copy to a sibling macvlan): %+v", r)
			}
			if r.TargetIP != vip2 {
				continue
			}
			if !r.Broadcast || r.SenderIP != vip2 || r.SenderMAC.String() != other2.String() || seen[r.IfIndex] {
				t.Fatalf("the peer's announcement at the sender: %+v (so far on %v)", r, seen)
			}
			seen[r.IfIndex] = true
		case <-deadline:
			t.Fatalf("the peer's announcement at the sender: copies on %v only within %v", seen, waitFor)
		}
	}
	if !seen[al.Index] || !seen[l0.Index] || !seen[l1.Index] {
		t.Fatalf("the peer's announcement arrived on %v, want %d (%s), %d (carp0), %d (carp1)", seen, al.Index, f.Parent, l0.Index, l1.Index)
	}
}

// replyARP: ReplyARP puts an ARP reply on the wire from mac to the
// requester's MAC; the peer's ListenARP does not deliver it (a reply is
// no request).
func replyARP(t *testing.T, f Fixture) {
	a, b, p := peer(t, f)
	bl := mustLink(t, p.Kernel, p.Parent)
	chb := listenARP(t, b)
	sniff := p.Sniff(t)
	vip, vip2, asker := netip.MustParseAddr("192.0.2.60"), netip.MustParseAddr("192.0.2.61"), netip.MustParseAddr("192.0.2.2")
	if err := a.ReplyARP(f.Parent, vmac, vip, bl.MAC, asker); err != nil {
		t.Fatalf("ReplyARP(%s): %v", f.Parent, err)
	}
	wantFrame(t, sniff, "the ARP reply at the peer", func(fr []byte) bool {
		const arp = 14
		return len(fr) >= arp+28 && bytes.Equal(fr[:6], bl.MAC) && bytes.Equal(fr[6:12], vmac) && fr[12] == 0x08 && fr[13] == 0x06 &&
			bytes.Equal(fr[arp:arp+8], []byte{0, 1, 8, 0, 6, 4, 0, 2}) && bytes.Equal(fr[arp+8:arp+14], vmac) &&
			bytes.Equal(fr[arp+14:arp+18], vip.AsSlice()) && bytes.Equal(fr[arp+18:arp+24], bl.MAC) &&
			bytes.Equal(fr[arp+24:arp+28], asker.AsSlice())
	})
	// Marker: an announcement, sent after the reply, is the first the
	// peer's listener delivers from either address.
	if err := a.Announce(f.Parent, vmac, vip2); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(waitFor)
	for {
		select {
		case r := <-chb:
			if r.SenderIP == vip {
				t.Fatalf("the peer's ListenARP delivered the reply: %+v", r)
			}
			if r.SenderIP != vip2 {
				continue
			}
			if r.TargetIP != vip2 || r.IfIndex != bl.Index {
				t.Fatalf("the marker announcement at the peer: %+v", r)
			}
			return
		case <-deadline:
			t.Fatalf("the marker announcement of %s did not reach the peer's ListenARP", vip2)
		}
	}
}
