package engine

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bsdcarp/bsdcarp/carp"
	"github.com/bsdcarp/bsdcarp/carp/api"
	"github.com/bsdcarp/bsdcarp/carp/osif"
	"github.com/bsdcarp/bsdcarp/internal/loglines"
	"github.com/bsdcarp/bsdcarp/kernelshim/memkernel"
)

// node is one host of an in-memory network: a Memory kernel and its engine.
type node struct {
	k      *memkernel.Memory
	e      *Engine
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newNode makes a host with em0 (addr) on seg and starts its engine. Call
// inside a synctest bubble.
func newNode(t *testing.T, seg *memkernel.Segment, addr, stateDir string) *node {
	t.Helper()
	return newNodeWith(t, seg, addr, Options{StateDir: stateDir})
}

// newNodeWith is newNode with opts (their Kernel made here).
func newNodeWith(t *testing.T, seg *memkernel.Segment, addr string, opts Options) *node {
	t.Helper()
	k := memkernel.NewMemory()
	k.Clock = time.Now
	k.AddLink(osif.Link{Name: "em0", MAC: net.HardwareAddr{2, 0, 0, 0, 0, byte(len(addr))}, MTU: 1500,
		AdminUp: true, Carrier: true, Running: true, Broadcast: true, Multicast: true, Kind: "veth",
		Addrs: []netip.Prefix{netip.MustParsePrefix(addr)}}, seg)
	opts.Kernel = k
	return startNodeWith(t, opts)
}

func startNode(t *testing.T, k *memkernel.Memory, stateDir string) *node {
	t.Helper()
	return startNodeWith(t, Options{Kernel: k, StateDir: stateDir})
}

// startNodeWith starts an engine with opts (its Kernel a *memkernel.Memory)
// logging into the node's buffer, and waits until it is ready.
func startNodeWith(t *testing.T, opts Options) *node {
	t.Helper()
	logs := &syncBuffer{}
	opts.Logger = loglines.New(logs, false)
	e, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &node{k: opts.Kernel.(*memkernel.Memory), e: e, logs: logs, cancel: cancel, done: make(chan error, 1)}
	go func() { n.done <- e.Run(ctx) }()
	select {
	case <-e.Ready():
	case err := <-n.done:
		t.Fatalf("Run ended before it was ready: %v", err)
	}
	return n
}

func (n *node) stop(t *testing.T) {
	t.Helper()
	n.cancel()
	if err := <-n.done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// ifconfig applies one request and fails the test on error.
func (n *node) ifconfig(t *testing.T, iface string, ops ...api.Op) {
	t.Helper()
	if err := n.e.Ifconfig(context.Background(), api.IfconfigRequest{Iface: iface, Ops: ops}); err != nil {
		t.Fatalf("ifconfig %s %v: %v", iface, ops, err)
	}
}

func (n *node) state(t *testing.T, iface string) string {
	t.Helper()
	st, err := n.e.Status(context.Background(), api.StatusQuery{})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range st.VHIDs {
		if v.Iface == iface {
			return v.State
		}
	}
	return ""
}

// runbook284 is `ifconfig carp0 create` and
// `ifconfig carp0 vhid 1 pass lanpasswd carpdev em0 advskew N 10.0.0.1 255.255.255.0`.
func runbook284(t *testing.T, n *node, advskew int) {
	t.Helper()
	n.ifconfig(t, "carp0", api.Op{Kind: api.OpCreate})
	n.ifconfig(t, "carp0", api.Op{Kind: api.OpVHID, Int: 1}, api.Op{Kind: api.OpPass, Str: "lanpasswd"}, api.Op{Kind: api.OpCarpdev, Str: "em0"},
		api.Op{Kind: api.OpAdvSkew, Int: advskew}, api.Op{Kind: api.OpAddr, Prefix: netip.MustParsePrefix("10.0.0.1/24")})
}

func TestAloneBackupBecomesMasterAtMasterDownInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNode(t, memkernel.NewSegment(), "10.0.0.2/24", "")
		defer n.stop(t)
		runbook284(t, n, 100)
		start := time.Now()
		if got := n.state(t, "carp0"); got != "BACKUP" {
			t.Fatalf("state right after configuration = %s, want BACKUP", got)
		}
		down := carp.MasterDown(1, 100) // 3 s + 100/256 s
		time.Sleep(down - time.Microsecond)
		synctest.Wait()
		if got := n.state(t, "carp0"); got != "BACKUP" {
			t.Fatalf("state 1µs before the master-down interval = %s", got)
		}
		time.Sleep(time.Microsecond)
		synctest.Wait()
		if got := n.state(t, "carp0"); got != "MASTER" {
			t.Fatalf("state at %v = %s, want MASTER", time.Since(start), got)
		}
		if got := n.k.Addrs("carp0"); !slices.Equal(got, []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}) {
			t.Fatalf("kernel addresses of carp0 = %v", got)
		}
		for _, want := range []string{
			"carp: 1@em0: INIT -> BACKUP (initialization complete)",
			"carp: 1@em0: BACKUP -> MASTER (master timed out)",
		} {
			if !strings.Contains(n.logs.String(), want) {
				t.Errorf("log lacks %q:\n%s", want, n.logs.String())
			}
		}
		// em0 tuned, carp0 made with the virtual MAC; at MASTER the address
		// and its announcement.
		wantOps(t, n.k.Transcript(), concat(setupCarp0, carp0Addr, carp0Announce))
	})
}

func TestMasterKeepsAddressesFreshAndBackupNeverHoldsThem(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := memkernel.NewSegment()
		fw1 := newNode(t, seg, "10.0.0.2/24", "")
		defer fw1.stop(t)
		fw2 := newNode(t, seg, "10.0.0.3/24", "")
		defer fw2.stop(t)
		runbook284(t, fw1, 0)
		time.Sleep(carp.MasterDown(1, 0) + time.Millisecond)
		synctest.Wait()
		runbook284(t, fw2, 100)
		// A minute of steady state: the lifetimes never lapse on the MASTER,
		// and the BACKUP never takes the address.
		for i := 0; i < 600; i++ {
			time.Sleep(100 * time.Millisecond)
			synctest.Wait()
			if len(fw1.k.Addrs("carp0")) != 1 || fw1.state(t, "carp0") != "MASTER" {
				t.Fatalf("at %d00ms fw1 is %s with %v", i, fw1.state(t, "carp0"), fw1.k.Addrs("carp0"))
			}
			if len(fw2.k.Addrs("carp0")) != 0 || fw2.state(t, "carp0") != "BACKUP" {
				t.Fatalf("at %d00ms fw2 is %s with %v", i, fw2.state(t, "carp0"), fw2.k.Addrs("carp0"))
			}
		}
	})
}

func TestGracefulStopBowsOutAndLeavesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := memkernel.NewSegment()
		fw1 := newNode(t, seg, "10.0.0.2/24", "")
		fw1.k.SetSysctlValue("net/ipv4/conf/em0/arp_ignore", "0")
		fw2 := newNode(t, seg, "10.0.0.3/24", "")
		defer fw2.stop(t)
		runbook284(t, fw1, 0)
		if v := fw1.k.Sysctl("net/ipv4/conf/em0/arp_ignore"); v != "1" {
			t.Fatalf("arp_ignore on em0 while running = %q, want 1", v)
		}
		time.Sleep(carp.MasterDown(1, 0) + time.Millisecond)
		synctest.Wait()
		runbook284(t, fw2, 100)
		synctest.Wait()
		fw1.stop(t)
		synctest.Wait()
		// The bow-out makes the backup MASTER at once, not after 3 s.
		if got := fw2.state(t, "carp0"); got != "MASTER" {
			t.Fatalf("fw2 after fw1's graceful stop = %s, want MASTER at once", got)
		}
		if !strings.Contains(fw2.logs.String(), "BACKUP -> MASTER (master will time out)") {
			t.Errorf("fw2 log:\n%s", fw2.logs.String())
		}
		if _, err := fw1.k.LinkByName("carp0"); !errors.Is(err, osif.ErrNoLink) {
			t.Errorf("carp0 still exists on fw1 after stop: %v", err)
		}
		if v := fw1.k.Sysctl("net/ipv4/conf/em0/arp_ignore"); v != "0" {
			t.Errorf("arp_ignore on fw1 em0 = %q after stop, want restored", v)
		}
	})
}

func TestRejectedCommandChangesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		n := newNode(t, memkernel.NewSegment(), "10.0.0.2/24", dir)
		defer n.stop(t)
		runbook284(t, n, 100)
		before, _ := n.e.Status(context.Background(), api.StatusQuery{ShowKeys: true})
		saved, _ := os.ReadFile(filepath.Join(dir, configFile))
		cases := []struct {
			name string
			req  api.IfconfigRequest
			want *api.Error
		}{
			{"advskew out of range after a good word", api.IfconfigRequest{Iface: "carp0", Ops: []api.Op{{Kind: api.OpPass, Str: "new"}, {Kind: api.OpAdvSkew, Int: 255}}}, api.Refused(api.StepSetVHID, syscall.EINVAL)},
			{"advbase zero", api.IfconfigRequest{Iface: "carp0", Ops: []api.Op{{Kind: api.OpAdvBase, Int: 0}}}, api.Refused(api.StepSetVHID, syscall.EINVAL)},
			{"carpdev that does not exist", api.IfconfigRequest{Iface: "carp0", Ops: []api.Op{{Kind: api.OpCarpdev, Str: "em9"}}}, api.Refused(api.StepSetVHID, syscall.EINVAL)},
			{"create twice", api.IfconfigRequest{Iface: "carp0", Ops: []api.Op{{Kind: api.OpCreate}}}, api.Refused(api.StepCreate, syscall.EEXIST)},
			{"unknown interface destroyed", api.IfconfigRequest{Iface: "carp7", Ops: []api.Op{{Kind: api.OpDestroy}}}, &api.Error{Reason: api.ReasonNoInterface, Name: "carp7"}},
			{"a clone made on demand by a refused line", api.IfconfigRequest{Iface: "carp7", Ops: []api.Op{{Kind: api.OpVHID, Int: 300}}}, api.Refused(api.StepSetVHID, syscall.EINVAL)},
			{"same vhid twice on a parent", api.IfconfigRequest{Iface: "carp1", Ops: []api.Op{{Kind: api.OpCreate}, {Kind: api.OpVHID, Int: 1}, {Kind: api.OpCarpdev, Str: "em0"}, {Kind: api.OpAddr, Prefix: netip.MustParsePrefix("10.0.0.9/24")}}}, api.Refused(api.StepSetVHID, syscall.EEXIST)},
			{"bad state", api.IfconfigRequest{Iface: "carp0", Ops: []api.Op{{Kind: api.OpState, Str: "bogus"}}}, &api.Error{Reason: api.ReasonUnknownState}},
		}
		for _, c := range cases {
			err := n.e.Ifconfig(context.Background(), c.req)
			if !refused(err, c.want) {
				t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
			}
		}
		after, _ := n.e.Status(context.Background(), api.StatusQuery{ShowKeys: true})
		if !equalStatus(before, after) {
			t.Errorf("status changed by rejected commands:\n%+v\n%+v", before, after)
		}
		if now, _ := os.ReadFile(filepath.Join(dir, configFile)); !bytes.Equal(saved, now) {
			t.Errorf("saved configuration changed by rejected commands")
		}
	})
}

func equalStatus(a, b api.Status) bool {
	if !slices.Equal(a.Clones, b.Clones) || len(a.VHIDs) != len(b.VHIDs) {
		return false
	}
	for i := range a.VHIDs {
		x, y := a.VHIDs[i], b.VHIDs[i]
		if x.Iface != y.Iface || x.VHID != y.VHID || x.Key != y.Key || x.AdvSkew != y.AdvSkew || x.AdvBase != y.AdvBase || x.Carpdev != y.Carpdev || !slices.Equal(x.Addrs, y.Addrs) {
			return false
		}
	}
	return true
}

func TestRestartRestoresSavedConfiguration(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		seg := memkernel.NewSegment()
		n := newNode(t, seg, "10.0.0.2/24", dir)
		runbook284(t, n, 100)
		if _, _, err := n.e.SetSysctl(context.Background(), "net.inet.carp.preempt", 1); err != nil {
			t.Fatal(err)
		}
		before, _ := n.e.Status(context.Background(), api.StatusQuery{ShowKeys: true})
		n.stop(t)
		// Same kernel, new engine, same state dir: as after a crash or reboot.
		m := startNode(t, n.k, dir)
		defer m.stop(t)
		after, _ := m.e.Status(context.Background(), api.StatusQuery{ShowKeys: true})
		if !equalStatus(before, after) {
			t.Fatalf("restored status differs:\n%+v\n%+v", before, after)
		}
		if after.VHIDs[0].Key != "lanpasswd" {
			t.Errorf("key not restored")
		}
		if got := knobValue(after, "net.inet.carp.preempt"); got != 1 {
			t.Errorf("preempt after restart = %d, want 1", got)
		}
		fi, err := os.Stat(filepath.Join(dir, configFile))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("config file mode = %v (%v), want 0600: it holds the keys", fi.Mode(), err)
		}
	})
}

func knobValue(st api.Status, name string) int64 {
	for _, k := range st.Knobs {
		if k.Name == name {
			return k.Value
		}
	}
	return -1
}

func TestBadAdvertsAreCountedAndNeverFlipState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := memkernel.NewSegment()
		fw := newNode(t, seg, "10.0.0.2/24", "")
		defer fw.stop(t)
		runbook284(t, fw, 100)
		time.Sleep(carp.MasterDown(1, 100) + time.Millisecond)
		synctest.Wait()
		// An attacker on the segment without the password sends a "better"
		// advert (advskew 0) every 100 ms.
		evil := memkernel.NewMemory()
		evil.AddLink(osif.Link{Name: "em0", AdminUp: true, Carrier: true, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.66/24")}}, seg)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if err := evil.OpenCARP(ctx, make(chan osif.Packet, 1)); err != nil {
			t.Fatal(err)
		}
		vip := []netip.Addr{netip.MustParseAddr("10.0.0.1")}
		good := carp.BuildAdvert(1, 1, 0, 7, carp.Key("lanpasswd"), vip)
		for i := 0; i < 50; i++ {
			bad := carp.BuildAdvert(1, 1, 0, uint64(i), carp.Key("guess"), vip)
			if err := evil.SendCARP("em0", netip.MustParseAddr("10.0.0.66"), carp.GroupV4, 0, bad); err != nil {
				t.Fatal(err)
			}
			short := good[:20]
			_ = evil.SendCARP("em0", netip.MustParseAddr("10.0.0.66"), carp.GroupV4, 0, short)
			time.Sleep(100 * time.Millisecond)
			synctest.Wait()
		}
		if got := fw.state(t, "carp0"); got != "MASTER" {
			t.Fatalf("state after forged adverts = %s, want MASTER", got)
		}
		st, _ := fw.e.Status(context.Background(), api.StatusQuery{})
		counts := map[string]uint64{}
		for _, c := range st.Stats {
			counts[c.Name] = c.Value
		}
		if counts["badauth"] != 50 || counts["badlen"] != 50 || counts["ipackets"] != 100 {
			t.Errorf("carpstats = %v, want 50 badauth, 50 badlen, 100 ipackets", counts)
		}
	})
}

func TestCarrierLossDemotesAndFailsOverOtherVHIDs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan, wan := memkernel.NewSegment(), memkernel.NewSegment()
		mk := func(lanAddr, wanAddr string) *node {
			k := memkernel.NewMemory()
			k.Clock = time.Now
			k.AddLink(osif.Link{Name: "em0", AdminUp: true, Carrier: true, Addrs: []netip.Prefix{netip.MustParsePrefix(lanAddr)}}, lan)
			k.AddLink(osif.Link{Name: "em1", AdminUp: true, Carrier: true, Addrs: []netip.Prefix{netip.MustParsePrefix(wanAddr)}}, wan)
			return startNode(t, k, "")
		}
		fw1, fw2 := mk("172.16.0.1/24", "192.0.2.1/24"), mk("172.16.0.2/24", "192.0.2.2/24")
		defer fw1.stop(t)
		defer fw2.stop(t)
		for i, n := range []*node{fw1, fw2} {
			if _, _, err := n.e.SetSysctl(context.Background(), "net.inet.carp.preempt", 1); err != nil {
				t.Fatal(err)
			}
			skew := i * 128
			n.ifconfig(t, "carp0", api.Op{Kind: api.OpCreate})
			n.ifconfig(t, "carp0", api.Op{Kind: api.OpVHID, Int: 1}, api.Op{Kind: api.OpPass, Str: "lanpasswd"}, api.Op{Kind: api.OpCarpdev, Str: "em0"}, api.Op{Kind: api.OpAdvSkew, Int: skew}, api.Op{Kind: api.OpAddr, Prefix: netip.MustParsePrefix("172.16.0.100/24")})
			n.ifconfig(t, "carp1", api.Op{Kind: api.OpCreate})
			n.ifconfig(t, "carp1", api.Op{Kind: api.OpVHID, Int: 2}, api.Op{Kind: api.OpPass, Str: "wanpasswd"}, api.Op{Kind: api.OpCarpdev, Str: "em1"}, api.Op{Kind: api.OpAdvSkew, Int: skew}, api.Op{Kind: api.OpAddr, Prefix: netip.MustParsePrefix("192.0.2.100/24")})
			time.Sleep(carp.MasterDown(1, 0) + time.Millisecond)
			synctest.Wait()
		}
		if fw1.state(t, "carp0") != "MASTER" || fw1.state(t, "carp1") != "MASTER" || fw2.state(t, "carp1") != "BACKUP" {
			t.Fatalf("setup: fw1 %s/%s fw2 %s/%s", fw1.state(t, "carp0"), fw1.state(t, "carp1"), fw2.state(t, "carp0"), fw2.state(t, "carp1"))
		}
		fw1.k.SetCarrier("em0", false)
		synctest.Wait()
		if got := fw1.state(t, "carp0"); got != "INIT" {
			t.Errorf("fw1 carp0 with em0 down = %s, want INIT", got)
		}
		// The demotion goes out on em1 at once and fw2 preempts carp1.
		if got := fw2.state(t, "carp1"); got != "MASTER" {
			t.Errorf("fw2 carp1 right after fw1 lost em0 = %s, want MASTER", got)
		}
		time.Sleep(carp.MasterDown(1, 128))
		synctest.Wait()
		if got := fw2.state(t, "carp0"); got != "MASTER" {
			t.Errorf("fw2 carp0 a master-down interval later = %s, want MASTER", got)
		}
		if !strings.Contains(fw1.logs.String(), "carp: demoted by 240 to 240 (interface down)") {
			t.Errorf("fw1 log:\n%s", fw1.logs.String())
		}
		fw1.k.SetCarrier("em0", true)
		time.Sleep(carp.MasterDown(1, 0) + time.Second)
		synctest.Wait()
		if fw1.state(t, "carp0") != "MASTER" || fw1.state(t, "carp1") != "MASTER" {
			t.Errorf("fw1 after em0 came back: %s/%s, want MASTER of both (preempt)", fw1.state(t, "carp0"), fw1.state(t, "carp1"))
		}
	})
}

func TestAllowZeroStopsEveryVHIDAndDemotesOncePerVHID(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNode(t, memkernel.NewSegment(), "10.0.0.2/24", "")
		defer n.stop(t)
		runbook284(t, n, 0)
		time.Sleep(carp.MasterDown(1, 0) + time.Millisecond)
		synctest.Wait()
		if _, _, err := n.e.SetSysctl(context.Background(), "net.inet.carp.allow", 0); err != nil {
			t.Fatal(err)
		}
		if got := n.state(t, "carp0"); got != "INIT" {
			t.Fatalf("state with allow=0 = %s, want INIT", got)
		}
		if len(n.k.Addrs("carp0")) != 0 {
			t.Fatalf("addresses kept with allow=0: %v", n.k.Addrs("carp0"))
		}
		st, _ := n.e.Status(context.Background(), api.StatusQuery{})
		if got := knobValue(st, "net.inet.carp.demotion"); got != 240 {
			t.Fatalf("demotion with allow=0 = %d, want 240 (ifdown_demotion_factor, once)", got)
		}
		if _, _, err := n.e.SetSysctl(context.Background(), "net.inet.carp.allow", 1); err != nil {
			t.Fatal(err)
		}
		st, _ = n.e.Status(context.Background(), api.StatusQuery{})
		if got := knobValue(st, "net.inet.carp.demotion"); got != 0 {
			t.Fatalf("demotion after allow=1 = %d, want 0", got)
		}
		if got := n.state(t, "carp0"); got != "BACKUP" {
			t.Fatalf("state after allow=1 = %s, want BACKUP", got)
		}
	})
}

func TestPlainIfconfigOnAPhysicalInterface(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := memkernel.NewMemory()
		k.Clock = time.Now
		k.AddLink(osif.Link{Name: "em0", AdminUp: true, Carrier: true, MTU: 1500}, memkernel.NewSegment())
		n := startNode(t, k, "")
		defer n.stop(t)
		p := netip.MustParsePrefix
		n.ifconfig(t, "em0", api.Op{Kind: api.OpAddr, Prefix: p("192.168.1.3/24")})
		n.ifconfig(t, "em0", api.Op{Kind: api.OpAddr, Prefix: p("192.168.1.3/24")}) // a boot script run twice
		if got := k.Addrs("em0"); !slices.Equal(got, []netip.Prefix{p("192.168.1.3/24")}) {
			t.Fatalf("em0 = %v", got)
		}
		n.ifconfig(t, "em0", api.Op{Kind: api.OpAddr, Prefix: p("192.168.1.9/24"), Alias: true})
		n.ifconfig(t, "em0", api.Op{Kind: api.OpAddr, Prefix: p("192.168.1.4/24")}) // no alias: replaces the first
		if got := k.Addrs("em0"); !slices.Equal(got, []netip.Prefix{p("192.168.1.9/24"), p("192.168.1.4/24")}) {
			t.Fatalf("em0 after replace = %v", got)
		}
		n.ifconfig(t, "em0", api.Op{Kind: api.OpDelAddr, Prefix: p("192.168.1.9/32")})
		n.ifconfig(t, "em0", api.Op{Kind: api.OpAddr, Prefix: p("192.168.1.9/24"), Alias: true})
		n.ifconfig(t, "em0", api.Op{Kind: api.OpDelAddr}) // `ifconfig em0 -alias`: the first address
		if got := k.Addrs("em0"); !slices.Equal(got, []netip.Prefix{p("192.168.1.9/24")}) {
			t.Fatalf("em0 after -alias without an address = %v", got)
		}
		n.ifconfig(t, "em0", api.Op{Kind: api.OpAddr, Prefix: p("192.168.1.4/24"), Alias: true})
		n.ifconfig(t, "em0", api.Op{Kind: api.OpDelAddr, Prefix: p("192.168.1.9/32")})
		n.ifconfig(t, "em0", api.Op{Kind: api.OpMTU, Int: 9000}, api.Op{Kind: api.OpDown})
		l, _ := k.LinkByName("em0")
		if l.MTU != 9000 || l.AdminUp {
			t.Fatalf("em0 = mtu %d up %v, want 9000 and down", l.MTU, l.AdminUp)
		}
		before := strings.Join(k.Transcript(), "\n")
		err := n.e.Ifconfig(context.Background(), api.IfconfigRequest{Iface: "em0", Ops: []api.Op{{Kind: api.OpUp}, {Kind: api.OpMTU, Int: 20}}})
		if !refused(err, api.Refused(api.StepSetMTU, syscall.EINVAL)) {
			t.Fatalf("mtu 20: %v", err)
		}
		if after := strings.Join(k.Transcript(), "\n"); after != before {
			t.Fatalf("a rejected line touched the kernel:\n%s", strings.TrimPrefix(after, before))
		}
		err = n.e.Ifconfig(context.Background(), api.IfconfigRequest{Iface: "em0", Ops: []api.Op{{Kind: api.OpDelAddr, Prefix: p("10.9.9.9/32")}}})
		if !refused(err, api.Refused(api.StepDelAddr, syscall.EADDRNOTAVAIL)) {
			t.Fatalf("-alias of a missing address: %v", err)
		}
		st, _ := n.e.Status(context.Background(), api.StatusQuery{})
		if len(st.VHIDs) != 0 || len(st.Clones) != 0 {
			t.Fatalf("plain ifconfig created carp configuration: %+v", st)
		}
	})
}

func TestDialectBFindsItsParentBySubnet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNode(t, memkernel.NewSegment(), "192.168.1.3/24", "")
		defer n.stop(t)
		n.ifconfig(t, "carp0", api.Op{Kind: api.OpCreate})
		err := n.e.Ifconfig(context.Background(), api.IfconfigRequest{Iface: "carp0", Ops: []api.Op{{Kind: api.OpVHID, Int: 1}, {Kind: api.OpPass, Str: "testpass"}, {Kind: api.OpAddr, Prefix: netip.MustParsePrefix("10.7.7.7/24")}}})
		if !refused(err, api.Refused(api.StepAddAddr, syscall.EADDRNOTAVAIL)) {
			t.Fatalf("address in no local subnet: %v", err)
		}
		n.ifconfig(t, "carp0", api.Op{Kind: api.OpVHID, Int: 1}, api.Op{Kind: api.OpAdvSkew, Int: 100}, api.Op{Kind: api.OpPass, Str: "testpass"}, api.Op{Kind: api.OpAddr, Prefix: netip.MustParsePrefix("192.168.1.50/24")})
		time.Sleep(carp.MasterDown(1, 100) + time.Millisecond)
		synctest.Wait()
		st, _ := n.e.Status(context.Background(), api.StatusQuery{})
		if len(st.VHIDs) != 1 || st.VHIDs[0].State != "MASTER" || st.VHIDs[0].Carpdev != "" {
			t.Fatalf("status = %+v, want one MASTER vhid without a carpdev word", st.VHIDs)
		}
		if !strings.Contains(n.logs.String(), "carp: 1@em0: BACKUP -> MASTER") {
			t.Fatalf("the vhid did not run on em0:\n%s", n.logs.String())
		}
	})
}

func TestDialectCVHIDOnAnAliasOfThePhysicalInterface(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNode(t, memkernel.NewSegment(), "192.168.1.3/24", "")
		defer n.stop(t)
		vip := netip.MustParsePrefix("192.168.1.50/32")
		// ifconfig em0 vhid 1 advskew 100 pass testpass alias 192.168.1.50/32
		n.ifconfig(t, "em0", api.Op{Kind: api.OpVHID, Int: 1}, api.Op{Kind: api.OpAdvSkew, Int: 100}, api.Op{Kind: api.OpPass, Str: "testpass"}, api.Op{Kind: api.OpAddr, Prefix: vip, Alias: true})
		time.Sleep(carp.MasterDown(1, 100) + time.Millisecond)
		synctest.Wait()
		if got := n.state(t, "em0"); got != "MASTER" {
			t.Fatalf("state = %s", got)
		}
		// The address is on a hidden macvlan carpv<em0's index>.<vhid>.
		const hidden = "carpv1.1"
		wantOps(t, n.k.Transcript(), []string{
			"mcast join em0",
			"sysctl net/ipv4/conf/em0/arp_ignore=1",
			"sysctl net/ipv4/conf/em0/arp_announce=2",
			"ip link add carpv1.1 link em0 type macvlan address 00:00:5e:00:01:01",
			"sysctl net/ipv4/conf/carpv1.1/arp_ignore=1",
			"sysctl net/ipv4/conf/carpv1.1/arp_announce=2",
			"ip addr replace 192.168.1.50/32 dev carpv1.1 lft 1s",
			"arp announce 192.168.1.50 dev carpv1.1 lladdr 00:00:5e:00:01:01",
		})
		if !slices.Equal(n.k.Addrs(hidden), []netip.Prefix{vip}) {
			t.Fatalf("virtual address not on the hidden macvlan %s: %v", hidden, n.k.Addrs(hidden))
		}
		if slices.Contains(n.k.Addrs("em0"), vip) {
			t.Fatal("the virtual address landed on em0 itself")
		}
		// ifconfig em0 vhid 1 advskew 50: parameters of an existing vhid change.
		n.ifconfig(t, "em0", api.Op{Kind: api.OpVHID, Int: 1}, api.Op{Kind: api.OpAdvSkew, Int: 50})
		// ifconfig em0 vhid 1 state backup
		n.ifconfig(t, "em0", api.Op{Kind: api.OpVHID, Int: 1}, api.Op{Kind: api.OpState, Str: "backup"})
		if got := n.state(t, "em0"); got != "BACKUP" {
			t.Fatalf("after state backup = %s", got)
		}
		if !strings.Contains(n.logs.String(), "MASTER -> BACKUP (user requested via ifconfig)") {
			t.Errorf("log:\n%s", n.logs.String())
		}
		st, _ := n.e.Status(context.Background(), api.StatusQuery{})
		if st.VHIDs[0].AdvSkew != 50 || st.VHIDs[0].Iface != "em0" || st.VHIDs[0].Carpdev != "em0" {
			t.Fatalf("status = %+v", st.VHIDs)
		}
		// A second vhid, not given an address yet.
		n.ifconfig(t, "em0", api.Op{Kind: api.OpVHID, Int: 5}, api.Op{Kind: api.OpAdvSkew, Int: 10})
		// ifconfig em0 inet 192.168.1.50 -alias: vhid 1 goes with its last
		// address; vhid 5 is not touched.
		n.ifconfig(t, "em0", api.Op{Kind: api.OpDelAddr, Prefix: netip.MustParsePrefix("192.168.1.50/32")})
		st, _ = n.e.Status(context.Background(), api.StatusQuery{})
		if len(st.VHIDs) != 1 || st.VHIDs[0].VHID != 5 {
			t.Fatalf("after removing vhid 1's last address: %+v, want only vhid 5", st.VHIDs)
		}
		if _, err := n.k.LinkByName(hidden); !errors.Is(err, osif.ErrNoLink) {
			t.Fatalf("hidden macvlan %s left behind: %v", hidden, err)
		}
	})
}

// The kernel may refuse what validation let through: a line whose later
// step fails undoes its earlier steps and leaves the configuration alone.
func TestKernelRefusalUndoesTheWholeLine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNode(t, memkernel.NewSegment(), "192.168.1.3/24", t.TempDir())
		defer n.stop(t)
		p := netip.MustParsePrefix
		n.k.Fail(memkernel.OpReplaceAddr, syscall.EINVAL)
		// ifconfig em0 mtu 9000 192.168.1.4/24 alias: the mtu goes
		// through, the address is refused.
		err := n.e.Ifconfig(context.Background(), api.IfconfigRequest{Iface: "em0", Ops: []api.Op{
			{Kind: api.OpMTU, Int: 9000}, {Kind: api.OpAddr, Prefix: p("192.168.1.4/24"), Alias: true}}})
		if !refused(err, api.Refused(api.StepAddAddr, syscall.EINVAL)) {
			t.Fatalf("refused address: %v", err)
		}
		if l, _ := n.k.LinkByName("em0"); l.MTU != 1500 {
			t.Fatalf("MTU after the refused line = %d, want 1500 restored", l.MTU)
		}
		n.k.Fail(memkernel.OpReplaceAddr, nil)
		// ifconfig em0 vhid 1 pass x alias 192.168.1.50/32 mtu 9000: the
		// vhid and its address are taken, the mtu is refused, so vhid 1
		// must not stay behind.
		n.k.Fail(memkernel.OpSetMTU, syscall.EINVAL)
		err = n.e.Ifconfig(context.Background(), api.IfconfigRequest{Iface: "em0", Ops: []api.Op{
			{Kind: api.OpVHID, Int: 1}, {Kind: api.OpPass, Str: "x"},
			{Kind: api.OpAddr, Prefix: p("192.168.1.50/32"), Alias: true}, {Kind: api.OpMTU, Int: 9000}}})
		if !refused(err, api.Refused(api.StepSetMTU, syscall.EINVAL)) {
			t.Fatalf("refused mtu after a vhid: %v", err)
		}
		if st, _ := n.e.Status(context.Background(), api.StatusQuery{}); len(st.VHIDs) != 0 {
			t.Fatalf("vhid kept after its line was refused: %+v", st.VHIDs)
		}
		n.k.Fail(memkernel.OpSetMTU, nil)
		n.k.Fail(memkernel.OpSetLinkUp, syscall.EPERM)
		err = n.e.Ifconfig(context.Background(), api.IfconfigRequest{Iface: "em0", Ops: []api.Op{{Kind: api.OpDown}}})
		if !refused(err, api.Refused(api.StepSetDown, syscall.EPERM)) {
			t.Fatalf("refused down: %v (FreeBSD's setifflags reports it through Perror)", err)
		}
		st, _ := n.e.Status(context.Background(), api.StatusQuery{})
		if len(st.VHIDs) != 0 || !slices.Equal(n.k.Addrs("em0"), []netip.Prefix{p("192.168.1.3/24")}) {
			t.Fatalf("a refused line left changes: %+v %v", st.VHIDs, n.k.Addrs("em0"))
		}
	})
}

// refused reports whether err is the refusal want (carp/bsd words it).
func refused(err error, want *api.Error) bool {
	var ae *api.Error
	return errors.As(err, &ae) && *ae == *want
}

// TestStateNamesMatchTheAPI keeps the protocol core's state names and the
// ones the commands accept and print the same.
func TestStateNamesMatchTheAPI(t *testing.T) {
	for st, want := range map[carp.State]string{carp.Init: api.StateInit, carp.Backup: api.StateBackup, carp.Master: api.StateMaster} {
		if st.String() != want || !api.IsState(strings.ToLower(want)) {
			t.Errorf("%v: %q, api %q", st, st.String(), want)
		}
		if got, ok := carp.ParseState(strings.ToLower(want)); !ok || got != st {
			t.Errorf("ParseState(%q) = %v %v", want, got, ok)
		}
	}
	if api.IsState("bogus") {
		t.Error(`IsState("bogus")`)
	}
}
