package engine

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/bsdcarp/bsdcarp/carp"
	"github.com/bsdcarp/bsdcarp/carp/api"
	"github.com/bsdcarp/bsdcarp/carp/osif"
	"github.com/bsdcarp/bsdcarp/kernelshim/memkernel"
)

// The engine's per-packet, per-event and per-line costs at scale: vhids
// 1..perParent on each of parents em0..em<parents-1> (dialect C, `ifconfig
// emP vhid N advskew 100 pass pN alias 10.P.N.1/32`), on a Memory kernel with
// the real clock.

// scaleEngine starts an engine with the vhids configured; it stops with tb.
func scaleEngine(tb testing.TB, parents, perParent int) (*Engine, *memkernel.Memory) {
	tb.Helper()
	return scaleEngineIn(tb, "", parents, perParent)
}

// scaleEngineIn is scaleEngine saving its configuration in stateDir ("":
// not saved).
func scaleEngineIn(tb testing.TB, stateDir string, parents, perParent int) (*Engine, *memkernel.Memory) {
	tb.Helper()
	k := memkernel.NewMemory()
	k.Clock = time.Now
	for p := range parents {
		k.AddLink(osif.Link{Name: fmt.Sprintf("em%d", p), MAC: net.HardwareAddr{2, 0, 0, 0, 1, byte(p)}, MTU: 1500,
			AdminUp: true, Carrier: true, Running: true, Broadcast: true, Multicast: true, Kind: "veth",
			Addrs: []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(p), 0, 1}), 16)}}, memkernel.NewSegment())
	}
	if _, bench := tb.(*testing.B); bench && checkSchedule {
		// A benchmark measures the engine without the self-check's scans.
		// Cleanups run last-registered first: this one after Run ended.
		checkSchedule = false
		tb.Cleanup(func() { checkSchedule = true })
	}
	e, err := New(Options{Kernel: k, StateDir: stateDir})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("Run: %v", err)
		}
	})
	<-e.Ready()
	for p := range parents {
		for v := 1; v <= perParent; v++ {
			if err := e.Ifconfig(ctx, scaleLine(p, v, 100)); err != nil {
				tb.Fatal(err)
			}
		}
	}
	return e, k
}

// scaleLine is `ifconfig emP vhid v advskew skew pass pV alias 10.P.v.1/32`.
func scaleLine(p, v, skew int) api.IfconfigRequest {
	return api.IfconfigRequest{Iface: fmt.Sprintf("em%d", p), Ops: []api.Op{
		{Kind: api.OpVHID, Int: v}, {Kind: api.OpAdvSkew, Int: skew}, {Kind: api.OpPass, Str: fmt.Sprintf("p%d", v)},
		{Kind: api.OpAddr, Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(p), byte(v), 1}), 32), Alias: true}}}
}

// onEngine runs f on the engine goroutine, with the scheduler's self-check
// off (it scans every vhost, which is what the benchmarks measure the
// absence of).
func onEngine(tb testing.TB, e *Engine, f func()) {
	tb.Helper()
	err := e.call(context.Background(), func() {
		was := checkSchedule
		checkSchedule = false
		defer func() { checkSchedule = was }()
		f()
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// peerAdverts are authentic adverts of a better peer (advskew 0) for every
// vhid of em0, as they arrive on em0.
func peerAdverts(tb testing.TB, e *Engine, k *memkernel.Memory, perParent int, counter uint64) []osif.Packet {
	tb.Helper()
	em0, err := k.LinkByName("em0")
	if err != nil {
		tb.Fatal(err)
	}
	out := make([]osif.Packet, 0, perParent)
	for v := 1; v <= perParent; v++ {
		vip := netip.AddrFrom4([4]byte{10, 0, byte(v), 1})
		payload := carp.BuildAdvert(uint8(v), 1, 0, counter, carp.Key(fmt.Sprintf("p%d", v)), []netip.Addr{vip})
		out = append(out, osif.Packet{Payload: payload, Src: netip.MustParseAddr("10.0.0.2"), Dst: carp.GroupV4,
			IfIndex: em0.Index, TTL: carp.TTL})
	}
	return out
}

// TestInputFindsEachVHIDAmongMany: with 255 vhids on em0 and 255 on em1, a
// peer's authentic advert for each vhid of em0 is taken by that vhid, and
// one arriving through our own macvlan is not counted at all.
func TestInputFindsEachVHIDAmongMany(t *testing.T) {
	e, k := scaleEngine(t, 2, 255)
	pkts := peerAdverts(t, e, k, 255, 1<<40)
	vl, err := k.LinkByName("carpv1.7")
	if err != nil {
		t.Fatal(err)
	}
	onEngine(t, e, func() {
		before := e.stats
		now := e.opts.Now()
		own := pkts[6]
		own.IfIndex = vl.Index
		e.input(now, own)
		if e.stats != before {
			t.Errorf("a frame seen through our macvlan was counted: %+v -> %+v", before, e.stats)
		}
		for _, p := range pkts {
			e.input(now, p)
		}
		if d := e.stats.IPackets - before.IPackets; d != 255 {
			t.Errorf("ipackets +%d, want +255", d)
		}
		if e.stats.BadVHID != before.BadVHID || e.stats.BadAuth != before.BadAuth || e.stats.Replay != before.Replay {
			t.Errorf("stats %+v -> %+v", before, e.stats)
		}
		for _, h := range e.hosts {
			if h.carpdev == "em0" && h.m.State() != carp.Backup {
				t.Errorf("%s: %s after the better peer's advert", h.name(), h.m.State())
			}
		}
	})
}

// BenchmarkInput255 is the cost of one received advert with 255 vhids on
// the parent (a BACKUP's steady load).
func BenchmarkInput255(b *testing.B) {
	e, k := scaleEngine(b, 1, 255)
	benchAdverts(b, e, k, func(p osif.Packet) { e.input(e.opts.Now(), p) })
}

// BenchmarkBackupAdvert1020 is a BACKUP's cost of one advert heard with
// 1,020 vhids (255 on each of 4 parents), as the loop pays it: the input
// and the next wake-up (its master-down deadline moved later, so the
// vhost is re-placed in the scheduler).
func BenchmarkBackupAdvert1020(b *testing.B) {
	e, k := scaleEngine(b, 4, 255)
	benchAdverts(b, e, k, func(p osif.Packet) {
		e.input(e.opts.Now(), p)
		if _, ok := e.nextDeadline(); !ok {
			b.Fatal("no deadline")
		}
	})
}

// benchAdverts runs handle on the engine for fresh adverts of the 255
// vhids of em0 and reports the time per advert.
func benchAdverts(b *testing.B, e *Engine, k *memkernel.Memory, handle func(osif.Packet)) {
	b.ReportAllocs()
	c := uint64(1 << 40)
	n := 0
	for b.Loop() {
		b.StopTimer()
		pkts := peerAdverts(b, e, k, 255, c)
		c++
		b.StartTimer()
		onEngine(b, e, func() {
			for _, p := range pkts {
				handle(p)
			}
		})
		n += len(pkts)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/packet")
}

// BenchmarkNextDeadline1020 is the scheduler's cost per event with 1,020
// vhids (255 on each of 4 parents): one vhost's deadline moves, and the
// loop asks for the next wake-up.
func BenchmarkNextDeadline1020(b *testing.B) {
	e, _ := scaleEngine(b, 4, 255)
	b.ReportAllocs()
	onEngine(b, e, func() {
		i := 0
		for b.Loop() {
			h := e.hosts[i%len(e.hosts)]
			e.touch(h)
			if _, ok := e.nextDeadline(); !ok {
				b.Fatal("no deadline")
			}
			i++
		}
	})
}

// BenchmarkIfconfigLine255 is one configuration line (a new advskew for
// one vhid) with 255 vhids configured.
func BenchmarkIfconfigLine255(b *testing.B) {
	e, _ := scaleEngine(b, 1, 255)
	benchLines(b, e, 0)
}

// benchLines runs one configuration line (a new advskew for vhid 5 of
// parent) per iteration.
func benchLines(b *testing.B, e *Engine, parent int) {
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := e.Ifconfig(context.Background(), scaleLine(parent, 5, 100+i%50)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkIfconfigLine1020 is one configuration line (advskew of an
// existing vhid) with 1,020 vhids on four parents, nothing saved: the
// engine's own work, which should not grow with the vhids of other
// interfaces.
func BenchmarkIfconfigLine1020(b *testing.B) {
	e, _ := scaleEngine(b, 4, 255)
	benchLines(b, e, 3)
}

// BenchmarkIfconfigLine1020Saved is one configuration line (advskew of an
// existing vhid) with 1,020 vhids on four parents, the configuration saved
// in a state directory as carpd does.
func BenchmarkIfconfigLine1020Saved(b *testing.B) {
	e, _ := scaleEngineIn(b, b.TempDir(), 4, 255)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := e.Ifconfig(context.Background(), scaleLine(0, 5, 100+i%50)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkIfconfigAliasLine1020 is a line that adds a second address to
// an existing vhid, then the one that removes it again, with 1,020 vhids
// on four parents, nothing saved.
func BenchmarkIfconfigAliasLine1020(b *testing.B) {
	e, _ := scaleEngine(b, 4, 255)
	b.ReportAllocs()
	add := api.IfconfigRequest{Iface: "em3", Ops: []api.Op{{Kind: api.OpVHID, Int: 5},
		{Kind: api.OpAddr, Prefix: netip.MustParsePrefix("10.3.5.2/32"), Alias: true}}}
	del := api.IfconfigRequest{Iface: "em3", Ops: []api.Op{{Kind: api.OpDelAddr, Prefix: netip.MustParsePrefix("10.3.5.2/32")}}}
	for b.Loop() {
		if err := e.Ifconfig(context.Background(), add); err != nil {
			b.Fatal(err)
		}
		if err := e.Ifconfig(context.Background(), del); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIfconfigNewVHID255 is the line that creates the 256th vhid (on
// a second parent, since em0 is full) and the one that removes it again.
func BenchmarkIfconfigNewVHID255(b *testing.B) { benchNewVHID(b, 2, 255, 1, 1) }

// BenchmarkIfconfigNewVHID1020 is the line that creates the 1,020th vhid
// (vhid 255 of em3, the others configured) and the one that removes it
// again: what adding a vhid costs the engine at the largest size.
func BenchmarkIfconfigNewVHID1020(b *testing.B) { benchNewVHID(b, 4, 1019, 3, 255) }

// benchNewVHID configures n vhids on parents em0.. (255 each, in order),
// then runs the line that adds vhid v of em<p> and the one that removes it
// again (its only address).
func benchNewVHID(b *testing.B, parents, n, p, v int) {
	e, _ := scaleEngine(b, parents, 0)
	for i := 0; i < n; i++ {
		if err := e.Ifconfig(context.Background(), scaleLine(i/255, i%255+1, 100)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	del := api.IfconfigRequest{Iface: fmt.Sprintf("em%d", p), Ops: []api.Op{
		{Kind: api.OpDelAddr, Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(p), byte(v), 1}), 32)}}}
	for b.Loop() {
		if err := e.Ifconfig(context.Background(), scaleLine(p, v, 100)); err != nil {
			b.Fatal(err)
		}
		if err := e.Ifconfig(context.Background(), del); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIndexHosts1020 is the rebuild of the vhost index with 1,020
// vhids: what a line that adds or removes a vhid pays for the lookups.
func BenchmarkIndexHosts1020(b *testing.B) {
	e, _ := scaleEngine(b, 4, 255)
	b.ReportAllocs()
	onEngine(b, e, func() {
		for b.Loop() {
			e.indexHosts()
		}
	})
}

// A line re-runs only the vhosts it changed (reconcileOnly): a full
// reconcile right after it must find nothing left to do, whatever the
// line changed (a vhid's advskew, key or addresses, a new vhid, a removed
// one) on either of two parents.
func TestLineLeavesNothingForAFullReconcile(t *testing.T) {
	e, _ := scaleEngine(t, 2, 8)
	type snap struct {
		h       *vhost
		cfg     VHIDConfig
		carpdev string
		vlink   string
		state   carp.State
		why     initReason
	}
	snapshot := func() []snap {
		var s []snap
		for _, h := range e.hosts {
			c := h.cfg
			c.Addrs = slices.Clone(c.Addrs)
			s = append(s, snap{h, c, h.carpdev, h.vlink, h.m.State(), h.why})
		}
		return s
	}
	del := func(p, v int) api.IfconfigRequest {
		return api.IfconfigRequest{Iface: fmt.Sprintf("em%d", p), Ops: []api.Op{
			{Kind: api.OpDelAddr, Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(p), byte(v), 1}), 32)}}}
	}
	lines := []api.IfconfigRequest{
		scaleLine(0, 3, 50),  // advskew
		scaleLine(1, 3, 100), // the same again: no change
		{Iface: "em1", Ops: []api.Op{{Kind: api.OpVHID, Int: 2}, {Kind: api.OpPass, Str: "other"}}},
		{Iface: "em0", Ops: []api.Op{{Kind: api.OpVHID, Int: 4},
			{Kind: api.OpAddr, Prefix: netip.MustParsePrefix("10.0.4.2/32"), Alias: true}}},
		{Iface: "em0", Ops: []api.Op{{Kind: api.OpDelAddr, Prefix: netip.MustParsePrefix("10.0.4.2/32")}}},
		{Iface: "em0", Ops: []api.Op{{Kind: api.OpVHID, Int: 4},
			{Kind: api.OpAddr, Prefix: netip.MustParsePrefix("10.0.4.3/32"), Alias: true}}},
		scaleLine(1, 9, 0), // a new vhid
		del(0, 5),          // a vhid removed with its only address
		scaleLine(0, 5, 100),
		// A clone running on em0, then lines on em0 (which re-run it)
		// and on the clone itself.
		{Iface: "carp0", Ops: []api.Op{{Kind: api.OpCreate}, {Kind: api.OpVHID, Int: 30}, {Kind: api.OpCarpdev, Str: "em0"},
			{Kind: api.OpAddr, Prefix: netip.MustParsePrefix("10.0.30.1/32")}}},
		scaleLine(0, 3, 60),
		scaleLine(1, 3, 60),
		{Iface: "carp0", Ops: []api.Op{{Kind: api.OpAdvSkew, Int: 20}}},
		{Iface: "carp0", Ops: []api.Op{{Kind: api.OpAdvSkew, Int: 20}}},
	}
	for i, l := range lines {
		if err := e.Ifconfig(context.Background(), l); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		var before, after []snap
		onEngine(t, e, func() {
			before = snapshot()
			e.reconcile(e.opts.Now())
			after = snapshot()
		})
		if !reflect.DeepEqual(before, after) {
			t.Fatalf("line %d (%s %+v): a full reconcile changed the vhosts:\n%+v\n->\n%+v", i, l.Iface, l.Ops, before, after)
		}
	}
}

// BenchmarkLinkEvent1020 is one link event of a link no vhid uses (a link
// of another program, or a vhid's macvlan being made) with 1,020 vhids.
func BenchmarkLinkEvent1020(b *testing.B) {
	e, _ := scaleEngine(b, 4, 255)
	b.ReportAllocs()
	u := osif.LinkUpdate{Link: osif.Link{Name: "other0", Index: 99999, AdminUp: true, Carrier: true, Kind: "veth"}}
	onEngine(b, e, func() {
		for b.Loop() {
			e.linkChanged(time.Now(), u)
		}
	})
}

// A link event re-runs only the vhosts the link concerns: a full pass of
// setRun over every vhost right after it must change nothing, for a
// parent's carrier going down and up, a foreign link appearing and a
// vhid's macvlan set down behind carpd's back.
func TestLinkEventLeavesNothingForAFullPass(t *testing.T) {
	e, k := scaleEngine(t, 3, 6)
	type snap struct {
		state      carp.State
		why        initReason
		suppressed bool
		made       bool
	}
	snapshot := func() []snap {
		var s []snap
		for _, h := range e.hosts {
			s = append(s, snap{h.m.State(), h.why, h.suppressed, h.made})
		}
		return s
	}
	check := func(what string) {
		t.Helper()
		onEngine(t, e, func() {
			before := snapshot()
			for _, h := range e.hosts {
				e.setRun(time.Now(), h, carp.ReasonIfUp)
			}
			if after := snapshot(); !slices.Equal(before, after) {
				t.Errorf("%s: a full pass changed\n%v\nto\n%v", what, before, after)
			}
		})
	}
	states := func(parent string) (init, running int) {
		onEngine(t, e, func() {
			for _, h := range e.hosts {
				if h.carpdev != parent {
					continue
				}
				if h.m.State() == carp.Init {
					init++
				} else {
					running++
				}
			}
		})
		return init, running
	}
	wait := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 5 s", what)
			}
		}
	}
	k.SetCarrier("em1", false)
	wait("em1's vhids in INIT", func() bool { i, r := states("em1"); return i == 6 && r == 0 })
	check("em1 down")
	if i, r := states("em0"); i != 0 || r != 6 {
		t.Errorf("em0's vhids: %d INIT, %d running after em1 went down", i, r)
	}
	k.SetCarrier("em1", true)
	wait("em1's vhids running", func() bool { i, r := states("em1"); return i == 0 && r == 6 })
	check("em1 up")
	k.AddLink(osif.Link{Name: "other0", MAC: net.HardwareAddr{2, 0, 0, 0, 9, 9}, MTU: 1500, AdminUp: true, Carrier: true, Kind: "veth"}, memkernel.NewSegment())
	wait("other0 seen", func() bool {
		seen := false
		onEngine(t, e, func() { _, seen = e.linkByLinuxName("other0") })
		return seen
	})
	check("a foreign link")
	var vlink string
	onEngine(t, e, func() { vlink = e.hosts[0].vlink })
	if err := k.SetLinkUp(vlink, false); err != nil {
		t.Fatal(err)
	}
	wait(vlink+" up again", func() bool {
		l, err := k.LinkByName(vlink)
		return err == nil && l.AdminUp
	})
	check(vlink + " set down")
}

// TestQueuedAdvertsTakenTogether: adverts queued while the loop was busy
// are handled in a few rounds of the loop, up to inputBatch after the one
// its select took, not a round (timer, scheduler, select) each.
func TestQueuedAdvertsTakenTogether(t *testing.T) {
	e, k := scaleEngine(t, 1, 255)
	pkts := peerAdverts(t, e, k, 200, 1<<40)
	var rounds0 int
	onEngine(t, e, func() {
		rounds0 = e.pktRounds
		for _, p := range pkts {
			e.pkts <- p // room for 256: queued while this call holds the loop
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		var left, rounds int
		onEngine(t, e, func() { left, rounds = len(e.pkts), e.pktRounds-rounds0 })
		if left == 0 {
			// ceil(200 / (1 + inputBatch)) = 4
			if rounds > 4 {
				t.Errorf("200 queued adverts took %d rounds of the loop, want at most 4", rounds)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d adverts still queued", left)
		}
		time.Sleep(time.Millisecond)
	}
	st, err := e.Status(context.Background(), api.StatusQuery{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range st.Stats {
		if c.Name == "ipackets" && c.Value < 200 {
			t.Errorf("ipackets %d, want 200", c.Value)
		}
	}
}
