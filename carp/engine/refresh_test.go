package engine

import (
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bsdcarp/bsdcarp/carp/api"
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
		time.Sleep(time.Second + time.Millisecond)
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
		time.Sleep(refreshEvery)
		synctest.Wait()
		if got := n.k.Addrs("carp0"); !slices.Equal(got, []netip.Prefix{vip}) {
			t.Fatalf("carp0 holds %v after refreshes were taken again, want %s", got, vip)
		}
		wantOps(t, n.k.Transcript(), []string{carp0Refresh})
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
		time.Sleep(refreshEvery)
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

// The adverts of the vhids a timer round advances go to the kernel in one
// SendCARPs call: 16 vhids configured together advertise in the same
// rounds, one call a round.
func TestAdvertsOfARoundGoInOneBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNode(t, memkernel.NewSegment(), "10.0.0.2/24", "")
		defer n.stop(t)
		for v := 1; v <= 16; v++ {
			n.ifconfig(t, "em0", api.Op{Kind: api.OpVHID, Int: v}, api.Op{Kind: api.OpPass, Str: "x"},
				api.Op{Kind: api.OpAddr, Alias: true, Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(100 + v)}), 32)})
		}
		time.Sleep(masterDown0)
		synctest.Wait()
		before := n.k.Stats()
		time.Sleep(5 * time.Second)
		synctest.Wait()
		after := n.k.Stats()
		sent, batches := after.Sent-before.Sent, after.Batches-before.Batches
		if sent != 5*16 || batches != 5 {
			t.Fatalf("16 MASTERs over 5 advert intervals: %d adverts in %d SendCARPs calls, want 80 in 5", sent, batches)
		}
	})
}

// A send result that undoes a demotion re-advertises every vhid at once;
// when the advert behind it goes out in the round another vhid takes over
// (sent by that vhid's first kernel call), the demotion waits until that
// takeover is done: the new MASTER installs and announces its address
// before it first advertises, as it does alone.
func TestSendResultsSettleBetweenVhids(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNode(t, memkernel.NewSegment(), "10.0.0.2/24", "")
		defer n.stop(t)
		rec := recordKernelOps(n.k)
		n.ifconfig(t, "em0", api.Op{Kind: api.OpVHID, Int: 1}, api.Op{Kind: api.OpPass, Str: "x"},
			api.Op{Kind: api.OpAddr, Alias: true, Prefix: netip.MustParsePrefix("10.0.0.50/32")})
		time.Sleep(3500 * time.Millisecond)
		synctest.Wait()
		// Three adverts fail (vhid 1 demotes the host); the third good
		// one after that undoes it in the round in which vhid 2,
		// configured 2.3125 s after the errors end, takes over.
		n.k.SetSendError(syscall.ENOBUFS)
		time.Sleep(3 * time.Second)
		synctest.Wait()
		n.k.SetSendError(nil)
		time.Sleep(2312500 * time.Microsecond)
		synctest.Wait()
		n.ifconfig(t, "em0", api.Op{Kind: api.OpVHID, Int: 2}, api.Op{Kind: api.OpPass, Str: "x"},
			api.Op{Kind: api.OpAddr, Alias: true, Prefix: netip.MustParsePrefix("10.0.0.51/32")})
		time.Sleep(8 * time.Second)
		synctest.Wait()
		ops := rec.all()
		install := slices.Index(ops, "ip addr replace 10.0.0.51/32 dev carpv1.2 lft 1s")
		advert := slices.IndexFunc(ops, func(l string) bool { return strings.HasPrefix(l, "advert vhid 2 ") })
		if install < 0 || advert < 0 || advert < install {
			t.Fatalf("vhid 2's install at line %d, its first advert at line %d:\n\t%s", install+1, advert+1, strings.Join(ops, "\n\t"))
		}
		if !strings.Contains(n.logs.String(), "send ok on em0") {
			t.Fatalf("no demotion undone (the case this test is about):\n%s", n.logs.String())
		}
	})
}
