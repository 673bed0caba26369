package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bsdcarp/bsdcarp/carp"
	"github.com/bsdcarp/bsdcarp/internal/netlab"
)

func runbook(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "runbooks", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The 28.4 example on one host: BACKUP at first, MASTER once it has been
// alone for the master-down interval, and the status text is the seed's.
func TestHandbook284SingleHost(t *testing.T) {
	lab := netlab.New(t, bin)
	lab.Bridge("lan")
	fw := newHost(t, lab, "fw")
	lab.Plug("fw", "em0", "lan", "10.0.0.2/24")
	fw.startCarpd(t)

	fw.mustSh(t, runbook(t, "handbook-28.4.sh"))
	out := fw.mustSh(t, "ifconfig carp0")
	if want := runbook(t, "handbook-28.4-status-backup.txt"); out != want {
		t.Fatalf("ifconfig carp0 right after the runbook:\n%s\nwant the seed's text:\n%s", out, want)
	}
	// advbase 1, advskew 100: master down after 3 s + 100/256 s.
	masterDown := carp.MasterDown(1, 100)
	fw.waitState(t, "carp0", "MASTER", masterDown+2*time.Second)
	out = fw.mustSh(t, "ifconfig carp0")
	if want := runbook(t, "handbook-28.4-status-master.txt"); out != want {
		t.Fatalf("ifconfig carp0 once MASTER:\n%s\nwant:\n%s", out, want)
	}
	if got := lab.Addrs("fw", "carp0"); len(got) != 1 || got[0] != "10.0.0.1/24" {
		t.Fatalf("kernel addresses of carp0 when MASTER = %v, want [10.0.0.1/24]", got)
	}
}

// lab285 builds the two-firewall lab of 28.5 with a client on the LAN and
// runs each firewall's runbook verbatim.
type lab285 struct {
	lab      *netlab.Lab
	fw1, fw2 *host
	client   string
}

func newLab285(t *testing.T) *lab285 {
	lab := netlab.New(t, bin)
	lab.Handbook285()
	l := &lab285{lab: lab, fw1: labHost(lab, "fw1"), fw2: labHost(lab, "fw2"), client: "client"}
	l.fw1.startCarpd(t)
	l.fw2.startCarpd(t)
	l.fw1.mustSh(t, runbook(t, "handbook-28.5-fw1.sh"))
	l.fw1.waitState(t, "carp0", "MASTER", 6*time.Second)
	l.fw1.waitState(t, "carp1", "MASTER", 6*time.Second)
	l.fw2.mustSh(t, runbook(t, "handbook-28.5-fw2.sh"))
	l.fw2.waitState(t, "carp0", "BACKUP", 2*time.Second)
	l.fw2.waitState(t, "carp1", "BACKUP", 2*time.Second)
	return l
}

func (l *lab285) ping(t *testing.T) bool {
	_, _, code := l.lab.Exec(l.client, nil, "ping", "-n", "-q", "-c", "1", "-W", "1", "172.16.0.100")
	return code == 0
}

// vips are the shared addresses of 28.5.
var vips = []string{"172.16.0.100", "192.0.2.100"}

func TestHandbook285Failover(t *testing.T) {
	l := newLab285(t)
	fw1, fw2 := l.fw1, l.fw2
	if !l.ping(t) {
		t.Fatal("client cannot ping the shared LAN address 172.16.0.100 with fw1 MASTER")
	}
	// em0 already routes 172.16.0.0/24: the shared address adds no second
	// route through carp0 that could win after a flap of em0.
	if out, _, _ := l.lab.Exec("fw1", nil, "ip", "-o", "route", "show", "dev", "carp0"); strings.Contains(out, "172.16.0.0/24") {
		t.Errorf("a prefix route via carp0 on fw1: %s", out)
	}
	// The BACKUP never holds the addresses.
	for _, a := range vips {
		if l.lab.HasAddr("fw2", a) {
			t.Fatalf("fw2 (BACKUP) has %s in its kernel", a)
		}
	}

	t.Run("kill -9 of fw1's engine", func(t *testing.T) {
		pinger := l.lab.Start(l.client, "client-ping", nil, "ping", "-n", "-i", "0.1", "172.16.0.100")
		start := time.Now()
		if err := fw1.carpd.Kill(syscall.SIGKILL); err == nil {
			t.Fatal("carpd exited cleanly after SIGKILL?")
		}
		// fw2 (advskew 128) must be MASTER within 3 * advbase + advskew/256 s plus 100 ms.
		limit := carp.MasterDown(1, 128) + 100*time.Millisecond
		var d0, d1 time.Duration
		_, ok := netlab.Eventually(limit+3*time.Second, func() bool {
			if d0 == 0 && fw2.state("carp0") == "MASTER" {
				d0 = time.Since(start)
			}
			if d1 == 0 && fw2.state("carp1") == "MASTER" {
				d1 = time.Since(start)
			}
			return d0 != 0 && d1 != 0
		})
		if !ok {
			t.Fatalf("fw2 not MASTER of both after kill -9 of fw1 (carp0 %v, carp1 %v)\n%s", d0, d1, fw2.log())
		}
		e0 := fw2.transitionAt(t, "1@em0", "MASTER").Sub(start)
		e1 := fw2.transitionAt(t, "2@em1", "MASTER").Sub(start)
		t.Logf("fw2 MASTER of carp0 %v, carp1 %v after the kill by its log (seen by polling after %v / %v; limit %v)", e0, e1, d0, d1, limit)
		if e0 > limit || e1 > limit {
			t.Errorf("failover took %v / %v, over %v", e0, e1, limit)
		}
		// Nothing of the dead engine is left answering in fw1's kernel.
		for _, a := range vips {
			if l.lab.HasAddr("fw1", a) {
				t.Errorf("%s is still in fw1's kernel after its engine was killed and fw2 took over", a)
			}
		}
		if !l.ping(t) {
			t.Fatal("client cannot ping 172.16.0.100 after the failover")
		}
		// The client's ping goes on: a ping every 100 ms loses at most the
		// failover window's worth (3.6 s), and is answered again after it.
		_ = pinger.Kill(syscall.SIGINT)
		out := pinger.Output()
		var sent, recv int
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "packets transmitted") {
				fmt.Sscanf(line, "%d packets transmitted, %d received", &sent, &recv)
			}
		}
		t.Logf("client ping during the failover: %s", lastLines(out, 2))
		if sent == 0 || sent-recv > int(limit/(100*time.Millisecond))+2 {
			t.Errorf("client lost %d of %d pings across the failover, more than its %v window allows", sent-recv, sent, limit)
		}
	})

	t.Run("fw1 restarted takes MASTER back with preempt", func(t *testing.T) {
		fw1.startCarpd(t)
		// Configuration restored from the state dir, preempt=1 included.
		if out := fw1.mustSh(t, "sysctl -n net.inet.carp.preempt"); strings.TrimSpace(out) != "1" {
			t.Fatalf("preempt after restart = %q, want 1", out)
		}
		fw1.waitState(t, "carp0", "MASTER", 6*time.Second)
		fw1.waitState(t, "carp1", "MASTER", 6*time.Second)
		fw2.waitState(t, "carp0", "BACKUP", 2*time.Second)
		fw2.waitState(t, "carp1", "BACKUP", 2*time.Second)
		if !l.ping(t) {
			t.Fatal("client cannot ping 172.16.0.100 after fw1 took it back")
		}
	})

	t.Run("ifconfig carp0 down on the MASTER", func(t *testing.T) {
		start := time.Now()
		fw1.mustSh(t, "ifconfig carp0 down")
		d := fw2.waitState(t, "carp0", "MASTER", 2*time.Second)
		total := fw2.transitionAt(t, "1@em0", "MASTER").Sub(start)
		t.Logf("fw2 MASTER of carp0 %v after the command started, by its log (polling saw it %v after the command returned)", total, d)
		if total > 100*time.Millisecond {
			t.Errorf("bow-out failover took %v, want under 100ms", total)
		}
		if got := fw1.state("carp0"); got != "INIT" {
			t.Errorf("fw1 carp0 state after down = %s, want INIT", got)
		}
		if l.lab.HasAddr("fw1", "172.16.0.100") {
			t.Error("fw1 keeps 172.16.0.100 after ifconfig carp0 down")
		}
		if out, _, _ := l.lab.Exec("fw1", nil, "ip", "-o", "link", "show", "carp0"); !strings.Contains(out, "state DOWN") || strings.Contains(out, "<BROADCAST,MULTICAST,UP") {
			t.Errorf("the Linux carp0 link is not down after ifconfig carp0 down: %s", out)
		}
		fw1.mustSh(t, "ifconfig carp0 up")
		fw1.waitState(t, "carp0", "MASTER", 6*time.Second)
		fw2.waitState(t, "carp0", "BACKUP", 2*time.Second)
	})

	t.Run("fw1's em0 cut at the switch", func(t *testing.T) {
		start := time.Now()
		l.lab.Cut("fw1", "em0", true)
		limit := carp.MasterDown(1, 128) + 100*time.Millisecond
		fw2.waitState(t, "carp0", "MASTER", limit+3*time.Second)
		fw2.waitState(t, "carp1", "MASTER", limit+3*time.Second)
		d := fw2.transitionAt(t, "1@em0", "MASTER").Sub(start)
		t.Logf("fw2 MASTER of carp0 %v after the cut (polling saw both after %v)", d, time.Since(start))
		if d > limit {
			t.Errorf("failover after the cut took %v, over %v", d, limit)
		}
		// carp1 moved too: fw1 advertises the demotion on its other links.
		if got := fw1.state("carp1"); got != "BACKUP" {
			t.Errorf("fw1 carp1 = %s after its em0 was cut, want BACKUP", got)
		}
		for _, a := range vips {
			if l.lab.HasAddr("fw1", a) {
				t.Errorf("fw1 still has %s after losing em0", a)
			}
		}
		l.lab.Cut("fw1", "em0", false)
		fw1.waitState(t, "carp0", "MASTER", 8*time.Second)
		fw1.waitState(t, "carp1", "MASTER", 8*time.Second)
	})

	t.Run("SIGTERM hands over and leaves nothing", func(t *testing.T) {
		if err := fw1.carpd.Kill(syscall.SIGTERM); err != nil {
			t.Fatalf("carpd on SIGTERM: %v\n%s", err, fw1.log())
		}
		fw2.waitState(t, "carp0", "MASTER", time.Second)
		fw2.waitState(t, "carp1", "MASTER", time.Second)
		out, _, _ := l.lab.Exec("fw1", nil, "ip", "-o", "link", "show")
		if strings.Contains(out, "carp0") || strings.Contains(out, "carp1") {
			t.Errorf("links left on fw1 after SIGTERM:\n%s", out)
		}
		for _, a := range vips {
			if l.lab.HasAddr("fw1", a) {
				t.Errorf("fw1 still has %s after SIGTERM", a)
			}
		}
		for _, dev := range []string{"em0", "em1"} {
			out, _, _ := l.lab.Exec("fw1", nil, "cat", "/proc/sys/net/ipv4/conf/"+dev+"/arp_ignore")
			if strings.TrimSpace(out) != "0" {
				t.Errorf("arp_ignore on fw1 %s = %q after SIGTERM, want the original 0", dev, out)
			}
		}
	})
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " / ")
}

// An IPv6 vhid fails over like an IPv4 one: adverts to ff02::12 from the
// parent's link-local address, the address only on the MASTER.
func TestIPv6VHIDFailover(t *testing.T) {
	lab := netlab.New(t, bin)
	lab.Bridge("lan")
	a, b := newHost(t, lab, "a"), newHost(t, lab, "b")
	lab.Plug("a", "em0", "lan", "2001:db8::1/64")
	lab.Plug("b", "em0", "lan", "2001:db8::2/64")
	a.startCarpd(t)
	b.startCarpd(t)
	cfg := "ifconfig carp0 create; ifconfig carp0 inet6 vhid 6 pass six carpdev em0 advskew %d 2001:db8::100 prefixlen 64"
	a.mustSh(t, strings.Replace(cfg, "%d", "0", 1))
	a.waitState(t, "carp0", "MASTER", carp.MasterDown(1, 0)+3*time.Second)
	b.mustSh(t, strings.Replace(cfg, "%d", "100", 1))
	b.waitState(t, "carp0", "BACKUP", time.Second)
	// Stay BACKUP past the master-down interval: b hears a's IPv6 adverts.
	if _, ok := netlab.Eventually(carp.MasterDown(1, 100)+time.Second, func() bool { return b.state("carp0") != "BACKUP" }); ok {
		t.Fatalf("b left BACKUP next to an IPv6 master:\n%s", b.log())
	}
	if !lab.HasAddr("a", "2001:db8::100") || lab.HasAddr("b", "2001:db8::100") {
		t.Fatalf("address placement wrong: a %v b %v", lab.Addrs("a", "carp0"), lab.Addrs("b", "carp0"))
	}
	start := time.Now()
	_ = a.carpd.Kill(syscall.SIGKILL)
	b.waitState(t, "carp0", "MASTER", carp.MasterDown(1, 100)+2*time.Second)
	if d := b.transitionAt(t, "6@em0", "MASTER").Sub(start); d > carp.MasterDown(1, 100)+100*time.Millisecond {
		t.Errorf("IPv6 failover took %v", d)
	}
	if _, ok := netlab.Eventually(2*time.Second, func() bool { return lab.HasAddr("b", "2001:db8::100") }); !ok {
		t.Fatalf("b is MASTER but 2001:db8::100 is not in its kernel: %v", lab.Addrs("b", "carp0"))
	}
}
