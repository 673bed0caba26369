package engine

import (
	"context"
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
	"github.com/bsdcarp/bsdcarp/kernelshim/memkernel"
)

// capture records what a kernel sends, as a host with a mirror port would.
type capture struct {
	mu   sync.Mutex
	pkts []osif.Packet
}

func (c *capture) hook(_ string, p osif.Packet) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pkts = append(c.pkts, p)
}

func (c *capture) last(t *testing.T) osif.Packet {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pkts) == 0 {
		t.Fatal("nothing captured")
	}
	return c.pkts[len(c.pkts)-1]
}

// attacker is a third host on the segment that sends raw payloads.
func attacker(t *testing.T, seg *memkernel.Segment) func(src netip.Addr, payload []byte) {
	evil := memkernel.NewMemory()
	evil.AddLink(osif.Link{Name: "em0", AdminUp: true, Carrier: true, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.66/24")}}, seg)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := evil.OpenCARP(ctx, make(chan osif.Packet, 1)); err != nil {
		t.Fatal(err)
	}
	return func(src netip.Addr, payload []byte) {
		if err := evil.SendCARP("em0", src, carp.GroupV4, 0, payload); err != nil {
			t.Fatal(err)
		}
	}
}

func counter(t *testing.T, n *node, name string) uint64 {
	t.Helper()
	st, err := n.e.Status(context.Background(), api.StatusQuery{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range st.Stats {
		if c.Name == name {
			return c.Value
		}
	}
	t.Fatalf("no counter %q", name)
	return 0
}

func TestReplayedAdvertNeitherHoldsBackupDownNorMakesMasterYield(t *testing.T) {
	for _, fromOtherSource := range []bool{false, true} {
		name := "original source address"
		if fromOtherSource {
			name = "rewritten source address"
		}
		t.Run(name, func(t *testing.T) { testReplayedAdvert(t, fromOtherSource) })
	}
}

// testReplayedAdvert: A, MASTER, dies and its captured advert (sent from
// A's address or, if fromOtherSource, from another) is replayed; B takes
// over all the same, yields neither to the replays nor to a copy of its
// own advert, and does yield to the fresh advert of A rebooted.
func testReplayedAdvert(t *testing.T, fromOtherSource bool) {
	synctest.Test(t, func(t *testing.T) {
		seg := memkernel.NewSegment()
		a := newNode(t, seg, "10.0.0.2/24", "")
		b := newNode(t, seg, "10.0.0.3/24", "")
		defer b.stop(t)
		var capA, capB capture
		a.k.SetSendHook(capA.hook)
		b.k.SetSendHook(capB.hook)
		runbook284(t, a, 0)
		time.Sleep(carp.MasterDown(1, 0) + time.Millisecond)
		synctest.Wait()
		runbook284(t, b, 100)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if a.state(t, "carp0") != "MASTER" || b.state(t, "carp0") != "BACKUP" {
			t.Fatalf("setup: a %s, b %s", a.state(t, "carp0"), b.state(t, "carp0"))
		}
		replay := attacker(t, seg)
		captured := capA.last(t)
		src := captured.Src
		if fromOtherSource {
			src = netip.MustParseAddr("10.0.0.77")
		}

		// A dies without a word; its captured advert is replayed
		// twice a second. B must take over at its master-down
		// interval all the same.
		a.k.SetCarrier("em0", false)
		died := time.Now()
		for b.state(t, "carp0") != "MASTER" && time.Since(died) < 20*time.Second {
			replay(src, captured.Payload)
			time.Sleep(500 * time.Millisecond)
			synctest.Wait()
		}
		if got := time.Since(died); b.state(t, "carp0") != "MASTER" || got > carp.MasterDown(1, 100)+500*time.Millisecond {
			t.Fatalf("b is %s %v after a died (master-down %v)", b.state(t, "carp0"), got, carp.MasterDown(1, 100))
		}
		// B is a live MASTER now: replaying A's better advert
		// (advskew 0 < 100) must not make it yield.
		for range 10 {
			replay(src, captured.Payload)
			time.Sleep(500 * time.Millisecond)
			synctest.Wait()
			if got := b.state(t, "carp0"); got != "MASTER" {
				t.Fatalf("b yielded to a replayed advert: %s\n%s", got, b.logs.String())
			}
		}
		// Nor may a copy of B's own advert.
		own := capB.last(t)
		replay(netip.MustParseAddr("10.0.0.78"), own.Payload)
		synctest.Wait()
		if got := b.state(t, "carp0"); got != "MASTER" {
			t.Fatalf("b yielded to a copy of its own advert: %s", got)
		}
		if got := counter(t, b, "replay"); got < 10 {
			t.Errorf("replay counter = %d, want every replay counted", got)
		}

		// A reboots: a fresh random counter. Its first advert is
		// taken at once (B yields to the better advskew).
		a.stop(t)
		a2 := startNode(t, a.k, "")
		defer a2.stop(t)
		a.k.SetCarrier("em0", true)
		runbook284(t, a2, 0)
		fresh := carp.BuildAdvert(1, 1, 0, 0x0123456789abcdef, carp.Key("lanpasswd"), []netip.Addr{netip.MustParseAddr("10.0.0.1")})
		replay(netip.MustParseAddr("10.0.0.2"), fresh)
		synctest.Wait()
		if got := b.state(t, "carp0"); got != "BACKUP" {
			t.Fatalf("b did not yield to a rebooted peer's fresh advert: %s\n%s", got, b.logs.String())
		}
	})
}

func TestAuthMismatchIsLoggedAtDefaultLevelAndShown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := memkernel.NewSegment()
		a := newNode(t, seg, "10.0.0.2/24", "")
		b := newNode(t, seg, "10.0.0.3/24", "")
		defer b.stop(t)
		runbook284(t, a, 0)
		// Same vhid and password, another address set: both become MASTER.
		b.ifconfig(t, "carp0", api.Op{Kind: api.OpCreate})
		b.ifconfig(t, "carp0", api.Op{Kind: api.OpVHID, Int: 1}, api.Op{Kind: api.OpPass, Str: "lanpasswd"}, api.Op{Kind: api.OpCarpdev, Str: "em0"},
			api.Op{Kind: api.OpAdvSkew, Int: 100}, api.Op{Kind: api.OpAddr, Prefix: netip.MustParsePrefix("10.0.0.9/24")})
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		want := "carp: 1@em0: advertisements from 10.0.0.2 fail authentication: the password or the address set of vhid 1 differs on that host (both may be MASTER)"
		if n := strings.Count(b.logs.String(), want); n < 2 || n > 5 {
			t.Errorf("b logged the mismatch %d times in 2 minutes, want a few (rate-limited):\n%s", n, b.logs.String())
		}
		st, _ := b.e.Status(context.Background(), api.StatusQuery{})
		if st.VHIDs[0].AuthMismatch != "10.0.0.2" {
			t.Errorf("status AuthMismatch = %q, want 10.0.0.2", st.VHIDs[0].AuthMismatch)
		}
		// A fixed: the mismatch is no longer shown once its adverts stop.
		a.stop(t)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		st, _ = b.e.Status(context.Background(), api.StatusQuery{})
		if st.VHIDs[0].AuthMismatch != "" {
			t.Errorf("AuthMismatch still %q after the peer went silent", st.VHIDs[0].AuthMismatch)
		}
	})
}

func TestAdvertSourceIsTheVHIDAddressWhenTheParentHasNone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := memkernel.NewSegment()
		mk := func() *node {
			k := memkernel.NewMemory()
			k.Clock = time.Now
			k.AddLink(osif.Link{Name: "em0", AdminUp: true, Carrier: true, MTU: 1500}, seg)
			return startNode(t, k, "")
		}
		a, b := mk(), mk()
		defer a.stop(t)
		defer b.stop(t)
		var capA capture
		a.k.SetSendHook(capA.hook)
		vip := api.Op{Kind: api.OpAddr, Prefix: netip.MustParsePrefix("192.168.1.50/32")}
		a.ifconfig(t, "em0", api.Op{Kind: api.OpVHID, Int: 1}, api.Op{Kind: api.OpPass, Str: "testpass"}, vip)
		time.Sleep(carp.MasterDown(1, 0) + time.Millisecond)
		synctest.Wait()
		b.ifconfig(t, "em0", api.Op{Kind: api.OpVHID, Int: 1}, api.Op{Kind: api.OpAdvSkew, Int: 100}, api.Op{Kind: api.OpPass, Str: "testpass"}, vip)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if got := capA.last(t).Src; got != netip.MustParseAddr("192.168.1.50") {
			t.Errorf("advert source %v, want the vhid's own 192.168.1.50", got)
		}
		if sa, sb := a.state(t, "em0"), b.state(t, "em0"); sa != "MASTER" || sb != "BACKUP" {
			t.Fatalf("a %s, b %s: want one MASTER\n%s\n%s", sa, sb, a.logs.String(), b.logs.String())
		}
	})
}

func TestSendErrorsDemoteAndAreSaidAtTheDefaultLevel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := memkernel.NewSegment()
		a := newNode(t, seg, "10.0.0.2/24", "")
		defer a.stop(t)
		runbook284(t, a, 0)
		a.ifconfig(t, "carp1", api.Op{Kind: api.OpCreate})
		a.ifconfig(t, "carp1", api.Op{Kind: api.OpVHID, Int: 2}, api.Op{Kind: api.OpPass, Str: "x"}, api.Op{Kind: api.OpCarpdev, Str: "em0"},
			api.Op{Kind: api.OpAddr, Prefix: netip.MustParsePrefix("10.0.0.5/24")})
		time.Sleep(carp.MasterDown(1, 0) + time.Millisecond)
		synctest.Wait()
		a.k.SetSendError(syscall.ENOBUFS)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		logs := a.logs.String()
		if n := strings.Count(logs, "carp: 1@em0: cannot send advertisement on em0:"); n != 1 {
			t.Errorf("send failure of 1@em0 logged %d times at the default level, want once per run:\n%s", n, logs)
		}
		if !strings.Contains(logs, "carp: demoted by 240 to 240 (send error 3 on em0)") {
			t.Errorf("no senderr demotion in the log:\n%s", logs)
		}
		st, _ := a.e.Status(context.Background(), api.StatusQuery{})
		if got := knobValue(st, "net.inet.carp.demotion"); got != 480 {
			t.Errorf("demotion = %d with both vhids failing, want 2 x 240", got)
		}
		a.k.SetSendError(nil)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		st, _ = a.e.Status(context.Background(), api.StatusQuery{})
		if got := knobValue(st, "net.inet.carp.demotion"); got != 0 {
			t.Errorf("demotion = %d after sends work again, want 0", got)
		}
	})
}

// Within one boot a restarted engine still knows the adverts it had seen
// (counters.json and counters.b.json in the runtime state directory): a
// capture replayed right after the restart is dropped, and a damaged file
// is only logged.
func TestRestartedEngineStillDropsReplays(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := memkernel.NewSegment()
		dir := t.TempDir()
		a := newNode(t, seg, "10.0.0.2/24", "")
		defer a.stop(t)
		var capA capture
		a.k.SetSendHook(capA.hook)
		runbook284(t, a, 0)
		time.Sleep(carp.MasterDown(1, 0) + time.Millisecond)
		synctest.Wait()
		b := newNode(t, seg, "10.0.0.3/24", dir)
		runbook284(t, b, 100)
		time.Sleep(30 * time.Second)
		synctest.Wait()
		// The last 20 adverts of a, each new to an engine that remembers
		// nothing: replayed in order they would hold b down for 10 s.
		capA.mu.Lock()
		captured := slices.Clone(capA.pkts[len(capA.pkts)-20:])
		capA.mu.Unlock()
		b.stop(t)
		b2 := startNode(t, b.k, dir)
		defer b2.stop(t)
		a.k.SetCarrier("em0", false) // the master dies
		replay := attacker(t, seg)
		died := time.Now()
		for i := 0; b2.state(t, "carp0") != "MASTER" && time.Since(died) < 20*time.Second; i++ {
			p := captured[i%len(captured)]
			replay(p.Src, p.Payload)
			time.Sleep(500 * time.Millisecond)
			synctest.Wait()
		}
		if got := time.Since(died); got > carp.MasterDown(1, 100)+500*time.Millisecond {
			t.Fatalf("restarted b became MASTER only %v after a died (state %s)", got, b2.state(t, "carp0"))
		}
		if got := counter(t, b2, "replay"); got == 0 {
			t.Error("no replay counted by the restarted engine")
		}
	})
}

func TestDamagedCountersFileIsIgnored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, countersFile), []byte("{not json"), 0o600); err != nil {
			t.Fatal(err)
		}
		n := newNode(t, memkernel.NewSegment(), "10.0.0.2/24", dir)
		defer n.stop(t)
		runbook284(t, n, 0)
		time.Sleep(carp.MasterDown(1, 0) + time.Millisecond)
		synctest.Wait()
		if got := n.state(t, "carp0"); got != "MASTER" {
			t.Fatalf("state %s", got)
		}
		if !strings.Contains(n.logs.String(), "counters.json ignored (replay protection starts afresh)") {
			t.Errorf("no log line about the damaged file:\n%s", n.logs.String())
		}
	})
}

// Forged adverts from ever new source addresses cannot fill the log: the
// mismatch line is rate-limited per vhid, not per source.
func TestAuthMismatchLogIsRateLimitedPerVHID(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := memkernel.NewSegment()
		a := newNode(t, seg, "10.0.0.2/24", "")
		defer a.stop(t)
		runbook284(t, a, 0)
		time.Sleep(carp.MasterDown(1, 0) + time.Millisecond)
		synctest.Wait()
		send := attacker(t, seg)
		vip := []netip.Addr{netip.MustParseAddr("10.0.0.1")}
		for i := range 1000 {
			src := netip.AddrFrom4([4]byte{10, 0, 0, byte(100 + i%2)})
			send(src, carp.BuildAdvert(1, 1, 0, uint64(i), carp.Key("guess"), vip))
			if i%100 == 0 {
				time.Sleep(time.Second)
			}
			synctest.Wait()
		}
		if n := strings.Count(a.logs.String(), "fail authentication"); n != 1 {
			t.Errorf("%d mismatch lines for 1000 forged adverts from 2 alternating sources in 10 s, want 1", n)
		}
	})
}
