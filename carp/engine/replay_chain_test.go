package engine

import (
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bsdcarp/bsdcarp/carp"
	"github.com/bsdcarp/bsdcarp/kernelshim/memkernel"
)

// A MASTER that moved to a peer's counter chain (a peer that rebooted drew a
// fresh random counter) must still drop replays of its own older chain.
// Found by TestSimulation: remembering only the newest counter, the engine
// took the replay as fresh and yielded to its own captured advert.
func TestReplayOfAnOlderCounterChainIsStillDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := memkernel.NewSegment()
		c := newNode(t, seg, "10.0.0.2/24", "")
		defer c.stop(t)
		var capC capture
		c.k.SetSendHook(capC.hook)
		runbook284(t, c, 0)
		time.Sleep(carp.MasterDown(1, 0) + 3*time.Second)
		synctest.Wait()
		if got := c.state(t, "carp0"); got != "MASTER" {
			t.Fatalf("setup: c is %s", got)
		}
		old := capC.last(t) // c's own chain

		// A peer with a freshly drawn counter (its own chain) and a worse
		// advskew speaks: c stays MASTER and goes on from the peer's
		// counter, as CARP wants.
		inject := attacker(t, seg)
		peer := carp.BuildAdvert(1, 1, 100, 0x4000000000000000, carp.Key("lanpasswd"), []netip.Addr{netip.MustParseAddr("10.0.0.1")})
		inject(netip.MustParseAddr("10.0.0.3"), peer)
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if got := c.state(t, "carp0"); got != "MASTER" {
			t.Fatalf("c yielded to a worse peer: %s", got)
		}
		if !sameChain(capC.last(t).Payload, 0x4000000000000000) {
			t.Fatalf("c did not go on from the peer's counter")
		}

		// Its own advert from the older chain, replayed from another address
		// (from its own it would be ignored as looped back): dropped, counted,
		// c stays MASTER.
		before := counter(t, c, "replay")
		inject(netip.MustParseAddr("10.0.0.77"), old.Payload)
		synctest.Wait()
		if got := c.state(t, "carp0"); got != "MASTER" {
			t.Fatalf("c yielded to a replay of its older counter chain: %s\n%s", got, c.logs.String())
		}
		if got := counter(t, c, "replay"); got != before+1 {
			t.Errorf("replay counter %d -> %d, want +1", before, got)
		}
	})
}

// sameChain reports whether the advert's counter is at most
// carp.ReplayWindow ahead of start.
func sameChain(payload []byte, start uint64) bool {
	var h carp.Header
	if err := h.DecodeFromBytes(payload, nil); err != nil {
		return false
	}
	return h.Counter-start <= carp.ReplayWindow
}
