package memkernel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bsdcarp/bsdcarp/carp/osif"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var vmac = net.HardwareAddr{0, 0, 0x5e, 0, 1, 1}

func memHost(seg *Segment, addr string) *Memory {
	m := NewMemory()
	m.AddLink(osif.Link{Name: "em0", MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, MTU: 1500, AdminUp: true, Carrier: true,
		Broadcast: true, Multicast: true, Addrs: []netip.Prefix{netip.MustParsePrefix(addr)}}, seg)
	return m
}

func open(t *testing.T, k *Memory) chan osif.Packet {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch := make(chan osif.Packet, 4)
	if err := k.OpenCARP(ctx, ch); err != nil {
		t.Fatal(err)
	}
	return ch
}

func TestMemoryTranscriptAndLinks(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	m := memHost(nil, "10.0.0.2/24")
	m.Clock = clk.Now
	if err := m.CreateMACVLAN("carp0", "em0", vmac); err != nil {
		t.Fatal(err)
	}
	if err := m.CreateMACVLAN("carp0", "em0", vmac); err != nil {
		t.Fatalf("re-create own: %v", err)
	}
	if err := m.CreateMACVLAN("em0", "carp0", vmac); err == nil {
		t.Fatal("replaced a foreign link")
	}
	if err := m.CreateMACVLAN("carp1", "em9", vmac); !errors.Is(err, osif.ErrNoLink) {
		t.Fatalf("missing parent: %v", err)
	}
	l, err := m.LinkByName("carp0")
	if err != nil || l.Kind != "macvlan" || l.Alias != osif.OwnerAlias || !l.AdminUp || !l.Carrier || l.MAC.String() != vmac.String() || l.ParentIndex != 1 {
		t.Fatalf("carp0 = %+v, %v", l, err)
	}
	vip := netip.MustParsePrefix("10.0.0.1/24")
	if _, err := m.ReplaceAddr("carp0", vip, 2500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if _, err := m.ReplaceAddr("carp0", netip.MustParsePrefix("2001:db8::1/64"), 0); err != nil {
		t.Fatal(err)
	}
	if err := m.Announce("carp0", vmac, vip.Addr()); err != nil {
		t.Fatal(err)
	}
	if err := m.Announce("carp0", vmac, netip.MustParseAddr("2001:db8::1")); err != nil {
		t.Fatal(err)
	}
	old, err := m.SetSysctl("net/ipv4/conf/em0/arp_ignore", "1")
	if err != nil || old != "0" {
		t.Fatalf("sysctl old=%q err=%v", old, err)
	}
	if old, _ := m.SetSysctl("net/ipv4/conf/em0/arp_ignore", "0"); old != "1" {
		t.Fatalf("sysctl old=%q", old)
	}
	clk.Add(2 * time.Second)
	if got := m.Addrs("carp0"); len(got) != 2 {
		t.Fatalf("before expiry: %v", got)
	}
	clk.Add(time.Second)
	if got := m.Addrs("carp0"); !slices.Equal(got, []netip.Prefix{netip.MustParsePrefix("2001:db8::1/64")}) {
		t.Fatalf("after expiry: %v", got)
	}
	if err := m.DelAddr("carp0", vip); err != nil {
		t.Fatal(err)
	}
	if err := m.SetLinkUp("carp0", false); err != nil {
		t.Fatal(err)
	}
	if err := m.DeleteLink("carp0"); err != nil {
		t.Fatal(err)
	}
	if err := m.DeleteLink("carp0"); !errors.Is(err, osif.ErrNoLink) {
		t.Fatalf("second delete: %v", err)
	}
	want := []string{
		"ip link add carp0 link em0 type macvlan address 00:00:5e:00:01:01",
		"ip link del carp0",
		"ip link add carp0 link em0 type macvlan address 00:00:5e:00:01:01",
		"ip addr replace 10.0.0.1/24 dev carp0 lft 3s",
		"ip addr replace 2001:db8::1/64 dev carp0 lft forever",
		"arp announce 10.0.0.1 dev carp0 lladdr 00:00:5e:00:01:01",
		"nd advertise 2001:db8::1 dev carp0 lladdr 00:00:5e:00:01:01",
		"sysctl net/ipv4/conf/em0/arp_ignore=1",
		"sysctl net/ipv4/conf/em0/arp_ignore=0",
		"ip addr del 10.0.0.1/24 dev carp0",
		"ip link set carp0 down",
		"ip link del carp0",
	}
	if got := m.Transcript(); !slices.Equal(got, want) {
		t.Fatalf("transcript:\n%q\nwant\n%q", got, want)
	}
	links, _ := m.Links()
	if len(links) != 1 || links[0].Name != "em0" || links[0].Index != 1 {
		t.Fatalf("links %+v", links)
	}
}

func TestMemorySegmentDelivery(t *testing.T) {
	seg := NewSegment()
	a, b, c := memHost(seg, "10.0.0.2/24"), memHost(seg, "10.0.0.3/24"), memHost(seg, "10.0.0.4/24")
	cha, chb, chc := open(t, a), open(t, b), open(t, c)
	for _, m := range []*Memory{a, b} {
		if err := m.JoinGroup("em0"); err != nil {
			t.Fatal(err)
		}
	}
	// c joins on a macvlan of em0: it hears the advert on em0.
	if err := c.CreateMACVLAN("carp0", "em0", vmac); err != nil {
		t.Fatal(err)
	}
	if err := c.JoinGroup("carp0"); err != nil {
		t.Fatal(err)
	}
	src := netip.MustParseAddr("10.0.0.2")
	if err := a.SendCARP("em0", src, osif.GroupV4, 0xe0, []byte{0x21, 1}); err != nil {
		t.Fatal(err)
	}
	// b hears it on em0 (index 1), c on the macvlan that joined (index 2).
	for i, ch := range []chan osif.Packet{chb, chc} {
		select {
		case p := <-ch:
			if p.Src != src || p.Dst != osif.GroupV4 || p.TTL != 255 || p.IfIndex != 1+i || p.IPv6 || !bytes.Equal(p.Payload, []byte{0x21, 1}) {
				t.Fatalf("got %+v", p)
			}
		default:
			t.Fatal("advert not delivered")
		}
	}
	if len(cha) != 0 {
		t.Fatal("sender heard itself")
	}
	// Unicast: only the owner of dst.
	if err := a.SendCARP("em0", src, netip.MustParseAddr("10.0.0.4"), 0, []byte{1}); err != nil {
		t.Fatal(err)
	}
	if len(chb) != 0 || len(chc) != 1 {
		t.Fatalf("unicast delivered to b=%d c=%d", len(chb), len(chc))
	}
	<-chc
	// Partition a from b.
	seg.SetLoss(func(from, to *Memory) bool { return from == a && to == b })
	_ = a.SendCARP("em0", src, osif.GroupV4, 0, []byte{2})
	if len(chb) != 0 || len(chc) != 1 || seg.Dropped() != 1 {
		t.Fatalf("partition: b=%d c=%d dropped=%d", len(chb), len(chc), seg.Dropped())
	}
	<-chc
	seg.SetLoss(nil)
	// Leave, carrier loss, full channel.
	if err := b.LeaveGroup("em0"); err != nil {
		t.Fatal(err)
	}
	c.SetCarrier("em0", false)
	_ = a.SendCARP("em0", src, osif.GroupV4, 0, []byte{3})
	if len(chb) != 0 || len(chc) != 0 {
		t.Fatal("delivered to a leaver or a link without carrier")
	}
	c.SetCarrier("em0", true)
	for range 10 {
		_ = a.SendCARP("em0", src, osif.GroupV4, 0, []byte{4})
	}
	if st := c.Stats(); st.Delivered != 7 || st.Dropped != 6 || len(chc) != 4 {
		t.Fatalf("stats %+v len %d", st, len(chc))
	}
	if st := a.Stats(); st.Sent != 14 {
		t.Fatalf("sender stats %+v", st)
	}
	// Send errors and hooks.
	a.SetSendError(errors.New("ENOBUFS"))
	if err := a.SendCARP("em0", src, osif.GroupV4, 0, nil); err == nil {
		t.Fatal("SetSendError ignored")
	}
	a.SetSendError(nil)
	var hooked []string
	a.SetSendHook(func(out string, p osif.Packet) { hooked = append(hooked, out+" "+p.Dst.String()) })
	_ = a.SendCARP("em0", src, osif.GroupV4, 0, nil)
	if !slices.Equal(hooked, []string{"em0 224.0.0.18"}) {
		t.Fatalf("hook %v", hooked)
	}
	// A closed kernel leaves the segment.
	c.Close()
	b.JoinGroup("em0")
	for len(chb) > 0 {
		<-chb
	}
	_ = a.SendCARP("em0", src, osif.GroupV4, 0, nil)
	if len(chb) != 1 {
		t.Fatal("b lost its delivery after c closed")
	}
}

func TestMemoryWatchLinks(t *testing.T) {
	m := memHost(nil, "10.0.0.2/24")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := make(chan osif.LinkUpdate) // unbuffered: the kernel must not block on it
	if err := m.WatchLinks(ctx, ch); err != nil {
		t.Fatal(err)
	}
	if err := m.CreateMACVLAN("carp0", "em0", vmac); err != nil {
		t.Fatal(err)
	}
	m.SetCarrier("em0", false)
	if err := m.SetLinkUp("carp0", true); err != nil {
		t.Fatal(err)
	}
	m.Resync()
	if err := m.DeleteLink("em0"); err != nil { // takes carp0 with it
		t.Fatal(err)
	}
	type ev struct {
		name             string
		carrier, del, rs bool
	}
	want := []ev{{"carp0", true, false, false}, {"em0", false, false, false}, {"carp0", false, false, false},
		{"carp0", false, false, false}, {"", false, false, true}, {"carp0", false, true, false}, {"em0", false, true, false}}
	for i, w := range want {
		select {
		case u := <-ch:
			if g := (ev{u.Link.Name, u.Link.Carrier, u.Deleted, u.Resync}); g != w {
				t.Fatalf("update %d = %+v, want %+v", i, g, w)
			}
		case <-time.After(time.Second):
			t.Fatalf("update %d missing", i)
		}
	}
}

// TestMemoryConcurrent runs three kernels on one segment from several
// goroutines at once (run it with -race): adverts, address refreshes, link
// listings and carrier flaps. No call may fail or deadlock, every advert a
// kernel counts as delivered reaches its channel exactly once and comes
// from another kernel, and concurrent refreshes leave one address.
func TestMemoryConcurrent(t *testing.T) {
	seg := NewSegment()
	hosts := []*Memory{memHost(seg, "10.0.0.2/24"), memHost(seg, "10.0.0.3/24"), memHost(seg, "10.0.0.4/24")}
	const rounds = 200
	vip := netip.MustParsePrefix("10.0.0.1/24")
	received := make([]atomic.Int64, len(hosts))
	errs := make(chan error, len(hosts)*rounds*3)
	// drain reports what the goroutines sent so far; errs is never closed,
	// since a reader may still be sending until it is stopped.
	drain := func() {
		for {
			select {
			case err := <-errs:
				t.Error(err)
			default:
				return
			}
		}
	}
	ctx, stopReaders := context.WithCancel(context.Background())
	var wg, readers sync.WaitGroup
	defer func() {
		stopReaders()
		readers.Wait()
		drain()
	}()
	for i, h := range hosts {
		ch := open(t, h)
		if err := h.JoinGroup("em0"); err != nil {
			t.Fatal(err)
		}
		self := netip.AddrFrom4([4]byte{10, 0, 0, byte(2 + i)})
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case p := <-ch:
					if p.Src == self || len(p.Payload) != 1 {
						errs <- fmt.Errorf("host %d received %+v", i, p)
					}
					received[i].Add(1)
				case <-ctx.Done():
					return
				}
			}
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range rounds {
				if err := h.SendCARP("em0", self, osif.GroupV4, 0, []byte{byte(j)}); err != nil {
					errs <- err
				}
				if _, err := h.ReplaceAddr("em0", vip, time.Minute); err != nil {
					errs <- err
				}
				if ls, err := h.Links(); err != nil || len(ls) != 1 {
					errs <- fmt.Errorf("Links() = %+v, %v", ls, err)
				}
				h.SetCarrier("em0", j%7 != 0)
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("concurrent calls did not finish within 30s (deadlock?)")
	}
	drain()
	for i, h := range hosts {
		st := h.Stats()
		if st.Sent != rounds {
			t.Errorf("host %d sent %d adverts, want %d", i, st.Sent, rounds)
		}
		if st.Delivered == 0 {
			t.Errorf("host %d: no advert delivered (stats %+v)", i, st)
		}
		deadline := time.Now().Add(5 * time.Second)
		for received[i].Load() != int64(st.Delivered) && time.Now().Before(deadline) {
			runtime.Gosched()
		}
		if got := received[i].Load(); got != int64(st.Delivered) {
			t.Errorf("host %d: %d adverts read from its channel, %d counted as delivered", i, got, st.Delivered)
		}
		if n := slices.Index(h.Addrs("em0"), vip); n < 0 || slices.Index(h.Addrs("em0")[n+1:], vip) >= 0 {
			t.Errorf("host %d: em0 addresses %v, want %s once", i, h.Addrs("em0"), vip)
		}
		if l, err := h.LinkByName("em0"); err != nil || !l.Carrier {
			t.Errorf("host %d: em0 = %+v, %v; want carrier up after the last flap", i, l, err)
		}
	}
}
