//go:build linux

package kernelshim

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bsdcarp/bsdcarp/carp/osif"
)

// TestLinuxSendCacheFollowsTheWatch: a macvlan carpd makes is in the send
// cache from its creation, so that its first address install and
// announcement, as at a takeover, look no link up, and the link watch's
// updates of it keep it there; one made again behind carpd's back (a new
// ifindex) is taken from the watch's notification. An address on a link
// that is not carpd's is written after a lookup by name (it may have been
// renamed), and lands on the link of that name.
func TestLinuxSendCacheFollowsTheWatch(t *testing.T) {
	requireRoot(t)
	a, _ := vethPair(t)
	k := kernelIn(t, a)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := make(chan osif.LinkUpdate, 64)
	if err := k.WatchLinks(ctx, ch); err != nil {
		t.Fatal(err)
	}
	go func() { // the engine's side of the watch
		for {
			select {
			case <-ch:
			case <-ctx.Done():
				return
			}
		}
	}()
	index := func(name string) int {
		t.Helper()
		f := strings.SplitN(ipn(t, a, "-o", "link", "show", name), ":", 2)
		i, err := strconv.Atoi(f[0])
		if err != nil {
			t.Fatalf("ip -o link show %s: %q", name, f)
		}
		return i
	}
	parent := index("veth0")
	mac := net.HardwareAddr{0, 0, 0x5e, 0, 1, 7}
	// cached waits until the watch has caught up with carp7 (index idx):
	// the marker link's update comes after all of carp7's.
	marker := 0
	cached := func(round, idx int) {
		t.Helper()
		marker++
		m := "mark" + strconv.Itoa(marker)
		ipn(t, a, "link", "add", m, "type", "veth", "peer", "name", m+"p")
		for deadline := time.Now().Add(3 * time.Second); ; {
			k.smu.Lock()
			sl, ok := k.sendLinks["carp7"]
			_, seen := k.sendLinks[m]
			k.smu.Unlock()
			if seen && ok && sl.index == idx && sl.wire == parent && sl.parent == parent && net.HardwareAddr(sl.mac[:]).String() == mac.String() {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: carp7 (index %d on %d) in the send cache: %+v, %v (marker seen: %v)", round, idx, parent, sl, ok, seen)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	for round := range 2 {
		if round == 0 {
			if err := k.CreateMACVLAN("carp7", "veth0", mac); err != nil {
				t.Fatal(err)
			}
		} else {
			ipn(t, a, "link", "del", "carp7")
			ipn(t, a, "link", "add", "link", "veth0", "name", "carp7", "address", mac.String(), "type", "macvlan", "mode", "bridge")
			ipn(t, a, "link", "set", "carp7", "up")
		}
		idx := index("carp7")
		cached(round, idx)
		vip := netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(70 + round)}), 32)
		before := k.linkLookups.Load()
		if err := k.Announce("carp7", mac, vip.Addr()); err != nil {
			t.Fatalf("round %d: Announce: %v", round, err)
		}
		if n := k.linkLookups.Load() - before; n != 0 {
			t.Errorf("round %d: %d link lookups for an announcement out of a link the cache holds", round, n)
		}
		before = k.linkLookups.Load()
		got, err := k.ReplaceAddr("carp7", vip, 30*time.Second)
		if err != nil || got.Index != idx {
			t.Fatalf("round %d: ReplaceAddr(carp7, %s) = %+v, %v; want index %d", round, vip, got, err, idx)
		}
		want := uint64(0) // carpd's macvlan: from the cache
		if round == 1 {
			want = 1 // made behind carpd's back: looked up by name
		}
		if n := k.linkLookups.Load() - before; n != want {
			t.Errorf("round %d: ReplaceAddr looked the link up %d times, want %d", round, n, want)
		}
	}
}

// TestSendCacheBookkeeping: the send cache keeps one entry per ifindex and
// per name through renames, re-creations and forgetting by either.
func TestSendCacheBookkeeping(t *testing.T) {
	k := &Linux{}
	check := func(when string, want map[string]int) {
		t.Helper()
		if len(k.sendLinks) != len(want) || len(k.sendNames) != len(want) {
			t.Fatalf("%s: cache %v, names %v; want %v", when, k.sendLinks, k.sendNames, want)
		}
		for name, index := range want {
			if sl, ok := k.sendLinks[name]; !ok || sl.index != index || k.sendNames[index] != name {
				t.Fatalf("%s: cache %v, names %v; want %v", when, k.sendLinks, k.sendNames, want)
			}
		}
	}
	k.storeSendLink("em0", sendLink{index: 2})
	k.storeSendLink("carp7", sendLink{index: 5})
	check("stored", map[string]int{"em0": 2, "carp7": 5})
	k.storeSendLink("carp8", sendLink{index: 5}) // carp7 renamed carp8
	check("renamed", map[string]int{"em0": 2, "carp8": 5})
	k.storeSendLink("carp8", sendLink{index: 6}) // made again
	check("made again", map[string]int{"em0": 2, "carp8": 6})
	// A late update about carp8's earlier incarnation (index 5) does not
	// take the place of the entry: it drops it.
	k.updateSendLink("carp8", sendLink{index: 5})
	check("a late update", map[string]int{"em0": 2})
	k.updateSendLink("carp8", sendLink{index: 6}) // no entry: taken
	k.updateSendLink("carp8", sendLink{index: 6, wire: 2})
	check("updated", map[string]int{"em0": 2, "carp8": 6})
	if k.sendLinks["carp8"].wire != 2 {
		t.Errorf("an update of the same link not taken: %+v", k.sendLinks["carp8"])
	}
	k.updateSendLink("carp9", sendLink{index: 6}) // renamed, by the watch
	check("renamed by an update", map[string]int{"em0": 2, "carp9": 6})
	k.forgetSendLink("nope", 6) // by index: a link of another name
	check("forgotten by index", map[string]int{"em0": 2})
	k.clearSendLinks()
	check("cleared", map[string]int{})
	k.storeSendLink("em0", sendLink{index: 2})
	k.forgetSendLink("em0", 0)
	check("forgotten by name", map[string]int{})
}

// TestLinuxReplaceAddrAfterOurLinkRecreated: with no link watch to tell it,
// the send cache still holds a macvlan of ours by its old ifindex after the
// link was deleted and made again behind carpd's back; the install through
// the stale index fails (ENODEV), and ReplaceAddr looks the name up and
// writes the address once more, on the new link.
func TestLinuxReplaceAddrAfterOurLinkRecreated(t *testing.T) {
	requireRoot(t)
	a, _ := vethPair(t)
	k := kernelIn(t, a)
	mac := net.HardwareAddr{0, 0, 0x5e, 0, 1, 8}
	if err := k.CreateMACVLAN("carp8", "veth0", mac); err != nil {
		t.Fatal(err)
	}
	old, err := k.LinkByName("carp8")
	if err != nil {
		t.Fatal(err)
	}
	ipn(t, a, "link", "del", "carp8")
	ipn(t, a, "link", "add", "link", "veth0", "name", "carp8", "address", mac.String(), "type", "macvlan", "mode", "bridge")
	ipn(t, a, "link", "set", "carp8", "up")
	k.smu.Lock()
	stale := k.sendLinks["carp8"].index
	k.smu.Unlock()
	if stale != old.Index {
		t.Fatalf("the cache holds carp8 as index %d, want the old %d (the test needs a stale entry)", stale, old.Index)
	}
	vip := netip.MustParsePrefix("192.0.2.88/32")
	got, err := k.ReplaceAddr("carp8", vip, 30*time.Second)
	if err != nil {
		t.Fatalf("ReplaceAddr after the re-creation: %v", err)
	}
	now, err := k.LinkByName("carp8")
	if err != nil {
		t.Fatal(err)
	}
	if got.Index != now.Index || got.Index == old.Index {
		t.Errorf("ReplaceAddr = %+v: want the new carp8 (index %d, was %d)", got, now.Index, old.Index)
	}
	if !slices.Contains(now.Addrs, vip) {
		t.Errorf("%s not on the new carp8: %v", vip, now.Addrs)
	}
}
