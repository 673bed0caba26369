package engine

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bsdcarp/bsdcarp/carp"
	"github.com/bsdcarp/bsdcarp/carp/api"
	"github.com/bsdcarp/bsdcarp/carp/osif"
	"github.com/bsdcarp/bsdcarp/kernelshim/memkernel"
)

// balancedPair configures, on fw1 and fw2, carp0 vhid 1 (fw1 preferred) and
// carp1 vhid 2 (fw2 preferred), both with 10.0.0.100/24, preemption on and
// net.inet.carp.arpbalance set to balance, and waits until fw1 is MASTER
// of vhid 1 and fw2 of vhid 2.
func balancedPair(t *testing.T, seg *memkernel.Segment, balance int64) (fw1, fw2 *node) {
	t.Helper()
	fw1 = newNode(t, seg, "10.0.0.2/24", "")
	fw2 = newNode(t, seg, "10.0.0.3/24", "")
	vip := netip.MustParsePrefix("10.0.0.100/24")
	setup := func(n *node, skew1, skew2 int) {
		for _, oid := range []string{"net.inet.carp.preempt", "net.inet.carp.arpbalance"} {
			v := int64(1)
			if oid == "net.inet.carp.arpbalance" {
				v = balance
			}
			if _, _, err := n.e.SetSysctl(context.Background(), oid, v); err != nil {
				t.Fatal(err)
			}
		}
		for i, skew := range []int{skew1, skew2} {
			ifc := []string{"carp0", "carp1"}[i]
			n.ifconfig(t, ifc, api.Op{Kind: api.OpCreate})
			n.ifconfig(t, ifc, api.Op{Kind: api.OpVHID, Int: i + 1}, api.Op{Kind: api.OpPass, Str: "lanpasswd"}, api.Op{Kind: api.OpCarpdev, Str: "em0"},
				api.Op{Kind: api.OpAdvSkew, Int: skew}, api.Op{Kind: api.OpAddr, Prefix: vip})
		}
	}
	setup(fw1, 0, 100)
	time.Sleep(carp.MasterDown(1, 100) + time.Millisecond)
	synctest.Wait()
	setup(fw2, 100, 0)
	time.Sleep(2*carp.AdvInterval(1, 100) + time.Millisecond)
	synctest.Wait()
	if s1, s2 := fw1.state(t, "carp0")+"/"+fw1.state(t, "carp1"), fw2.state(t, "carp0")+"/"+fw2.state(t, "carp1"); s1 != "MASTER/BACKUP" || s2 != "BACKUP/MASTER" {
		t.Fatalf("start: fw1 carp0/carp1 %s, fw2 %s", s1, s2)
	}
	return fw1, fw2
}

// arpClient is a requester on the segment.
type arpClient struct {
	ip  netip.Addr
	mac net.HardwareAddr
}

var (
	clientOdd  = arpClient{netip.MustParseAddr("10.0.0.11"), net.HardwareAddr{2, 0, 0, 0, 0, 0x11}}
	clientEven = arpClient{netip.MustParseAddr("10.0.0.12"), net.HardwareAddr{2, 0, 0, 0, 0, 0x12}}
	balancedIP = netip.MustParseAddr("10.0.0.100")
)

// ask broadcasts c's request for 10.0.0.100 to every given host as its
// kernel would see it: on em0, and in copies on each macvlan (which carpd
// must not answer a second time).
func ask(t *testing.T, c arpClient, hosts ...*node) {
	t.Helper()
	for _, n := range hosts {
		for _, link := range []string{"em0", "carp0", "carp1"} {
			if !n.k.InjectARP(link, osif.ARPRequest{Broadcast: true, SenderMAC: c.mac, SenderIP: c.ip, TargetIP: balancedIP}) {
				t.Fatalf("request on %s not taken: no ARP listener", link)
			}
		}
	}
	synctest.Wait()
}

// arpReplies returns the "arp reply" lines of a Memory's transcript.
func arpReplies(k *memkernel.Memory) []string {
	var out []string
	for _, l := range k.Transcript() {
		if strings.HasPrefix(l, "arp reply ") {
			out = append(out, l)
		}
	}
	return out
}

func wantReplies(t *testing.T, who string, k *memkernel.Memory, want ...string) {
	t.Helper()
	got := arpReplies(k)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("%s ARP replies:\n%s\nwant:\n%s", who, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

const (
	replyOddVhid2  = "arp reply 10.0.0.100 is-at 00:00:5e:00:01:02 to 10.0.0.11 (02:00:00:00:00:11) dev carp1"
	replyEvenVhid1 = "arp reply 10.0.0.100 is-at 00:00:5e:00:01:01 to 10.0.0.12 (02:00:00:00:00:12) dev carp0"
)

func TestARPBalanceOneReplyPerRequestFromTheChosenMaster(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := memkernel.NewSegment()
		fw1, fw2 := balancedPair(t, seg, 1)
		defer fw1.stop(t)
		for _, n := range []*node{fw1, fw2} {
			for _, l := range []string{"carp0", "carp1"} {
				if v := n.k.Sysctl("net/ipv4/conf/" + l + "/arp_ignore"); v != "8" {
					t.Fatalf("arp_ignore of %s = %q, want 8 (carpd answers)", l, v)
				}
			}
		}
		fw1.k.ResetTranscript()
		fw2.k.ResetTranscript()

		// 2 running vhids: an odd sender gets vhid 2 (fw2's), an even one
		// vhid 1 (fw1's); exactly one reply each.
		ask(t, clientOdd, fw1, fw2)
		ask(t, clientEven, fw1, fw2)
		wantReplies(t, "fw1", fw1.k, replyEvenVhid1)
		wantReplies(t, "fw2", fw2.k, replyOddVhid2)

		// A request sent to a virtual MAC (a neighbour re-checking its
		// entry) arrives on that macvlan only, and is answered by the rule.
		fw1.k.ResetTranscript()
		if !fw1.k.InjectARP("carp0", osif.ARPRequest{SenderMAC: clientEven.mac, SenderIP: clientEven.ip, TargetIP: balancedIP}) {
			t.Fatal("unicast request not taken")
		}
		synctest.Wait()
		wantReplies(t, "fw1 (unicast)", fw1.k, replyEvenVhid1)

		// fw2 fails (cut off the segment): fw1 becomes MASTER of vhid 2
		// too, the count stays 2, and fw1 answers both clients.
		fw1.k.ResetTranscript()
		seg.SetLoss(func(from, to *memkernel.Memory) bool { return from == fw2.k || to == fw2.k })
		time.Sleep(carp.MasterDown(1, 100) + time.Millisecond)
		synctest.Wait()
		if s := fw1.state(t, "carp0") + "/" + fw1.state(t, "carp1"); s != "MASTER/MASTER" {
			t.Fatalf("fw1 after fw2 failed: %s", s)
		}
		// It took the address over without a gratuitous ARP, which would
		// have moved every client to vhid 2's MAC.
		tr := fw1.k.Transcript()
		// (vhid 1's address is kept fresh all along, twice a second; once
		// vhid 2's is installed, one refresh writes both).
		vip1 := "ip addr refresh 10.0.0.100/24 dev carp0 lft 1s noprefixroute"
		vip2 := "ip addr replace 10.0.0.100/24 dev carp1 lft 1s"
		both := "ip addr refresh 10.0.0.100/24 dev carp0 lft 1s noprefixroute; 10.0.0.100/24 dev carp1 lft 1s noprefixroute"
		wantOps(t, tr, concat(repeat(6, vip1), vip2, both))
		fw2.stop(t)
		fw1.k.ResetTranscript()
		ask(t, clientOdd, fw1)
		ask(t, clientEven, fw1)
		wantReplies(t, "fw1 (survivor)", fw1.k, replyOddVhid2, replyEvenVhid1)
	})
}

func TestARPBalanceRunningCountsBackupNotInit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fw1, fw2 := balancedPair(t, memkernel.NewSegment(), 1)
		defer fw1.stop(t)
		defer fw2.stop(t)
		// carp1 down on fw2: vhid 2 goes to INIT there (not running) and
		// fw1 takes it over. fw2 now counts one running vhid with the
		// address (vhid 1, BACKUP): it answers nobody. fw1 still counts two
		// and answers both clients.
		fw2.ifconfig(t, "carp1", api.Op{Kind: api.OpDown})
		time.Sleep(carp.MasterDown(1, 100) + time.Millisecond)
		synctest.Wait()
		if s := fw1.state(t, "carp0") + "/" + fw1.state(t, "carp1"); s != "MASTER/MASTER" {
			t.Fatalf("fw1 after carp1 down on fw2: %s", s)
		}
		fw1.k.ResetTranscript()
		fw2.k.ResetTranscript()
		ask(t, clientOdd, fw1, fw2)
		ask(t, clientEven, fw1, fw2)
		wantReplies(t, "fw1", fw1.k, replyOddVhid2, replyEvenVhid1)
		wantReplies(t, "fw2", fw2.k)
	})
}

func TestARPBalanceOffChangesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fw1, fw2 := balancedPair(t, memkernel.NewSegment(), 0)
		defer fw1.stop(t)
		defer fw2.stop(t)
		for _, n := range []*node{fw1, fw2} {
			if n.k.ARPListening() || index(n.k.Transcript(), "arp listen") >= 0 {
				t.Fatal("an ARP listener was opened with arpbalance=0")
			}
			for _, l := range []string{"carp0", "carp1"} {
				if v := n.k.Sysctl("net/ipv4/conf/" + l + "/arp_ignore"); v != "1" {
					t.Fatalf("arp_ignore of %s = %q, want 1 (the kernel answers)", l, v)
				}
			}
		}

		// On, then off again: the listener goes, the kernel answers again.
		if _, _, err := fw1.e.SetSysctl(context.Background(), "net.inet.carp.arpbalance", 1); err != nil {
			t.Fatal(err)
		}
		if !fw1.k.ARPListening() || fw1.k.Sysctl("net/ipv4/conf/carp0/arp_ignore") != "8" {
			t.Fatalf("arpbalance=1: listening %v, arp_ignore %s", fw1.k.ARPListening(), fw1.k.Sysctl("net/ipv4/conf/carp0/arp_ignore"))
		}
		if _, _, err := fw1.e.SetSysctl(context.Background(), "net.inet.carp.arpbalance", 0); err != nil {
			t.Fatal(err)
		}
		if fw1.k.ARPListening() {
			t.Fatal("ARP listener still open after arpbalance=0")
		}
		for _, l := range []string{"carp0", "carp1"} {
			if v := fw1.k.Sysctl("net/ipv4/conf/" + l + "/arp_ignore"); v != "1" {
				t.Fatalf("arp_ignore of %s after arpbalance back to 0 = %q, want 1", l, v)
			}
		}
	})
}

// Without its ARP listener carpd cannot answer for the addresses, so the
// kernel must keep answering: arpbalance=1 with a listener that fails to
// open leaves arp_ignore at 1, and the next attempt that works balances.
func TestARPBalanceWithoutAListenerLeavesTheKernelAnswering(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fw1, fw2 := balancedPair(t, memkernel.NewSegment(), 0)
		defer fw1.stop(t)
		defer fw2.stop(t)
		fw1.k.Fail(memkernel.OpListenARP, syscall.EMFILE)
		if _, _, err := fw1.e.SetSysctl(context.Background(), "net.inet.carp.arpbalance", 1); err != nil {
			t.Fatal(err)
		}
		for _, l := range []string{"carp0", "carp1"} {
			if v := fw1.k.Sysctl("net/ipv4/conf/" + l + "/arp_ignore"); v != "1" {
				t.Fatalf("arp_ignore of %s = %q with no ARP listener, want 1 (the kernel answers)", l, v)
			}
		}
		fw1.k.Fail(memkernel.OpListenARP, nil)
		if _, _, err := fw1.e.SetSysctl(context.Background(), "net.inet.carp.arpbalance", 1); err != nil {
			t.Fatal(err)
		}
		if !fw1.k.ARPListening() || fw1.k.Sysctl("net/ipv4/conf/carp0/arp_ignore") != "8" {
			t.Fatalf("retry: listening %v, arp_ignore %s", fw1.k.ARPListening(), fw1.k.Sysctl("net/ipv4/conf/carp0/arp_ignore"))
		}
	})
}
