package engine

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bsdcarp/bsdcarp/carp"
	"github.com/bsdcarp/bsdcarp/carp/api"
	"github.com/bsdcarp/bsdcarp/carp/control"
	"github.com/bsdcarp/bsdcarp/carp/osif"
	"github.com/bsdcarp/bsdcarp/internal/jsonschema"
	"github.com/bsdcarp/bsdcarp/kernelshim/memkernel"
)

// report is n's JSON status (what ifconfig-carp --json prints), checked
// against docs/status.schema.json, decoded again.
func (n *node) report(t *testing.T, showKeys bool) api.Report {
	t.Helper()
	st, err := n.e.Status(context.Background(), api.StatusQuery{Detail: true, ShowKeys: showKeys})
	if err != nil {
		t.Fatal(err)
	}
	r, err := api.NewReport(st, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	doc, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	schema, err := os.ReadFile("../../docs/status.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	bad, err := jsonschema.Validate(schema, doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bad {
		t.Errorf("status.schema.json: %s", b)
	}
	if len(bad) > 0 {
		t.Fatalf("document:\n%s", doc)
	}
	var back api.Report
	if err := json.Unmarshal(doc, &back); err != nil {
		t.Fatal(err)
	}
	return back
}

func reportVHID(t *testing.T, r api.Report, iface string, vhid uint8) api.ReportVHID {
	t.Helper()
	for _, v := range r.VHIDs {
		if v.Iface == iface && v.VHID == vhid {
			return v
		}
	}
	t.Fatalf("no vhid %d on %s in %+v", vhid, iface, r.VHIDs)
	return api.ReportVHID{}
}

// vrrp2 is `ifconfig em0 vhid 2 carpver 3 vrrpprio P alias 10.0.0.5/32`.
func vrrp2(prio int) []api.Op {
	return []api.Op{{Kind: api.OpVHID, Int: 2}, {Kind: api.OpVersion, Int: 3}, {Kind: api.OpVRRPPrio, Int: prio},
		{Kind: api.OpAddr, Prefix: netip.MustParsePrefix("10.0.0.5/32"), Alias: true}}
}

// TestJSONStatusOfALivePair: the JSON status of a MASTER and a BACKUP
// (CARP on carp0, VRRPv3 on em0, a vhid stuck in INIT) validates against
// docs/status.schema.json and counts what happened: transitions, adverts
// out of the MASTER and into the BACKUP, the MASTER the BACKUP heard, drops
// by reason for the vhid they carried, the reason for INIT.
func TestJSONStatusOfALivePair(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := memkernel.NewSegment()
		fw1 := newNode(t, seg, "10.0.0.2/24", "")
		defer fw1.stop(t)
		start := time.Now()
		runbook284(t, fw1, 0)
		fw1.ifconfig(t, "em0", vrrp2(200)...)
		time.Sleep(carp.MasterDown(1, 0) + time.Second)
		synctest.Wait()
		fw2 := newNode(t, seg, "10.0.0.3/24", "")
		defer fw2.stop(t)
		runbook284(t, fw2, 100)
		fw2.ifconfig(t, "em0", vrrp2(100)...)
		// carp1 is down by the admin: INIT, admin_down.
		fw2.ifconfig(t, "carp1", api.Op{Kind: api.OpCreate})
		fw2.ifconfig(t, "carp1", api.Op{Kind: api.OpVHID, Int: 9}, api.Op{Kind: api.OpCarpdev, Str: "em0"},
			api.Op{Kind: api.OpAddr, Prefix: netip.MustParsePrefix("10.0.0.9/24")})
		fw2.ifconfig(t, "carp1", api.Op{Kind: api.OpDown})
		synctest.Wait()
		joined := time.Now()

		// A host without the password sends a "better" advert for vhid 1
		// 10 times, and 5 with a bad checksum.
		evil := memkernel.NewMemory()
		evil.AddLink(osif.Link{Name: "em0", AdminUp: true, Carrier: true, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.66/24")}}, seg)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if err := evil.OpenCARP(ctx, make(chan osif.Packet, 1)); err != nil {
			t.Fatal(err)
		}
		vip := []netip.Addr{netip.MustParseAddr("10.0.0.1")}
		for i := range 10 {
			bad := carp.BuildAdvert(1, 1, 0, uint64(i), carp.Key("guess"), vip)
			if err := evil.SendCARP("em0", netip.MustParseAddr("10.0.0.66"), carp.GroupV4, 0, bad); err != nil {
				t.Fatal(err)
			}
			if i%2 == 0 {
				bad[7] ^= 0xff // the checksum
				_ = evil.SendCARP("em0", netip.MustParseAddr("10.0.0.66"), carp.GroupV4, 0, bad)
			}
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()

		r1, r2 := fw1.report(t, false), fw2.report(t, true)
		m, b := reportVHID(t, r1, "carp0", 1), reportVHID(t, r2, "carp0", 1)
		if m.State != "MASTER" || b.State != "BACKUP" {
			t.Fatalf("states %s %s", m.State, b.State)
		}
		if m.Transitions != (api.ReportTransitions{Count: 2, ToMaster: 1}) || !m.Since.Equal(start.Add(carp.MasterDown(1, 0)).UTC()) {
			t.Errorf("MASTER transitions %+v since %v (started %v)", m.Transitions, m.Since, start)
		}
		if b.Transitions != (api.ReportTransitions{Count: 1}) || !b.Since.Equal(joined.UTC()) {
			t.Errorf("BACKUP transitions %+v since %v (joined %v)", b.Transitions, b.Since, joined)
		}
		// advbase 1: about 11 s of adverts from the MASTER, 10 s of them heard.
		if m.Adverts.Out < 10 || m.Adverts.Out > 12 || m.Adverts.In != 0 {
			t.Errorf("MASTER adverts %+v", m.Adverts)
		}
		if b.Adverts.In < 9 || b.Adverts.In > 11 || b.Adverts.Out != 0 {
			t.Errorf("BACKUP adverts %+v", b.Adverts)
		}
		if b.MasterHeard == nil || b.MasterHeard.Addr != "10.0.0.2" || time.Now().Sub(b.MasterHeard.At) > time.Second {
			t.Errorf("BACKUP heard %+v", b.MasterHeard)
		}
		if m.MasterHeard != nil {
			t.Errorf("MASTER reports a master heard: %+v", m.MasterHeard)
		}
		for _, v := range []api.ReportVHID{m, b} {
			if v.Drops["badauth"] != 10 || v.Drops["badsum"] != 5 || v.Drops["badttl"] != 0 {
				t.Errorf("%s drops %v, want 10 badauth, 5 badsum", v.State, v.Drops)
			}
		}
		if r2.Stats["badauth"] != 10 || r2.Stats["badsum"] != 5 || r2.Knobs["net.inet.carp.allow"] != 1 {
			t.Errorf("host stats %v knobs %v", r2.Stats, r2.Knobs)
		}
		if m.CARP == nil || m.CARP.AdvSkew != 0 || m.VRRP != nil || m.Version != 2 || m.Peer != "224.0.0.18" || m.Key != "" {
			t.Errorf("MASTER parameters %+v", m)
		}
		if b.Key != "lanpasswd" {
			t.Errorf("root's -k status has key %q", b.Key)
		}
		vm, vb := reportVHID(t, r1, "em0", 2), reportVHID(t, r2, "em0", 2)
		if vm.State != "MASTER" || vb.State != "BACKUP" || vb.Version != 3 || vb.VRRP == nil || vb.VRRP.Priority != 100 || vb.CARP != nil {
			t.Errorf("VRRPv3 vhids %+v %+v", vm, vb)
		}
		if vb.Adverts.In < 9 || vb.MasterHeard == nil || vb.MasterHeard.Addr != "10.0.0.2" {
			t.Errorf("VRRPv3 BACKUP %+v", vb)
		}
		in := reportVHID(t, r2, "carp1", 9)
		if in.State != "INIT" || in.InitReason != api.InitAdminDown || in.Transitions != (api.ReportTransitions{Count: 2}) { // INIT -> BACKUP -> INIT
			t.Errorf("INIT vhid %+v", in)
		}
		if r1.Demotion != (api.Demotion{}) {
			t.Errorf("demotion %+v", r1.Demotion)
		}
		// The demotion's parts: fw2's parent loses its carrier.
		fw2.k.SetCarrier("em0", false)
		synctest.Wait()
		r2 = fw2.report(t, false)
		if d := r2.Demotion; d.IfDownVHIDs != 3 || d.IfDown != 3*240 || d.Effective != d.Knob+d.IfDown+d.SendErr {
			t.Errorf("demotion with em0 down %+v", d)
		}
		if v := reportVHID(t, r2, "carp0", 1); !v.Demotion.IfDown || v.State != "INIT" || v.InitReason != api.InitNoCarrier {
			t.Errorf("carp0 with em0 down %+v", v)
		}
	})
}

// TestDetailedStatusOf1020VHIDsFitsAControlMessage: the detailed status of
// 255 vhids on each of 4 parents, as the control socket sends it, stays
// within control.MaxMessage with room to spare.
func TestDetailedStatusOf1020VHIDsFitsAControlMessage(t *testing.T) {
	e, _ := scaleEngine(t, 4, 255)
	st, err := e.Status(context.Background(), api.StatusQuery{Detail: true, ShowKeys: true})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(control.Response{Version: control.Version, Status: &st})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.VHIDs) != 1020 || len(b) > control.MaxMessage*3/4 {
		t.Fatalf("%d vhids: %d bytes, limit %d", len(st.VHIDs), len(b), control.MaxMessage)
	}
	t.Logf("1020 vhids: %d bytes of detailed status", len(b))
}
