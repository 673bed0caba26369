package e2e

import (
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bsdcarp/bsdcarp/carp"
	"github.com/bsdcarp/bsdcarp/internal/netlab"
)

// statsCounter reads one line of `carpctl-sysctl --stats` by its words.
func statsCounter(t *testing.T, h *host, words string) int {
	t.Helper()
	out := h.mustSh(t, "carpctl-sysctl --stats")
	m := regexp.MustCompile(`(?m)^\s+(\d+) ` + regexp.QuoteMeta(words) + `$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("%s: no %q line in --stats:\n%s", h.name, words, out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// stays polls for d that cond holds all the time, failing at once when not.
func stays(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if !cond() {
			t.Fatalf("%s stopped holding", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// One captured advertisement, replayed from any host on the LAN,
// kept the shared address unowned for as long as the replay ran and knocked
// a live MASTER down. Adverts of fw1 captured on the client are replayed
// verbatim (fw1's source address, its counters) twice a second after fw1's
// engine is killed: fw2 still takes over at its master-down interval and
// stays MASTER while the replay goes on.
func TestReplayedCaptureFromAThirdHost(t *testing.T) {
	l := newLab285(t)
	fw1, fw2 := l.fw1, l.fw2
	capFile := filepath.Join(l.lab.Dir, "adverts.cap")
	if out, errOut, code := l.lab.Exec(l.client, nil, filepath.Join(bin, "carpreplay"), "capture", "-i", "eth0", "-vhid", "1", "-n", "3", "-o", capFile); code != 0 {
		t.Fatalf("capture: %s%s", out, errOut)
	}
	start := time.Now()
	if err := fw1.carpd.Kill(syscall.SIGKILL); err == nil {
		t.Fatal("carpd exited cleanly after SIGKILL?")
	}
	replay := l.lab.Start(l.client, "replay", nil, filepath.Join(bin, "carpreplay"), "send", "-i", "eth0", "-f", capFile, "-rate", "2", "-for", "20s")
	limit := carp.MasterDown(1, 128) + 200*time.Millisecond
	fw2.waitState(t, "carp0", "MASTER", limit+5*time.Second)
	took := fw2.transitionAt(t, "1@em0", "MASTER").Sub(start)
	t.Logf("fw2 MASTER %v after the kill, under replay (limit %v)", took, limit)
	if took > limit {
		t.Errorf("failover under replay took %v, over %v", took, limit)
	}
	// fw2 is a live MASTER now; fw1's replayed adverts (advskew 0 beats
	// fw2's 128) must not make it yield.
	stays(t, 5*time.Second, "fw2 MASTER of carp0 under replay", func() bool { return fw2.state("carp0") == "MASTER" })
	if replay.Exited() {
		t.Fatalf("the replay ended early: %s", replay.Output())
	}
	if n := statsCounter(t, fw2, "discarded as replays"); n < 10 {
		t.Errorf("fw2 counted %d replays, want every replayed advert (>= 10)", n)
	}
	if !l.ping(t) {
		t.Error("client cannot ping 172.16.0.100 with fw2 MASTER under replay")
	}
	// fw1 comes back (a restart: no counter remembered) while the replay
	// still runs: its adverts are taken at once and, preempting, it is
	// MASTER again within a few advert intervals.
	fw1.startCarpd(t)
	fw1.waitState(t, "carp0", "MASTER", 5*time.Second)
	fw2.waitState(t, "carp0", "BACKUP", 2*time.Second)
	if replay.Exited() {
		t.Fatalf("the replay ended before fw1 was back: %s", replay.Output())
	}
}

// Two hosts with the same vhid and password but different address
// sets (or a typo in the password) both became MASTER, and at the default
// log level nothing said why.
func TestAuthMismatchSaidAtTheDefaultLogLevel(t *testing.T) {
	for _, tc := range []struct{ name, fw1, fw2 string }{
		{"address sets differ", "vhid 1 pass lanpasswd carpdev em0 172.16.0.100/24", "vhid 1 pass lanpasswd carpdev em0 advskew 100 172.16.0.101/24"},
		{"password typo", "vhid 1 pass lanpasswd carpdev em0 172.16.0.100/24", "vhid 1 pass lanpaswd carpdev em0 advskew 100 172.16.0.100/24"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lab := netlab.New(t, bin)
			lab.Handbook285()
			fw1, fw2 := labHost(lab, "fw1"), labHost(lab, "fw2")
			fw1.startCarpd(t)
			fw2.startCarpd(t)
			fw1.mustSh(t, "ifconfig carp0 create && ifconfig carp0 "+tc.fw1)
			fw2.mustSh(t, "ifconfig carp0 create && ifconfig carp0 "+tc.fw2)
			fw1.waitState(t, "carp0", "MASTER", 6*time.Second)
			fw2.waitState(t, "carp0", "MASTER", 6*time.Second)
			for _, c := range []struct {
				h    *host
				peer string
			}{{fw1, "172.16.0.2"}, {fw2, "172.16.0.1"}} {
				want := "carp: 1@em0: advertisements from " + c.peer + " fail authentication: the password or the address set of vhid 1 differs on that host (both may be MASTER)"
				if _, ok := netlab.Eventually(5*time.Second, func() bool { return strings.Contains(c.h.log(), want) }); !ok {
					t.Errorf("%s: log lacks %q:\n%s", c.h.name, want, c.h.log())
				}
				line := "warning: vhid 1: adverts from " + c.peer + " fail authentication (password or address set differs)\n"
				if out := c.h.mustSh(t, "ifconfig carp0"); !strings.Contains(out, line) {
					t.Errorf("%s: ifconfig carp0 lacks %q:\n%s", c.h.name, line, out)
				}
			}
			// Rate-limited: a few lines, not one per advert.
			if n := strings.Count(fw2.log(), "fail authentication"); n > 2 {
				t.Errorf("fw2 logged the mismatch %d times within seconds", n)
			}
			// Fixed on fw2: the warning goes, one MASTER remains.
			fw2.mustSh(t, "ifconfig carp0 "+tc.fw1+" advskew 100")
			fw2.waitState(t, "carp0", "BACKUP", 6*time.Second)
			if _, ok := netlab.Eventually(10*time.Second, func() bool {
				out, _, _ := fw1.sh("ifconfig carp0")
				return !strings.Contains(out, "warning:")
			}); !ok {
				out, _, _ := fw1.sh("ifconfig carp0")
				t.Errorf("fw1 still warns after the fix:\n%s", out)
			}
		})
	}
}

// A FreeBSD 10+ style vhid on an em0 that has no other IPv4
// address sent no advertisement at all, so both hosts became MASTER.
// FreeBSD sends from the vhid's own address then; so must we, and the
// peer must hear it (also while it holds that very address itself).
func TestVHIDAddressAloneOnTheLinkElectsOneMaster(t *testing.T) {
	lab := netlab.New(t, bin)
	lab.Bridge("lan")
	for _, n := range []string{"hosta", "hostb"} {
		lab.NewNS(n)
		lab.Plug(n, "em0", "lan")
	}
	a, b := labHost(lab, "hosta"), labHost(lab, "hostb")
	a.startCarpd(t)
	b.startCarpd(t)
	// hostb first: it becomes MASTER and holds 192.168.1.50.
	b.mustSh(t, "ifconfig em0 vhid 1 advskew 100 pass testpass alias 192.168.1.50/32")
	b.waitState(t, "em0", "MASTER", 6*time.Second)
	// hosta, better and preempting, must take over, and hostb must hear
	// adverts whose source is the address it holds.
	a.mustSh(t, "sysctl net.inet.carp.preempt=1 >/dev/null && ifconfig em0 vhid 1 pass testpass alias 192.168.1.50/32")
	a.waitState(t, "em0", "MASTER", 6*time.Second)
	b.waitState(t, "em0", "BACKUP", 3*time.Second)
	stays(t, 4*time.Second, "one MASTER", func() bool { return a.state("em0") == "MASTER" && b.state("em0") == "BACKUP" })
	if lab.HasAddr("hostb", "192.168.1.50") {
		t.Error("the BACKUP still holds 192.168.1.50")
	}
	if strings.Contains(a.log()+b.log(), "cannot send advertisement") {
		t.Errorf("a send failed:\n%s\n%s", a.log(), b.log())
	}
	// And the other way round: hosta gone, hostb takes over at once.
	start := time.Now()
	if err := a.carpd.Kill(syscall.SIGTERM); err != nil {
		t.Fatalf("carpd on hosta: %v", err)
	}
	b.waitState(t, "em0", "MASTER", carp.MasterDown(1, 100)+time.Second)
	t.Logf("hostb MASTER %v after hosta stopped", time.Since(start))
}
