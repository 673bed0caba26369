package engine

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bsdcarp/bsdcarp/carp/api"
	"github.com/bsdcarp/bsdcarp/carp/osif"
	"github.com/bsdcarp/bsdcarp/kernelshim/memkernel"
)

// aliasVHID is `ifconfig em0 vhid VHID pass p [more] alias ADDR`.
func aliasVHID(vhid int, addr string, more ...api.Op) []api.Op {
	ops := append([]api.Op{{Kind: api.OpVHID, Int: vhid}, {Kind: api.OpPass, Str: "p"}}, more...)
	return append(ops, api.Op{Kind: api.OpAddr, Prefix: netip.MustParsePrefix(addr), Alias: true})
}

func advskew(n int) api.Op { return api.Op{Kind: api.OpAdvSkew, Int: n} }

// TestMasterAdvertsAreSentTogether: 40 MASTER vhids configured at spread
// times send their adverts in groups (at most one group per advertEarly),
// so the loop wakes a few times a second instead of once per vhid, and no
// advert is ever late: every vhid's adverts are between advertEarly less
// than its interval and its interval apart.
func TestMasterAdvertsAreSentTogether(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 40
		node := newNode(t, memkernel.NewSegment(), "10.0.0.2/16", "")
		defer node.stop(t)
		for i := 1; i <= n; i++ {
			node.ifconfig(t, "em0", aliasVHID(i, fmt.Sprintf("10.0.1.%d/32", i))...)
			time.Sleep(23 * time.Millisecond) // spread over about a second
		}
		time.Sleep(10 * time.Second) // every vhid MASTER, groups formed
		synctest.Wait()
		var mu sync.Mutex
		sends := map[uint8][]time.Time{}
		instants := map[time.Time]bool{}
		node.k.SetSendHook(func(_ string, p osif.Packet) {
			mu.Lock()
			defer mu.Unlock()
			now := time.Now()
			sends[p.Payload[1]] = append(sends[p.Payload[1]], now)
			instants[now] = true
		})
		const window = 5 * time.Second
		time.Sleep(window)
		synctest.Wait()
		node.k.SetSendHook(nil)
		mu.Lock()
		defer mu.Unlock()
		if len(sends) != n {
			t.Fatalf("%d vhids advertised, want %d", len(sends), n)
		}
		// Groups are more than advertEarly apart.
		maxGroups := int(window/advertEarly) + 1
		if len(instants) > maxGroups || len(instants) >= n*int(window/time.Second) {
			t.Errorf("adverts at %d distinct times in %v, want at most %d (and fewer than one per advert)", len(instants), window, maxGroups)
		}
		for vhid, ts := range sends {
			for i := 1; i < len(ts); i++ {
				gap := ts[i].Sub(ts[i-1])
				if gap > time.Second || gap < time.Second-advertEarly {
					t.Errorf("vhid %d: adverts %v apart, want between %v and 1s", vhid, gap, time.Second-advertEarly)
				}
			}
			if len(ts) < int(window/time.Second) {
				t.Errorf("vhid %d: %d adverts in %v", vhid, len(ts), window)
			}
		}
		t.Logf("%d vhids: adverts at %d distinct times in %v", n, len(instants), window)
	})
}

// TestOtherWakeUpsDoNotHurryAdverts: a CARP vhid at advbase 1 next to a
// VRRPv3 vhid at 10 ms (the loop awake every 10 ms) and the address
// refresh keeps its period: only the group mates of an advert due now
// leave early, so its adverts stay a second apart (they were pulled 250 ms
// early at every chance: every 0.75 s).
func TestOtherWakeUpsDoNotHurryAdverts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		node := newNode(t, memkernel.NewSegment(), "10.0.0.2/16", "")
		defer node.stop(t)
		node.ifconfig(t, "em0", vrrpLine(200, 1)...)
		node.ifconfig(t, "em0", aliasVHID(2, "10.0.2.1/32")...)
		time.Sleep(5 * time.Second) // both MASTER
		synctest.Wait()
		var mu sync.Mutex
		var carpSends []time.Time
		node.k.SetSendHook(func(_ string, p osif.Packet) {
			mu.Lock()
			defer mu.Unlock()
			if p.Payload[0]>>4 == 2 && p.Payload[1] == 2 {
				carpSends = append(carpSends, time.Now())
			}
		})
		time.Sleep(5 * time.Second)
		synctest.Wait()
		node.k.SetSendHook(nil)
		mu.Lock()
		defer mu.Unlock()
		if len(carpSends) < 4 {
			t.Fatalf("%d CARP adverts in 5 s", len(carpSends))
		}
		for i := 1; i < len(carpSends); i++ {
			if gap := carpSends[i].Sub(carpSends[i-1]); gap != time.Second {
				t.Errorf("CARP adverts %v apart, want 1s", gap)
			}
		}
	})
}

// TestRefreshFallsInWithAdverts: the address refresh of a MASTER joins its
// adverts (it may run up to refreshEarly before its time when the loop is
// awake for them), so a MASTER of one vhid advertising every 0.98 s (its
// adverts drift past the refresh ticks, as real timers' lateness makes
// them) wakes about twice a second, not three times, and no address waits
// longer than refreshEvery for its refresh.
func TestRefreshFallsInWithAdverts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		node := newNode(t, memkernel.NewSegment(), "10.0.0.2/16", "")
		defer node.stop(t)
		node.ifconfig(t, "em0", vrrpLine(200, 98)...)
		time.Sleep(5 * time.Second) // MASTER
		synctest.Wait()
		var mu sync.Mutex
		wakes := map[time.Time]bool{}
		var refreshes []time.Time
		adverts := 0
		node.k.SetSendHook(func(string, osif.Packet) {
			mu.Lock()
			defer mu.Unlock()
			wakes[time.Now()] = true
			adverts++
		})
		node.k.SetRefreshHook(func(int) {
			mu.Lock()
			defer mu.Unlock()
			wakes[time.Now()] = true
			refreshes = append(refreshes, time.Now())
		})
		const window = 10 * time.Second
		time.Sleep(window)
		synctest.Wait()
		node.k.SetSendHook(nil)
		node.k.SetRefreshHook(nil)
		mu.Lock()
		defer mu.Unlock()
		if adverts < 10 || len(refreshes) < int(window/refreshEvery)-1 {
			t.Fatalf("%d adverts and %d refreshes in %v", adverts, len(refreshes), window)
		}
		for i := 1; i < len(refreshes); i++ {
			if gap := refreshes[i].Sub(refreshes[i-1]); gap > refreshEvery || gap < refreshEvery-refreshEarly {
				t.Errorf("refreshes %v apart, want between %v and %v", gap, refreshEvery-refreshEarly, refreshEvery)
			}
		}
		// Without refreshEarly: about 20 refreshes and 10 adverts at 30
		// distinct times, as good as never together.
		if max := 2*int(window/time.Second) + 2; len(wakes) > max {
			t.Errorf("%d adverts and %d refreshes at %d distinct times in %v, want at most %d", adverts, len(refreshes), len(wakes), window, max)
		}
	})
}

// countingTimer is a Go timer that counts its settings.
type countingTimer struct {
	*goTimer
	sets *atomic.Int64
}

func (c countingTimer) Set(d time.Duration) error {
	c.sets.Add(1)
	return c.goTimer.Set(d)
}

// TestBackupDoesNotSetItsTimerPerAdvert: a BACKUP's timer is set again
// only when a deadline comes earlier or it fired, not for each advert it
// hears (that pushes a master-down deadline later): with carpd's timerfd
// each setting is a system call.
func TestBackupDoesNotSetItsTimerPerAdvert(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := memkernel.NewSegment()
		fw1 := newNode(t, seg, "10.0.0.2/16", "")
		defer fw1.stop(t)
		var sets atomic.Int64
		fw2 := newNodeWith(t, seg, "10.0.0.3/16", Options{Timer: func() (Timer, error) {
			return countingTimer{newGoTimer(), &sets}, nil
		}})
		defer fw2.stop(t)
		const n = 20
		for i := 1; i <= n; i++ {
			addr := fmt.Sprintf("10.0.1.%d/32", i)
			fw1.ifconfig(t, "em0", aliasVHID(i, addr, advskew(0))...)
			fw2.ifconfig(t, "em0", aliasVHID(i, addr, advskew(100))...)
			time.Sleep(37 * time.Millisecond) // spread
		}
		time.Sleep(10 * time.Second) // fw1 MASTER of all, fw2 BACKUP
		synctest.Wait()
		st, err := fw2.e.Status(context.Background(), api.StatusQuery{})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range st.VHIDs {
			if v.State != "BACKUP" {
				t.Fatalf("fw2 vhid %d is %s, want BACKUP", v.VHID, v.State)
			}
		}
		heard0 := fw2.counters(t)["ipackets"]
		sets.Store(0)
		const window = 10 * time.Second
		time.Sleep(window)
		synctest.Wait()
		got, heard := sets.Load(), int64(fw2.counters(t)["ipackets"]-heard0)
		if heard < n*int64(window/time.Second)-n {
			t.Fatalf("the BACKUP heard %d adverts in %v", heard, window)
		}
		if got*4 > heard {
			t.Errorf("the BACKUP set its timer %d times while hearing %d adverts, want at most a quarter", got, heard)
		}
		t.Logf("%d timer settings for %d adverts heard", got, heard)
	})
}

// failingTimer works for its first settings, then fails, as a timerfd whose
// reader ended would.
type failingTimer struct {
	*goTimer
	left int
}

func (f *failingTimer) Set(d time.Duration) error {
	if f.left--; f.left < 0 {
		return fmt.Errorf("timer broken")
	}
	return f.goTimer.Set(d)
}

// TestBrokenTimerFallsBackToGoTimer: when Options.Timer's timer fails, the
// loop logs it and goes on with a Go timer: a MASTER keeps advertising.
func TestBrokenTimerFallsBackToGoTimer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNodeWith(t, memkernel.NewSegment(), "10.0.0.3/16", Options{Timer: func() (Timer, error) {
			return &failingTimer{newGoTimer(), 3}, nil
		}})
		defer n.stop(t)
		n.ifconfig(t, "em0", aliasVHID(1, "10.0.1.1/32")...)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if st := n.state(t, "em0"); st != "MASTER" {
			t.Fatalf("em0 vhid 1 is %s after 10 s alone, want MASTER", st)
		}
		sent := 0
		n.k.SetSendHook(func(string, osif.Packet) { sent++ })
		time.Sleep(5 * time.Second)
		synctest.Wait()
		n.k.SetSendHook(nil)
		if sent < 4 {
			t.Errorf("%d adverts in 5 s after the timer broke, want 5", sent)
		}
		if !strings.Contains(n.logs.String(), "using a Go timer") {
			t.Errorf("no log line about the fallback: %s", n.logs.String())
		}
	})
}

// TestIdleBackupIsNotWokenEarly: a BACKUP of one vhid that hears its MASTER
// every second is woken by its timer only for the counters' save (each
// advert moves its master-down deadline a second later, past rearmSlack,
// and the timer with it), where a timer left at the old deadline woke it
// for nothing every few seconds.
func TestIdleBackupIsNotWokenEarly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := memkernel.NewSegment()
		fw1 := newNode(t, seg, "10.0.0.2/16", "")
		defer fw1.stop(t)
		fw2 := newNode(t, seg, "10.0.0.3/16", "")
		defer fw2.stop(t)
		fw1.ifconfig(t, "em0", aliasVHID(1, "10.0.1.1/32", advskew(0))...)
		fw2.ifconfig(t, "em0", aliasVHID(1, "10.0.1.1/32", advskew(100))...)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if a, b := fw1.state(t, "em0"), fw2.state(t, "em0"); a != "MASTER" || b != "BACKUP" {
			t.Fatalf("fw1 %s, fw2 %s; want MASTER and BACKUP", a, b)
		}
		// e.call, not onEngine: that one switches the package's
		// checkSchedule, which fw1's loop reads meanwhile.
		rounds := func() int {
			var n int
			if err := fw2.e.call(context.Background(), func() { n = fw2.e.timerRounds }); err != nil {
				t.Fatal(err)
			}
			return n
		}
		r0 := rounds()
		time.Sleep(20 * time.Second)
		synctest.Wait()
		r1 := rounds()
		// Only the counters' own deadline (countersEvery) is due.
		if want := int(20 * time.Second / countersEvery); r1-r0 > want {
			t.Errorf("the BACKUP's timer woke it %d times in 20 s, want %d (the counters' save)", r1-r0, want)
		}
	})
}
