package engine

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bsdcarp/bsdcarp/carp"
	"github.com/bsdcarp/bsdcarp/carp/api"
	"github.com/bsdcarp/bsdcarp/carp/osif"
	"github.com/bsdcarp/bsdcarp/kernelshim/memkernel"
)

func TestEventTextIsDevctlNotify(t *testing.T) {
	cases := []struct {
		ev   Event
		want string
	}{
		{Event{SystemCARP, "1@em0", "MASTER"}, "!system=CARP subsystem=1@em0 type=MASTER"},
		{Event{SystemCARP, "1@em0", "BACKUP"}, "!system=CARP subsystem=1@em0 type=BACKUP"},
		{Event{SystemCARP, "255@igb1", "INIT"}, "!system=CARP subsystem=255@igb1 type=INIT"},
		{Event{SystemIFNET, "carp0", TypeLinkUp}, "!system=IFNET subsystem=carp0 type=LINK_UP"},
		{Event{SystemIFNET, "carp0", TypeLinkDn}, "!system=IFNET subsystem=carp0 type=LINK_DOWN"},
		{Event{SystemIFNET, "em0", TypeLinkUp}, "!system=IFNET subsystem=em0 type=LINK_UP"},
		{Event{SystemIFNET, "em0", TypeLinkDn}, "!system=IFNET subsystem=em0 type=LINK_DOWN"},
	}
	for _, c := range cases {
		if got := c.ev.String(); got != c.want {
			t.Errorf("String() = %q, want %q", got, c.want)
		}
		if got := string(c.ev.Line()); got != c.want+"\n" {
			t.Errorf("Line() = %q, want %q", got, c.want+"\n")
		}
	}
}

// eventNode is newNode with an Events channel of capacity n.
func eventNode(t *testing.T, seg *memkernel.Segment, addr string, n int) (*node, chan Event) {
	t.Helper()
	k := memkernel.NewMemory()
	k.Clock = time.Now
	k.AddLink(osif.Link{Name: "em0", MAC: net.HardwareAddr{2, 0, 0, 0, 1, byte(len(addr))}, MTU: 1500,
		AdminUp: true, Carrier: true, Running: true, Broadcast: true, Multicast: true, Kind: "veth",
		Addrs: []netip.Prefix{netip.MustParsePrefix(addr)}}, seg)
	evs := make(chan Event, n)
	return startNodeWith(t, Options{Kernel: k, Events: evs}), evs
}

// drain returns the events queued so far, as text.
func drain(ch chan Event) []string {
	var out []string
	for {
		select {
		case ev := <-ch:
			out = append(out, ev.String())
		default:
			return out
		}
	}
}

func TestEventsOfAFailoverInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := memkernel.NewSegment()
		a, evA := eventNode(t, seg, "10.0.0.2/24", 64)
		defer a.stop(t)
		b, evB := eventNode(t, seg, "10.0.0.3/24", 64)
		defer b.stop(t)
		runbook284(t, a, 0)
		time.Sleep(carp.MasterDown(1, 0) + time.Millisecond)
		synctest.Wait()
		runbook284(t, b, 100)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		wantA := []string{
			"!system=CARP subsystem=1@em0 type=BACKUP",
			"!system=IFNET subsystem=carp0 type=LINK_DOWN",
			"!system=CARP subsystem=1@em0 type=MASTER",
			"!system=IFNET subsystem=carp0 type=LINK_UP",
		}
		if got := drain(evA); !slices.Equal(got, wantA) {
			t.Fatalf("a's events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantA, "\n"))
		}
		wantB := wantA[:2]
		if got := drain(evB); !slices.Equal(got, wantB) {
			t.Fatalf("b's events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantB, "\n"))
		}

		// a's cable is pulled: its parent goes down, the vhid to INIT;
		// b takes over.
		a.k.SetCarrier("em0", false)
		time.Sleep(carp.MasterDown(1, 100) + time.Millisecond)
		synctest.Wait()
		if got := b.state(t, "carp0"); got != "MASTER" {
			t.Fatalf("b is %s", got)
		}
		wantA = []string{
			"!system=CARP subsystem=1@em0 type=INIT",
			"!system=IFNET subsystem=carp0 type=LINK_DOWN",
			"!system=IFNET subsystem=em0 type=LINK_DOWN",
		}
		if got := drain(evA); !slices.Equal(got, wantA) {
			t.Fatalf("a's events after the cable was pulled:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantA, "\n"))
		}
		wantB = []string{
			"!system=CARP subsystem=1@em0 type=MASTER",
			"!system=IFNET subsystem=carp0 type=LINK_UP",
		}
		if got := drain(evB); !slices.Equal(got, wantB) {
			t.Fatalf("b's events after the failover:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantB, "\n"))
		}

		// The cable is back: em0 LINK_UP, then the vhid runs again.
		a.k.SetCarrier("em0", true)
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if got := drain(evA); len(got) < 2 || got[0] != "!system=CARP subsystem=1@em0 type=BACKUP" ||
			!slices.Contains(got, "!system=IFNET subsystem=em0 type=LINK_UP") {
			t.Fatalf("a's events after the cable came back: %q", got)
		}
	})
}

// A consumer that never reads: the engine keeps its protocol timing, drops
// the events it cannot queue, counts and logs them (rate-limited).
func TestFullEventQueueNeverBlocksTheEngine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := memkernel.NewSegment()
		a, _ := eventNode(t, seg, "10.0.0.2/24", 1) // nobody ever reads it
		defer a.stop(t)
		runbook284(t, a, 0)
		start := time.Now()
		time.Sleep(carp.MasterDown(1, 0) - time.Microsecond)
		synctest.Wait()
		if got := a.state(t, "carp0"); got != "BACKUP" {
			t.Fatalf("state before master-down = %s", got)
		}
		time.Sleep(time.Microsecond)
		synctest.Wait()
		if got := a.state(t, "carp0"); got != "MASTER" {
			t.Fatalf("state %v after configuration = %s, want MASTER at the master-down interval", time.Since(start), got)
		}
		// BACKUP fits, carp0 LINK_DOWN, MASTER and LINK_UP do not.
		if got := a.e.EventsDropped(); got != 3 {
			t.Fatalf("EventsDropped = %d, want 3", got)
		}
		// Flapping the vhid many times within a second keeps working and
		// logs the loss once.
		for range 20 {
			a.ifconfig(t, "carp0", api.Op{Kind: api.OpDown})
			a.ifconfig(t, "carp0", api.Op{Kind: api.OpUp})
		}
		synctest.Wait()
		if got := a.e.EventsDropped(); got <= 3 {
			t.Fatalf("EventsDropped = %d after 20 flaps", got)
		}
		if n := strings.Count(a.logs.String(), "event queue full"); n != 2 {
			t.Fatalf("%d 'event queue full' log lines, want 2 (one per second):\n%s", n, a.logs.String())
		}
	})
}
