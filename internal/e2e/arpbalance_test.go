package e2e

import (
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bsdcarp/bsdcarp/carp"
	"github.com/bsdcarp/bsdcarp/internal/netlab"
)

// TestARPBalanceTwoHostsTwoClients: net.inet.carp.arpbalance=1 on fw1 and
// fw2, 172.16.0.100 on vhid 1 (fw1 preferred) and vhid 2 (fw2 preferred).
// Each client's ARP request is answered exactly once, seen by a raw socket
// on the client: the odd client 172.16.0.11 by vhid 2's MAC
// (ntohl(src) % 2 == 1), the even client 172.16.0.12 by vhid 1's, and each
// then reaches the address. After fw2's carpd is killed (-9), fw1 is
// MASTER of both vhids and answers both clients, still exactly once each.
func TestARPBalanceTwoHostsTwoClients(t *testing.T) {
	const (
		vip   = "172.16.0.100"
		mac1  = "00:00:5e:00:01:01"
		mac2  = "00:00:5e:00:01:02"
		odd   = "172.16.0.11"
		even  = "172.16.0.12"
		probe = 500 * time.Millisecond // after the first reply, how long others are waited for
	)
	lab := netlab.New(t, bin)
	lab.Bridge("lan")
	fw1, fw2 := newHost(t, lab, "fw1"), newHost(t, lab, "fw2")
	lab.NewNS("odd")
	lab.NewNS("even")
	lab.Plug("fw1", "em0", "lan", "172.16.0.1/24")
	lab.Plug("fw2", "em0", "lan", "172.16.0.2/24")
	lab.Plug("odd", "eth0", "lan", odd+"/24")
	lab.Plug("even", "eth0", "lan", even+"/24")

	runbook := func(skew1, skew2 int) string {
		return "sysctl net.inet.carp.preempt=1 net.inet.carp.arpbalance=1 >/dev/null && " +
			"ifconfig carp0 create && ifconfig carp0 vhid 1 pass lanpasswd carpdev em0 advskew " + strconv.Itoa(skew1) + " " + vip + " 255.255.255.0 && " +
			"ifconfig carp1 create && ifconfig carp1 vhid 2 pass lanpasswd carpdev em0 advskew " + strconv.Itoa(skew2) + " " + vip + " 255.255.255.0"
	}
	fw1.startCarpd(t)
	fw1.mustSh(t, runbook(0, 100))
	fw1.waitState(t, "carp0", "MASTER", carp.MasterDown(1, 0)+3*time.Second)
	fw1.waitState(t, "carp1", "MASTER", carp.MasterDown(1, 100)+3*time.Second)
	fw2.startCarpd(t)
	fw2.mustSh(t, runbook(100, 0))
	fw2.waitState(t, "carp1", "MASTER", 3*carp.AdvInterval(1, 0)+3*time.Second)
	fw1.waitState(t, "carp1", "BACKUP", 3*time.Second)
	fw2.waitState(t, "carp0", "BACKUP", 3*time.Second)
	for _, h := range []*host{fw1, fw2} {
		for _, l := range []string{"carp0", "carp1"} {
			if v := procSys(t, lab, h.name, "net/ipv4/conf/"+l+"/arp_ignore"); v != "8" {
				t.Fatalf("%s: %s arp_ignore = %s, want 8 (carpd answers ARP)", h.name, l, v)
			}
		}
	}

	check := func(when, client, src, want string) {
		t.Helper()
		macs := arpReplies(t, lab, client, "eth0", src, vip, probe)
		if !slices.Equal(macs, []string{want}) {
			t.Errorf("%s: ARP replies to %s (%s) for %s: %v, want exactly one from %s\nfw1:\n%s\nfw2:\n%s",
				when, client, src, vip, macs, want, fw1.log(), fw2.log())
		}
		// The address's traffic is accepted by the host the client chose.
		lab.Exec(client, nil, "ip", "neigh", "flush", "dev", "eth0")
		if _, _, code := lab.Exec(client, nil, "ping", "-n", "-q", "-c", "1", "-W", "2", vip); code != 0 {
			t.Errorf("%s: %s cannot ping %s", when, client, vip)
		}
		out, _, _ := lab.Exec(client, nil, "ip", "neigh", "show", vip, "dev", "eth0")
		if !strings.Contains(out, "lladdr "+want) {
			t.Errorf("%s: %s's neighbour entry for %s: %q, want lladdr %s", when, client, vip, out, want)
		}
	}
	check("both hosts up", "odd", odd, mac2)
	check("both hosts up", "even", even, mac1)

	// fw2's engine dies without a word: fw1 takes vhid 2 over after the
	// master-down interval and answers for both vhids.
	_ = fw2.carpd.Kill(syscall.SIGKILL) // its error is the "killed" exit status
	if !fw2.carpd.Exited() {
		t.Fatal("fw2's carpd survived SIGKILL")
	}
	fw1.waitState(t, "carp1", "MASTER", carp.MasterDown(1, 100)+3*time.Second)
	// The clients keep the MAC they were given (no gratuitous ARP moved
	// them to one vhid) and reach the address through it, now at fw1.
	for _, c := range []struct{ name, mac string }{{"odd", mac2}, {"even", mac1}} {
		for _, when := range []string{"after the takeover", "after a ping"} {
			out, _, _ := lab.Exec(c.name, nil, "ip", "neigh", "show", vip, "dev", "eth0")
			if !strings.Contains(out, "lladdr "+c.mac) {
				t.Errorf("fw2 killed: %s's neighbour entry for %s %s: %q, want lladdr %s still", c.name, vip, when, out, c.mac)
			}
			if _, _, code := lab.Exec(c.name, nil, "ping", "-n", "-q", "-c", "1", "-W", "2", vip); code != 0 {
				t.Errorf("fw2 killed: %s cannot ping %s with its cached entry", c.name, vip)
			}
		}
	}
	check("fw2 killed", "odd", odd, mac2)
	check("fw2 killed", "even", even, mac1)
	if fw1.carpd.Exited() {
		t.Fatalf("fw1's carpd ended:\n%s", fw1.log())
	}
}
