//go:build linux

package kernelshim

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bsdcarp/bsdcarp/carp/osif"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"
)

// advert is a CARP-looking 36-byte payload; its checksum bytes are
// deliberately arbitrary, so any kernel checksum insertion would show.
func advert(vhid byte) []byte {
	p := make([]byte, 36)
	p[0], p[1], p[2], p[3], p[5] = 0x21, vhid, 0, 7, 1
	p[6], p[7] = 0xde, 0xad
	for i := 8; i < 36; i++ {
		p[i] = byte(i)
	}
	return p
}

func TestLinuxCARPMulticastAndUnicast(t *testing.T) {
	requireRoot(t)
	a, b := vethPair(t)
	ka, kb := kernelIn(t, a), kernelIn(t, b)
	cha, chb := openCARP(t, ka), openCARP(t, kb)
	for _, k := range []*Linux{ka, kb} {
		if err := k.JoinGroup("veth0"); err != nil {
			t.Fatal(err)
		}
		if err := k.JoinGroup("veth0"); err != nil {
			t.Fatalf("second join must be harmless: %v", err)
		}
	}
	lb, err := kb.LinkByName("veth0")
	if err != nil {
		t.Fatal(err)
	}
	sniff := newSniffer(t, b, "veth0")

	src4, dst4 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("224.0.0.18")
	if err := ka.SendCARP("veth0", src4, dst4, 0xe0, advert(1)); err != nil {
		t.Fatal(err)
	}
	p, ok := recvPacket(chb, 2*time.Second)
	if !ok {
		t.Fatal("IPv4 multicast advert not received")
	}
	want := osif.Packet{Payload: advert(1), Src: src4, Dst: dst4, IfIndex: lb.Index, TTL: 255}
	if !samePacket(p, want) {
		t.Fatalf("got %+v, want %+v", p, want)
	}
	// The wire: IPv4 header exactly as FreeBSD sends it.
	f := sniff.next(2*time.Second, func(f []byte) bool {
		return len(f) >= 34 && f[12] == 0x08 && f[13] == 0x00 && f[23] == 112
	})
	if f == nil {
		t.Fatal("sniffer saw no IPv4 protocol 112 frame")
	}
	if !bytes.Equal(f[0:6], []byte{0x01, 0x00, 0x5e, 0, 0, 0x12}) {
		t.Errorf("dst MAC %x, want 01:00:5e:00:00:12", f[0:6])
	}
	ip := f[14:]
	if ip[0] != 0x45 || ip[1] != 0xe0 || binary.BigEndian.Uint16(ip[2:]) != 56 ||
		binary.BigEndian.Uint16(ip[6:])&0x4000 == 0 || ip[8] != 255 {
		t.Errorf("IPv4 header % x: want ihl 5, tos e0, len 56, DF, ttl 255", ip[:20])
	}
	if !bytes.Equal(ip[20:56], advert(1)) {
		t.Errorf("payload altered on the wire: % x", ip[20:56])
	}
	// The sender does not hear itself (multicast loop off).
	if p, ok := recvPacket(cha, 300*time.Millisecond); ok {
		t.Fatalf("sender received %+v", p)
	}

	// IPv6 multicast from the link-local address.
	src6, dst6 := netip.MustParseAddr("fe80::1"), netip.MustParseAddr("ff02::12")
	if err := ka.SendCARP("veth0", src6, dst6, 0xe0, advert(2)); err != nil {
		t.Fatal(err)
	}
	p, ok = recvPacket(chb, 2*time.Second)
	if !ok {
		t.Fatal("IPv6 multicast advert not received")
	}
	want = osif.Packet{Payload: advert(2), Src: src6, Dst: dst6, IfIndex: lb.Index, TTL: 255, IPv6: true}
	if !samePacket(p, want) {
		t.Fatalf("got %+v, want %+v", p, want)
	}
	f = sniff.next(2*time.Second, func(f []byte) bool { return len(f) >= 54 && f[12] == 0x86 && f[13] == 0xdd && f[20] == 112 })
	if f == nil {
		t.Fatal("sniffer saw no IPv6 next-header 112 frame")
	}
	if tc := (binary.BigEndian.Uint32(f[14:]) >> 20) & 0xff; tc != 0xe0 || f[21] != 255 || binary.BigEndian.Uint16(f[18:]) != 36 {
		t.Errorf("IPv6 header % x: want tclass e0, hop limit 255, payload length 36", f[14:54])
	}
	if p, ok := recvPacket(cha, 300*time.Millisecond); ok {
		t.Fatalf("sender received its own IPv6 advert %+v", p)
	}

	// Unicast (FreeBSD 14 peer mode), both directions.
	if err := kb.SendCARP("veth0", netip.MustParseAddr("192.0.2.2"), src4, 0x10, advert(3)); err != nil {
		t.Fatal(err)
	}
	p, ok = recvPacket(cha, 2*time.Second)
	if !ok || p.Dst != src4 || p.Src != netip.MustParseAddr("192.0.2.2") || p.TTL != 255 || !bytes.Equal(p.Payload, advert(3)) {
		t.Fatalf("unicast: got %+v ok=%v", p, ok)
	}

	// After LeaveGroup the kernel drops the multicast before the raw socket.
	if err := kb.LeaveGroup("veth0"); err != nil {
		t.Fatal(err)
	}
	if err := kb.LeaveGroup("veth0"); err != nil {
		t.Fatalf("second leave must be harmless: %v", err)
	}
	if err := ka.SendCARP("veth0", src4, dst4, 0xe0, advert(4)); err != nil {
		t.Fatal(err)
	}
	if p, ok := recvPacket(chb, 300*time.Millisecond); ok {
		t.Fatalf("received after LeaveGroup: %+v", p)
	}

	if err := ka.SendCARP("nope0", src4, dst4, 0, advert(1)); !errors.Is(err, osif.ErrNoLink) {
		t.Errorf("send on missing link: %v, want osif.ErrNoLink", err)
	}
}

func samePacket(a, b osif.Packet) bool {
	return bytes.Equal(a.Payload, b.Payload) && a.Src == b.Src && a.Dst == b.Dst &&
		a.IfIndex == b.IfIndex && a.TTL == b.TTL && a.IPv6 == b.IPv6
}

func TestLinuxMACVLAN(t *testing.T) {
	requireRoot(t)
	a, b := vethPair(t)
	ka, kb := kernelIn(t, a), kernelIn(t, b)
	mac := net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x01, 0x01}
	if err := ka.CreateMACVLAN("carp0", "veth0", mac); err != nil {
		t.Fatal(err)
	}
	parent, err := ka.LinkByName("veth0")
	if err != nil {
		t.Fatal(err)
	}
	check := func() osif.Link {
		t.Helper()
		l, err := ka.LinkByName("carp0")
		if err != nil {
			t.Fatal(err)
		}
		if l.MAC.String() != mac.String() || l.Kind != "macvlan" || l.Alias != osif.OwnerAlias ||
			!l.AdminUp || l.ParentIndex != parent.Index {
			t.Fatalf("carp0 = %+v", l)
		}
		for _, p := range l.Addrs {
			if p.Addr().IsLinkLocalUnicast() {
				t.Fatalf("carp0 has link-local %v", p)
			}
		}
		return l
	}
	check()
	// addrconf runs when a link gets its carrier: once carp0 has one and
	// its parent has been given a link-local address (addrconf is on in
	// this namespace), carp0 would have had its own by now.
	waitFor(t, 500*time.Millisecond, "carp0 gets a carrier on an up veth", func() bool {
		l, err := ka.LinkByName("carp0")
		return err == nil && l.Carrier
	})
	waitFor(t, 2*time.Second, "veth0 gets a link-local address", func() bool {
		l, err := ka.LinkByName("veth0")
		return err == nil && slices.ContainsFunc(l.Addrs, func(p netip.Prefix) bool { return p.Addr().IsLinkLocalUnicast() })
	})
	check()
	var mode []byte
	_ = doIn(a, func() (err error) {
		mode, err = os.ReadFile("/proc/sys/net/ipv6/conf/carp0/addr_gen_mode")
		return
	})
	if strings.TrimSpace(string(mode)) != "1" {
		t.Errorf("addr_gen_mode = %q, want 1 (none)", mode)
	}

	// Re-creating our own leftover works; a foreign link is refused.
	if err := ka.CreateMACVLAN("carp0", "veth0", mac); err != nil {
		t.Fatalf("re-create own macvlan: %v", err)
	}
	check()
	ipn(t, a, "link", "add", "foreign0", "link", "veth0", "type", "macvlan")
	if err := ka.CreateMACVLAN("foreign0", "veth0", mac); err == nil {
		t.Fatal("CreateMACVLAN replaced a link that is not ours")
	}
	if err := ka.CreateMACVLAN("carp1", "nope0", mac); !errors.Is(err, osif.ErrNoLink) {
		t.Errorf("missing parent: %v, want osif.ErrNoLink", err)
	}

	// A virtual address on the macvlan answers ARP with the virtual MAC,
	// once the parent stops answering for addresses of other links.
	if old, err := ka.SetSysctl("net/ipv4/conf/veth0/arp_ignore", "1"); err != nil || old != "0" {
		t.Fatalf("arp_ignore: old=%q err=%v", old, err)
	}
	// ... and does not use the VIP as sender address in its own requests.
	if _, err := ka.SetSysctl("net/ipv4/conf/veth0/arp_announce", "2"); err != nil {
		t.Fatal(err)
	}
	if _, err := ka.ReplaceAddr("carp0", netip.MustParsePrefix("192.0.2.100/24"), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	ipn(t, b, "neigh", "flush", "dev", "veth0")
	run(t, "ip", "netns", "exec", b, "ping", "-c", "1", "-W", "2", "192.0.2.100")
	if out := ipn(t, b, "neigh", "show", "192.0.2.100"); !strings.Contains(out, mac.String()) {
		t.Errorf("peer's neighbour entry for the VIP: %q, want lladdr %s", out, mac)
	}

	// Adverts sent out of the macvlan (from the parent's address) arrive.
	chb := openCARP(t, kb)
	if err := kb.JoinGroup("veth0"); err != nil {
		t.Fatal(err)
	}
	_ = openCARP(t, ka)
	sniff := newSniffer(t, b, "veth0")
	if err := ka.SendCARP("carp0", netip.MustParseAddr("192.0.2.1"), osif.GroupV4, 0xe0, advert(1)); err != nil {
		t.Fatalf("send via macvlan: %v", err)
	}
	if p, ok := recvPacket(chb, 2*time.Second); !ok || p.Src != netip.MustParseAddr("192.0.2.1") {
		t.Fatalf("advert via macvlan: %+v ok=%v", p, ok)
	}
	if f := sniff.next(2*time.Second, func(f []byte) bool { return len(f) > 34 && f[23] == 112 }); f == nil || !bytes.Equal(f[6:12], mac) {
		t.Errorf("advert via macvlan: source MAC %x, want virtual %s", f[6:12], mac)
	}
	// IPv6: the link-local source belongs to the parent, not to carp0.
	if err := ka.SendCARP("carp0", netip.MustParseAddr("fe80::1"), osif.GroupV6, 0xe0, advert(2)); err != nil {
		t.Fatalf("IPv6 advert out of the macvlan with the parent's link-local source: %v", err)
	}
	if p, ok := recvPacket(chb, 2*time.Second); !ok || p.Src != netip.MustParseAddr("fe80::1") || !p.IPv6 || p.TTL != 255 {
		t.Fatalf("IPv6 advert via macvlan: %+v ok=%v", p, ok)
	}
	if f := sniff.next(2*time.Second, func(f []byte) bool { return len(f) > 54 && f[12] == 0x86 && f[20] == 112 }); f == nil || !bytes.Equal(f[6:12], mac) {
		t.Errorf("IPv6 advert via macvlan: frame %x, want source MAC %s", f, mac)
	}

	if err := ka.DeleteLink("carp0"); err != nil {
		t.Fatal(err)
	}
	if err := ka.DeleteLink("carp0"); !errors.Is(err, osif.ErrNoLink) {
		t.Errorf("second delete: %v, want osif.ErrNoLink", err)
	}
	if _, err := ka.LinkByName("carp0"); !errors.Is(err, osif.ErrNoLink) {
		t.Errorf("LinkByName after delete: %v, want osif.ErrNoLink", err)
	}
}

func TestLinuxAnnounce(t *testing.T) {
	requireRoot(t)
	a, b := vethPair(t)
	ka := kernelIn(t, a)
	mac := net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x01, 0x07}
	old := "02:00:00:00:00:99"
	ipn(t, b, "addr", "add", "2001:db8::2/64", "dev", "veth0", "nodad")
	ipn(t, b, "neigh", "add", "192.0.2.10", "lladdr", old, "dev", "veth0", "nud", "stale")
	ipn(t, b, "neigh", "add", "2001:db8::10", "lladdr", old, "dev", "veth0", "nud", "stale")
	// Linux ignores ARP overrides within locktime (1 s) of the last update
	// of an entry unless the ARP is gratuitous; wait anyway to be fair to NA.
	time.Sleep(1100 * time.Millisecond)
	sniff := newSniffer(t, b, "veth0")

	if err := ka.Announce("veth0", mac, netip.MustParseAddr("192.0.2.10")); err != nil {
		t.Fatal(err)
	}
	f := sniff.next(2*time.Second, func(f []byte) bool { return len(f) >= 42 && f[12] == 0x08 && f[13] == 0x06 })
	if f == nil {
		t.Fatal("gratuitous ARP not seen on the peer")
	}
	pkt := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
	arp, _ := pkt.Layer(layers.LayerTypeARP).(*layers.ARP)
	eth, _ := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	if arp == nil || eth == nil || arp.Operation != layers.ARPRequest || !bytes.Equal(arp.SourceHwAddress, mac) ||
		!bytes.Equal(arp.SourceProtAddress, []byte{192, 0, 2, 10}) || !bytes.Equal(arp.DstProtAddress, []byte{192, 0, 2, 10}) ||
		eth.DstMAC.String() != "ff:ff:ff:ff:ff:ff" || !bytes.Equal(eth.SrcMAC, mac) {
		t.Fatalf("bad gratuitous ARP: %v", pkt)
	}

	if err := ka.Announce("veth0", mac, netip.MustParseAddr("2001:db8::10")); err != nil {
		t.Fatal(err)
	}
	f = sniff.next(2*time.Second, func(f []byte) bool { return len(f) >= 54 && f[12] == 0x86 && f[13] == 0xdd && f[20] == 58 })
	if f == nil {
		t.Fatal("unsolicited NA not seen on the peer")
	}
	if !bytes.Equal(f[0:6], allNodesMAC) || f[21] != 255 {
		t.Errorf("NA frame: dst %x hop limit %d", f[0:6], f[21])
	}

	waitFor(t, 2*time.Second, "peer's neighbour entries updated to the announced MAC", func() bool {
		return strings.Contains(ipn(t, b, "neigh", "show", "192.0.2.10"), mac.String()) &&
			strings.Contains(ipn(t, b, "neigh", "show", "2001:db8::10"), mac.String())
	})

	if err := ka.Announce("nope0", mac, netip.MustParseAddr("192.0.2.10")); !errors.Is(err, osif.ErrNoLink) {
		t.Errorf("announce on missing link: %v, want osif.ErrNoLink", err)
	}
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestLinuxAddrLifetime(t *testing.T) {
	requireRoot(t)
	a, _ := vethPair(t)
	ka := kernelIn(t, a)
	expiring := []netip.Prefix{netip.MustParsePrefix("192.0.2.50/24"), netip.MustParsePrefix("2001:db8::50/64")}
	refreshed := []netip.Prefix{netip.MustParsePrefix("192.0.2.51/24"), netip.MustParsePrefix("2001:db8::51/64")}
	permanent := []netip.Prefix{netip.MustParsePrefix("198.51.100.1/24"), netip.MustParsePrefix("2001:db8:1::1/64")}
	// batched are refreshed by RefreshAddrs, from what ReplaceAddr returned.
	batched := []netip.Prefix{netip.MustParsePrefix("192.0.2.52/24"), netip.MustParsePrefix("2001:db8::52/64")}
	for _, p := range slices.Concat(expiring, refreshed) {
		if _, err := ka.ReplaceAddr("veth0", p, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	var batch []osif.AddrLifetime
	for _, p := range batched {
		a, err := ka.ReplaceAddr("veth0", p, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		batch = append(batch, a)
	}
	for _, p := range permanent {
		if _, err := ka.ReplaceAddr("veth0", p, 0); err != nil {
			t.Fatal(err)
		}
	}
	has := func(p netip.Prefix) bool {
		l, err := ka.LinkByName("veth0")
		if err != nil {
			t.Fatal(err)
		}
		return slices.Contains(l.Addrs, p)
	}
	for _, p := range slices.Concat(expiring, refreshed, permanent, batched) {
		if !has(p) {
			t.Fatalf("%v not added", p)
		}
	}
	start := time.Now()
	gone := map[netip.Prefix]time.Duration{}
	for time.Since(start) < 3500*time.Millisecond {
		for _, p := range refreshed {
			if _, err := ka.ReplaceAddr("veth0", p, time.Second); err != nil {
				t.Fatal(err)
			}
		}
		if err := ka.RefreshAddrs(batch); err != nil {
			t.Fatal(err)
		}
		for _, p := range expiring {
			if _, ok := gone[p]; !ok && !has(p) {
				gone[p] = time.Since(start)
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	for _, p := range expiring {
		d, ok := gone[p]
		if !ok {
			t.Errorf("%v with a 1 s lifetime still present after 3.5 s", p)
		} else {
			t.Logf("%v expired after %v", p, d.Round(10*time.Millisecond))
			if d > 2500*time.Millisecond {
				t.Errorf("%v took %v to expire", p, d)
			}
		}
	}
	for _, p := range slices.Concat(refreshed, permanent, batched) {
		if !has(p) {
			t.Errorf("%v disappeared although refreshed / permanent", p)
		}
	}
	for _, p := range refreshed {
		if err := ka.DelAddr("veth0", p); err != nil {
			t.Fatal(err)
		}
		if has(p) {
			t.Errorf("%v still present after DelAddr", p)
		}
		if err := ka.DelAddr("veth0", p); err != nil {
			t.Errorf("deleting a missing address: %v", err)
		}
	}
	if err := ka.DelAddr("nope0", refreshed[0]); !errors.Is(err, osif.ErrNoLink) {
		t.Errorf("DelAddr on missing link: %v, want osif.ErrNoLink", err)
	}
}

func TestLinuxWatchLinks(t *testing.T) {
	requireRoot(t)
	a, b := vethPair(t)
	ka := kernelIn(t, a)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := make(chan osif.LinkUpdate, 64)
	if err := ka.WatchLinks(ctx, ch); err != nil {
		t.Fatal(err)
	}
	expect := func(what string, match func(osif.LinkUpdate) bool) {
		t.Helper()
		deadline := time.After(3 * time.Second)
		for {
			select {
			case u := <-ch:
				if match(u) {
					return
				}
			case <-deadline:
				t.Fatalf("no link update: %s", what)
			}
		}
	}
	ipn(t, b, "link", "set", "veth0", "down")
	expect("veth0 carrier lost", func(u osif.LinkUpdate) bool {
		return u.Link.Name == "veth0" && u.Link.AdminUp && !u.Link.Carrier && !u.Deleted
	})
	ipn(t, b, "link", "set", "veth0", "up")
	expect("veth0 carrier back", func(u osif.LinkUpdate) bool {
		return u.Link.Name == "veth0" && u.Link.Carrier && u.Link.Running
	})
	if err := ka.CreateMACVLAN("carp0", "veth0", net.HardwareAddr{0, 0, 0x5e, 0, 1, 2}); err != nil {
		t.Fatal(err)
	}
	expect("carp0 created", func(u osif.LinkUpdate) bool { return u.Link.Name == "carp0" && u.Link.Kind == "macvlan" && !u.Deleted })
	if err := ka.SetLinkUp("carp0", false); err != nil {
		t.Fatal(err)
	}
	expect("carp0 admin down", func(u osif.LinkUpdate) bool { return u.Link.Name == "carp0" && !u.Link.AdminUp })
	if err := ka.DeleteLink("carp0"); err != nil {
		t.Fatal(err)
	}
	expect("carp0 deleted", func(u osif.LinkUpdate) bool { return u.Link.Name == "carp0" && u.Deleted })

	// An address that arrives after the link (boot order, DHCP) is reported:
	// it becomes the source of the adverts.
	ipn(t, a, "addr", "add", "198.51.100.7/24", "dev", "veth0")
	expect("address added to veth0", func(u osif.LinkUpdate) bool {
		return u.Link.Name == "veth0" && slices.Contains(u.Link.Addrs, netip.MustParsePrefix("198.51.100.7/24"))
	})

	// A broken subscription is re-established and announced as a resync.
	ka.breakSubscriptions()
	expect("resync after the subscription broke", func(u osif.LinkUpdate) bool { return u.Resync })
	ipn(t, b, "link", "set", "veth0", "down")
	expect("updates flow again after resync", func(u osif.LinkUpdate) bool {
		return u.Link.Name == "veth0" && !u.Link.Carrier
	})

	links, err := ka.Links()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range links {
		names = append(names, l.Name)
		if l.Name == "lo" && (!l.Loopback || l.Kind != "") {
			t.Errorf("lo = %+v", l)
		}
		if l.Name == "veth0" && (l.Kind != "veth" || !slices.Contains(l.Addrs, netip.MustParsePrefix("192.0.2.1/24"))) {
			t.Errorf("veth0 = %+v", l)
		}
	}
	if !slices.Equal(names, []string{"lo", "veth0"}) {
		t.Errorf("Links() = %v, want [lo veth0] (the namespace's own links only)", names)
	}
}

func TestLinuxSysctl(t *testing.T) {
	requireRoot(t)
	a, _ := vethPair(t)
	ka := kernelIn(t, a)
	hostBefore, err := os.ReadFile("/proc/sys/net/ipv4/conf/all/arp_ignore")
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"0", "1", "2"} {
		old, err := ka.SetSysctl("net/ipv4/conf/veth0/arp_ignore", []string{"1", "2", "0"}[i])
		if err != nil || old != want {
			t.Fatalf("SetSysctl #%d: old=%q err=%v, want %q", i, old, err, want)
		}
	}
	// Written in the kernel's namespace even from a thread of another one.
	if old, err := ka.SetSysctl("net/ipv4/conf/all/arp_ignore", "1"); err != nil {
		t.Fatal(err)
	} else if _, err := ka.SetSysctl("net/ipv4/conf/all/arp_ignore", old); err != nil {
		t.Fatal(err)
	}
	hostAfter, _ := os.ReadFile("/proc/sys/net/ipv4/conf/all/arp_ignore")
	if !bytes.Equal(hostBefore, hostAfter) {
		t.Errorf("host sysctl changed: %q -> %q", hostBefore, hostAfter)
	}
	if _, err := ka.SetSysctl("net/ipv4/conf/nope0/arp_ignore", "1"); err == nil {
		t.Error("sysctl of a missing interface succeeded")
	}
	if _, err := ka.SetSysctl("../../etc/passwd", "x"); err == nil {
		t.Error("path escaping /proc/sys accepted")
	}
}

// TestLinuxCloseNoLeak checks that Close (and ctx cancellation) stop every
// goroutine the kernel started.
func TestLinuxCloseNoLeak(t *testing.T) {
	requireRoot(t)
	a, _ := vethPair(t)
	base := runtime.NumGoroutine()
	for range 3 {
		var k *Linux
		if err := doIn(a, func() (err error) { k, err = NewLinux(nil); return }); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		if err := k.OpenCARP(ctx, make(chan osif.Packet)); err != nil { // unbuffered, never read
			t.Fatal(err)
		}
		if err := k.JoinGroup("veth0"); err != nil {
			t.Fatal(err)
		}
		if err := k.WatchLinks(ctx, make(chan osif.LinkUpdate)); err != nil {
			t.Fatal(err)
		}
		ipn(t, a, "link", "set", "veth0", "mtu", "1400") // an update nobody reads
		if err := k.Close(); err != nil {
			t.Fatal(err)
		}
		cancel()
		if err := k.SendCARP("veth0", netip.MustParseAddr("192.0.2.1"), osif.GroupV4, 0, advert(1)); !errors.Is(err, osif.ErrClosed) {
			t.Errorf("send after Close: %v, want osif.ErrClosed", err)
		}
	}
	waitFor(t, 3*time.Second, "goroutines to return to the baseline", func() bool { return runtime.NumGoroutine() <= base })

	// Reopening after the context ended is allowed.
	var k *Linux
	if err := doIn(a, func() (err error) { k, err = NewLinux(nil); return }); err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	ctx, cancel := context.WithCancel(context.Background())
	if err := k.OpenCARP(ctx, make(chan osif.Packet, 1)); err != nil {
		t.Fatal(err)
	}
	if err := k.OpenCARP(ctx, make(chan osif.Packet, 1)); err == nil {
		t.Error("second OpenCARP accepted")
	}
	cancel()
	waitFor(t, 2*time.Second, "OpenCARP possible again after ctx ended", func() bool {
		c2, cancel2 := context.WithCancel(context.Background())
		err := k.OpenCARP(c2, make(chan osif.Packet, 1))
		if err != nil {
			cancel2()
			return false
		}
		t.Cleanup(cancel2)
		return true
	})
}

func TestParse4FlagsAnIncompleteHeader(t *testing.T) {
	cm := pktInfo{ifIndex: 3, ttl: 255}
	full := make([]byte, 20+36)
	full[0] = 0x45
	full[8] = 255
	copy(full[12:16], []byte{10, 0, 0, 2})
	copy(full[16:20], []byte{224, 0, 0, 18})
	if p := parse4(full, cm, netip.Addr{}); p.ShortHeader || len(p.Payload) != 36 {
		t.Fatalf("whole datagram: ShortHeader %v, %d payload bytes", p.ShortHeader, len(p.Payload))
	}
	long := slices.Clone(full)
	long[0] = 0x4f // a 60-byte header in 56 bytes
	for name, b := range map[string][]byte{"12 bytes": full[:12], "ihl beyond the datagram": long, "not IPv4": append([]byte{0x65}, full[1:]...)} {
		if p := parse4(b, cm, netip.Addr{}); !p.ShortHeader || len(p.Payload) != 0 {
			t.Errorf("%s: ShortHeader %v, %d payload bytes", name, p.ShortHeader, len(p.Payload))
		}
	}
}

// TestLinuxSendAfterLinkRecreated: SendCARP, ReplaceAddr and Announce
// cache the ifindex of the link they use; a link deleted and made again
// under the same name behind the kernel's back (a new ifindex) must not
// lose an advert, an address or an announcement.
func TestLinuxSendAfterLinkRecreated(t *testing.T) {
	requireRoot(t)
	a, b := vethPair(t)
	ka, kb := kernelIn(t, a), kernelIn(t, b)
	chb := openCARP(t, kb)
	openCARP(t, ka)
	if err := kb.JoinGroup("veth0"); err != nil {
		t.Fatal(err)
	}
	sniff := newSniffer(t, b, "veth0")
	mac := "00:00:5e:00:01:07"
	ipn(t, a, "link", "add", "link", "veth0", "name", "carp7", "address", mac, "type", "macvlan", "mode", "bridge")
	ipn(t, a, "link", "set", "carp7", "up")
	src, dst := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("224.0.0.18")
	for round := range 2 {
		if err := ka.SendCARP("carp7", src, dst, 0xe0, advert(7)); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if _, ok := recvPacket(chb, 2*time.Second); !ok {
			t.Fatalf("round %d: advert out of carp7 not received", round)
		}
		vip := netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(70 + round)}), 32)
		got, err := ka.ReplaceAddr("carp7", vip, 30*time.Second)
		if err != nil {
			t.Fatalf("round %d: ReplaceAddr: %v", round, err)
		}
		l, err := ka.LinkByName("carp7")
		if err != nil {
			t.Fatal(err)
		}
		if got.Index != l.Index || !slices.Contains(l.Addrs, vip) {
			t.Fatalf("round %d: ReplaceAddr(carp7, %s) = %+v; carp7 is index %d with %v", round, vip, got, l.Index, l.Addrs)
		}
		if err := ka.Announce("carp7", net.HardwareAddr{0, 0, 0x5e, 0, 1, 7}, vip.Addr()); err != nil {
			t.Fatalf("round %d: Announce: %v", round, err)
		}
		if f := sniff.next(2*time.Second, func(f []byte) bool {
			return len(f) >= 42 && f[12] == 0x08 && f[13] == 0x06 && bytes.Equal(f[14+14:14+18], vip.Addr().AsSlice())
		}); f == nil {
			t.Fatalf("round %d: the announcement of %s out of carp7 not seen on the peer", round, vip)
		}
		if round == 0 {
			before, err := ka.LinkByName("carp7")
			if err != nil {
				t.Fatal(err)
			}
			ipn(t, a, "link", "del", "carp7")
			ipn(t, a, "link", "add", "link", "veth0", "name", "carp7", "address", mac, "type", "macvlan", "mode", "bridge")
			ipn(t, a, "link", "set", "carp7", "up")
			after, err := ka.LinkByName("carp7")
			if err != nil || after.Index == before.Index {
				t.Fatalf("carp7 re-created with index %d (was %d): %v", after.Index, before.Index, err)
			}
		}
	}
}

// TestLinuxAdvertFramesOnParent: an advert out of a macvlan leaves on its
// parent's wire from the macvlan's (virtual) MAC, to the group's multicast
// MAC, with FreeBSD's headers; the sender's sibling macvlans do not get a
// copy (its raw socket, joined on one of them, hears the peer's advert
// first); and sending allocates nothing.
func TestLinuxAdvertFramesOnParent(t *testing.T) {
	requireRoot(t)
	a, b := vethPair(t)
	ka, kb := kernelIn(t, a), kernelIn(t, b)
	cha, chb := openCARP(t, ka), openCARP(t, kb)
	if err := kb.JoinGroup("veth0"); err != nil {
		t.Fatal(err)
	}
	mac0, mac1 := net.HardwareAddr{0, 0, 0x5e, 0, 1, 1}, net.HardwareAddr{0, 0, 0x5e, 0, 1, 2}
	for name, mac := range map[string]net.HardwareAddr{"carp0": mac0, "carp1": mac1} {
		if err := ka.CreateMACVLAN(name, "veth0", mac); err != nil {
			t.Fatal(err)
		}
	}
	if err := ka.JoinGroup("carp1"); err != nil {
		t.Fatal(err)
	}
	lb, err := kb.LinkByName("veth0")
	if err != nil {
		t.Fatal(err)
	}
	// On the sender's parent, as tshark there sees them.
	sniff := newSniffer(t, a, "veth0")

	src4 := netip.MustParseAddr("192.0.2.1")
	if err := ka.SendCARP("carp0", src4, osif.GroupV4, 0xe0, advert(1)); err != nil {
		t.Fatal(err)
	}
	if p, ok := recvPacket(chb, 2*time.Second); !ok || !samePacket(p, osif.Packet{Payload: advert(1), Src: src4, Dst: osif.GroupV4, IfIndex: lb.Index, TTL: 255}) {
		t.Fatalf("IPv4 advert at the peer: %+v ok=%v", p, ok)
	}
	f := sniff.next(2*time.Second, func(f []byte) bool { return len(f) >= 34 && f[12] == 0x08 && f[13] == 0x00 && f[23] == 112 })
	if f == nil {
		t.Fatal("no IPv4 advert on the parent")
	}
	if !bytes.Equal(f[0:6], []byte{0x01, 0x00, 0x5e, 0, 0, 0x12}) || !bytes.Equal(f[6:12], mac0) {
		t.Errorf("IPv4 advert from %x to %x, want from %s to 01:00:5e:00:00:12", f[6:12], f[0:6], mac0)
	}
	if ip := f[14:]; ip[0] != 0x45 || ip[1] != 0xe0 || binary.BigEndian.Uint16(ip[2:]) != 56 || binary.BigEndian.Uint16(ip[6:]) != 0x4000 ||
		ip[8] != 255 || ipChecksum(ip[:20]) != 0 || !bytes.Equal(ip[20:56], advert(1)) {
		t.Errorf("IPv4 advert % x: want ihl 5, tos e0, len 56, DF, ttl 255, a good checksum, the payload", ip[:56])
	}

	src6 := netip.MustParseAddr("fe80::1")
	if err := ka.SendCARP("carp0", src6, osif.GroupV6, 0xe0, advert(2)); err != nil {
		t.Fatal(err)
	}
	if p, ok := recvPacket(chb, 2*time.Second); !ok || !samePacket(p, osif.Packet{Payload: advert(2), Src: src6, Dst: osif.GroupV6, IfIndex: lb.Index, TTL: 255, IPv6: true}) {
		t.Fatalf("IPv6 advert at the peer: %+v ok=%v", p, ok)
	}
	f = sniff.next(2*time.Second, func(f []byte) bool { return len(f) >= 54 && f[12] == 0x86 && f[13] == 0xdd && f[20] == 112 })
	if f == nil {
		t.Fatal("no IPv6 advert on the parent")
	}
	if !bytes.Equal(f[0:6], []byte{0x33, 0x33, 0, 0, 0, 0x12}) || !bytes.Equal(f[6:12], mac0) {
		t.Errorf("IPv6 advert from %x to %x, want from %s to 33:33:00:00:00:12", f[6:12], f[0:6], mac0)
	}
	if tc := (binary.BigEndian.Uint32(f[14:]) >> 20) & 0xff; tc != 0xe0 || f[21] != 255 || binary.BigEndian.Uint16(f[18:]) != 36 || !bytes.Equal(f[54:90], advert(2)) {
		t.Errorf("IPv6 advert % x: want tclass e0, hop limit 255, payload length 36, the payload", f[14:90])
	}

	// Marker: the peer's advert reaches the sender on carp1 before any copy
	// of the sender's own.
	if err := kb.SendCARP("veth0", netip.MustParseAddr("192.0.2.2"), osif.GroupV4, 0xe0, advert(3)); err != nil {
		t.Fatal(err)
	}
	if p, ok := recvPacket(cha, 2*time.Second); !ok || !bytes.Equal(p.Payload, advert(3)) {
		t.Fatalf("the sender's first packet: %+v ok=%v, want the peer's advert 3", p, ok)
	}

	if err := kb.LeaveGroup("veth0"); err != nil {
		t.Fatal(err)
	}
	payload := advert(4)
	if n := testing.AllocsPerRun(50, func() {
		if err := ka.SendCARP("carp0", src4, osif.GroupV4, 0xe0, payload); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("%v allocations per advert, want 0", n)
	}
}

// TestLinuxSendFollowsLinkChanges: a macvlan set down or deleted behind
// carpd's back is seen by SendCARP (through the link watch) as it was when
// every advert went through the macvlan: no advert leaves from it.
func TestLinuxSendFollowsLinkChanges(t *testing.T) {
	requireRoot(t)
	a, _ := vethPair(t)
	ka := kernelIn(t, a)
	openCARP(t, ka)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := make(chan osif.LinkUpdate, 64)
	if err := ka.WatchLinks(ctx, ch); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			select {
			case <-ch:
			case <-ctx.Done():
				return
			}
		}
	}()
	for _, name := range []string{"carp0", "carp1"} {
		ipn(t, a, "link", "add", "link", "veth0", "name", name, "type", "macvlan", "mode", "bridge")
		ipn(t, a, "link", "set", name, "up")
	}
	src := netip.MustParseAddr("192.0.2.1")
	for _, name := range []string{"carp0", "carp1"} {
		if err := ka.SendCARP(name, src, osif.GroupV4, 0xe0, advert(1)); err != nil {
			t.Fatalf("SendCARP(%s): %v", name, err)
		}
	}
	ipn(t, a, "link", "set", "carp0", "down")
	waitFor(t, 3*time.Second, "SendCARP out of carp0, down, fails", func() bool {
		return ka.SendCARP("carp0", src, osif.GroupV4, 0xe0, advert(1)) != nil
	})
	ipn(t, a, "link", "del", "carp1")
	waitFor(t, 3*time.Second, "SendCARP out of carp1, deleted, fails with ErrNoLink", func() bool {
		return errors.Is(ka.SendCARP("carp1", src, osif.GroupV4, 0xe0, advert(1)), osif.ErrNoLink)
	})
}

// TestLinuxCARPBurst: adverts that queue up in the socket while the
// receiver is busy (more than one recvmmsg batch of each family) all arrive,
// in order, each with its own fields.
func TestLinuxCARPBurst(t *testing.T) {
	requireRoot(t)
	a, b := vethPair(t)
	ka, kb := kernelIn(t, a), kernelIn(t, b)
	openCARP(t, ka)
	chb := openCARP(t, kb)
	if err := kb.JoinGroup("veth0"); err != nil {
		t.Fatal(err)
	}
	lb, err := kb.LinkByName("veth0")
	if err != nil {
		t.Fatal(err)
	}
	src4, src6 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("fe80::1")
	const burst = 3 * readBatch
	var want4, want6 []osif.Packet
	for i := range burst {
		if err := ka.SendCARP("veth0", src4, osif.GroupV4, 0xe0, advert(byte(i+1))); err != nil {
			t.Fatal(err)
		}
		want4 = append(want4, osif.Packet{Payload: advert(byte(i + 1)), Src: src4, Dst: osif.GroupV4, IfIndex: lb.Index, TTL: 255})
		if err := ka.SendCARP("veth0", src6, osif.GroupV6, 0xe0, advert(byte(100+i))); err != nil {
			t.Fatal(err)
		}
		want6 = append(want6, osif.Packet{Payload: advert(byte(100 + i)), Src: src6, Dst: osif.GroupV6, IfIndex: lb.Index, TTL: 255, IPv6: true})
	}
	var got4, got6 []osif.Packet
	for len(got4)+len(got6) < 2*burst {
		p, ok := recvPacket(chb, 2*time.Second)
		if !ok {
			t.Fatalf("received %d IPv4 and %d IPv6 adverts of %d each", len(got4), len(got6), burst)
		}
		if p.IPv6 {
			got6 = append(got6, p)
		} else {
			got4 = append(got4, p)
		}
	}
	for _, c := range []struct {
		got, want []osif.Packet
	}{{got4, want4}, {got6, want6}} {
		if !slices.EqualFunc(c.got, c.want, samePacket) {
			t.Errorf("got %+v\nwant %+v", c.got, c.want)
		}
	}
	if p, ok := recvPacket(chb, 200*time.Millisecond); ok {
		t.Errorf("one more packet than sent: %+v", p)
	}
}

// TestLinuxDeleteLinks deletes carpd's macvlans in one request of their
// link group, and never a link of the group that is not among the names.
func TestLinuxDeleteLinks(t *testing.T) {
	requireRoot(t)
	a, _ := vethPair(t)
	ka := kernelIn(t, a)
	names := make([]string, 40)
	for i := range names {
		names[i] = fmt.Sprintf("carpv%d", i+1)
		if err := ka.CreateMACVLAN(names[i], "veth0", net.HardwareAddr{0, 0, 0x5e, 0, 1, byte(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	if out := ipn(t, a, "-d", "link", "show", "carpv1"); !strings.Contains(out, fmt.Sprintf("group %d", osif.LinkGroup)) {
		t.Fatalf("carpv1 is not in link group %d:\n%s", osif.LinkGroup, out)
	}
	count := func() int {
		ls, err := ka.Links()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, l := range ls {
			if strings.HasPrefix(l.Name, "carpv") || l.Name == "theirs0" {
				n++
			}
		}
		return n
	}

	// A link of someone else in the group: it stays, ours go one by one.
	ipn(t, a, "link", "add", "theirs0", "link", "veth0", "group", fmt.Sprint(osif.LinkGroup), "type", "macvlan")
	before := ka.dellinks.Load()
	if err := ka.DeleteLinks(names[:20]); err != nil {
		t.Fatalf("DeleteLinks with a foreign link in the group: %v", err)
	}
	if n := count(); n != 21 {
		t.Fatalf("%d links left, want 20 of ours and theirs0", n)
	}
	if d := ka.dellinks.Load() - before; d != 20 {
		t.Errorf("%d delete requests for 20 links with a foreign one in the group, want 20", d)
	}
	ipn(t, a, "link", "del", "theirs0")

	// Only ours in the group: one request; a missing name is an error
	// wrapping ErrNoLink, the others are still deleted.
	before = ka.dellinks.Load()
	if err := ka.DeleteLinks(append(names[20:], "carpv99")); !errors.Is(err, osif.ErrNoLink) {
		t.Fatalf("DeleteLinks(..., missing) = %v, want ErrNoLink", err)
	}
	if n := count(); n != 0 {
		t.Fatalf("%d links left after deleting the group", n)
	}
	// One for the group of 20; the missing name is not found to delete.
	if d := ka.dellinks.Load() - before; d != 1 {
		t.Errorf("%d delete requests for a group of 20 and a missing link, want 1", d)
	}
	if err := ka.DeleteLinks(nil); err != nil {
		t.Fatal(err)
	}
}

// TestAddrsOfOneLinkMatchTheWholeDump: the per-link address dump the kernel
// filters (addrsOf) gives each link exactly what the whole dump gives it,
// for plain, point-to-point and IPv6 addresses and for a link without any.
func TestAddrsOfOneLinkMatchTheWholeDump(t *testing.T) {
	requireRoot(t)
	a, _ := vethPair(t)
	ka := kernelIn(t, a)
	ipn(t, a, "link", "add", "d0", "type", "veth", "peer", "name", "d1")
	ipn(t, a, "link", "set", "d0", "up")
	ipn(t, a, "addr", "add", "192.0.2.1/24", "dev", "d0")
	ipn(t, a, "addr", "add", "192.0.2.9/32", "dev", "d0")
	ipn(t, a, "addr", "add", "198.51.100.1", "peer", "198.51.100.2/32", "dev", "d0")
	ipn(t, a, "addr", "add", "2001:db8::1/64", "dev", "d0", "nodad")
	ipn(t, a, "addr", "add", "10.9.9.9/8", "dev", "veth0")
	all, err := ka.addrsByIndex(0)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := ka.Links()
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, l := range ls {
		one, err := ka.addrsByIndex(l.Index)
		if err != nil {
			t.Fatalf("%s: %v", l.Name, err)
		}
		if len(one) > 1 || !slices.Equal(one[l.Index], all[l.Index]) {
			t.Errorf("%s: filtered dump %v, whole dump %v", l.Name, one, all[l.Index])
		}
		seen += len(one[l.Index])
	}
	if seen < 5 {
		t.Errorf("only %d addresses seen: %v", seen, all)
	}
	// The kernel filters: the dump of a link without addresses is empty.
	d1, err := ka.LinkByName("d1")
	if err != nil {
		t.Fatal(err)
	}
	before := ka.addrMsgs.Load()
	if got, err := ka.addrsByIndex(d1.Index); err != nil || len(got) != 0 {
		t.Fatalf("d1: %v, %v", got, err)
	}
	if n := ka.addrMsgs.Load() - before; n != 0 {
		t.Errorf("the dump for d1 carried %d addresses of other links: the kernel did not filter it", n)
	}
	d0, err := ka.LinkByName("d0")
	if err != nil || !slices.Contains(d0.Addrs, netip.MustParsePrefix("198.51.100.1/32")) || !slices.Contains(d0.Addrs, netip.MustParsePrefix("192.0.2.1/24")) {
		t.Errorf("d0: %v, %v", d0.Addrs, err)
	}
}

// macvlanBCCutoff reads IFLA_MACVLAN_BC_CUTOFF of the link of index in
// namespace ns from the kernel; ok is false when the kernel reports none.
func macvlanBCCutoff(t *testing.T, ns string, index int) (v int32, ok bool) {
	t.Helper()
	var rib []byte
	if err := doIn(ns, func() (err error) { rib, err = syscall.NetlinkRIB(syscall.RTM_GETLINK, syscall.AF_UNSPEC); return }); err != nil {
		t.Fatal(err)
	}
	msgs, err := syscall.ParseNetlinkMessage(rib)
	if err != nil {
		t.Fatal(err)
	}
	// nested walks the attributes in b, calling f with each type and value.
	nested := func(b []byte, f func(typ uint16, val []byte)) {
		for len(b) >= 4 {
			n := int(binary.NativeEndian.Uint16(b[0:2]))
			if n < 4 || n > len(b) {
				return
			}
			f(binary.NativeEndian.Uint16(b[2:4])&^(1<<15), b[4:n])
			b = b[min((n+3)&^3, len(b)):]
		}
	}
	for i := range msgs {
		m := &msgs[i]
		if m.Header.Type != syscall.RTM_NEWLINK || len(m.Data) < syscall.SizeofIfInfomsg ||
			int(int32(binary.NativeEndian.Uint32(m.Data[4:8]))) != index {
			continue
		}
		nested(m.Data[syscall.SizeofIfInfomsg:], func(typ uint16, val []byte) {
			if typ != unix.IFLA_LINKINFO {
				return
			}
			nested(val, func(typ uint16, val []byte) {
				if typ != unix.IFLA_INFO_DATA {
					return
				}
				nested(val, func(typ uint16, val []byte) {
					if typ == unix.IFLA_MACVLAN_BC_CUTOFF && len(val) >= 4 {
						v, ok = int32(binary.NativeEndian.Uint32(val)), true
					}
				})
			})
		})
	}
	return v, ok
}

// TestLinuxMACVLANSkipsTheBroadcastQueue: carpd's macvlans take multicast
// (CARP adverts) in the receive path, not through the parent's broadcast
// work queue (bc_cutoff -1).
func TestLinuxMACVLANSkipsTheBroadcastQueue(t *testing.T) {
	requireRoot(t)
	a, _ := vethPair(t)
	ka := kernelIn(t, a)
	if err := ka.CreateMACVLAN("carp0", "veth0", net.HardwareAddr{0, 0, 0x5e, 0, 1, 1}); err != nil {
		t.Fatal(err)
	}
	l, err := ka.LinkByName("carp0")
	if err != nil {
		t.Fatal(err)
	}
	v, ok := macvlanBCCutoff(t, a, l.Index)
	if !ok {
		t.Fatal("the kernel reports no IFLA_MACVLAN_BC_CUTOFF for carp0 (Linux 6.2 or later has it)")
	}
	if v != -1 {
		t.Errorf("bc_cutoff of carp0 = %d, want -1", v)
	}
	// A macvlan made without carpd on another parent keeps the default (1,
	// which the kernel does not report).
	ipn(t, a, "link", "add", "d0", "type", "veth", "peer", "name", "d1")
	ipn(t, a, "link", "add", "m0", "link", "d0", "type", "macvlan", "mode", "bridge")
	m0, err := ka.LinkByName("m0")
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := macvlanBCCutoff(t, a, m0.Index); ok && v != 1 {
		t.Errorf("bc_cutoff of a macvlan of ip(8) = %d, want the default 1", v)
	}
}

// TestLinuxCARPKeepsABurstOfEveryVHID: the adverts of 1,100 vhids sent back
// to back while carpd's engine is busy all wait in the socket's queue (the
// default receive buffer held about 270: the tail of every burst, the same
// vhids each time, was dropped).
func TestLinuxCARPKeepsABurstOfEveryVHID(t *testing.T) {
	requireRoot(t)
	a, b := vethPair(t)
	ka, kb := kernelIn(t, a), kernelIn(t, b)
	openCARP(t, ka)
	chb := openCARP(t, kb) // 16 slots, not read until the burst is sent
	if err := kb.JoinGroup("veth0"); err != nil {
		t.Fatal(err)
	}
	src := netip.MustParseAddr("192.0.2.1")
	const burst = 1100
	for i := range burst {
		if err := ka.SendCARP("veth0", src, osif.GroupV4, 0xe0, advert(byte(i))); err != nil {
			t.Fatal(err)
		}
	}
	got := 0
	for {
		if _, ok := recvPacket(chb, 500*time.Millisecond); !ok {
			break
		}
		got++
	}
	if got != burst {
		t.Errorf("received %d of a burst of %d adverts", got, burst)
	}
	// The sending socket hears the group too, but its filter drops
	// everything before it is queued.
	kb.mu.Lock()
	c4 := kb.c4
	kb.mu.Unlock()
	rc, err := c4.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	queued, qerr := -1, error(nil)
	if err := rc.Control(func(fd uintptr) { queued, qerr = unix.IoctlGetInt(int(fd), unix.SIOCINQ) }); err != nil || qerr != nil {
		t.Fatal(err, qerr)
	}
	if queued != 0 {
		t.Errorf("the sending socket has %d bytes queued, want 0 (its drop filter)", queued)
	}
}
