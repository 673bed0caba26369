package engine

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
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

var vrrpVIP = netip.MustParsePrefix("10.0.0.1/32")

// vrrpLine is `ifconfig em0 vhid 1 carpver 3 vrrpprio P vrrpinterval I
// [more] alias 10.0.0.1/32`.
func vrrpLine(prio, interval int, more ...api.Op) []api.Op {
	ops := []api.Op{{Kind: api.OpVHID, Int: 1}, {Kind: api.OpVersion, Int: 3},
		{Kind: api.OpVRRPPrio, Int: prio}, {Kind: api.OpVRRPInterval, Int: interval}}
	ops = append(ops, more...)
	return append(ops, api.Op{Kind: api.OpAddr, Prefix: vrrpVIP, Alias: true})
}

// vrrpPair makes fw1 (priority 200) MASTER and fw2 (priority 100) BACKUP
// of VRRPv3 vhid 1 at an interval of 10 ms.
func vrrpPair(t *testing.T) (fw1, fw2 *node) {
	t.Helper()
	seg := memkernel.NewSegment()
	fw1 = newNode(t, seg, "10.0.0.2/24", "")
	fw2 = newNode(t, seg, "10.0.0.3/24", "")
	fw1.ifconfig(t, "em0", vrrpLine(200, 1)...)
	time.Sleep(carp.VRRPMasterDown(200, 1) + time.Microsecond)
	synctest.Wait()
	fw2.ifconfig(t, "em0", vrrpLine(100, 1)...)
	synctest.Wait()
	if fw1.state(t, "em0") != "MASTER" || fw2.state(t, "em0") != "BACKUP" {
		t.Fatalf("start: fw1 %s, fw2 %s", fw1.state(t, "em0"), fw2.state(t, "em0"))
	}
	return fw1, fw2
}

// TestVRRPPairAdvertisesAndFailsOver: the MASTER sends VRRPv3 adverts
// (version 3, its priority and interval, RFC checksum) every 10 ms; the
// BACKUP holds for a second of them, and takes over 3 intervals + its skew
// after the master falls silent.
func TestVRRPPairAdvertisesAndFailsOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fw1, fw2 := vrrpPair(t)
		defer fw1.stop(t)
		defer fw2.stop(t)
		var sent []osif.Packet
		fw1.k.SetSendHook(func(_ string, p osif.Packet) { sent = append(sent, p) })
		time.Sleep(time.Second)
		synctest.Wait()
		if fw2.state(t, "em0") != "BACKUP" {
			t.Fatalf("fw2 left BACKUP under a live master: %s\n%s", fw2.state(t, "em0"), fw2.logs)
		}
		if len(sent) < 95 || len(sent) > 101 {
			t.Errorf("%d adverts in 1 s at interval 10 ms", len(sent))
		}
		a, sum, err := carp.ParseVRRP(sent[0].Payload, sent[0].Src, sent[0].Dst)
		if err != nil || sum != carp.VRRPChecksumRFC || a.Priority != 200 || a.Interval != 1 || a.VRID != 1 || len(a.Addrs) != 1 || a.Addrs[0] != vrrpVIP.Addr() {
			t.Fatalf("advert %+v %v %v from %v to %v", a, sum, err, sent[0].Src, sent[0].Dst)
		}
		if sent[0].Dst != carp.GroupV4 || sent[0].Src != netip.MustParseAddr("10.0.0.2") {
			t.Errorf("advert %v -> %v, want 10.0.0.2 -> 224.0.0.18", sent[0].Src, sent[0].Dst)
		}
		// fw1 falls silent (as if killed): fw2 takes over after
		// 3 x 10 ms + (256-100) x 10 ms / 256.
		fw1.k.SetSendError(syscall.ENETDOWN)
		last := time.Now()
		down := carp.VRRPMasterDown(100, 1)
		time.Sleep(down - time.Millisecond)
		synctest.Wait()
		if fw2.state(t, "em0") != "BACKUP" {
			t.Fatalf("fw2 %s before the master-down interval", fw2.state(t, "em0"))
		}
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		if fw2.state(t, "em0") != "MASTER" {
			t.Fatalf("fw2 %s %v after the master's last advert", fw2.state(t, "em0"), time.Since(last))
		}
		vs := fw2.vhidStatus(t, "em0")
		if vs.Version != 3 || vs.Priority != 100 || vs.Interval != 1 || vs.Key != "" {
			t.Errorf("status %+v", vs)
		}
	})
}

// TestVRRPOrderlyStopHandsOverInSkewTime: a MASTER that stops sends a
// priority-0 advert; the BACKUP takes over after its skew time, not after
// the master-down interval.
func TestVRRPOrderlyStopHandsOverInSkewTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fw1, fw2 := vrrpPair(t)
		defer fw2.stop(t)
		var prios []byte
		fw1.k.SetSendHook(func(_ string, p osif.Packet) { prios = append(prios, p.Payload[2]) })
		fw1.stop(t)
		if len(prios) == 0 || prios[len(prios)-1] != 0 {
			t.Fatalf("priorities sent at stop %v, want a last 0", prios)
		}
		stopped := time.Now()
		time.Sleep(carp.VRRPSkew(100, 1) - time.Microsecond)
		synctest.Wait()
		if fw2.state(t, "em0") != "BACKUP" {
			t.Fatalf("fw2 %s before its skew time", fw2.state(t, "em0"))
		}
		time.Sleep(time.Microsecond)
		synctest.Wait()
		if fw2.state(t, "em0") != "MASTER" {
			t.Fatalf("fw2 %s %v after the priority-0 advert", fw2.state(t, "em0"), time.Since(stopped))
		}
	})
}

// TestVRRPPreemptsAtOnce: with net.inet.carp.preempt a backup of higher
// priority takes over from a live master on its first advert.
func TestVRRPPreemptsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := memkernel.NewSegment()
		low := newNode(t, seg, "10.0.0.2/24", "")
		high := newNode(t, seg, "10.0.0.3/24", "")
		defer low.stop(t)
		defer high.stop(t)
		if _, _, err := high.e.SetSysctl(context.Background(), "net.inet.carp.preempt", 1); err != nil {
			t.Fatal(err)
		}
		low.ifconfig(t, "em0", vrrpLine(50, 100)...)
		time.Sleep(carp.VRRPMasterDown(50, 100))
		synctest.Wait()
		high.ifconfig(t, "em0", vrrpLine(150, 100)...)
		time.Sleep(time.Second + time.Millisecond) // low's next advert
		synctest.Wait()
		if high.state(t, "em0") != "MASTER" || low.state(t, "em0") != "BACKUP" {
			t.Fatalf("high %s, low %s", high.state(t, "em0"), low.state(t, "em0"))
		}
	})
}

// TestVRRPVersionMismatchIsBadver: a CARP advert for a VRRPv3 vhid, and a
// VRRPv3 advert for a CARP vhid, are counted in badver and change nothing.
func TestVRRPVersionMismatchIsBadver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := memkernel.NewSegment()
		v3 := newNode(t, seg, "10.0.0.2/24", "")
		v2 := newNode(t, seg, "10.0.0.3/24", "")
		defer v3.stop(t)
		defer v2.stop(t)
		v3.ifconfig(t, "em0", vrrpLine(100, 100)...)
		v2.ifconfig(t, "em0", api.Op{Kind: api.OpVHID, Int: 1}, api.Op{Kind: api.OpAddr, Prefix: vrrpVIP, Alias: true})
		time.Sleep(5 * time.Second)
		synctest.Wait()
		// Neither hears the other as a master: both are MASTER.
		if v3.state(t, "em0") != "MASTER" || v2.state(t, "em0") != "MASTER" {
			t.Fatalf("v3 %s, v2 %s", v3.state(t, "em0"), v2.state(t, "em0"))
		}
		if c := v3.counters(t); c[api.StatBadVer] == 0 {
			t.Errorf("VRRPv3 host counted no badver: %v", c)
		}
		if c := v2.counters(t); c[api.StatBadVer] == 0 {
			t.Errorf("CARP host counted no badver: %v", c)
		}
	})
}

// TestVRRPVersionOfAnExistingVHIDIsRefused: FreeBSD's kernel answers EINVAL
// to carpver on an existing vhid of the other version, and nothing changes.
func TestVRRPVersionOfAnExistingVHIDIsRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNode(t, memkernel.NewSegment(), "10.0.0.2/24", "")
		defer n.stop(t)
		n.ifconfig(t, "em0", vrrpLine(120, 50)...)
		for _, line := range [][]api.Op{
			{{Kind: api.OpVHID, Int: 1}, {Kind: api.OpVersion, Int: 2}},
			{{Kind: api.OpVHID, Int: 1}, {Kind: api.OpVRRPPrio, Int: 255}},
			{{Kind: api.OpVHID, Int: 1}, {Kind: api.OpVRRPPrio, Int: 0}},
			{{Kind: api.OpVHID, Int: 1}, {Kind: api.OpVRRPInterval, Int: 4096}},
			{{Kind: api.OpVHID, Int: 1}, {Kind: api.OpAdvSkew, Int: 9}, {Kind: api.OpVersion, Int: 2}},
		} {
			err := n.e.Ifconfig(context.Background(), api.IfconfigRequest{Iface: "em0", Ops: line})
			var ae *api.Error
			if !errors.As(err, &ae) || ae.Errno != syscall.EINVAL || ae.Step != api.StepSetVHID {
				t.Errorf("%v: err %v, want SIOCSVH EINVAL", line, err)
			}
		}
		n.ifconfig(t, "em0", api.Op{Kind: api.OpVHID, Int: 1}, api.Op{Kind: api.OpVersion, Int: 3}, api.Op{Kind: api.OpVRRPPrio, Int: 130})
		vs := n.vhidStatus(t, "em0")
		if vs.Version != 3 || vs.Priority != 130 || vs.Interval != 50 || vs.AdvSkew != 0 {
			t.Errorf("status after the refusals %+v", vs)
		}
	})
}

// TestUnicastPeers: with peer set both ways, adverts go to the peer out of
// the parent itself, the pair keeps one MASTER, and an advert from any
// other host is dropped (badauth).
func TestUnicastPeers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := memkernel.NewSegment()
		fw1 := newNode(t, seg, "10.0.0.2/24", "")
		fw2 := newNode(t, seg, "10.0.0.3/24", "")
		other := newNode(t, seg, "10.0.0.4/24", "")
		defer fw1.stop(t)
		defer fw2.stop(t)
		defer other.stop(t)
		line := func(n *node, skew int, peer string) {
			n.ifconfig(t, "em0", api.Op{Kind: api.OpVHID, Int: 1}, api.Op{Kind: api.OpAdvSkew, Int: skew}, api.Op{Kind: api.OpPass, Str: "p"},
				api.Op{Kind: api.OpPeer, Str: peer}, api.Op{Kind: api.OpAddr, Prefix: vrrpVIP, Alias: true})
		}
		type out struct {
			link string
			dst  netip.Addr
		}
		var sent []out
		fw1.k.SetSendHook(func(link string, p osif.Packet) { sent = append(sent, out{link, p.Dst}) })
		line(fw1, 0, "10.0.0.3")
		time.Sleep(carp.MasterDown(1, 0))
		synctest.Wait()
		line(fw2, 100, "10.0.0.2")
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if fw1.state(t, "em0") != "MASTER" || fw2.state(t, "em0") != "BACKUP" {
			t.Fatalf("fw1 %s, fw2 %s", fw1.state(t, "em0"), fw2.state(t, "em0"))
		}
		for _, s := range sent {
			if s.link != "em0" || s.dst != netip.MustParseAddr("10.0.0.3") {
				t.Fatalf("advert out of %s to %v, want em0 to 10.0.0.3", s.link, s.dst)
			}
		}
		if vs := fw1.vhidStatus(t, "em0"); vs.Peer != "10.0.0.3" || vs.Peer6 != "" {
			t.Errorf("status peers %q %q", vs.Peer, vs.Peer6)
		}
		// A third host multicasting the same vhid (advskew 0) is not
		// fw2's peer: dropped, fw2 stays BACKUP under fw1.
		before := fw2.counters(t)[api.StatBadAuth]
		other.ifconfig(t, "em0", api.Op{Kind: api.OpVHID, Int: 1}, api.Op{Kind: api.OpPass, Str: "p"}, api.Op{Kind: api.OpAddr, Prefix: vrrpVIP, Alias: true})
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if fw2.counters(t)[api.StatBadAuth] <= before {
			t.Errorf("fw2 counted no badauth for the third host's adverts")
		}
		if fw2.state(t, "em0") != "BACKUP" {
			t.Errorf("fw2 %s", fw2.state(t, "em0"))
		}
		// peer 0.0.0.0 is FreeBSD's "no change".
		fw1.ifconfig(t, "em0", api.Op{Kind: api.OpVHID, Int: 1}, api.Op{Kind: api.OpPeer, Str: "0.0.0.0"})
		if vs := fw1.vhidStatus(t, "em0"); vs.Peer != "10.0.0.3" {
			t.Errorf("after peer 0.0.0.0: peer %q", vs.Peer)
		}
		// mcast: back to the group.
		fw1.ifconfig(t, "em0", api.Op{Kind: api.OpVHID, Int: 1}, api.Op{Kind: api.OpPeer, Str: "224.0.0.18"})
		if vs := fw1.vhidStatus(t, "em0"); vs.Peer != "" {
			t.Errorf("after mcast: peer %q", vs.Peer)
		}
	})
}

// TestVRRPOnACarpClone: dialect A takes carpver too, and the clone's vhid
// runs VRRPv3 (its adverts are version 3 with the default priority and
// interval).
func TestVRRPOnACarpClone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNode(t, memkernel.NewSegment(), "10.0.0.2/24", "")
		defer n.stop(t)
		var sent []osif.Packet
		n.k.SetSendHook(func(_ string, p osif.Packet) { sent = append(sent, p) })
		n.ifconfig(t, "carp0", api.Op{Kind: api.OpCreate})
		n.ifconfig(t, "carp0", api.Op{Kind: api.OpVHID, Int: 1}, api.Op{Kind: api.OpVersion, Int: 3}, api.Op{Kind: api.OpCarpdev, Str: "em0"},
			api.Op{Kind: api.OpAddr, Prefix: netip.MustParsePrefix("10.0.0.1/24")})
		time.Sleep(carp.VRRPMasterDown(carp.VRRPDefaultPriority, carp.VRRPDefaultInterval) + time.Millisecond)
		synctest.Wait()
		vs := n.vhidStatus(t, "carp0")
		if vs.State != "MASTER" || vs.Version != 3 || vs.Priority != 100 || vs.Interval != 100 {
			t.Fatalf("status %+v", vs)
		}
		if len(sent) == 0 || sent[0].Payload[0] != 0x31 || sent[0].Payload[2] != 100 {
			t.Fatalf("adverts %v", sent)
		}
		// The clone's vhid exists now: its version cannot change.
		err := n.e.Ifconfig(context.Background(), api.IfconfigRequest{Iface: "carp0", Ops: []api.Op{{Kind: api.OpVersion, Int: 2}}})
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Errno != syscall.EINVAL {
			t.Errorf("carpver 2 on the clone: %v", err)
		}
	})
}

// TestSameVHIDSeesEveryField: a line re-runs only the vhids sameVHID finds
// changed, so a field it does not compare would be a change that never
// takes effect until the next full pass.
func TestSameVHIDSeesEveryField(t *testing.T) {
	base := VHIDConfig{VHID: 1, Carpdev: "em0", AdvBase: 1, Key: "k", Addrs: []netip.Prefix{vrrpVIP}}
	typ := reflect.TypeOf(base)
	for i := range typ.NumField() {
		changed := base
		changed.Addrs = slices.Clone(base.Addrs)
		f := reflect.ValueOf(&changed).Elem().Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(f.String() + "x")
		case reflect.Uint8, reflect.Uint16:
			f.SetUint(f.Uint() + 1)
		case reflect.Slice:
			f.Set(reflect.ValueOf([]netip.Prefix{netip.MustParsePrefix("10.9.9.9/32")}))
		case reflect.Struct: // netip.Addr
			f.Set(reflect.ValueOf(netip.MustParseAddr("10.0.0.9")))
		default:
			t.Fatalf("field %s of kind %v: teach this test to change it", typ.Field(i).Name, f.Kind())
		}
		if sameVHID(base, changed) {
			t.Errorf("sameVHID does not see a change of %s", typ.Field(i).Name)
		}
	}
}

// TestVRRPPriorityChangeTakesEffect: a line that changes only vrrpprio
// reaches the running vhid: its next advert carries the new priority.
func TestVRRPPriorityChangeTakesEffect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNode(t, memkernel.NewSegment(), "10.0.0.2/24", "")
		defer n.stop(t)
		n.ifconfig(t, "em0", vrrpLine(120, 10)...)
		time.Sleep(carp.VRRPMasterDown(120, 10) + time.Millisecond)
		synctest.Wait()
		var prios []byte
		n.k.SetSendHook(func(_ string, p osif.Packet) { prios = append(prios, p.Payload[2]) })
		n.ifconfig(t, "em0", api.Op{Kind: api.OpVHID, Int: 1}, api.Op{Kind: api.OpVRRPPrio, Int: 130})
		time.Sleep(150 * time.Millisecond)
		synctest.Wait()
		if len(prios) == 0 || prios[len(prios)-1] != 130 {
			t.Fatalf("priorities advertised after vrrpprio 130: %v", prios)
		}
	})
}

// TestUnicastAdvertsFromBeyondTheLinkAreDropped: a vhid in multicast mode
// checks the TTL of every advert, also one sent to its unicast address: a
// VRRPv3 advert (no authentication) or a CARP one from a router away, TTL
// 3, priority 254 / advskew 0, is counted in badttl and changes nothing.
func TestUnicastAdvertsFromBeyondTheLinkAreDropped(t *testing.T) {
	for _, vrrp := range []bool{true, false} {
		synctest.Test(t, func(t *testing.T) {
			seg := memkernel.NewSegment()
			victim := newNode(t, seg, "10.0.0.2/24", "")
			attacker := newNode(t, seg, "10.0.0.66/24", "")
			defer victim.stop(t)
			defer attacker.stop(t)
			peer := api.Op{Kind: api.OpPeer, Str: "10.0.0.2"}
			if vrrp {
				victim.ifconfig(t, "em0", vrrpLine(100, 10)...)
				attacker.ifconfig(t, "em0", vrrpLine(254, 10, peer)...)
			} else {
				victim.ifconfig(t, "em0", api.Op{Kind: api.OpVHID, Int: 1}, api.Op{Kind: api.OpAdvSkew, Int: 100}, api.Op{Kind: api.OpAddr, Prefix: vrrpVIP, Alias: true})
				attacker.ifconfig(t, "em0", api.Op{Kind: api.OpVHID, Int: 1}, peer, api.Op{Kind: api.OpAddr, Prefix: vrrpVIP, Alias: true})
			}
			attacker.k.SetSendTTL(3)
			time.Sleep(10 * time.Second)
			synctest.Wait()
			if s := victim.state(t, "em0"); s != "MASTER" {
				t.Fatalf("vrrp=%v: victim %s after unicast adverts with TTL 3", vrrp, s)
			}
			if c := victim.counters(t); c[api.StatBadTTL] == 0 {
				t.Errorf("vrrp=%v: no badttl counted: %v", vrrp, c)
			}
		})
	}
}
