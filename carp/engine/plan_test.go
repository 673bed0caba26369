package engine

import (
	"errors"
	"net/netip"
	"reflect"
	"syscall"
	"testing"

	"github.com/bsdcarp/bsdcarp/carp"
	"github.com/bsdcarp/bsdcarp/carp/api"
	"github.com/bsdcarp/bsdcarp/carp/osif"
)

// planHost is the host the planner's rows run against: em0 is Linux's
// eth0 (through the interface map), em1 keeps its name, carp7 is a Linux
// link carpd did not make, and bc-vh is one carpd made (its addresses are
// never a dialect B parent's).
func planHost() hostView {
	pf := netip.MustParsePrefix
	return hostView{
		ifmap: map[string]string{"em0": "eth0"},
		links: map[int]osif.Link{
			2: {Name: "eth0", Index: 2, AdminUp: true, MTU: 1500,
				Addrs: []netip.Prefix{pf("192.0.2.10/24"), pf("192.0.2.11/24"), pf("2001:db8::10/64"), pf("fe80::1/64")}},
			3: {Name: "em1", Index: 3, AdminUp: true, MTU: 9000, Addrs: []netip.Prefix{pf("198.51.100.10/24")}},
			4: {Name: "carp7", Index: 4},
			5: {Name: "bc-vh", Index: 5, Alias: osif.OwnerAlias, Addrs: []netip.Prefix{pf("203.0.113.5/24")}},
		},
	}
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func pfxs(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, pfx(s))
	}
	return out
}

// Words of a line, as the BSD grammar produces them.
func w(k api.OpKind) api.Op            { return api.Op{Kind: k} }
func wi(k api.OpKind, n int) api.Op    { return api.Op{Kind: k, Int: n} }
func ws(k api.OpKind, s string) api.Op { return api.Op{Kind: k, Str: s} }
func waddr(s string, alias bool) api.Op {
	return api.Op{Kind: api.OpAddr, Prefix: pfx(s), Alias: alias}
}
func wdel(s string) api.Op { return api.Op{Kind: api.OpDelAddr, Prefix: pfx(s)} }
func line(i string, ops ...api.Op) api.IfconfigRequest {
	return api.IfconfigRequest{Iface: i, Ops: ops}
}

// Kernel steps on eth0 (em0).
func sAdd(s string, op api.OpKind, st api.Step) kernelStep {
	return kernelStep{kind: stepAddAddr, op: op, step: st, link: "eth0", prefix: pfx(s)}
}
func sDel(s string, op api.OpKind, st api.Step) kernelStep {
	return kernelStep{kind: stepDelAddr, op: op, step: st, link: "eth0", prefix: pfx(s)}
}

func cfgOf(ifcs ...IfaceConfig) *Config {
	return &Config{Version: configVersion, Knobs: map[string]int64{}, Ifaces: ifcs}
}

// vc is a vhid with carp(4)'s default timers.
func vc(vhid uint8, dev string, addrs ...string) VHIDConfig {
	return VHIDConfig{VHID: vhid, Carpdev: dev, AdvBase: DefaultAdvBase, AdvSkew: DefaultAdvSkew, Addrs: pfxs(addrs...)}
}

func clone(name string, v VHIDConfig) IfaceConfig {
	return IfaceConfig{Name: name, Clone: true, VHIDs: []VHIDConfig{v}}
}

func phys(name string, vs ...VHIDConfig) IfaceConfig { return IfaceConfig{Name: name, VHIDs: vs} }

type planRow struct {
	name   string
	cfg    *Config // nil: the empty configuration
	req    api.IfconfigRequest
	want   []IfaceConfig // next.Ifaces
	steps  []kernelStep
	forced []carp.State
	keep   []netip.Prefix // checked when not nil
	err    *api.Error
}

func TestPlanDialectA(t *testing.T) {
	a := cfgOf(clone("carp0", vc(1, "em0", "192.0.2.1/24")))
	a2 := cfgOf(clone("carp0", vc(1, "em0", "192.0.2.1/24", "192.0.2.3/24")))
	full := vc(1, "em0", "192.0.2.1/24")
	full.AdvBase, full.AdvSkew, full.Key = 3, 100, "secret"
	down := clone("carp0", vc(1, "em0", "192.0.2.1/24"))
	down.Down = true
	inval := api.Refused(api.StepSetVHID, syscall.EINVAL)
	runPlanRows(t, []planRow{
		{name: "create", req: line("carp0", w(api.OpCreate)),
			want: []IfaceConfig{clone("carp0", vc(0, ""))}},
		{name: "create with every parameter", req: line("carp0", w(api.OpCreate), wi(api.OpVHID, 1), ws(api.OpPass, "secret"),
			wi(api.OpAdvBase, 3), wi(api.OpAdvSkew, 100), ws(api.OpCarpdev, "em0"), ws(api.OpState, "master"), waddr("192.0.2.1/24", false)),
			want: []IfaceConfig{clone("carp0", full)}, forced: []carp.State{carp.Master}},
		{name: "address replaces", cfg: a, req: line("carp0", waddr("192.0.2.2/24", false)),
			want: []IfaceConfig{clone("carp0", vc(1, "em0", "192.0.2.2/24"))}},
		{name: "address alias adds", cfg: a, req: line("carp0", waddr("192.0.2.3/24", true)),
			want: a2.Ifaces},
		{name: "same address again changes its mask", cfg: a, req: line("carp0", waddr("192.0.2.1/25", true)),
			want: []IfaceConfig{clone("carp0", vc(1, "em0", "192.0.2.1/25"))}},
		{name: "-alias of an address", cfg: a2, req: line("carp0", wdel("192.0.2.3/32")),
			want: a.Ifaces},
		{name: "bare -alias removes the first", cfg: a2, req: line("carp0", w(api.OpDelAddr)),
			want: []IfaceConfig{clone("carp0", vc(1, "em0", "192.0.2.3/24"))}},
		{name: "down is the clone's own", cfg: a, req: line("carp0", w(api.OpDown)), want: []IfaceConfig{down}},
		{name: "destroy", cfg: a, req: line("carp0", w(api.OpDestroy)), want: nil},
		{name: "create twice", cfg: a, req: line("carp0", w(api.OpCreate)), err: api.Refused(api.StepCreate, syscall.EEXIST)},
		{name: "create not first", req: line("carp0", wi(api.OpVHID, 1), w(api.OpCreate)), err: api.Refused(api.StepCreate, syscall.EEXIST)},
		{name: "create over a foreign link", req: line("carp7", w(api.OpCreate)), err: api.Refused(api.StepCreate, syscall.EEXIST)},
		{name: "create a physical name", req: line("em0", w(api.OpCreate)), err: api.Refused(api.StepCreate, syscall.EINVAL)},
		{name: "create a long name", req: line("carp012345678901", w(api.OpCreate)),
			err: &api.Error{Reason: api.ReasonCloneNameLong, Name: "carp012345678901"}},
		{name: "carpdev missing", req: line("carp0", w(api.OpCreate), ws(api.OpCarpdev, "em9")), err: inval},
		{name: "carpdev a clone", req: line("carp0", w(api.OpCreate), ws(api.OpCarpdev, "carp7")), err: inval},
		{name: "vhid 0", cfg: a, req: line("carp0", wi(api.OpVHID, 0)), err: inval},
		{name: "vhid 256", cfg: a, req: line("carp0", wi(api.OpVHID, 256)), err: inval},
		{name: "advbase 0", cfg: a, req: line("carp0", wi(api.OpAdvBase, 0)), err: inval},
		{name: "advbase 256", cfg: a, req: line("carp0", wi(api.OpAdvBase, 256)), err: inval},
		{name: "advskew -1", cfg: a, req: line("carp0", wi(api.OpAdvSkew, -1)), err: inval},
		{name: "advskew 255", cfg: a, req: line("carp0", wi(api.OpAdvSkew, 255)), err: inval},
		{name: "unknown state", cfg: a, req: line("carp0", ws(api.OpState, "standby")), err: &api.Error{Reason: api.ReasonUnknownState}},
		{name: "mtu of a clone", cfg: a, req: line("carp0", wi(api.OpMTU, 1400)), err: api.Refused(api.StepSetMTU, syscall.EINVAL)},
		{name: "unsupported word", cfg: a, req: line("carp0", w("metric")), err: &api.Error{Reason: api.ReasonUnsupported, Op: "metric"}},
		{name: "a word after a refused one changes nothing", cfg: a,
			req: line("carp0", waddr("192.0.2.2/24", false), wi(api.OpAdvSkew, 255)), err: inval},
	})
}

func TestPlanDialectB(t *testing.T) {
	a := cfgOf(clone("carp0", vc(1, "em0", "192.0.2.1/24")))
	runPlanRows(t, []planRow{
		{name: "parent by subnet", req: line("carp1", w(api.OpCreate), wi(api.OpVHID, 2), waddr("198.51.100.1/24", false)),
			want: []IfaceConfig{clone("carp1", vc(2, "", "198.51.100.1/24"))}},
		{name: "parent by subnet through the interface map", cfg: a, req: line("carp1", w(api.OpCreate), wi(api.OpVHID, 2), waddr("192.0.2.5/24", false)),
			want: append(a.Ifaces, clone("carp1", vc(2, "", "192.0.2.5/24")))},
		{name: "no subnet", req: line("carp1", w(api.OpCreate), wi(api.OpVHID, 2), waddr("10.99.0.1/24", false)),
			err: api.Refused(api.StepAddAddr, syscall.EADDRNOTAVAIL)},
		{name: "carpd's own links are no parent", req: line("carp1", w(api.OpCreate), wi(api.OpVHID, 2), waddr("203.0.113.1/24", false)),
			err: api.Refused(api.StepAddAddr, syscall.EADDRNOTAVAIL)},
		{name: "without a vhid the parent waits", req: line("carp1", w(api.OpCreate), waddr("10.99.0.1/24", false)),
			want: []IfaceConfig{clone("carp1", vc(0, "", "10.99.0.1/24"))}},
		{name: "same vhid as a carpdev clone on the parent", cfg: a, req: line("carp1", w(api.OpCreate), wi(api.OpVHID, 1), waddr("192.0.2.5/24", false)),
			err: api.Refused(api.StepSetVHID, syscall.EEXIST)},
	})
}

func TestPlanDialectC(t *testing.T) {
	c1 := cfgOf(phys("em0", vc(1, "em0", "192.0.2.50/24")))
	c2 := cfgOf(phys("em0", vc(1, "em0", "192.0.2.50/24"), vc(2, "em0", "192.0.2.51/24")))
	keyed := vc(1, "em0", "192.0.2.50/24")
	keyed.Key = "x"
	host := pfxs("192.0.2.10/24", "192.0.2.11/24", "2001:db8::10/64", "fe80::1/64")
	up := kernelStep{kind: stepSetUp, op: api.OpUp, step: api.StepSetUp, link: "eth0", up: true, wasUp: true}
	down := kernelStep{kind: stepSetUp, op: api.OpDown, step: api.StepSetDown, link: "eth0", wasUp: true}
	mtu := kernelStep{kind: stepSetMTU, op: api.OpMTU, step: api.StepSetMTU, link: "eth0", mtu: 9000, wasMTU: 1500}
	mtuRange := api.Refused(api.StepSetMTU, syscall.EINVAL)
	runPlanRows(t, []planRow{
		{name: "vhid on an alias", req: line("em0", wi(api.OpVHID, 1), ws(api.OpPass, "x"), waddr("192.0.2.50/24", true)),
			want: []IfaceConfig{phys("em0", keyed)}, keep: host},
		{name: "second vhid", cfg: c1, req: line("em0", wi(api.OpVHID, 2), waddr("192.0.2.51/24", true)), want: c2.Ifaces},
		{name: "vhid address without alias replaces", cfg: c1, req: line("em0", wi(api.OpVHID, 1), waddr("192.0.2.52/24", false)),
			want: []IfaceConfig{phys("em0", vc(1, "em0", "192.0.2.52/24"))}},
		{name: "vhid address with alias adds", cfg: c1, req: line("em0", wi(api.OpVHID, 1), waddr("192.0.2.52/24", true)),
			want: []IfaceConfig{phys("em0", vc(1, "em0", "192.0.2.50/24", "192.0.2.52/24"))}},
		{name: "IPv6 vhid address without alias keeps the IPv4 one", cfg: c1, req: line("em0", wi(api.OpVHID, 1), waddr("2001:db8::50/64", false)),
			want: []IfaceConfig{phys("em0", vc(1, "em0", "192.0.2.50/24", "2001:db8::50/64"))}},
		{name: "state of the last vhid", cfg: c2, req: line("em0", wi(api.OpVHID, 2), ws(api.OpState, "backup")),
			want: c2.Ifaces, forced: []carp.State{carp.Backup}},
		{name: "-alias of a vhid's last address removes that vhid only", cfg: c2, req: line("em0", wdel("192.0.2.50/32")),
			want: []IfaceConfig{phys("em0", vc(2, "em0", "192.0.2.51/24"))}},
		{name: "-alias of the last vhid address removes the interface's entry", cfg: c1, req: line("em0", wdel("192.0.2.50/32")),
			want: nil},
		{name: "-alias of the interface's own address", cfg: c1, req: line("em0", wdel("192.0.2.11/32")),
			want: c1.Ifaces, steps: []kernelStep{sDel("192.0.2.11/24", api.OpDelAddr, api.StepDelAddr)},
			keep: pfxs("192.0.2.10/24", "2001:db8::10/64", "fe80::1/64")},
		{name: "-alias of an own IPv6 address", req: line("em0", wdel("2001:db8::10/128")),
			steps: []kernelStep{sDel("2001:db8::10/64", api.OpDelAddr, api.StepDelAddr)}},
		{name: "bare -alias removes the first IPv4 address", cfg: c1, req: line("em0", w(api.OpDelAddr)),
			want: c1.Ifaces, steps: []kernelStep{sDel("192.0.2.10/24", api.OpDelAddr, api.StepDelAddr)}},
		{name: "-alias of an address em0 does not have", req: line("em0", wdel("10.9.9.9/32")),
			err: api.Refused(api.StepDelAddr, syscall.EADDRNOTAVAIL)},
		{name: "plain address replaces the first IPv4 one", req: line("em0", waddr("192.0.2.20/24", false)),
			steps: []kernelStep{sDel("192.0.2.10/24", api.OpAddr, api.StepAddAddr), sAdd("192.0.2.20/24", api.OpAddr, api.StepAddAddr)},
			keep:  pfxs("192.0.2.11/24", "2001:db8::10/64", "fe80::1/64", "192.0.2.20/24")},
		{name: "plain address alias adds", req: line("em0", waddr("192.0.2.20/24", true)),
			steps: []kernelStep{sAdd("192.0.2.20/24", api.OpAddr, api.StepAddAddr)},
			keep:  append(host, pfx("192.0.2.20/24"))},
		{name: "plain address already there changes nothing", req: line("em0", waddr("192.0.2.10/24", false)),
			steps: nil, keep: host},
		{name: "plain IPv6 address is added without alias", req: line("em0", waddr("2001:db8::20/64", false)),
			steps: []kernelStep{sAdd("2001:db8::20/64", api.OpAddr, api.StepAddAddr)}},
		{name: "up", req: line("em0", w(api.OpUp)), steps: []kernelStep{up}},
		{name: "down and mtu", cfg: c1, req: line("em0", w(api.OpDown), wi(api.OpMTU, 9000)), want: c1.Ifaces, steps: []kernelStep{down, mtu}},
		{name: "mtu 67", req: line("em0", wi(api.OpMTU, 67)), err: mtuRange},
		{name: "mtu 65536", req: line("em0", wi(api.OpMTU, 65536)), err: mtuRange},
		{name: "pass needs a vhid", req: line("em0", ws(api.OpPass, "x")), err: &api.Error{Reason: api.ReasonNeedsVHID, Op: api.OpPass}},
		{name: "advbase needs a vhid", req: line("em0", wi(api.OpAdvBase, 2)), err: &api.Error{Reason: api.ReasonNeedsVHID, Op: api.OpAdvBase}},
		{name: "advskew needs a vhid", req: line("em0", wi(api.OpAdvSkew, 2)), err: &api.Error{Reason: api.ReasonNeedsVHID, Op: api.OpAdvSkew}},
		{name: "state needs a vhid", req: line("em0", ws(api.OpState, "master")), err: &api.Error{Reason: api.ReasonNeedsVHID, Op: api.OpState}},
		{name: "after a vhid goes, its words need a vhid again", cfg: c1,
			req: line("em0", wi(api.OpVHID, 1), wdel("192.0.2.50/32"), ws(api.OpPass, "x")), err: &api.Error{Reason: api.ReasonNeedsVHID, Op: api.OpPass}},
		{name: "vhid 0", req: line("em0", wi(api.OpVHID, 0)), err: &api.Error{Reason: api.ReasonVHIDRange}},
		{name: "vhid 256", req: line("em0", wi(api.OpVHID, 256)), err: &api.Error{Reason: api.ReasonVHIDRange}},
		{name: "carpdev on em0", req: line("em0", ws(api.OpCarpdev, "em1")), err: api.Refused(api.StepSetVHID, syscall.EINVAL)},
		{name: "destroy em0", req: line("em0", w(api.OpDestroy)), err: api.Refused(api.StepDestroy, syscall.EINVAL)},
		{name: "address without a prefix", req: line("em0", w(api.OpAddr)), err: api.Refused(api.StepAddAddr, syscall.EINVAL)},
		{name: "a virtual broadcast address fails validation", req: line("em0", wi(api.OpVHID, 1), waddr("192.0.2.255/24", true)),
			err: api.Refused(api.StepAddAddr, syscall.EINVAL)},
		{name: "no such interface", req: line("em9", w(api.OpUp)), err: &api.Error{Reason: api.ReasonNoInterface, Name: "em9"}},
		{name: "a refused line plans no steps", req: line("em0", w(api.OpDown), wi(api.OpMTU, 20)), err: mtuRange},
	})
}

func TestPlanOpenBSD(t *testing.T) {
	a := cfgOf(clone("carp0", vc(1, "em0", "192.0.2.1/24")))
	runPlanRows(t, []planRow{
		{name: "clone on demand", req: line("carp3", wi(api.OpVHID, 4), ws(api.OpCarpdev, "em1"), waddr("198.51.100.4/24", false)),
			want: []IfaceConfig{clone("carp3", vc(4, "em1", "198.51.100.4/24"))}},
		{name: "no clone on demand over a foreign link", req: line("carp7", wi(api.OpVHID, 1)), err: api.Refused(api.StepCreate, syscall.EEXIST)},
		{name: "destroy of a missing clone", cfg: a, req: line("carp9", w(api.OpDestroy)), err: &api.Error{Reason: api.ReasonNoInterface, Name: "carp9"}},
		{name: "a bare missing clone", req: line("carp9"), err: &api.Error{Reason: api.ReasonNoInterface, Name: "carp9"}},
		{name: "no clone on demand for a long name", req: line("carp012345678901", wi(api.OpVHID, 1)),
			err: &api.Error{Reason: api.ReasonNoInterface, Name: "carp012345678901"}},
		{name: "a refused on-demand line creates nothing", cfg: a, req: line("carp3", wi(api.OpVHID, 4), ws(api.OpCarpdev, "em9")),
			err: api.Refused(api.StepSetVHID, syscall.EINVAL)},
	})
}

func TestPlanUnique(t *testing.T) {
	a := cfgOf(clone("carp0", vc(1, "em0", "192.0.2.1/24")))
	c1 := cfgOf(phys("em0", vc(1, "em0", "192.0.2.50/24")))
	exist := api.Refused(api.StepSetVHID, syscall.EEXIST)
	runPlanRows(t, []planRow{
		{name: "same vhid on the same carpdev", cfg: a, req: line("carp1", w(api.OpCreate), wi(api.OpVHID, 1), ws(api.OpCarpdev, "em0")), err: exist},
		{name: "same vhid on another carpdev", cfg: a, req: line("carp1", w(api.OpCreate), wi(api.OpVHID, 1), ws(api.OpCarpdev, "em1")),
			want: append(a.Ifaces, clone("carp1", vc(1, "em1")))},
		{name: "a clone's vhid on em0 in dialect C", cfg: a, req: line("em0", wi(api.OpVHID, 1), waddr("192.0.2.60/24", true)), err: exist},
		{name: "a dialect C vhid taken by a clone", cfg: c1, req: line("carp0", wi(api.OpVHID, 1), ws(api.OpCarpdev, "em0")), err: exist},
	})
}

func runPlanRows(t *testing.T, rows []planRow) {
	t.Helper()
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			cfg := r.cfg
			if cfg == nil {
				cfg = cfgOf()
			}
			before := cfg.clone()
			pl, err := plan(cfg, planHost(), r.req)
			if !reflect.DeepEqual(cfg, before) {
				t.Fatalf("plan changed its input:\n got %+v\nwant %+v", cfg, before)
			}
			if r.err != nil {
				var ae *api.Error
				if !errors.As(err, &ae) || *ae != *r.err {
					t.Fatalf("error = %v, want %v", err, r.err)
				}
				if !reflect.DeepEqual(pl, linePlan{}) {
					t.Fatalf("a refused line planned %+v", pl)
				}
				return
			}
			if err != nil {
				t.Fatalf("plan: %v", err)
			}
			if len(pl.next.Ifaces) != 0 || len(r.want) != 0 {
				if !reflect.DeepEqual(pl.next.Ifaces, r.want) {
					t.Errorf("next config:\n got %+v\nwant %+v", pl.next.Ifaces, r.want)
				}
			}
			if !reflect.DeepEqual(pl.steps, r.steps) {
				t.Errorf("steps:\n got %+v\nwant %+v", pl.steps, r.steps)
			}
			if !reflect.DeepEqual(pl.forced, r.forced) {
				t.Errorf("forced = %v, want %v", pl.forced, r.forced)
			}
			if r.keep != nil && !reflect.DeepEqual(pl.keep, r.keep) {
				t.Errorf("keep = %v, want %v", pl.keep, r.keep)
			}
			if err := pl.next.Validate(); err != nil {
				t.Errorf("next config does not validate: %v", err)
			}
		})
	}
}

// TestStepInverse: each step's undo puts back what the link had; an MTU
// that was not known is not undone.
func TestStepInverse(t *testing.T) {
	for _, c := range []struct {
		s, want kernelStep
		ok      bool
	}{
		{sAdd("192.0.2.20/24", api.OpAddr, api.StepAddAddr), sDel("192.0.2.20/24", "undo addr", api.StepAddAddr), true},
		{sDel("192.0.2.10/24", api.OpAddr, api.StepAddAddr), sAdd("192.0.2.10/24", "undo addr", api.StepAddAddr), true},
		{kernelStep{kind: stepSetUp, op: api.OpDown, link: "eth0", wasUp: true},
			kernelStep{kind: stepSetUp, op: "undo down", link: "eth0", up: true, wasUp: true}, true},
		{kernelStep{kind: stepSetMTU, op: api.OpMTU, link: "eth0", mtu: 9000, wasMTU: 1500},
			kernelStep{kind: stepSetMTU, op: "undo mtu", link: "eth0", mtu: 1500, wasMTU: 1500}, true},
		{kernelStep{kind: stepSetMTU, op: api.OpMTU, link: "eth0", mtu: 9000}, kernelStep{}, false},
	} {
		got, ok := c.s.inverse()
		if ok != c.ok || (ok && got != c.want) {
			t.Errorf("inverse(%+v) = %+v, %v; want %+v, %v", c.s, got, ok, c.want, c.ok)
		}
	}
}

// TestPlanLeavesItsConfigurationAlone: a plan shares the addresses of the
// configuration it starts from (cloneFor); a line that changes one of them
// in place (a new prefix length, a replacement, a removal, an alias), accepted
// or refused, leaves that configuration as it was.
func TestPlanLeavesItsConfigurationAlone(t *testing.T) {
	cfg := &Config{Version: configVersion, Knobs: map[string]int64{}, Ifaces: []IfaceConfig{
		{Name: "em1", VHIDs: []VHIDConfig{
			{VHID: 1, Carpdev: "em1", AdvBase: 1, Addrs: append(make([]netip.Prefix, 0, 8), pfxs("198.51.100.1/24", "198.51.100.2/24")...)},
			{VHID: 2, Carpdev: "em1", AdvBase: 1, Addrs: pfxs("198.51.100.3/32")}}},
		{Name: "carp0", Clone: true, VHIDs: []VHIDConfig{{VHID: 3, Carpdev: "em1", AdvBase: 1, Addrs: pfxs("198.51.100.4/24", "198.51.100.5/24")}}},
	}}
	want := cfg.clone()
	for i, l := range []api.IfconfigRequest{
		line("em1", wi(api.OpVHID, 1), waddr("198.51.100.1/25", true)),
		line("em1", wi(api.OpVHID, 1), waddr("198.51.100.9/24", false)),
		line("em1", wi(api.OpVHID, 1), waddr("198.51.100.9/24", true)),
		line("em1", wdel("198.51.100.2/24")),
		line("em1", wdel("198.51.100.3/32")),
		line("carp0", wdel("198.51.100.4/24")),
		line("carp0", waddr("198.51.100.6/24", false)),
		line("carp0", waddr("198.51.100.4/24", false), wi(api.OpAdvSkew, 300)), // refused
	} {
		if _, err := plan(cfg, planHost(), l); err != nil && i != 7 {
			t.Fatalf("line %d: %v", i, err)
		}
		if !reflect.DeepEqual(cfg, want) {
			t.Fatalf("line %d (%s %+v) changed the configuration it started from:\n%+v\nwas\n%+v", i, l.Iface, l.Ops, cfg, want)
		}
	}
}

// TestPlanChecksWhatALineChangedAsAWhole: after a line's result has been
// validated, the next line checks only what it changed (validAfter,
// uniqueAfter); the outcome, accepted or refused, and the configuration it
// leaves are those of validating the whole configuration, for lines on
// every kind of interface against every kind of neighbour.
func TestPlanChecksWhatALineChangedAsAWhole(t *testing.T) {
	v := func(n uint8, dev string, addrs ...string) VHIDConfig {
		return VHIDConfig{VHID: n, Carpdev: dev, AdvBase: 1, Addrs: pfxs(addrs...)}
	}
	base := &Config{Version: configVersion, Knobs: map[string]int64{"preempt": 1}, Ifaces: []IfaceConfig{
		{Name: "em1", VHIDs: []VHIDConfig{v(1, "em1", "198.51.100.1/32"), v(2, "em1", "198.51.100.2/32")}},
		{Name: "carp0", Clone: true, VHIDs: []VHIDConfig{v(3, "em1", "198.51.100.3/24")}},
		{Name: "em0", VHIDs: []VHIDConfig{v(3, "em0", "192.0.2.3/32")}},
		{Name: "carp1", Clone: true, VHIDs: []VHIDConfig{v(0, "", "192.0.2.40/24")}},
	}}
	dialectB := base.clone()
	dialectB.Ifaces = append(dialectB.Ifaces, IfaceConfig{Name: "carp2", Clone: true, VHIDs: []VHIDConfig{v(9, "", "198.51.100.9/24")}})
	lines := []api.IfconfigRequest{
		line("em1", wi(api.OpVHID, 2), wi(api.OpAdvSkew, 50)),
		line("em1", wi(api.OpVHID, 4), waddr("198.51.100.4/32", true)),
		line("em1", wi(api.OpVHID, 3), waddr("198.51.100.5/32", true)), // carp0's vhid on em1
		line("em1", wi(api.OpVHID, 9), waddr("198.51.100.6/32", true)), // carp2's, found by subnet
		line("em1", wdel("198.51.100.1/32")),
		line("em1", wdel("198.51.100.2/32"), wdel("198.51.100.1/32")),
		line("em0", wi(api.OpVHID, 1), waddr("192.0.2.1/32", true)),
		line("em0", wi(api.OpVHID, 3), waddr("192.0.2.3/32", true), waddr("192.0.2.3/32", true)),
		line("carp0", wi(api.OpAdvSkew, 10)),
		line("carp0", wi(api.OpVHID, 1)), // em1's vhid 1
		line("carp0", wi(api.OpVHID, 7)),
		line("carp0", ws(api.OpCarpdev, "em0")), // em0's vhid 3
		line("carp0", w(api.OpDown)),
		line("carp0", w(api.OpDestroy)),
		line("carp1", wi(api.OpVHID, 3)), // by subnet on em0, which has vhid 3
		line("carp1", wi(api.OpVHID, 5)),
		line("carp1", ws(api.OpCarpdev, "em1"), wi(api.OpVHID, 2)),
		line("carp3", w(api.OpCreate), wi(api.OpVHID, 1), ws(api.OpCarpdev, "em1"), waddr("198.51.100.30/24", false)),
		line("carp3", w(api.OpCreate), wi(api.OpVHID, 8), ws(api.OpCarpdev, "em1"), waddr("198.51.100.30/24", false)),
		line("carp3", w(api.OpCreate), wi(api.OpVHID, 8), waddr("198.51.100.30/24", false)), // by subnet
		line("carp3", w(api.OpCreate), wi(api.OpVHID, 1), waddr("198.51.100.30/24", false)), // by subnet, taken
		line("em1", wi(api.OpVHID, 1), ws(api.OpPass, string(make([]byte, MaxKeyBytes+1)))),
		line("em1", wi(api.OpVHID, 1), ws(api.OpPass, "a\x00b")),
		line("em1", wi(api.OpVHID, 1), waddr("0.0.0.0/32", true)),
	}
	for _, start := range []*Config{base, dialectB} {
		// The configuration as a line left it: validated.
		prev, err := plan(start, planHost(), line("em1", wi(api.OpVHID, 1), wi(api.OpAdvSkew, 1)))
		if err != nil {
			t.Fatal(err)
		}
		for i, l := range lines {
			whole := *prev.next
			whole.valid = false
			want, wantErr := plan(&whole, planHost(), l)
			got, gotErr := plan(prev.next, planHost(), l)
			if !reflect.DeepEqual(gotErr, wantErr) {
				t.Errorf("line %d (%s %+v): %v, validating the whole configuration %v", i, l.Iface, l.Ops, gotErr, wantErr)
				continue
			}
			if gotErr != nil {
				continue
			}
			if !got.next.valid {
				t.Errorf("line %d (%s %+v): its result is not marked valid", i, l.Iface, l.Ops)
			}
			got.next.valid, want.next.valid = false, false
			if !reflect.DeepEqual(got, want) {
				t.Errorf("line %d (%s %+v):\n%+v\nvalidating the whole configuration:\n%+v", i, l.Iface, l.Ops, got, want)
			}
		}
	}
}
