package e2e

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bsdcarp/bsdcarp/internal/netlab"
)

// runHandoverBench pings the shared address from host c every millisecond
// while the master hands over b.N times (alternating hosts) with handover,
// and reports the replies lost and the time each handover took until the
// other host held the address.
func runHandoverBench(b *testing.B, p *pair, handover func(m int)) {
	p.procs[0] = p.start(0)
	if _, ok := netlab.Eventually(15*time.Second, func() bool { return p.holds(0) }); !ok {
		b.Fatalf("%s never became master:\n%s", p.names[0], p.procs[0].Output())
	}
	p.procs[1] = p.start(1)
	p.waitBackup(b, 1)
	pinger := p.lab.Start("c", "bench-ping", nil, "ping", "-n", "-i", "0.001", "172.16.0.100")
	if _, ok := netlab.Eventually(5*time.Second, func() bool { return replySeq.MatchString(pinger.Output()) }); !ok {
		b.Fatalf("no reply before the first handover:\n%s", pinger.Output())
	}
	var total time.Duration
	master := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		o := 1 - master
		start := time.Now()
		handover(master)
		if _, ok := netlab.Eventually(15*time.Second, func() bool { return p.holds(o) && !p.holds(master) }); !ok {
			b.Fatalf("handover %d: %s did not take over", i, p.names[o])
		}
		total += time.Since(start)
		b.StopTimer()
		p.waitBackup(b, master)
		b.StartTimer()
		master = o
	}
	b.StopTimer()
	_ = pinger.Kill(syscall.SIGINT)
	loss := countLoss(pinger.Output())
	b.ReportMetric(float64(loss.lost), "lost")
	b.ReportMetric(float64(loss.sent), "pings")
	b.ReportMetric(total.Seconds()/float64(b.N), "s/handover")
}

// BenchmarkPlannedHandover measures, in one run on the same lab, the replies
// a client pinging every millisecond loses across planned handovers: bsdcarp
// with `ifconfig carp0 vhid 1 state backup` on the master, ucarp with
// SIGUSR2 (its "demote to backup"). scripts/bench-handover.sh prints both.
func BenchmarkPlannedHandover(b *testing.B) {
	newLab := func(b *testing.B) *netlab.Lab {
		lab := netlab.New(b, bin)
		lab.Bridge("lan")
		lab.NewNS("c")
		lab.Plug("c", "em0", "lan", "172.16.0.10/24")
		return lab
	}
	b.Run("bsdcarp", func(b *testing.B) {
		lab := newLab(b)
		var hosts [2]*host
		for i, n := range []string{"a", "b"} {
			hosts[i] = newHost(b, lab, n)
			lab.Plug(n, "em0", "lan", fmt.Sprintf("172.16.0.%d/24", i+1))
		}
		p := &pair{lab: lab, names: [2]string{"a", "b"}}
		p.start = func(i int) *netlab.Proc {
			hosts[i].startCarpd(b)
			hosts[i].mustSh(b, "ifconfig carp0 create; ifconfig carp0 vhid 1 pass lanpasswd carpdev em0 172.16.0.100 255.255.255.0")
			return hosts[i].carpd
		}
		p.backup = func(i int) bool { return hosts[i].state("carp0") == "BACKUP" }
		runHandoverBench(b, p, func(m int) { hosts[m].mustSh(b, "ifconfig carp0 vhid 1 state backup") })
	})
	b.Run("ucarp", func(b *testing.B) {
		requireUcarp(b)
		lab := newLab(b)
		for i, n := range []string{"a", "b"} {
			lab.NewNS(n)
			lab.Plug(n, "em0", "lan", fmt.Sprintf("172.16.0.%d/24", i+1))
		}
		p := &pair{lab: lab, names: [2]string{"a", "b"}}
		p.start = func(i int) *netlab.Proc {
			return startUcarp(b, lab, p.names[i], fmt.Sprintf("172.16.0.%d", i+1), 0)
		}
		p.backup = func(i int) bool {
			return strings.Contains(lastState(p.procs[i].Output()), "BACKUP")
		}
		runHandoverBench(b, p, func(m int) {
			if err := p.procs[m].Signal(syscall.SIGUSR2); err != nil {
				b.Fatal(err)
			}
		})
	})
}
