package engine

import (
	"context"
	"fmt"
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

// sideEffects interleaves a Memory kernel's transcript with the adverts it
// sends ("advert advbase/advskew"), in the order they happened.
type sideEffects struct {
	mu    sync.Mutex
	k     *memkernel.Memory
	lines []string
	seen  int // transcript lines already copied
}

func recordSideEffects(k *memkernel.Memory) *sideEffects {
	s := &sideEffects{k: k, seen: len(k.Transcript())}
	k.SetSendHook(func(_ string, p osif.Packet) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.catchUp()
		s.lines = append(s.lines, fmt.Sprintf("advert %d/%d", p.Payload[5], p.Payload[2]))
	})
	return s
}

// catchUp copies transcript lines not seen yet; s.mu must be held.
func (s *sideEffects) catchUp() {
	tr := s.k.Transcript()
	if len(tr) < s.seen {
		s.seen = 0 // reset by ResetTranscript
	}
	s.lines = append(s.lines, tr[s.seen:]...)
	s.seen = len(tr)
}

// since returns every side effect after the first n.
func (s *sideEffects) since(n int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.catchUp()
	return slices.Clone(s.lines[n:])
}

func (s *sideEffects) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.catchUp()
	return len(s.lines)
}

// index returns the position of the first line with prefix, or -1.
func index(lines []string, prefix string) int {
	return slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, prefix) })
}

// pair254 makes fw1 (advskew 0) MASTER and fw2 (advskew 100) BACKUP of
// vhid 1, with net.inet.carp.preempt on both hosts when preempt is set.
func pair254(t *testing.T, preempt bool) (fw1, fw2 *node) {
	t.Helper()
	seg := memkernel.NewSegment()
	fw1 = newNode(t, seg, "10.0.0.2/24", "")
	fw2 = newNode(t, seg, "10.0.0.3/24", "")
	for _, n := range []*node{fw1, fw2} {
		if !preempt {
			break
		}
		if _, _, err := n.e.SetSysctl(context.Background(), "net.inet.carp.preempt", 1); err != nil {
			t.Fatal(err)
		}
	}
	runbook284(t, fw1, 0)
	time.Sleep(carp.MasterDown(1, 0) + time.Millisecond)
	synctest.Wait()
	runbook284(t, fw2, 100)
	synctest.Wait()
	if fw1.state(t, "carp0") != "MASTER" || fw2.state(t, "carp0") != "BACKUP" {
		t.Fatalf("start: fw1 %s, fw2 %s", fw1.state(t, "carp0"), fw2.state(t, "carp0"))
	}
	return fw1, fw2
}

// takeover is every side effect of a new MASTER of vhid 1 (10.0.0.1/24 on
// carp0) with advskew skew: the address in the kernel and announced before
// its first advert.
func takeover(skew int) []string {
	return []string{carp0Addr, carp0Announce, fmt.Sprintf("advert 1/%d", skew)}
}

func TestNewMasterAnnouncesBeforeItAdvertises(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fw1, fw2 := pair254(t, true)
		defer fw1.stop(t)
		defer fw2.stop(t)
		rec1, rec2 := recordSideEffects(fw1.k), recordSideEffects(fw2.k)

		// Demotion up on the MASTER: the backup preempts.
		if _, _, err := fw1.e.SetSysctl(context.Background(), "net.inet.carp.demotion", 240); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if fw2.state(t, "carp0") != "MASTER" || fw1.state(t, "carp0") != "BACKUP" {
			t.Fatalf("after demotion: fw1 %s, fw2 %s", fw1.state(t, "carp0"), fw2.state(t, "carp0"))
		}
		wantOps(t, rec2.since(0), takeover(100))
		// The old MASTER advertised its demotion, then gave the address up
		// only after hearing fw2 (which had announced it by then).
		wantOps(t, rec1.since(0), []string{"advert 1/240", carp0AddrGone})

		// Demotion back down: fw1 preempts fw2 at fw2's next advert.
		n1, n2 := rec1.len(), rec2.len()
		if _, _, err := fw1.e.SetSysctl(context.Background(), "net.inet.carp.demotion", -240); err != nil {
			t.Fatal(err)
		}
		time.Sleep(carp.AdvInterval(1, 100) + time.Millisecond)
		synctest.Wait()
		if fw1.state(t, "carp0") != "MASTER" || fw2.state(t, "carp0") != "BACKUP" {
			t.Fatalf("after demotion back: fw1 %s, fw2 %s", fw1.state(t, "carp0"), fw2.state(t, "carp0"))
		}
		wantOps(t, rec1.since(n1), takeover(0))
		// fw2 kept its address fresh until its next advert, and gave it up
		// when it heard fw1's.
		wantOps(t, rec2.since(n2), concat(repeat(2, carp0Refresh), "advert 1/100", carp0AddrGone))
	})
}

func TestStateBackupOnMasterHandsOverAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Without preemption: with it, fw1 (advskew 0) would take the
		// vhid straight back at fw2's first advert, as on FreeBSD.
		fw1, fw2 := pair254(t, false)
		defer fw1.stop(t)
		defer fw2.stop(t)
		rec1, rec2 := recordSideEffects(fw1.k), recordSideEffects(fw2.k)

		fw1.ifconfig(t, "carp0", api.Op{Kind: api.OpState, Str: "backup"})
		synctest.Wait()
		// No master-down interval: fw2 takes over on the bow-out.
		if fw2.state(t, "carp0") != "MASTER" || fw1.state(t, "carp0") != "BACKUP" {
			t.Fatalf("right after state backup: fw1 %s, fw2 %s\nfw1 log:\n%s\nfw2 log:\n%s", fw1.state(t, "carp0"), fw2.state(t, "carp0"), fw1.logs, fw2.logs)
		}
		wantOps(t, rec2.since(0), takeover(100))
		// fw1 bowed out first, kept answering, and gave the address up when
		// it heard fw2's advert.
		wantOps(t, rec1.since(0), []string{"advert 255/255", carp0AddrGone})
		if got := fw1.k.Addrs("carp0"); len(got) != 0 {
			t.Fatalf("fw1 still holds %v as BACKUP", got)
		}
		if !strings.Contains(fw1.logs.String(), "MASTER -> BACKUP (user requested via ifconfig)") {
			t.Errorf("fw1 log:\n%s", fw1.logs.String())
		}
	})
}

func TestIfconfigDownKeepsAnsweringUntilTheNewMasterSpeaks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fw1, fw2 := pair254(t, true)
		defer fw1.stop(t)
		defer fw2.stop(t)
		rec1, rec2 := recordSideEffects(fw1.k), recordSideEffects(fw2.k)

		fw1.ifconfig(t, "carp0", api.Op{Kind: api.OpDown})
		synctest.Wait()
		if fw2.state(t, "carp0") != "MASTER" || fw1.state(t, "carp0") != "INIT" {
			t.Fatalf("after down: fw1 %s, fw2 %s", fw1.state(t, "carp0"), fw2.state(t, "carp0"))
		}
		wantOps(t, rec2.since(0), takeover(100))
		// fw1: bow-out, then (on hearing fw2) address removed and link down.
		wantOps(t, rec1.since(0), []string{"advert 255/255", carp0AddrGone, "ip link set carp0 down"})
	})
}

func TestBowOutWithoutPeerDrainsAtMostTheMasterDownInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNode(t, memkernel.NewSegment(), "10.0.0.2/24", "")
		defer n.stop(t)
		runbook284(t, n, 0)
		time.Sleep(carp.MasterDown(1, 0) + time.Millisecond)
		synctest.Wait()
		n.ifconfig(t, "carp0", api.Op{Kind: api.OpDown})
		synctest.Wait()
		// Nobody takes over: the address stays while a backup could still
		// appear, and goes at the end of the master-down interval.
		if got := n.k.Addrs("carp0"); len(got) != 1 {
			t.Fatalf("right after down: %v", got)
		}
		time.Sleep(carp.MasterDown(1, 0) + time.Millisecond)
		synctest.Wait()
		if got := n.k.Addrs("carp0"); len(got) != 0 {
			t.Fatalf("after the drain: %v", got)
		}
		if l, err := n.k.LinkByName("carp0"); err != nil || l.AdminUp {
			t.Fatalf("carp0 after the drain: %+v, %v", l, err)
		}
	})
}

// counters returns the engine's carpstats by name.
func (n *node) counters(t *testing.T) map[string]uint64 {
	t.Helper()
	st, err := n.e.Status(context.Background(), api.StatusQuery{})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]uint64{}
	for _, c := range st.Stats {
		m[c.Name] = c.Value
	}
	return m
}

func TestPreemptCountsTransitionsToMaster(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fw1, fw2 := pair254(t, true)
		defer fw1.stop(t)
		defer fw2.stop(t)
		// fw1: master timed out; fw2: none yet.
		if a, b := fw1.counters(t)["preempt"], fw2.counters(t)["preempt"]; a != 1 || b != 0 {
			t.Fatalf("preempt after start: fw1 %d, fw2 %d, want 1 and 0", a, b)
		}
		if _, _, err := fw1.e.SetSysctl(context.Background(), "net.inet.carp.demotion", 240); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if _, _, err := fw1.e.SetSysctl(context.Background(), "net.inet.carp.demotion", -240); err != nil {
			t.Fatal(err)
		}
		time.Sleep(carp.AdvInterval(1, 100) + time.Millisecond)
		synctest.Wait()
		c1, c2 := fw1.counters(t), fw2.counters(t)
		if c1["preempt"] != 2 || c2["preempt"] != 1 {
			t.Fatalf("preempt after a handover each way: fw1 %d, fw2 %d, want 2 and 1", c1["preempt"], c2["preempt"])
		}
		// Never counted, as on FreeBSD and OpenBSD (see carp.Stats).
		for _, c := range []map[string]uint64{c1, c2} {
			if c["ostates"] != 0 || c["badaddrs"] != 0 {
				t.Errorf("ostates %d, badaddrs %d", c["ostates"], c["badaddrs"])
			}
		}
	})
}

func TestSendWithoutBufferMemoryCountsONoMem(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNode(t, memkernel.NewSegment(), "10.0.0.2/24", "")
		defer n.stop(t)
		runbook284(t, n, 0)
		time.Sleep(carp.MasterDown(1, 0) + time.Millisecond)
		synctest.Wait()
		sent := n.counters(t)["opackets"]
		// Adverts refused with ENOBUFS (as sendmsg reports a socket buffer
		// it could not allocate) for three intervals, then one refused
		// otherwise, which is a send error but not onomem.
		n.k.SetSendError(fmt.Errorf("sendmsg: %w", syscall.ENOBUFS))
		time.Sleep(3 * carp.AdvInterval(1, 0))
		synctest.Wait()
		n.k.SetSendError(fmt.Errorf("sendmsg: %w", syscall.ENETUNREACH))
		time.Sleep(carp.AdvInterval(1, 0))
		synctest.Wait()
		c := n.counters(t)
		// Three periodic adverts, and the one the send-error demotion of
		// the third failure makes the MASTER send at once.
		if c["onomem"] != 4 || c["opackets"] != sent {
			t.Fatalf("onomem %d (want 4), opackets %d (want %d, unchanged)", c["onomem"], c["opackets"], sent)
		}
		// Each was a send error too: the senderr demotion took effect.
		if !strings.Contains(n.logs.String(), "demoted by 240") {
			t.Errorf("no send-error demotion in the log:\n%s", n.logs)
		}
	})
}
