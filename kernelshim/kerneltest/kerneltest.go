// Package kerneltest is the contract every kernel the CARP engine runs on
// must keep: one set of cases, run against the in-memory kernel (from
// package memkernel's tests) and against the Linux adapter in a fresh
// network namespace (from package kernelshim's tests), so that the two
// cannot drift apart. The contract is written in carp/engine's kernel.go.
package kerneltest

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"net/netip"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/bsdcarp/bsdcarp/carp/engine"
	"github.com/bsdcarp/bsdcarp/carp/osif"
)

// Kernel is what the cases call on the kernel under test: the engine's own
// declaration of what it needs of the OS (carp/engine/kernel.go), so that
// the contract checked here is the one the engine uses.
type Kernel = engine.Kernel

// Fixture is one fresh kernel under test and what a case needs around it.
type Fixture struct {
	// Kernel is the kernel under test, with no link but Parent (and, on
	// Linux, lo and Parent's peer).
	Kernel Kernel
	// Parent names an Ethernet link of Kernel, admin up with carrier, MTU
	// 1500, IPv4 enabled, that macvlans can be created on.
	Parent string
	// AddMACVLAN creates a macvlan `name` on Parent with MAC mac and alias
	// alias ("" for none) behind the kernel's back, as a crashed engine
	// or an administrator leaves one.
	AddMACVLAN func(t *testing.T, name string, mac net.HardwareAddr, alias string)
	// Peer attaches a second kernel to Parent's segment (packets.go);
	// only the cases that need it call it.
	Peer func(t *testing.T) Peer
	// Addr reads p on link as the kernel holds it, behind the kernel
	// under test's back: the link's index, the remaining valid lifetime
	// (0 for a permanent address) and the flags; false when p is not on
	// link.
	Addr func(t *testing.T, link string, p netip.Prefix) (osif.AddrLifetime, bool)
}

var (
	vmac   = net.HardwareAddr{0, 0, 0x5e, 0, 1, 1}
	other  = net.HardwareAddr{2, 0, 0, 0, 0, 0x42}
	other2 = net.HardwareAddr{2, 0, 0, 0, 0, 0x43}
	other3 = net.HardwareAddr{2, 0, 0, 0, 0, 0x44}
)

// Run runs every case of the contract, each as a subtest on a fixture of
// its own from setup.
func Run(t *testing.T, setup func(t *testing.T) Fixture) {
	cases := []struct {
		name string
		run  func(t *testing.T, f Fixture)
	}{
		{"LinkByNameMissing", linkByNameMissing},
		{"CreateMACVLAN", createMACVLAN},
		{"CreateOverOwnLeftover", createOverOwnLeftover},
		{"CreateRefusesForeignLink", createRefusesForeign},
		{"CreateMissingParent", createMissingParent},
		{"CreateRefusesDuplicateMAC", createRefusesDuplicateMAC},
		{"DeleteLink", deleteLink},
		{"SetMTU", setMTU},
		{"SetLinkUp", setLinkUp},
		{"Addresses", addresses},
		{"RefreshAddrs", refreshAddrs},
		{"SetSysctl", setSysctl},
		{"WatchLinks", watchLinks},
	}
	cases = append(cases, packetCases...)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, setup(t)) })
	}
}

func wantNoLink(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, osif.ErrNoLink) {
		t.Errorf("%s: err = %v, want one wrapping ErrNoLink", what, err)
	}
}

func mustLink(t *testing.T, k Kernel, name string) osif.Link {
	t.Helper()
	l, err := k.LinkByName(name)
	if err != nil {
		t.Fatalf("LinkByName(%s): %v", name, err)
	}
	return l
}

func create(t *testing.T, f Fixture, name string) osif.Link {
	t.Helper()
	if err := f.Kernel.CreateMACVLAN(name, f.Parent, vmac); err != nil {
		t.Fatalf("CreateMACVLAN(%s, %s, %s): %v", name, f.Parent, vmac, err)
	}
	return mustLink(t, f.Kernel, name)
}

func linkByNameMissing(t *testing.T, f Fixture) {
	_, err := f.Kernel.LinkByName("nope0")
	wantNoLink(t, "LinkByName(nope0)", err)
}

func createMACVLAN(t *testing.T, f Fixture) {
	parent := mustLink(t, f.Kernel, f.Parent)
	l := create(t, f, "carp0")
	if l.Kind != "macvlan" || l.Alias != osif.OwnerAlias || !l.AdminUp || l.MAC.String() != vmac.String() ||
		l.ParentIndex != parent.Index || l.MTU != parent.MTU {
		t.Errorf("carp0 = %+v; want a macvlan on %s (index %d, MTU %d), alias %q, up, MAC %s",
			l, f.Parent, parent.Index, parent.MTU, osif.OwnerAlias, vmac)
	}
	for _, p := range l.Addrs {
		if p.Addr().IsLinkLocalUnicast() {
			t.Errorf("carp0 has the link-local address %s (addr_gen_mode none was not set)", p)
		}
	}
	links, err := f.Kernel.Links()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(links, func(x osif.Link) bool { return x.Name == "carp0" && x.Index == l.Index }) {
		t.Errorf("Links() lacks carp0: %+v", links)
	}
}

func createOverOwnLeftover(t *testing.T, f Fixture) {
	// A leftover with our alias, and one without alias but with exactly
	// the virtual MAC asked for (a crash between creation and alias).
	for _, c := range []struct {
		mac   net.HardwareAddr
		alias string
	}{{other, osif.OwnerAlias}, {vmac, ""}} {
		f.AddMACVLAN(t, "carp0", c.mac, c.alias)
		l := create(t, f, "carp0")
		if l.Alias != osif.OwnerAlias || l.MAC.String() != vmac.String() || !l.AdminUp {
			t.Errorf("over a leftover (MAC %s, alias %q): carp0 = %+v", c.mac, c.alias, l)
		}
		if err := f.Kernel.DeleteLink("carp0"); err != nil {
			t.Fatal(err)
		}
	}
	// Creating twice: the second replaces the first.
	create(t, f, "carp0")
	create(t, f, "carp0")
}

func createRefusesForeign(t *testing.T, f Fixture) {
	for _, c := range []struct {
		name  string
		mac   net.HardwareAddr
		alias string
	}{{"carp0", other, "uplink"}, {"carp1", other2, ""}, {"carp2", other3, "uplink"}} {
		f.AddMACVLAN(t, c.name, c.mac, c.alias)
		if err := f.Kernel.CreateMACVLAN(c.name, f.Parent, vmac); err == nil {
			t.Errorf("CreateMACVLAN over a foreign %s (MAC %s, alias %q) succeeded", c.name, c.mac, c.alias)
		}
		if l := mustLink(t, f.Kernel, c.name); l.MAC.String() != c.mac.String() || l.Alias != c.alias {
			t.Errorf("the foreign %s was changed: %+v", c.name, l)
		}
	}
	// The parent itself is a link of that name, and not ours.
	if err := f.Kernel.CreateMACVLAN(f.Parent, f.Parent, vmac); err == nil {
		t.Errorf("CreateMACVLAN(%s) over the parent succeeded", f.Parent)
	}
}

func createMissingParent(t *testing.T, f Fixture) {
	err := f.Kernel.CreateMACVLAN("carp0", "nope0", vmac)
	wantNoLink(t, "CreateMACVLAN on a missing parent", err)
	_, err = f.Kernel.LinkByName("carp0")
	wantNoLink(t, "carp0 after a failed creation", err)
}

func createRefusesDuplicateMAC(t *testing.T, f Fixture) {
	create(t, f, "carp0")
	err := f.Kernel.CreateMACVLAN("carp1", f.Parent, vmac)
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("a second macvlan with MAC %s on %s: err = %v, want one wrapping EADDRINUSE", vmac, f.Parent, err)
	}
	_, err = f.Kernel.LinkByName("carp1")
	wantNoLink(t, "carp1 after a refused creation", err)
}

func deleteLink(t *testing.T, f Fixture) {
	wantNoLink(t, "DeleteLink(nope0)", f.Kernel.DeleteLink("nope0"))
	create(t, f, "carp0")
	if err := f.Kernel.DeleteLink("carp0"); err != nil {
		t.Fatalf("DeleteLink(carp0): %v", err)
	}
	_, err := f.Kernel.LinkByName("carp0")
	wantNoLink(t, "carp0 after DeleteLink", err)
	wantNoLink(t, "DeleteLink(carp0) again", f.Kernel.DeleteLink("carp0"))
}

func setMTU(t *testing.T, f Fixture) {
	k := f.Kernel
	create(t, f, "carp0")
	if err := k.SetMTU("carp0", 1400); err != nil {
		t.Fatalf("SetMTU(carp0, 1400): %v", err)
	}
	if l := mustLink(t, k, "carp0"); l.MTU != 1400 {
		t.Errorf("carp0 MTU = %d after SetMTU 1400", l.MTU)
	}
	if err := k.SetMTU(f.Parent, 9000); err != nil {
		t.Fatalf("SetMTU(%s, 9000): %v", f.Parent, err)
	}
	if l := mustLink(t, k, f.Parent); l.MTU != 9000 {
		t.Errorf("%s MTU = %d after SetMTU 9000", f.Parent, l.MTU)
	}
	if err := k.SetMTU(f.Parent, 1500); err != nil {
		t.Fatalf("SetMTU(%s, 1500): %v", f.Parent, err)
	}
	// Below the Ethernet minimum, above the Ethernet maximum, and a
	// macvlan above its parent's MTU.
	for _, c := range []struct {
		link string
		mtu  int
	}{{"carp0", 67}, {f.Parent, 67}, {f.Parent, 65536}, {"carp0", 1501}} {
		if err := k.SetMTU(c.link, c.mtu); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("SetMTU(%s, %d): err = %v, want one wrapping EINVAL", c.link, c.mtu, err)
		}
	}
	if l := mustLink(t, k, "carp0"); l.MTU != 1400 {
		t.Errorf("carp0 MTU = %d after refusals, want 1400", l.MTU)
	}
	wantNoLink(t, "SetMTU(nope0)", k.SetMTU("nope0", 1400))
}

func setLinkUp(t *testing.T, f Fixture) {
	k := f.Kernel
	create(t, f, "carp0")
	for _, up := range []bool{false, true, false} {
		if err := k.SetLinkUp("carp0", up); err != nil {
			t.Fatalf("SetLinkUp(carp0, %v): %v", up, err)
		}
		if l := mustLink(t, k, "carp0"); l.AdminUp != up {
			t.Errorf("carp0 AdminUp = %v after SetLinkUp %v", l.AdminUp, up)
		}
	}
	wantNoLink(t, "SetLinkUp(nope0)", k.SetLinkUp("nope0", true))
}

func count(l osif.Link, p netip.Prefix) int {
	n := 0
	for _, a := range l.Addrs {
		if a == p {
			n++
		}
	}
	return n
}

func addresses(t *testing.T, f Fixture) {
	k := f.Kernel
	create(t, f, "carp0")
	v4 := netip.MustParsePrefix("192.0.2.10/24")
	v6 := netip.MustParsePrefix("2001:db8::10/64")
	for _, p := range []netip.Prefix{v4, v6} {
		for range 2 {
			if _, err := k.ReplaceAddr("carp0", p, 30*time.Second); err != nil {
				t.Fatalf("ReplaceAddr(carp0, %s): %v", p, err)
			}
		}
	}
	if _, err := k.ReplaceAddr("carp0", v4, 0); err != nil { // now permanent
		t.Fatalf("ReplaceAddr(carp0, %s, permanent): %v", v4, err)
	}
	l := mustLink(t, k, "carp0")
	if count(l, v4) != 1 || count(l, v6) != 1 {
		t.Errorf("after ReplaceAddr three times and twice: carp0 addresses %v, want %s and %s once each", l.Addrs, v4, v6)
	}
	if err := k.DelAddr("carp0", v4); err != nil {
		t.Fatalf("DelAddr(carp0, %s): %v", v4, err)
	}
	if l := mustLink(t, k, "carp0"); count(l, v4) != 0 || count(l, v6) != 1 {
		t.Errorf("after DelAddr %s: carp0 addresses %v", v4, l.Addrs)
	}
	if err := k.DelAddr("carp0", v4); err != nil {
		t.Errorf("DelAddr of a missing address: %v, want nil", err)
	}
	if err := k.DelAddr("carp0", netip.MustParsePrefix("198.51.100.1/24")); err != nil {
		t.Errorf("DelAddr of an address never there: %v, want nil", err)
	}
	wantNoLink(t, "DelAddr(nope0)", k.DelAddr("nope0", v4))
	_, err := k.ReplaceAddr("nope0", v4, time.Second)
	wantNoLink(t, "ReplaceAddr(nope0)", err)
}

// refreshAddrs: ReplaceAddr returns the address as installed (index,
// flags); RefreshAddrs writes a batch of them again with new lifetimes, adds
// back one deleted behind its back, and reports an entry whose link is gone
// (ErrNoLink) while refreshing the others.
func refreshAddrs(t *testing.T, f Fixture) {
	k := f.Kernel
	carp0 := create(t, f, "carp0")
	// The parent routes 192.0.2.0/24 itself: an address of that subnet on
	// the macvlan gets no prefix route of its own.
	if _, err := k.ReplaceAddr(f.Parent, netip.MustParsePrefix("192.0.2.1/24"), 0); err != nil {
		t.Fatalf("ReplaceAddr(%s, 192.0.2.1/24, permanent): %v", f.Parent, err)
	}
	addrs := []struct {
		p     netip.Prefix
		flags uint32
	}{
		{netip.MustParsePrefix("192.0.2.10/24"), osif.AddrNoPrefixRoute},
		{netip.MustParsePrefix("198.51.100.10/24"), 0},
		{netip.MustParsePrefix("2001:db8::10/64"), osif.AddrNoDAD},
	}
	const flagMask = osif.AddrNoDAD | osif.AddrNoPrefixRoute
	var batch []osif.AddrLifetime
	for _, a := range addrs {
		got, err := k.ReplaceAddr("carp0", a.p, 30*time.Second)
		if err != nil {
			t.Fatalf("ReplaceAddr(carp0, %s): %v", a.p, err)
		}
		want := osif.AddrLifetime{Index: carp0.Index, Prefix: a.p, Lifetime: 30 * time.Second, Flags: a.flags}
		if got != want {
			t.Errorf("ReplaceAddr(carp0, %s) = %+v, want %+v", a.p, got, want)
		}
		got.Lifetime = time.Hour
		batch = append(batch, got)
	}
	// lifetime checks that the kernel holds p on carp0 with the installed
	// flags and a remaining lifetime in (lo, hi].
	lifetime := func(when string, p netip.Prefix, flags uint32, lo, hi time.Duration) {
		t.Helper()
		got, ok := f.Addr(t, "carp0", p)
		switch {
		case !ok:
			t.Errorf("%s: %s is not on carp0", when, p)
		case got.Index != carp0.Index || got.Flags&flagMask != flags || got.Lifetime <= lo || got.Lifetime > hi:
			t.Errorf("%s: %s on carp0 = %+v, want index %d, flags %#x, lifetime in (%v, %v]", when, p, got, carp0.Index, flags, lo, hi)
		}
	}
	if err := k.RefreshAddrs(batch); err != nil {
		t.Fatalf("RefreshAddrs(%+v): %v", batch, err)
	}
	for _, a := range addrs {
		lifetime("refreshed for an hour", a.p, a.flags, 50*time.Minute, time.Hour)
	}
	// Deleted behind the refresh's back: added again.
	if err := k.DelAddr("carp0", addrs[1].p); err != nil {
		t.Fatal(err)
	}
	for i := range batch {
		batch[i].Lifetime = 20 * time.Second
	}
	if err := k.RefreshAddrs(batch); err != nil {
		t.Fatalf("RefreshAddrs after a deletion: %v", err)
	}
	for _, a := range addrs {
		lifetime("refreshed for 20 s", a.p, a.flags, 10*time.Second, 20*time.Second)
	}
	if l := mustLink(t, k, "carp0"); count(l, addrs[1].p) != 1 {
		t.Errorf("%s not added again by the refresh: carp0 addresses %v", addrs[1].p, l.Addrs)
	}
	// An entry whose link is gone fails alone.
	if err := k.CreateMACVLAN("carp1", f.Parent, other); err != nil {
		t.Fatal(err)
	}
	gone, err := k.ReplaceAddr("carp1", netip.MustParsePrefix("203.0.113.10/24"), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.DeleteLink("carp1"); err != nil {
		t.Fatal(err)
	}
	gone.Lifetime = 40 * time.Second
	mixed := []osif.AddrLifetime{batch[0], gone, batch[2]}
	mixed[0].Lifetime, mixed[2].Lifetime = 40*time.Second, 40*time.Second
	err = k.RefreshAddrs(mixed)
	wantNoLink(t, "RefreshAddrs with an entry on a deleted link", err)
	var ae *osif.AddrError
	if !errors.As(err, &ae) || ae.Entry != 1 || ae.Addr != gone {
		t.Errorf("RefreshAddrs with entry 1 on a deleted link: err = %v, want a *osif.AddrError for entry 1 (%+v)", err, gone)
	}
	for _, i := range []int{0, 2} {
		lifetime("refreshed for 40 s next to a failing entry", addrs[i].p, addrs[i].flags, 30*time.Second, 40*time.Second)
	}
	lifetime("not in the failing batch", addrs[1].p, addrs[1].flags, 0, 20*time.Second)
	if err := k.RefreshAddrs(nil); err != nil {
		t.Errorf("RefreshAddrs(nil): %v", err)
	}
}

func setSysctl(t *testing.T, f Fixture) {
	path := "net/ipv4/conf/" + f.Parent + "/arp_ignore"
	first, err := f.Kernel.SetSysctl(path, "1")
	if err != nil {
		t.Fatalf("SetSysctl(%s, 1): %v", path, err)
	}
	if first != "0" {
		t.Errorf("SetSysctl(%s, 1) returned %q, want the default 0", path, first)
	}
	for _, c := range []struct{ set, old string }{{"2\n", "1"}, {"0", "2"}} {
		old, err := f.Kernel.SetSysctl(path, c.set)
		if err != nil || old != c.old {
			t.Errorf("SetSysctl(%s, %q) = %q, %v; want %q", path, c.set, old, err, c.old)
		}
	}
	for _, bad := range []string{"net/ipv4/conf/nope0/arp_ignore", "net/ipv6/conf/nope0/disable_ipv6"} {
		if _, err := f.Kernel.SetSysctl(bad, "1"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("SetSysctl(%s) of a missing link: err = %v, want one wrapping fs.ErrNotExist", bad, err)
		}
	}
	if _, err := f.Kernel.SetSysctl("net/ipv4/../../etc/passwd", "1"); err == nil {
		t.Error("SetSysctl of a path with .. succeeded")
	}
}

func watchLinks(t *testing.T, f Fixture) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := make(chan osif.LinkUpdate, 64)
	if err := f.Kernel.WatchLinks(ctx, ch); err != nil {
		t.Fatalf("WatchLinks: %v", err)
	}
	await := func(what string, match func(osif.LinkUpdate) bool) {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for {
			select {
			case u := <-ch:
				if match(u) {
					return
				}
			case <-deadline:
				t.Fatalf("no update for %s within 5s", what)
			}
		}
	}
	l := create(t, f, "carp0")
	await("the created carp0", func(u osif.LinkUpdate) bool {
		return !u.Deleted && u.Link.Name == "carp0" && u.Link.Index == l.Index && u.Link.Kind == "macvlan"
	})
	if err := f.Kernel.DeleteLink("carp0"); err != nil {
		t.Fatal(err)
	}
	await("the deleted carp0", func(u osif.LinkUpdate) bool {
		return u.Deleted && u.Link.Name == "carp0" && u.Link.Index == l.Index
	})
}
