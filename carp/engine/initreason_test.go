package engine

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bsdcarp/bsdcarp/carp"
	"github.com/bsdcarp/bsdcarp/carp/api"
	"github.com/bsdcarp/bsdcarp/carp/osif"
	"github.com/bsdcarp/bsdcarp/kernelshim/memkernel"
)

func TestInitReasonFromFacts(t *testing.T) {
	// ok is a vhid that may run; each row breaks one or more facts.
	ok := runFacts{allow: true, addrs: 1, parentKnown: true, parentFound: true, parentUp: true, carrier: true}
	with := func(f func(*runFacts)) runFacts { r := ok; f(&r); return r }
	tests := []struct {
		name  string
		facts runFacts
		want  initReason
		word  string
	}{
		{"runnable", ok, initNone, ""},
		{"carp disabled", with(func(f *runFacts) { f.allow = false }), initCarpDisabled, "carp_disabled"},
		{"no address", with(func(f *runFacts) { f.addrs = 0 }), initNoAddress, "no_address"},
		{"carpdev unknown", with(func(f *runFacts) { f.parentKnown, f.parentFound = false, false }), initNoParent, "no_parent"},
		{"carpdev not found", with(func(f *runFacts) { f.parentFound, f.parentUp, f.carrier = false, false, false }), initNoParent, "no_parent"},
		{"admin down", with(func(f *runFacts) { f.adminDown = true }), initAdminDown, "admin_down"},
		{"parent admin down", with(func(f *runFacts) { f.parentUp, f.carrier = false, false }), initParentDown, "parent_down"},
		{"parent no carrier", with(func(f *runFacts) { f.carrier = false }), initNoCarrier, "no_carrier"},
		// Several at once: the first in carp_setrun's order is reported.
		{"disabled before no address", with(func(f *runFacts) { f.allow, f.addrs = false, 0 }), initCarpDisabled, "carp_disabled"},
		{"no address before no parent", with(func(f *runFacts) { f.addrs, f.parentKnown = 0, false }), initNoAddress, "no_address"},
		{"unknown parent before admin down", with(func(f *runFacts) { f.parentKnown, f.adminDown = false, true }), initNoParent, "no_parent"},
		{"admin down before parent down", with(func(f *runFacts) { f.adminDown, f.parentUp, f.carrier = true, false, false }), initAdminDown, "admin_down"},
		{"admin down before parent not found", with(func(f *runFacts) { f.adminDown, f.parentFound = true, false }), initAdminDown, "admin_down"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.facts.reason()
			if got != tt.want || got.String() != tt.word {
				t.Errorf("reason() = %d %q, want %d %q", got, got, tt.want, tt.word)
			}
		})
	}
	if got := initNoVlink.String(); got != "vlink_failed" {
		t.Errorf("initNoVlink = %q, want vlink_failed", got)
	}
	// Every reason has its own word and its own words for the log.
	words, texts := map[string]bool{}, map[string]bool{}
	for r := initNone; r <= initNoVlink; r++ {
		if words[r.String()] || texts[r.describe()] {
			t.Errorf("reason %d: word %q or text %q used twice", r, r, r.describe())
		}
		words[r.String()], texts[r.describe()] = true, true
	}
}

func TestParentDownFacts(t *testing.T) {
	ok := runFacts{allow: true, addrs: 1, parentKnown: true, parentFound: true, parentUp: true, carrier: true}
	with := func(f func(*runFacts)) runFacts { r := ok; f(&r); return r }
	tests := []struct {
		name  string
		facts runFacts
		want  bool
	}{
		{"runnable", ok, false},
		{"carp disabled counts as down", with(func(f *runFacts) { f.allow = false }), true},
		{"disabled without a parent", with(func(f *runFacts) { f.allow, f.parentKnown, f.parentFound = false, false, false }), true},
		{"parent unknown is not down", with(func(f *runFacts) { f.parentKnown, f.parentFound = false, false }), false},
		{"parent not found", with(func(f *runFacts) { f.parentFound = false }), true},
		{"parent admin down", with(func(f *runFacts) { f.parentUp = false }), true},
		{"parent no carrier", with(func(f *runFacts) { f.carrier = false }), true},
		{"no address, parent down", with(func(f *runFacts) { f.addrs, f.carrier = 0, false }), true},
		{"admin down, parent down", with(func(f *runFacts) { f.adminDown, f.carrier = true, false }), true},
		{"admin down alone", with(func(f *runFacts) { f.adminDown = true }), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.facts.parentDown(); got != tt.want {
				t.Errorf("parentDown() = %v, want %v", got, tt.want)
			}
			// A parent that is down always keeps the vhid in INIT, so the
			// demotion is only ever counted for a vhid that cannot run.
			if tt.facts.parentDown() && tt.facts.reason() == initNone {
				t.Errorf("parent down but reason() = initNone")
			}
		})
	}
}

func TestDemotionFromFacts(t *testing.T) {
	tests := []struct {
		name  string
		facts demotionFacts
		want  int
	}{
		{"nothing", demotionFacts{ifdownFactor: 240, senderrFactor: 240}, 0},
		{"sysctl only", demotionFacts{knob: 50, ifdownFactor: 240, senderrFactor: 240}, 50},
		{"negative sysctl promotes", demotionFacts{knob: -20, ifdownFactor: 240, senderrFactor: 240}, -20},
		{"one parent down", demotionFacts{ifdown: 1, ifdownFactor: 240, senderrFactor: 240}, 240},
		{"two parents down add up", demotionFacts{ifdown: 2, ifdownFactor: 240, senderrFactor: 240}, 480},
		{"send errors", demotionFacts{senderr: 2, ifdownFactor: 240, senderrFactor: 240}, 480},
		{"every part", demotionFacts{knob: 10, ifdown: 1, senderr: 1, ifdownFactor: 100, senderrFactor: 30}, 140},
		{"the counted parts follow the factors", demotionFacts{ifdown: 3, senderr: 2, ifdownFactor: 7, senderrFactor: 5}, 31},
		{"a factor of 0 adds nothing", demotionFacts{ifdown: 4, ifdownFactor: 0, senderrFactor: 240}, 0},
		{"negative factors", demotionFacts{ifdown: 1, senderr: 1, ifdownFactor: -240, senderrFactor: -10}, -250},
		// The written part is saturated to a C int when written; the sum
		// is not clamped (carp.EffectiveSkew clamps what is advertised).
		{"saturated knob plus a parent down", demotionFacts{knob: math.MaxInt32, ifdown: 1, ifdownFactor: 240, senderrFactor: 240}, math.MaxInt32 + 240},
		{"lowest knob plus a send error", demotionFacts{knob: math.MinInt32, senderr: 1, ifdownFactor: 240, senderrFactor: 240}, math.MinInt32 + 240},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.facts.effective(); got != tt.want {
				t.Errorf("effective() = %d, want %d", got, tt.want)
			}
		})
	}
}

// vhidStatus returns the status of the vhid configured on iface.
func (n *node) vhidStatus(t *testing.T, iface string) api.VHIDStatus {
	t.Helper()
	st, err := n.e.Status(context.Background(), api.StatusQuery{})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range st.VHIDs {
		if v.Iface == iface {
			return v
		}
	}
	t.Fatalf("no vhid on %s in %+v", iface, st.VHIDs)
	return api.VHIDStatus{}
}

// recheckInit makes the engine run setRun for every vhid again: a link
// resync and a sysctl write that changes nothing.
func recheckInit(t *testing.T, n *node) {
	t.Helper()
	n.k.Resync()
	synctest.Wait()
	if _, _, err := n.e.SetSysctl(context.Background(), "net.inet.carp.preempt", 0); err != nil {
		t.Fatal(err)
	}
}

// expectInit checks iface's state and init reason in the status and,
// with a reason, that the log gives that reason exactly logged times.
func expectInit(t *testing.T, n *node, iface, state, reason string, logged int) {
	t.Helper()
	vs := n.vhidStatus(t, iface)
	if vs.State != state || vs.InitReason != reason {
		t.Errorf("%s: state %s init_reason %q, want %s %q", iface, vs.State, vs.InitReason, state, reason)
	}
	if reason == "" {
		return
	}
	if got := strings.Count(n.logs.String(), "("+reason+")\n"); got != logged {
		t.Errorf("%q logged %d times, want %d:\n%s", reason, got, logged, n.logs.String())
	}
}

// masterAlone configures runbook 2.8.4's carp0 on n and lets it become
// MASTER with no peer.
func masterAlone(t *testing.T, n *node) {
	t.Helper()
	runbook284(t, n, 0)
	time.Sleep(carp.MasterDown(1, 0) + time.Millisecond)
	synctest.Wait()
	expectInit(t, n, "carp0", "MASTER", "", 0)
}

// TestInitReasonInStatusAndLog: a vhid kept in INIT says why in the status
// and logs it once, however many events re-check it, and again only when
// the reason changes or after it could run in between.
func TestInitReasonInStatusAndLog(t *testing.T) {
	t.Run("parent no carrier", testInitReasonNoCarrier)
	t.Run("parent admin down", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			n := newNode(t, memkernel.NewSegment(), "10.0.0.2/24", "")
			defer n.stop(t)
			masterAlone(t, n)
			if err := n.k.SetLinkUp("em0", false); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			expectInit(t, n, "carp0", "INIT", "parent_down", 1)
			recheckInit(t, n)
			expectInit(t, n, "carp0", "INIT", "parent_down", 1)
		})
	})
	t.Run("carp disabled", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			n := newNode(t, memkernel.NewSegment(), "10.0.0.2/24", "")
			defer n.stop(t)
			masterAlone(t, n)
			if _, _, err := n.e.SetSysctl(context.Background(), "net.inet.carp.allow", 0); err != nil {
				t.Fatal(err)
			}
			expectInit(t, n, "carp0", "INIT", "carp_disabled", 1)
			recheckInit(t, n)
			expectInit(t, n, "carp0", "INIT", "carp_disabled", 1)
		})
	})
	t.Run("admin down", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			n := newNode(t, memkernel.NewSegment(), "10.0.0.2/24", "")
			defer n.stop(t)
			masterAlone(t, n)
			n.ifconfig(t, "carp0", api.Op{Kind: api.OpDown})
			expectInit(t, n, "carp0", "INIT", "admin_down", 1)
			recheckInit(t, n)
			expectInit(t, n, "carp0", "INIT", "admin_down", 1)
			n.ifconfig(t, "carp0", api.Op{Kind: api.OpUp})
			expectInit(t, n, "carp0", "BACKUP", "", 0)
		})
	})
	t.Run("no address", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			n := newNode(t, memkernel.NewSegment(), "10.0.0.2/24", "")
			defer n.stop(t)
			n.ifconfig(t, "carp0", api.Op{Kind: api.OpCreate})
			n.ifconfig(t, "carp0", api.Op{Kind: api.OpVHID, Int: 1}, api.Op{Kind: api.OpCarpdev, Str: "em0"})
			expectInit(t, n, "carp0", "INIT", "no_address", 1)
			recheckInit(t, n)
			expectInit(t, n, "carp0", "INIT", "no_address", 1)
		})
	})
	t.Run("parent not found", testInitReasonNoParent)
	t.Run("virtual link not created", testInitReasonVLinkFailed)
	t.Run("log level 0 says nothing", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			n := newNode(t, memkernel.NewSegment(), "10.0.0.2/24", "")
			defer n.stop(t)
			masterAlone(t, n)
			if _, _, err := n.e.SetSysctl(context.Background(), "net.inet.carp.log", 0); err != nil {
				t.Fatal(err)
			}
			n.k.SetCarrier("em0", false)
			synctest.Wait()
			expectInit(t, n, "carp0", "INIT", "no_carrier", 0)
		})
	})
}

// testInitReasonNoCarrier: a parent without carrier keeps the vhid in INIT,
// said once, again when another reason comes and goes, and again after
// the vhid ran in between.
func testInitReasonNoCarrier(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNode(t, memkernel.NewSegment(), "10.0.0.2/24", "")
		defer n.stop(t)
		masterAlone(t, n)
		n.k.SetCarrier("em0", false)
		synctest.Wait()
		expectInit(t, n, "carp0", "INIT", "no_carrier", 1)
		if !strings.Contains(n.logs.String(), "carp: 1@em0: in INIT: parent interface has no carrier (no_carrier)\n") {
			t.Errorf("log:\n%s", n.logs.String())
		}
		recheckInit(t, n)
		expectInit(t, n, "carp0", "INIT", "no_carrier", 1)
		// Another reason on top: said once more.
		if _, _, err := n.e.SetSysctl(context.Background(), "net.inet.carp.allow", 0); err != nil {
			t.Fatal(err)
		}
		expectInit(t, n, "carp0", "INIT", "carp_disabled", 1)
		if _, _, err := n.e.SetSysctl(context.Background(), "net.inet.carp.allow", 1); err != nil {
			t.Fatal(err)
		}
		expectInit(t, n, "carp0", "INIT", "no_carrier", 2)
		// Running again clears it; losing the carrier again says it again.
		n.k.SetCarrier("em0", true)
		synctest.Wait()
		expectInit(t, n, "carp0", "BACKUP", "", 0)
		n.k.SetCarrier("em0", false)
		synctest.Wait()
		expectInit(t, n, "carp0", "INIT", "no_carrier", 3)
	})
}

// testInitReasonNoParent: a parent link deleted keeps the vhid in INIT
// with no_parent, said once.
func testInitReasonNoParent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNode(t, memkernel.NewSegment(), "10.0.0.2/24", "")
		defer n.stop(t)
		masterAlone(t, n)
		if err := n.k.DeleteLink("em0"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		expectInit(t, n, "carp0", "INIT", "no_parent", 1)
		recheckInit(t, n)
		expectInit(t, n, "carp0", "INIT", "no_parent", 1)
		if !strings.Contains(n.logs.String(), "carp: 1@em0: in INIT: parent interface unknown or not found (no_parent)\n") {
			t.Errorf("log:\n%s", n.logs.String())
		}
	})
}

// testInitReasonVLinkFailed: a vhid whose hidden macvlan cannot be
// created stays in INIT with vlink_failed, said once.
func testInitReasonVLinkFailed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := memkernel.NewMemory()
		k.Clock = time.Now
		seg := memkernel.NewSegment()
		k.AddLink(osif.Link{Name: "em0", AdminUp: true, Carrier: true, MTU: 1500, Addrs: []netip.Prefix{netip.MustParsePrefix("192.168.1.3/24")}}, seg)
		em0, err := k.LinkByName("em0")
		if err != nil {
			t.Fatal(err)
		}
		// A link carpd did not make holds the name of the vhid's
		// hidden macvlan (dialect C): creating it fails.
		k.AddLink(osif.Link{Name: fmt.Sprintf("carpv%d.1", em0.Index), AdminUp: true, Carrier: true, MTU: 1500}, seg)
		n := startNode(t, k, "")
		defer n.stop(t)
		n.ifconfig(t, "em0", api.Op{Kind: api.OpVHID, Int: 1}, api.Op{Kind: api.OpPass, Str: "testpass"},
			api.Op{Kind: api.OpAddr, Prefix: netip.MustParsePrefix("192.168.1.50/32"), Alias: true})
		expectInit(t, n, "em0", "INIT", "vlink_failed", 1)
		recheckInit(t, n)
		expectInit(t, n, "em0", "INIT", "vlink_failed", 1)
	})
}

// TestDemotionFollowsTheFacts: the value `sysctl net.inet.carp.demotion`
// shows is the written part plus a factor per vhid whose parent is down,
// following a factor changed meanwhile, and nothing is left over when the
// parents come back.
func TestDemotionFollowsTheFacts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNode(t, memkernel.NewSegment(), "10.0.0.2/24", "")
		defer n.stop(t)
		runbook284(t, n, 0)
		n.ifconfig(t, "carp1", api.Op{Kind: api.OpCreate})
		n.ifconfig(t, "carp1", api.Op{Kind: api.OpVHID, Int: 2}, api.Op{Kind: api.OpCarpdev, Str: "em0"},
			api.Op{Kind: api.OpAddr, Prefix: netip.MustParsePrefix("10.0.0.5/24")})
		ctx := context.Background()
		demotion := func() int64 {
			t.Helper()
			st, err := n.e.Status(ctx, api.StatusQuery{})
			if err != nil {
				t.Fatal(err)
			}
			return knobValue(st, api.SysctlPrefix+"demotion")
		}
		set := func(leaf string, v int64) (int64, int64) {
			t.Helper()
			old, now, err := n.e.SetSysctl(ctx, api.SysctlPrefix+leaf, v)
			if err != nil {
				t.Fatal(err)
			}
			return old, now
		}
		if old, now := set("demotion", 10); old != 0 || now != 10 {
			t.Fatalf("demotion=10: %d -> %d", old, now)
		}
		n.k.SetCarrier("em0", false)
		synctest.Wait()
		if got := demotion(); got != 10+2*240 {
			t.Fatalf("two vhids on a parent without carrier: demotion %d, want 490", got)
		}
		if strings.Count(n.logs.String(), "carp: demoted by 240 to ") != 2 {
			t.Errorf("want one line per vhid:\n%s", n.logs.String())
		}
		if old, now := set("ifdown_demotion_factor", 100); old != 240 || now != 100 {
			t.Fatalf("factor=100: %d -> %d", old, now)
		}
		if got := demotion(); got != 10+2*100 {
			t.Fatalf("after the factor changed: demotion %d, want 210", got)
		}
		if !strings.Contains(n.logs.String(), "carp: demoted by -280 to 210 (sysctl)") {
			t.Errorf("log:\n%s", n.logs.String())
		}
		n.k.SetCarrier("em0", true)
		synctest.Wait()
		if got := demotion(); got != 10 {
			t.Fatalf("parent back: demotion %d, want 10", got)
		}
		// Removing a vhid whose parent is down takes its part with it.
		n.k.SetCarrier("em0", false)
		synctest.Wait()
		n.ifconfig(t, "carp1", api.Op{Kind: api.OpDestroy})
		if got := demotion(); got != 10+100 {
			t.Fatalf("carp1 destroyed: demotion %d, want 110", got)
		}
		if old, now := set("demotion", -10); old != 110 || now != 100 {
			t.Fatalf("demotion=-10: %d -> %d", old, now)
		}
	})
}
