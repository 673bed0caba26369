package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/bsdcarp/bsdcarp/carp"
	"github.com/bsdcarp/bsdcarp/internal/netlab"
)

// TestOpenBSDDialect: an OpenBSD runbook, verbatim. carpN is configured
// without "create" (OpenBSD clones on demand) and its address without a
// mask (the classful one: /24 for 192.168.7.50, /8 for 10.7.0.50), the
// vhids work (a client reaches the class C address), and OpenBSD's group
// demotion, "ifconfig -g carp carpdemote 50", moves every vhid to the
// preempting peer; "-carpdemote 50" brings them all back.
func TestOpenBSDDialect(t *testing.T) {
	lab := netlab.New(t, bin)
	lab.Bridge("lan")
	fw1, fw2 := newHost(t, lab, "fw1"), newHost(t, lab, "fw2")
	lab.Plug("fw1", "em0", "lan", "192.168.7.2/24")
	lab.Plug("fw2", "em0", "lan", "192.168.7.3/24")
	lab.NewNS("client")
	lab.Plug("client", "eth0", "lan", "192.168.7.10/24")
	fw1.startCarpd(t)
	fw2.startCarpd(t)
	runbook := func(h *host, skew string) {
		h.mustSh(t, "sysctl net.inet.carp.preempt=1\n"+
			"ifconfig carp0 vhid 1 pass x carpdev em0 advskew "+skew+" 192.168.7.50\n"+
			"ifconfig carp1 vhid 2 pass y carpdev em0 advskew "+skew+" 10.7.0.50\n")
	}
	runbook(fw1, "0")
	down := carp.MasterDown(1, 0) + 2*time.Second
	fw1.waitState(t, "carp0", "MASTER", down)
	fw1.waitState(t, "carp1", "MASTER", down)
	// The peer's advskew is below the demotion the test adds: FreeBSD adds
	// the demotion to the advskew it advertises.
	runbook(fw2, "20")
	fw2.waitState(t, "carp0", "BACKUP", down)
	fw2.waitState(t, "carp1", "BACKUP", down)

	out := fw1.mustSh(t, "ifconfig carp0; ifconfig carp1; ifconfig -g carp")
	t.Logf("fw1# ifconfig carp0; ifconfig carp1; ifconfig -g carp\n%s", out)
	for _, want := range []string{
		"carp0: flags=", "     carp: MASTER carpdev em0 vhid 1 advbase 1 advskew 0\n",
		"     inet 192.168.7.50 netmask 0xffffff00 broadcast 192.168.7.255\n",
		"carp1: flags=", "     carp: MASTER carpdev em0 vhid 2 advbase 1 advskew 0\n",
		"     inet 10.7.0.50 netmask 0xff000000 broadcast 10.255.255.255\n",
		"\ncarp0\ncarp1\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("fw1 output lacks %q", want)
		}
	}
	// The kernel holds the classful prefixes too.
	for dev, want := range map[string]string{"carp0": "192.168.7.50/24", "carp1": "10.7.0.50/8"} {
		if ip, _, _ := lab.Exec("fw1", nil, "ip", "-4", "-o", "addr", "show", "dev", dev); !strings.Contains(ip, " "+want+" ") {
			t.Errorf("fw1 %s: %q, want %s", dev, ip, want)
		}
	}
	ping := func() int {
		_, _, code := lab.Exec("client", nil, "ping", "-n", "-q", "-c", "1", "-W", "1", "192.168.7.50")
		return code
	}
	if ping() != 0 {
		t.Fatal("the client cannot reach 192.168.7.50 on fw1")
	}

	// Group demotion moves every vhid.
	if got := fw1.mustSh(t, "ifconfig -g carp carpdemote 50"); got != "carp: carp demote count 50\n" {
		t.Errorf("carpdemote 50 printed %q", got)
	}
	if got := fw1.mustSh(t, "sysctl -n net.inet.carp.demotion"); got != "50\n" {
		t.Errorf("net.inet.carp.demotion = %q after carpdemote 50", got)
	}
	for _, dev := range []string{"carp0", "carp1"} {
		fw2.waitState(t, dev, "MASTER", down)
		fw1.waitState(t, dev, "BACKUP", down)
	}
	if !lab.HasAddr("fw2", "192.168.7.50") || !lab.HasAddr("fw2", "10.7.0.50") || lab.HasAddr("fw1", "192.168.7.50") || lab.HasAddr("fw1", "10.7.0.50") {
		t.Error("after carpdemote 50 the shared addresses are not all on fw2")
	}
	if _, ok := netlab.Eventually(5*time.Second, func() bool { return ping() == 0 }); !ok {
		t.Error("the client cannot reach 192.168.7.50 on fw2")
	}

	if got := fw1.mustSh(t, "ifconfig -g carp -carpdemote 50"); got != "carp: carp demote count 0\n" {
		t.Errorf("-carpdemote 50 printed %q", got)
	}
	for _, dev := range []string{"carp0", "carp1"} {
		fw1.waitState(t, dev, "MASTER", down)
		fw2.waitState(t, dev, "BACKUP", down)
	}
	if !lab.HasAddr("fw1", "192.168.7.50") || !lab.HasAddr("fw1", "10.7.0.50") || lab.HasAddr("fw2", "192.168.7.50") || lab.HasAddr("fw2", "10.7.0.50") {
		t.Error("after -carpdemote 50 the shared addresses are not all back on fw1")
	}
	if _, ok := netlab.Eventually(5*time.Second, func() bool { return ping() == 0 }); !ok {
		t.Error("the client cannot reach 192.168.7.50 on fw1 again")
	}
}
