package e2e

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bsdcarp/bsdcarp/internal/netlab"
)

// pair is two hosts (a, b) on one LAN sharing 172.16.0.100 with vhid 1,
// advbase 1 and advskew 0, run either by bsdcarp or by ucarp.
type pair struct {
	lab   *netlab.Lab
	names [2]string
	procs [2]*netlab.Proc
	// start runs host i's CARP daemon; backup reports whether host i is a
	// listening BACKUP.
	start  func(i int) *netlab.Proc
	backup func(i int) bool
}

func (p *pair) holds(i int) bool { return p.lab.HasAddr(p.names[i], "172.16.0.100") }

func (p *pair) waitBackup(b *testing.B, i int) {
	if _, ok := netlab.Eventually(15*time.Second, func() bool { return p.backup(i) }); !ok {
		b.Fatalf("%s never became a backup:\n%s", p.names[i], p.procs[i].Output())
	}
}

// failover kills the master (index m) with SIGKILL and returns how long until
// the other host has the shared address in its kernel; then restarts the
// killed one and waits until it is a backup again.
func (p *pair) failover(b *testing.B, m int, phase time.Duration) time.Duration {
	o := 1 - m
	// A master fails at an arbitrary moment of its advertisement cycle: kill
	// at a (seeded) random phase, or every run would measure the same point.
	b.StopTimer()
	time.Sleep(phase)
	b.StartTimer()
	start := time.Now()
	_ = p.procs[m].Kill(syscall.SIGKILL)
	if _, ok := netlab.Eventually(15*time.Second, func() bool { return p.holds(o) }); !ok {
		b.Fatalf("%s did not take over", p.names[o])
	}
	d := time.Since(start)
	b.StopTimer()
	// ucarp leaves its address behind when killed (a known ucarp bug); clear
	// it so the restarted one starts clean, as an admin would have to.
	p.lab.Exec(p.names[m], nil, "ip", "addr", "flush", "dev", "em0", "to", "172.16.0.100/32")
	p.procs[m] = p.start(m)
	p.waitBackup(b, m)
	b.StartTimer()
	return d
}

func runFailoverBench(b *testing.B, p *pair) {
	p.procs[0] = p.start(0)
	if _, ok := netlab.Eventually(15*time.Second, func() bool { return p.holds(0) }); !ok {
		b.Fatalf("%s never became master:\n%s", p.names[0], p.procs[0].Output())
	}
	p.procs[1] = p.start(1)
	p.waitBackup(b, 1)
	var ds []time.Duration
	master := 0
	rng := rand.New(rand.NewPCG(1, 2))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ds = append(ds, p.failover(b, master, time.Duration(rng.Int64N(int64(time.Second)))))
		master = 1 - master
	}
	b.StopTimer()
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	b.ReportMetric(sum.Seconds()/float64(len(ds)), "s/failover")
	b.ReportMetric(ds[len(ds)/2].Seconds(), "s-median")
	b.ReportMetric(ds[len(ds)-1].Seconds(), "s-max")
}

// BenchmarkFailoverKill9 measures, in one run, the time from kill -9 of the
// master to the backup holding the shared address in its kernel, for bsdcarp
// and for ucarp with the same advbase (1) and advskew (0).
// scripts/bench-failover.sh runs it and prints the ratio.
func BenchmarkFailoverKill9(b *testing.B) {
	b.Run("bsdcarp", func(b *testing.B) {
		lab := netlab.New(b, bin)
		lab.Bridge("lan")
		var hosts [2]*host
		configured := [2]bool{}
		for i, n := range []string{"a", "b"} {
			hosts[i] = newHost(b, lab, n)
			lab.Plug(n, "em0", "lan", fmt.Sprintf("172.16.0.%d/24", i+1))
		}
		p := &pair{lab: lab, names: [2]string{"a", "b"}}
		p.start = func(i int) *netlab.Proc {
			hosts[i].startCarpd(b)
			if !configured[i] {
				// Later starts restore this from the state directory.
				hosts[i].mustSh(b, "ifconfig carp0 create; ifconfig carp0 vhid 1 pass lanpasswd carpdev em0 172.16.0.100 255.255.255.0")
				configured[i] = true
			}
			return hosts[i].carpd
		}
		p.backup = func(i int) bool { return hosts[i].state("carp0") == "BACKUP" }
		runFailoverBench(b, p)
	})
	b.Run("ucarp", func(b *testing.B) {
		requireUcarp(b)
		lab := netlab.New(b, bin)
		lab.Bridge("lan")
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
		runFailoverBench(b, p)
	})
}

// lastState is the last "Switching to state: X" line of a ucarp log.
func lastState(log string) string {
	st := ""
	for _, l := range strings.Split(log, "\n") {
		if _, after, ok := strings.Cut(l, "Switching to state: "); ok {
			st = after
		}
	}
	return st
}
