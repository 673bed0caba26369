package engine

import (
	"context"
	"net/netip"
	"slices"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bsdcarp/bsdcarp/carp"
	"github.com/bsdcarp/bsdcarp/carp/api"
	"github.com/bsdcarp/bsdcarp/carp/osif"
	"github.com/bsdcarp/bsdcarp/kernelshim/memkernel"
)

// TestCloneOnDemand: OpenBSD's ifconfig creates a carpN that a line
// configures (getinfo() with create set), unless the line starts with
// destroy; the result is the same clone that "create" makes.
func TestCloneOnDemand(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNode(t, memkernel.NewSegment(), "192.168.7.2/24", "")
		defer n.stop(t)
		ctx := context.Background()
		n.ifconfig(t, "carp3", api.Op{Kind: api.OpVHID, Int: 3}, api.Op{Kind: api.OpPass, Str: "x"}, api.Op{Kind: api.OpCarpdev, Str: "em0"},
			api.Op{Kind: api.OpAddr, Prefix: netip.MustParsePrefix("192.168.7.50/24")})
		st, err := n.e.Status(ctx, api.StatusQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(st.Clones, func(c api.CloneStatus) bool { return c.Name == "carp3" && c.Up }) {
			t.Fatalf("clones after configuring carp3 without create: %+v", st.Clones)
		}
		if len(st.VHIDs) != 1 || st.VHIDs[0].Iface != "carp3" || st.VHIDs[0].VHID != 3 || st.VHIDs[0].Carpdev != "em0" {
			t.Fatalf("vhids: %+v", st.VHIDs)
		}
		time.Sleep(carp.MasterDown(1, 0) + time.Millisecond)
		synctest.Wait()
		if got := n.state(t, "carp3"); got != "MASTER" {
			t.Fatalf("carp3 made on demand is %s, want MASTER", got)
		}
		// "create" of the clone made on demand: it exists.
		err = n.e.Ifconfig(ctx, api.IfconfigRequest{Iface: "carp3", Ops: []api.Op{{Kind: api.OpCreate}}})
		if !refused(err, api.Refused(api.StepCreate, syscall.EEXIST)) {
			t.Errorf("create after the implicit one: %v", err)
		}
		// destroy of one that does not exist stays an error, and makes nothing.
		err = n.e.Ifconfig(ctx, api.IfconfigRequest{Iface: "carp4", Ops: []api.Op{{Kind: api.OpDestroy}}})
		if !refused(err, &api.Error{Reason: api.ReasonNoInterface, Name: "carp4"}) {
			t.Errorf("destroy of a missing clone: %v", err)
		}
		// A bare "up" or "down" creates it too, as on OpenBSD.
		n.ifconfig(t, "carp5", api.Op{Kind: api.OpDown})
		st, _ = n.e.Status(ctx, api.StatusQuery{})
		if !slices.ContainsFunc(st.Clones, func(c api.CloneStatus) bool { return c.Name == "carp5" && !c.Up }) {
			t.Errorf("clones after ifconfig carp5 down: %+v", st.Clones)
		}
		if slices.ContainsFunc(st.Clones, func(c api.CloneStatus) bool { return c.Name == "carp4" }) {
			t.Errorf("a refused destroy made carp4: %+v", st.Clones)
		}
		// A Linux link of that name carpd does not own blocks it.
		n.k.AddLink(osif.Link{Name: "carp9", MTU: 1500, Kind: "veth"}, nil)
		synctest.Wait()
		err = n.e.Ifconfig(ctx, api.IfconfigRequest{Iface: "carp9", Ops: []api.Op{{Kind: api.OpVHID, Int: 9}}})
		if !refused(err, api.Refused(api.StepCreate, syscall.EEXIST)) {
			t.Errorf("carp9 over a foreign link: %v", err)
		}
		n.ifconfig(t, "carp3", api.Op{Kind: api.OpDestroy})
		n.ifconfig(t, "carp5", api.Op{Kind: api.OpDestroy})
	})
}

func demotionOf(t *testing.T, n *node) int64 {
	t.Helper()
	st, err := n.e.Status(context.Background(), api.StatusQuery{})
	if err != nil {
		t.Fatal(err)
	}
	return knobValue(st, api.SysctlPrefix+"demotion")
}

// TestGroupDemote: OpenBSD's "ifconfig -g carp carpdemote N" adds N to the
// demotion every vhid advertises (net.inet.carp.demotion), within 0..255;
// with preemption the peer takes every vhid over, and lowering it again
// gives them back.
func TestGroupDemote(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := memkernel.NewSegment()
		fw1 := newNode(t, seg, "10.0.0.2/24", "")
		defer fw1.stop(t)
		fw2 := newNode(t, seg, "10.0.0.3/24", "")
		defer fw2.stop(t)
		ctx := context.Background()
		for _, n := range []*node{fw1, fw2} {
			if _, _, err := n.e.SetSysctl(ctx, api.SysctlPrefix+"preempt", 1); err != nil {
				t.Fatal(err)
			}
		}
		vhids := func(n *node, skew int) {
			n.ifconfig(t, "carp0", api.Op{Kind: api.OpVHID, Int: 1}, api.Op{Kind: api.OpCarpdev, Str: "em0"}, api.Op{Kind: api.OpAdvSkew, Int: skew},
				api.Op{Kind: api.OpAddr, Prefix: netip.MustParsePrefix("10.0.0.1/24")})
			n.ifconfig(t, "carp1", api.Op{Kind: api.OpVHID, Int: 2}, api.Op{Kind: api.OpCarpdev, Str: "em0"}, api.Op{Kind: api.OpAdvSkew, Int: skew},
				api.Op{Kind: api.OpAddr, Prefix: netip.MustParsePrefix("10.0.0.11/24")})
		}
		vhids(fw1, 0)
		time.Sleep(carp.MasterDown(1, 0) + time.Millisecond)
		synctest.Wait()
		// FreeBSD's demotion adds to the advskew advertised: 50 moves the
		// vhids to a peer whose advskew is below 50.
		vhids(fw2, 20)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		both := func(n *node, want string) bool {
			return n.state(t, "carp0") == want && n.state(t, "carp1") == want
		}
		if !both(fw1, "MASTER") || !both(fw2, "BACKUP") {
			t.Fatalf("before: fw1 %s/%s fw2 %s/%s", fw1.state(t, "carp0"), fw1.state(t, "carp1"), fw2.state(t, "carp0"), fw2.state(t, "carp1"))
		}
		if err := groupDemote(ctx, fw1, 50); err != nil {
			t.Fatal(err)
		}
		if got := demotionOf(t, fw1); got != 50 {
			t.Fatalf("demotion after carpdemote 50 = %d", got)
		}
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if !both(fw1, "BACKUP") || !both(fw2, "MASTER") {
			t.Fatalf("after carpdemote 50: fw1 %s/%s fw2 %s/%s", fw1.state(t, "carp0"), fw1.state(t, "carp1"), fw2.state(t, "carp0"), fw2.state(t, "carp1"))
		}
		if err := groupDemote(ctx, fw1, -50); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if !both(fw1, "MASTER") || !both(fw2, "BACKUP") {
			t.Fatalf("after -carpdemote 50: fw1 %s/%s fw2 %s/%s", fw1.state(t, "carp0"), fw1.state(t, "carp1"), fw2.state(t, "carp0"), fw2.state(t, "carp1"))
		}
		checkGroupDemoteBounds(t, fw1)
	})
}

// groupDemote is "ifconfig -g carp carpdemote delta" on n.
func groupDemote(ctx context.Context, n *node, delta int) error {
	return n.e.Ifconfig(ctx, api.IfconfigRequest{Iface: "carp", Ops: []api.Op{{Kind: api.OpGroupDemote, Int: delta}}})
}

// checkGroupDemoteBounds checks OpenBSD's bounds of the group demotion on
// fw1, whose demotion is 0: refused changes, 255 at most, and that the
// sysctl changes the same counter.
func checkGroupDemoteBounds(t *testing.T, fw1 *node) {
	ctx := context.Background()
	// OpenBSD's bounds: never below 0, never above 255; a refused
	// change changes nothing.
	for _, c := range []struct {
		group string
		delta int
		want  *api.Error
	}{
		{"carp", -1, &api.Error{Step: api.StepGroupAttr, Errno: syscall.EINVAL, Name: "carp"}},
		{"carp", 256, &api.Error{Step: api.StepGroupAttr, Errno: syscall.EINVAL, Name: "carp"}},
		{"internal", 1, &api.Error{Step: api.StepGroupAttr, Errno: syscall.ENOENT, Name: "internal"}},
	} {
		err := fw1.e.Ifconfig(ctx, api.IfconfigRequest{Iface: c.group, Ops: []api.Op{{Kind: api.OpGroupDemote, Int: c.delta}}})
		if !refused(err, c.want) {
			t.Errorf("%s %+d: %v, want %v", c.group, c.delta, err, c.want)
		}
	}
	if err := groupDemote(ctx, fw1, 128); err != nil {
		t.Fatal(err)
	}
	if err := groupDemote(ctx, fw1, 127); err != nil {
		t.Fatal(err)
	}
	if err := groupDemote(ctx, fw1, 1); err == nil {
		t.Error("carpdemote beyond 255 accepted")
	}
	if got := demotionOf(t, fw1); got != 255 {
		t.Errorf("demotion = %d, want 255", got)
	}
	// The sysctl and the group are one counter.
	if _, now, err := fw1.e.SetSysctl(ctx, api.SysctlPrefix+"demotion", -255); err != nil || now != 0 {
		t.Errorf("sysctl demotion=-255: %d, %v", now, err)
	}
}

// carp00 or carp01 is a typo, not a clone: FreeBSD's ifc_name2unit refuses
// a unit number with a leading zero, and with clones made on demand it
// must not silently become a second interface.
func TestLeadingZeroIsNotACloneName(t *testing.T) {
	for name, want := range map[string]bool{"carp0": true, "carp10": true, "carp00": false, "carp01": false, "carp": false, "carpx": false} {
		if got := api.IsCloneName(name); got != want {
			t.Errorf("api.IsCloneName(%q) = %v, want %v", name, got, want)
		}
	}
}
