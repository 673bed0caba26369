package engine

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bsdcarp/bsdcarp/carp/api"
	"github.com/bsdcarp/bsdcarp/carp/osif"
	"github.com/bsdcarp/bsdcarp/kernelshim/memkernel"
)

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
			node.ifconfig(t, "em0", api.Op{Kind: api.OpVHID, Int: i}, api.Op{Kind: api.OpPass, Str: "p"},
				api.Op{Kind: api.OpAddr, Prefix: netip.MustParsePrefix(fmt.Sprintf("10.0.1.%d/32", i)), Alias: true})
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
		node.ifconfig(t, "em0", api.Op{Kind: api.OpVHID, Int: 2}, api.Op{Kind: api.OpPass, Str: "p"},
			api.Op{Kind: api.OpAddr, Prefix: netip.MustParsePrefix("10.0.2.1/32"), Alias: true})
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
