package e2e

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bsdcarp/bsdcarp/internal/netlab"
)

// handovers is how many planned handovers each way every kind makes.
const handovers = 20

// pingLoss is what a ping run saw: requests up to the last one answered
// and how many of them got no reply.
type pingLoss struct {
	sent, lost int
	missing    []int // sequence numbers of the lost requests (the first few)
}

var replySeq = regexp.MustCompile(`bytes from 172\.16\.0\.100: icmp_seq=(\d+) `)

// countLoss reads ping's per-reply lines. A request is lost when a later
// one was answered and it was not: the requests still in flight when ping
// was stopped are not counted. Sequence numbers stay below 65536 in one run
// (a phase lasts well under a minute at 1 ms).
func countLoss(out string) pingLoss {
	got := map[int]bool{}
	last := 0
	for _, m := range replySeq.FindAllStringSubmatch(out, -1) {
		n, _ := strconv.Atoi(m[1])
		got[n] = true
		last = max(last, n)
	}
	l := pingLoss{sent: last}
	for n := 1; n <= last; n++ {
		if !got[n] {
			l.lost++
			if len(l.missing) < 10 {
				l.missing = append(l.missing, n)
			}
		}
	}
	return l
}

// TestPlannedHandoverLosesNothing pings the shared LAN address of the
// Handbook's 28.5 pair every millisecond across 20 planned handovers each
// way of every kind an admin makes: demotion up and down with preemption,
// `ifconfig carp0 down` / `up`, and `state backup` on the MASTER; not one
// reply may be missing.
func TestPlannedHandoverLosesNothing(t *testing.T) {
	l := newLab285(t)
	fw1, fw2 := l.fw1, l.fw2
	if !l.ping(t) {
		t.Fatal("client cannot ping 172.16.0.100 with fw1 MASTER")
	}
	// handTo waits until `to` is MASTER of carp0 and `from` has let go of
	// the address (BACKUP or INIT, nothing left in its kernel).
	handTo := func(t *testing.T, i int, what string, from, to *host, fromState string) {
		t.Helper()
		if _, ok := netlab.Eventually(5*time.Second, func() bool {
			return to.state("carp0") == "MASTER" && from.state("carp0") == fromState && !l.lab.HasAddr(from.name, "172.16.0.100")
		}); !ok {
			t.Fatalf("%s #%d: %s not MASTER / %s not %s:\n%s\n%s", what, i, to.name, from.name, fromState, to.log(), from.log())
		}
	}
	phase := func(t *testing.T, name string, round func(t *testing.T, i int)) {
		pinger := l.lab.Start(l.client, "ping-"+strings.ReplaceAll(name, " ", "-"), nil,
			"ping", "-n", "-i", "0.001", "172.16.0.100")
		// Replies flow before the first handover.
		if _, ok := netlab.Eventually(5*time.Second, func() bool { return replySeq.MatchString(pinger.Output()) }); !ok {
			t.Fatalf("%s: no reply before the first handover:\n%s", name, pinger.Output())
		}
		for i := 1; i <= handovers; i++ {
			round(t, i)
		}
		_ = pinger.Kill(syscall.SIGINT)
		loss := countLoss(pinger.Output())
		t.Logf("%s: %d handovers each way, %d requests at 1 ms, %d lost %v", name, handovers, loss.sent, loss.lost, loss.missing)
		if loss.sent < 200 {
			t.Fatalf("%s: only %d requests answered or lost: is ping running?\n%s", name, loss.sent, lastLines(pinger.Output(), 20))
		}
		if loss.lost != 0 {
			t.Errorf("%s: %d of %d replies lost (sequence numbers %v)", name, loss.lost, loss.sent, loss.missing)
		}
	}

	t.Run("demotion with preemption", func(t *testing.T) {
		phase(t, "demotion", func(t *testing.T, i int) {
			fw1.mustSh(t, "sysctl net.inet.carp.demotion=240")
			handTo(t, i, "demotion up", fw1, fw2, "BACKUP")
			fw1.mustSh(t, "sysctl net.inet.carp.demotion=-240")
			handTo(t, i, "demotion down", fw2, fw1, "BACKUP")
		})
	})
	t.Run("ifconfig down and up", func(t *testing.T) {
		phase(t, "down-up", func(t *testing.T, i int) {
			fw1.mustSh(t, "ifconfig carp0 down")
			handTo(t, i, "down", fw1, fw2, "INIT")
			fw1.mustSh(t, "ifconfig carp0 up")
			handTo(t, i, "up", fw2, fw1, "BACKUP")
		})
	})
	t.Run("state backup", func(t *testing.T) {
		// Without preemption, so that each `state backup` is the handover
		// and fw1 does not take the vhid straight back.
		for _, h := range []*host{fw1, fw2} {
			h.mustSh(t, "sysctl net.inet.carp.preempt=0")
		}
		phase(t, "state backup", func(t *testing.T, i int) {
			fw1.mustSh(t, "ifconfig carp0 vhid 1 state backup")
			handTo(t, i, "state backup on fw1", fw1, fw2, "BACKUP")
			fw2.mustSh(t, "ifconfig carp0 vhid 1 state backup")
			handTo(t, i, "state backup on fw2", fw2, fw1, "BACKUP")
		})
	})
}

func TestCountLoss(t *testing.T) {
	var b strings.Builder
	for _, n := range []int{1, 2, 4, 5, 7} {
		fmt.Fprintf(&b, "64 bytes from 172.16.0.100: icmp_seq=%d ttl=64 time=0.05 ms\n", n)
	}
	b.WriteString("--- 172.16.0.100 ping statistics ---\n9 packets transmitted, 5 received, 44% packet loss\n")
	got := countLoss(b.String())
	if got.sent != 7 || got.lost != 2 || fmt.Sprint(got.missing) != "[3 6]" {
		t.Fatalf("countLoss = %+v, want 7 sent, 2 lost [3 6] (8 and 9 were in flight)", got)
	}
}
