package engine

import (
	"net/netip"
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

// masterCarp0 configures carp0 (vhid 1, 10.0.0.1/24 on em0) on n and waits
// until it is MASTER, with the transcript reset.
func masterCarp0(t *testing.T, n *node) {
	t.Helper()
	n.ifconfig(t, "carp0", api.Op{Kind: api.OpCreate})
	n.ifconfig(t, "carp0", api.Op{Kind: api.OpVHID, Int: 1}, api.Op{Kind: api.OpPass, Str: "x"},
		api.Op{Kind: api.OpCarpdev, Str: "em0"}, api.Op{Kind: api.OpAddr, Prefix: netip.MustParsePrefix("10.0.0.1/24")})
	time.Sleep(masterDown0)
	synctest.Wait()
	if got := n.state(t, "carp0"); got != "MASTER" {
		t.Fatalf("carp0 = %s, want MASTER", got)
	}
	n.k.ResetTranscript()
}

// A refresh the kernel refuses is logged, and then the address expires as
// if the engine were dead; once the kernel takes refreshes again, the next
// one adds it back.
func TestRefreshRefusedLetsTheAddressExpireUntilTheKernelTakesItAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNode(t, memkernel.NewSegment(), "10.0.0.2/24", "")
		defer n.stop(t)
		masterCarp0(t, n)
		vip := netip.MustParsePrefix("10.0.0.1/24")
		n.k.Fail(memkernel.OpRefreshAddrs, syscall.EIO)
		time.Sleep(2*addrLifetime(1) + time.Millisecond) // the lifetime of the last refresh, aligned with an advert
		synctest.Wait()
		if got := n.k.Addrs("carp0"); len(got) != 0 {
			t.Fatalf("carp0 holds %v a lifetime after its refreshes were refused", got)
		}
		want := "carpd: refresh 10.0.0.1/24 on carp0: kernelshim: RefreshAddrs: input/output error"
		if !strings.Contains(n.logs.String(), want) {
			t.Fatalf("log lacks %q:\n%s", want, n.logs.String())
		}
		n.k.Fail(memkernel.OpRefreshAddrs, nil)
		n.k.ResetTranscript()
		time.Sleep(carp.AdvInterval(1, 0)) // the next advert, and its refresh
		synctest.Wait()
		if got := n.k.Addrs("carp0"); !slices.Equal(got, []netip.Prefix{vip}) {
			t.Fatalf("carp0 holds %v after refreshes were taken again, want %s", got, vip)
		}
		wantOps(t, n.k.Transcript(), []string{carp0RefreshAligned})
	})
}

// The macvlan deleted behind the engine's back is made again (a new link
// index): the refresh of the old index fails with ErrNoLink, and the address
// is installed again by name on the new link.
func TestRefreshReinstallsOnAMacvlanMadeAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNode(t, memkernel.NewSegment(), "10.0.0.2/24", "")
		defer n.stop(t)
		masterCarp0(t, n)
		before, err := n.k.LinkByName("carp0")
		if err != nil {
			t.Fatal(err)
		}
		if err := n.k.DeleteLink("carp0"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		after, err := n.k.LinkByName("carp0")
		if err != nil || after.Index == before.Index {
			t.Fatalf("carp0 after its deletion: %+v, %v; want it made again with a new index", after, err)
		}
		time.Sleep(carp.AdvInterval(1, 0)) // the next advert, and its refresh
		synctest.Wait()
		if got := n.k.Addrs("carp0"); !slices.Equal(got, []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}) {
			t.Fatalf("carp0 (made again) holds %v after a refresh", got)
		}
		tr := n.k.Transcript()
		if i := slices.Index(tr, carp0Addr); i < 0 || !slices.Contains(tr[:i], "ip link add carp0 link em0 type macvlan address 00:00:5e:00:01:01") {
			t.Fatalf("the address was not installed again on the new carp0:\n%s", strings.Join(tr, "\n"))
		}
		if strings.Contains(n.logs.String(), "carpd: refresh") {
			t.Errorf("a refresh of the old link index was logged as an error:\n%s", n.logs.String())
		}
	})
}

// The lone MASTER's address is written again right after each advert, in
// the same round, with twice the lifetime (alignedRefresh): once a second
// instead of twice, and no wake-up of its own. A second vhid whose adverts
// go out in another round brings the tick back: every 500 ms, the lifetime
// of addrLifetime, for both. Neither address is ever missing.
func TestAlignedRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNode(t, memkernel.NewSegment(), "10.0.0.2/24", "")
		defer n.stop(t)
		masterCarp0(t, n)
		vip0 := netip.MustParsePrefix("10.0.0.1/24")
		vip1 := netip.MustParsePrefix("10.0.0.9/24")
		var mu sync.Mutex
		var adverts, refreshes []time.Time
		n.k.SetSendHook(func(string, osif.Packet) {
			mu.Lock()
			defer mu.Unlock()
			adverts = append(adverts, time.Now())
		})
		var lifetimes []time.Duration
		n.k.SetRefreshHook(func(int) {
			mu.Lock()
			defer mu.Unlock()
			refreshes = append(refreshes, time.Now())
		})
		// The addresses of links are checked every 10 ms: never missing.
		vips := map[string]netip.Prefix{"carp0": vip0, "carp1": vip1}
		watch := func(d time.Duration, links ...string) {
			t.Helper()
			for end := time.Now().Add(d); time.Now().Before(end); {
				time.Sleep(10 * time.Millisecond)
				synctest.Wait()
				for _, l := range links {
					a, ok := n.k.AddrLifetime(l, vips[l])
					if !ok {
						t.Fatalf("%s missing on %s at %v", vips[l], l, time.Now())
					}
					mu.Lock()
					lifetimes = append(lifetimes, a.Lifetime)
					mu.Unlock()
				}
			}
		}
		// take returns what the hooks and the watch saw, and starts over.
		take := func() (adv, ref []time.Time, lts []time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			adv, ref, lts = adverts, refreshes, lifetimes
			adverts, refreshes, lifetimes = nil, nil, nil
			return adv, ref, lts
		}
		watch(10*time.Second, "carp0")
		adv, ref, lts := take()
		if len(adv) < 9 || len(ref) < len(adv)-1 || len(ref) > len(adv)+1 {
			t.Fatalf("%d adverts and %d refreshes in 10 s, want one refresh per advert", len(adv), len(ref))
		}
		for _, r := range ref {
			if !slices.Contains(adv, r) {
				t.Errorf("a refresh at %v, not in an advert's round (adverts %v)", r, adv)
			}
		}
		if lt := slices.Max(lts); lt <= addrLifetime(1) || lt > 2*addrLifetime(1) {
			t.Errorf("longest lifetime seen %v, want the aligned one, %v", lt, 2*addrLifetime(1))
		}

		// carp1, 300 ms after an advert of carp0: its adverts never share
		// a round with carp0's (advertEarly moves an advert by at most a
		// quarter of the interval), and it takes over (three intervals
		// later) 300 ms after carp0's last aligned refresh, whose
		// fallback tick would come 1.2 s after carp1's address was
		// written with a lifetime of 1 s: the tick must come sooner.
		for len(adv) == 0 {
			time.Sleep(time.Millisecond)
			synctest.Wait()
			adv, _, _ = take()
		}
		time.Sleep(300 * time.Millisecond)
		n.ifconfig(t, "carp1", api.Op{Kind: api.OpCreate})
		n.ifconfig(t, "carp1", api.Op{Kind: api.OpVHID, Int: 2}, api.Op{Kind: api.OpPass, Str: "x"},
			api.Op{Kind: api.OpCarpdev, Str: "em0"}, api.Op{Kind: api.OpAddr, Prefix: vip1})
		watch(masterDown0, "carp0")
		if got := n.state(t, "carp1"); got != "MASTER" {
			t.Fatalf("carp1 = %s, want MASTER", got)
		}
		watch(2*time.Second, "carp0", "carp1") // until the last aligned lifetime has run out
		n.k.ResetTranscript()
		take()
		watch(5*time.Second, "carp0", "carp1")
		_, ref, lts = take()
		if len(ref) < 9 || len(ref) > 11 {
			t.Errorf("%d refreshes in 5 s with two vhids in different rounds, want one every %v", len(ref), refreshEvery)
		}
		for _, l := range n.k.Transcript() {
			if strings.HasPrefix(l, "ip addr refresh") && strings.Contains(l, "lft 2s") {
				t.Errorf("an aligned refresh with two vhids in different rounds: %s", l)
			}
		}
		if lt := slices.Max(lts); lt > addrLifetime(1) {
			t.Errorf("lifetime %v seen with two vhids in different rounds, want at most %v", lt, addrLifetime(1))
		}
	})
}
