package engine

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"testing"

	"github.com/bsdcarp/bsdcarp/carp/api"
)

// plainHostIndex is indexHosts written the plain way (a map insert and an
// append per vhost), for TestIndexHostsMatchesPlainBuild.
func plainHostIndex(hosts []*vhost) (hostIndex, int) {
	x := hostIndex{
		byVHID:  map[uint8][]*vhost{},
		devs:    map[string]int{},
		vlinks:  map[string][]*vhost{},
		virtual: map[netip.Addr][]*vhost{},
		ifaces:  map[string]hostSpan{},
		guests:  map[string][]*vhost{},
	}
	nInit := 0
	for i, h := range hosts {
		x.byVHID[h.cfg.VHID] = append(x.byVHID[h.cfg.VHID], h)
		if x.devs[h.carpdev]++; h.carpdev != "" && x.devs[h.carpdev] == 1 {
			x.parents = append(x.parents, h.carpdev)
		}
		if h.carpdev != "" && h.carpdev != h.iface {
			x.guests[h.carpdev] = append(x.guests[h.carpdev], h)
		}
		if h.why != initNone {
			nInit++
		}
		if i == 0 || h.iface != hosts[i-1].iface {
			span := hostSpan{lo: i}
			if _, again := x.ifaces[h.iface]; again {
				span.n = -1 - len(hosts)
			}
			x.ifaces[h.iface] = span
		}
		span := x.ifaces[h.iface]
		span.n++
		x.ifaces[h.iface] = span
		x.vlinks[h.vlink] = append(x.vlinks[h.vlink], h)
		for _, p := range h.cfg.Addrs {
			if hs := x.virtual[p.Addr()]; len(hs) == 0 || hs[len(hs)-1] != h {
				x.virtual[p.Addr()] = append(hs, h)
			}
		}
	}
	return x, nInit
}

// indexHosts (which cuts its lists from shared arrays) builds what the plain
// build does, after lines that add, change and remove vhids, share an
// address between vhids, and run a clone on a parent (a guest); and an
// append to one of its lists leaves every other list as it was.
func TestIndexHostsMatchesPlainBuild(t *testing.T) {
	e, _ := scaleEngine(t, 2, 8)
	addr := func(s string) []api.Op {
		return []api.Op{{Kind: api.OpAddr, Prefix: netip.MustParsePrefix(s), Alias: true}}
	}
	lines := []api.IfconfigRequest{
		scaleLine(0, 3, 50),
		scaleLine(1, 9, 0), // a new vhid
		{Iface: "em0", Ops: append([]api.Op{{Kind: api.OpVHID, Int: 4}}, addr("10.0.4.2/32")...)},
		{Iface: "em1", Ops: append([]api.Op{{Kind: api.OpVHID, Int: 4}}, addr("10.0.4.2/32")...)}, // the same address on another vhid
		{Iface: "carp0", Ops: []api.Op{{Kind: api.OpCreate}, {Kind: api.OpVHID, Int: 30}, {Kind: api.OpCarpdev, Str: "em0"},
			{Kind: api.OpAddr, Prefix: netip.MustParsePrefix("10.0.30.1/32")}}},
		{Iface: "carp1", Ops: []api.Op{{Kind: api.OpCreate}, {Kind: api.OpVHID, Int: 31}}}, // no carpdev yet
		{Iface: "em0", Ops: []api.Op{{Kind: api.OpDelAddr, Prefix: netip.MustParsePrefix("10.0.5.1/32")}}},
	}
	for i, l := range lines {
		if err := e.Ifconfig(context.Background(), l); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		// On the engine goroutine only the work; the verdict is given
		// here (a t.Fatal there would end the engine's loop).
		var problem string
		onEngine(t, e, func() { problem = checkIndexBuild(e) })
		if problem != "" {
			t.Fatalf("line %d: %s", i, problem)
		}
	}
	if got := len(e.hosts); got < 17 {
		t.Fatalf("%d vhosts, want the lines' 17 or more", got)
	}
}

// checkIndexBuild rebuilds e's index and returns what differs from the plain
// build, or what an append to one list changed in another ("" for nothing).
func checkIndexBuild(e *Engine) string {
	e.indexHosts()
	want, nInit := plainHostIndex(e.hosts)
	got := e.hostIdx
	if !maps.EqualFunc(got.byVHID, want.byVHID, slices.Equal) || !maps.Equal(got.devs, want.devs) ||
		!maps.EqualFunc(got.vlinks, want.vlinks, slices.Equal) || !maps.EqualFunc(got.virtual, want.virtual, slices.Equal) ||
		!slices.Equal(got.parents, want.parents) || !maps.Equal(got.ifaces, want.ifaces) ||
		!maps.EqualFunc(got.guests, want.guests, slices.Equal) || e.nInit != nInit {
		return fmt.Sprintf("index %+v (nInit %d), plain build %+v (%d)", got, e.nInit, want, nInit)
	}
	for k := range got.vlinks {
		_ = append(got.vlinks[k], nil)
		if !maps.EqualFunc(got.vlinks, want.vlinks, slices.Equal) {
			return fmt.Sprintf("an append to %s's list changed another", k)
		}
	}
	for v := range got.byVHID {
		_ = append(got.byVHID[v], nil)
		if !maps.EqualFunc(got.byVHID, want.byVHID, slices.Equal) {
			return fmt.Sprintf("an append to vhid %d's list changed another", v)
		}
	}
	for a := range got.virtual {
		_ = append(got.virtual[a], nil)
		if !maps.EqualFunc(got.virtual, want.virtual, slices.Equal) {
			return fmt.Sprintf("an append to %s's list changed another", a)
		}
	}
	return ""
}
