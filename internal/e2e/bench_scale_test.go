package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bsdcarp/bsdcarp/internal/netlab"
)

// The scale benchmark (issue 9): N vhids at advbase 1 between a master-side
// host a and a backup-side host b, run by bsdcarp (one carpd per host, vhids
// on em aliases, FreeBSD 10+ dialect) and by keepalived (VRRPv3, one
// vrrp_instance per vhid), each on a fresh lab of the same shape. Both hosts
// have em0..em3, each on its own bridge, holding up to 255 vhids each (so
// 1,020 is 255 on each), and em4 on a fifth bridge for the one cloned carp0
// that the status-latency figures need. scripts/bench-scale.sh runs it and
// prints the tables. Knobs (environment):
//
//	BENCH_SCALE_SIZES  vhid counts, space separated (default "1 16 255 1020")
//	BENCH_SCALE_SECS   seconds of the CPU window (default 20)
//	BENCH_SCALE_RUNS   runs per status command (default 30)
const (
	scaleParents  = 4 // em0..em3 carry the vhids; em4 carries carp0
	scaleMaxVHID  = 255
	scaleSingles  = 20 // configuration lines timed one by one
	scalePass     = "scalepass"
	scaleSkewB    = 100
	scalePrioA    = 200
	scalePrioB    = 100
	scaleSettle   = 6 * time.Second // after convergence, before the CPU window (keepalived repeats its GARPs after 5 s)
	scalePollStep = 250 * time.Millisecond
	clockTicks    = 100 // USER_HZ: the unit of utime/stime in /proc/PID/stat on Linux
)

type scaleKnobs struct {
	sizes []int
	secs  time.Duration
	runs  int
}

func scaleConfig(b *testing.B) scaleKnobs {
	k := scaleKnobs{sizes: []int{1, 16, 255, 1020}, secs: 20 * time.Second, runs: 30}
	if s := os.Getenv("BENCH_SCALE_SIZES"); s != "" {
		k.sizes = nil
		for _, f := range strings.Fields(s) {
			n, err := strconv.Atoi(f)
			if err != nil || n < 1 || n > scaleParents*scaleMaxVHID {
				b.Fatalf("BENCH_SCALE_SIZES: %q is not a vhid count from 1 to %d", f, scaleParents*scaleMaxVHID)
			}
			k.sizes = append(k.sizes, n)
		}
	}
	if s := os.Getenv("BENCH_SCALE_SECS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("BENCH_SCALE_SECS: %q is not a positive number of seconds", s)
		}
		k.secs = time.Duration(n) * time.Second
	}
	if s := os.Getenv("BENCH_SCALE_RUNS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("BENCH_SCALE_RUNS: %q is not a positive count", s)
		}
		k.runs = n
	}
	return k
}

// scaleVIP is one virtual host of the benchmark: vhid on parent em<parent>,
// address 10.<parent>.1.<vhid>/32.
type scaleVIP struct{ parent, vhid int }

func (v scaleVIP) iface() string { return fmt.Sprintf("em%d", v.parent) }
func (v scaleVIP) addr() string  { return fmt.Sprintf("10.%d.1.%d", v.parent, v.vhid) }

// scaleVIPs fills em0 with vhids 1..255, then em1, and so on.
func scaleVIPs(n int) []scaleVIP {
	vs := make([]scaleVIP, n)
	for i := range vs {
		vs[i] = scaleVIP{parent: i / scaleMaxVHID, vhid: i%scaleMaxVHID + 1}
	}
	return vs
}

// newScaleLab builds the two hosts a (master side) and b (backup side) with
// em0..em4, em<p> on bridge p<p> with address 10.<p>.0.1 or .2/16. Processes
// of the lab that outlive its cleanup (none should) are killed last.
func newScaleLab(b *testing.B) *netlab.Lab {
	var lab *netlab.Lab
	b.Cleanup(func() { killLeftovers(b, lab) })
	lab = netlab.New(b, bin)
	for p := 0; p <= scaleParents; p++ {
		lab.Bridge(fmt.Sprintf("p%d", p))
	}
	for i, h := range []string{"a", "b"} {
		lab.NewNS(h)
		for p := 0; p <= scaleParents; p++ {
			lab.Plug(h, fmt.Sprintf("em%d", p), fmt.Sprintf("p%d", p), fmt.Sprintf("10.%d.0.%d/16", p, i+1))
		}
	}
	return lab
}

// killLeftovers kills any process whose command line names the lab's
// directory (keepalived's configuration and pid files live there) and that
// is still running after the lab's own cleanup.
func killLeftovers(b *testing.B, lab *netlab.Lab) {
	if lab == nil {
		return
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte(lab.Dir)) {
			continue
		}
		b.Errorf("cleanup: process %d (%s) outlived the lab; killing it", pid, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// pollEvery calls cond every step until it is true or timeout passes. The
// benchmark polls slowly: its conditions ask daemons with up to 1,020 vhids.
func pollEvery(timeout, step time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	for {
		if cond() {
			return time.Since(start), true
		}
		if time.Since(start) > timeout {
			return time.Since(start), false
		}
		time.Sleep(step)
	}
}

// configTimeout bounds a script of n configuration lines: 200 ms a line,
// ten times what one took before issue 9, and 30 s more.
func configTimeout(n int) time.Duration {
	return 30*time.Second + time.Duration(n)*200*time.Millisecond
}

// convergeTimeout bounds every wait for N vhids to settle.
func convergeTimeout(n int) time.Duration { return time.Minute + time.Duration(n)*200*time.Millisecond }

// vipCount counts how many of vs are kernel addresses in host's namespace.
func vipCount(lab *netlab.Lab, host string, vs []scaleVIP) int {
	out, _, _ := lab.Exec(host, nil, "ip", "-o", "-4", "addr", "show")
	have := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "inet" {
				have[f[i+1]] = true
			}
		}
	}
	n := 0
	for _, v := range vs {
		if have[v.addr()+"/32"] {
			n++
		}
	}
	return n
}

// carpStates counts the vhids `ifconfig -a` shows in each state.
func carpStates(h *host) map[string]int {
	out, errOut, code := h.sh("ifconfig -a")
	c := map[string]int{}
	if code != 0 {
		c["error: "+strings.TrimSpace(errOut)]++
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "carp:" {
			c[f[1]]++
		}
	}
	return c
}

// procCPU is the CPU time of a process so far: the sum over its threads of
// the scheduler's se.sum_exec_runtime (/proc/PID/task/TID/sched, in ms to
// the nanosecond), so that a daemon using 0.01% of a core is told from one
// using none; without that file (a kernel without CONFIG_SCHED_DEBUG),
// utime+stime of /proc/PID/stat, in 10 ms ticks. Both count every thread;
// the scheduler's figure misses a thread that ends during the window, which
// neither daemon does once it runs.
func procCPU(pid int) (time.Duration, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, fmt.Errorf("cpu of %d: %w", pid, err)
	}
	var sum time.Duration
	for _, tk := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/sched", pid, tk.Name()))
		if errors.Is(err, fs.ErrNotExist) && sum == 0 {
			return procTicks(pid)
		}
		if err != nil {
			continue // the thread ended
		}
		ms, ok := schedRuntime(b)
		if !ok {
			return 0, fmt.Errorf("cpu of %d: no se.sum_exec_runtime in /proc/%d/task/%s/sched", pid, pid, tk.Name())
		}
		sum += time.Duration(ms * float64(time.Millisecond))
	}
	return sum, nil
}

// schedRuntime finds se.sum_exec_runtime (ms) in a /proc/.../sched file.
func schedRuntime(b []byte) (float64, bool) {
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == "se.sum_exec_runtime" {
			ms, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return ms, err == nil
		}
	}
	return 0, false
}

// procTicks is utime+stime of a process (all its threads, also those that
// ended), counted in clock ticks.
func procTicks(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("cpu of %d: %w", pid, err)
	}
	// Fields after the command name, which is in parentheses and may hold
	// spaces: state is field 3, utime 14, stime 15.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("cpu of %d: short stat %q", pid, b)
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("cpu of %d: bad stat %q", pid, b)
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// procRSS is VmRSS of a process in KiB.
func procRSS(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("rss of %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				break
			}
			return strconv.ParseUint(f[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("rss of %d: no VmRSS", pid)
}

// procTree is pid and all its descendants.
func procTree(pid int) []int {
	parent := map[int]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 1 {
			pp, _ := strconv.Atoi(f[1])
			parent[p] = pp
		}
	}
	tree := []int{pid}
	for changed := true; changed; {
		changed = false
		for p, pp := range parent {
			if !containsInt(tree, p) && containsInt(tree, pp) {
				tree = append(tree, p)
				changed = true
			}
		}
	}
	sort.Ints(tree)
	return tree
}

func containsInt(s []int, x int) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

// daemonUse is what one side's daemon (all its processes) used over the
// CPU window.
type daemonUse struct {
	cpuPct float64 // of one core
	rssMiB float64 // summed over its processes, at the end of the window
	procs  int
}

// measureUse samples the CPU time of both sides' process trees (fixed at the
// start of the window) over d, and their RSS at its end.
func measureUse(b *testing.B, roots [2]int, d time.Duration) [2]daemonUse {
	var trees [2][]int
	var t0 [2]time.Duration
	for i, r := range roots {
		trees[i] = procTree(r)
		for _, p := range trees[i] {
			t, err := procCPU(p)
			if err != nil {
				b.Fatal(err)
			}
			t0[i] += t
		}
	}
	start := time.Now()
	time.Sleep(d) // the measurement window itself
	wall := time.Since(start)
	var res [2]daemonUse
	for i := range roots {
		var t1 time.Duration
		var rss uint64
		for _, p := range trees[i] {
			t, err := procCPU(p)
			if err != nil {
				b.Fatalf("%v (a daemon process ended during the window)", err)
			}
			t1 += t
			kb, err := procRSS(p)
			if err != nil {
				b.Fatal(err)
			}
			rss += kb
		}
		res[i] = daemonUse{
			cpuPct: 100 * (t1 - t0[i]).Seconds() / wall.Seconds(),
			rssMiB: float64(rss) / 1024,
			procs:  len(trees[i]),
		}
	}
	return res
}

// runInNS runs each argv once per round, rounds times, interleaved, from an
// OS thread that has joined the namespace ns (so no `ip netns exec` is timed),
// and returns each argv's wall times. Every run must exit 0 within limit.
func runInNS(ns string, env []string, argvs [][]string, rounds int, limit time.Duration) ([][]time.Duration, error) {
	type result struct {
		ds  [][]time.Duration
		err error
	}
	ch := make(chan result, 1)
	f, err := os.Open(filepath.Join("/run/netns", ns))
	if err != nil {
		return nil, fmt.Errorf("open namespace: %w", err)
	}
	defer f.Close()
	go func() {
		// The thread goes back to its own namespace afterwards and lives
		// on: a thread that ended would send its Pdeathsig (netlab's
		// SIGKILL) to every process it ever started, carpd included.
		runtime.LockOSThread()
		home, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("own namespace: %w", err)}
			return
		}
		defer home.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("setns %s: %w", ns, err)}
			return
		}
		ds, err := timeRuns(env, argvs, rounds, limit)
		if rerr := unix.Setns(int(home.Fd()), unix.CLONE_NEWNET); rerr != nil {
			// Neither reusable nor allowed to end: park it for good.
			ch <- result{err: fmt.Errorf("setns back from %s: %w", ns, rerr)}
			select {}
		}
		runtime.UnlockOSThread()
		ch <- result{ds: ds, err: err}
	}()
	r := <-ch
	return r.ds, r.err
}

// timeRuns runs each argv once per round, rounds times, interleaved, and
// returns each argv's wall times. Every run must exit 0 within limit.
func timeRuns(env []string, argvs [][]string, rounds int, limit time.Duration) ([][]time.Duration, error) {
	ds := make([][]time.Duration, len(argvs))
	for r := 0; r < rounds; r++ {
		for i, argv := range argvs {
			ctx, cancel := context.WithTimeout(context.Background(), limit)
			cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
			cmd.WaitDelay = 5 * time.Second
			cmd.Env = append(os.Environ(), env...)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			start := time.Now()
			err := cmd.Run()
			ds[i] = append(ds[i], time.Since(start))
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				err = fmt.Errorf("not done within %v: %v", limit, err)
			}
			cancel()
			if err != nil {
				return nil, fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, out.String())
			}
		}
	}
	return ds, nil
}

func medianMS(ds []time.Duration) float64 {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return float64(s[len(s)/2]) / float64(time.Millisecond)
}

func meanMS(ds []time.Duration) float64 {
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return float64(sum) / float64(len(ds)) / float64(time.Millisecond)
}

// reportUse reports both sides' CPU and RSS.
func reportUse(b *testing.B, u [2]daemonUse) {
	b.ReportMetric(u[0].cpuPct, "master-cpu%")
	b.ReportMetric(u[1].cpuPct, "backup-cpu%")
	b.ReportMetric(u[0].rssMiB, "master-MiB")
	b.ReportMetric(u[1].rssMiB, "backup-MiB")
	b.Logf("processes measured: master side %d, backup side %d", u[0].procs, u[1].procs)
}

// BenchmarkScale measures, for each vhid count, bsdcarp and keepalived side
// by side on the same kind of lab: CPU of the master-side and backup-side
// daemon over the window, their RSS, and for bsdcarp the time of one
// configuration line and of the status commands against ip(8).
// scripts/bench-scale.sh runs it and prints the tables and ratios.
func BenchmarkScale(b *testing.B) {
	k := scaleConfig(b)
	for _, n := range k.sizes {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			b.Run("bsdcarp", func(b *testing.B) { benchScaleCarp(b, k, n) })
			b.Run("keepalived", func(b *testing.B) { benchScaleKeepalived(b, k, n) })
		})
	}
}

func carpLine(v scaleVIP, skew int) string {
	return fmt.Sprintf("ifconfig %s vhid %d advskew %d pass %s alias %s/32", v.iface(), v.vhid, skew, scalePass, v.addr())
}

// configureScript writes lines to a script in the lab directory, runs it
// with sh in h's namespace and returns the mean time per line. The script
// notes the time (date(1)) before its first line, every 255 lines and after
// its last, so the mean leaves out the shell's start and the log shows how
// the time per line grows with the vhids already there.
func configureScript(b *testing.B, h *host, lines []string) time.Duration {
	if len(lines) == 0 {
		return 0
	}
	path := filepath.Join(h.lab.Dir, h.name+"-vhids.sh")
	marks := path + ".marks"
	var sb strings.Builder
	sb.WriteString("set -e\n")
	for i, l := range lines {
		if i%scaleMaxVHID == 0 {
			fmt.Fprintf(&sb, "echo %d $(date +%%s%%N) >>%s\n", i, marks)
		}
		sb.WriteString(l + "\n")
	}
	fmt.Fprintf(&sb, "echo %d $(date +%%s%%N) >>%s\n", len(lines), marks)
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	_, err := runInNS(h.lab.NS(h.name), h.env(), [][]string{{"sh", path}}, 1, configTimeout(len(lines)))
	progress, perLine := scriptProgress(marks)
	if err != nil {
		b.Fatalf("%s: %v\nlines done: %s\ncarpd exited: %v; its log:\n%s", h.name, err, progress, h.carpd.Exited(), tail(h.log(), 40))
	}
	b.Logf("%s: configuration script of %d lines, ms per line by block: %s", h.name, len(lines), progress)
	return perLine
}

// scriptProgress reads the marks a configuration script left and returns
// the lines of each block with their mean time in words, and the mean time
// per line from the first mark to the last.
func scriptProgress(marks string) (string, time.Duration) {
	data, _ := os.ReadFile(marks)
	var words []string
	firstN, firstT, lastN, lastT := -1, int64(0), -1, int64(0)
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var n int
		var t int64
		if _, err := fmt.Sscan(line, &n, &t); err != nil {
			continue
		}
		if firstN < 0 {
			firstN, firstT = n, t
		}
		if lastN >= 0 && n > lastN {
			words = append(words, fmt.Sprintf("%d-%d: %.1f", lastN+1, n, float64(t-lastT)/1e6/float64(n-lastN)))
		}
		lastN, lastT = n, t
	}
	if len(words) == 0 {
		// A script that failed ran past its last mark: the error says where.
		return fmt.Sprintf("none after line %d", lastN), 0
	}
	return strings.Join(words, ", "), time.Duration((lastT - firstT) / int64(lastN-firstN))
}

func benchScaleCarp(b *testing.B, k scaleKnobs, n int) {
	// Each carpd's state directory is a tmpfs, as its default
	// /run/carpd/state is: what a configuration line costs is then what
	// it costs an installed carpd. (On a --state-dir on disk each line
	// also waits for the fsyncs of config.json, about 1 ms on this
	// machine's ext4, and the first vhid of a parent for two more
	// kernel.json saves.) Mounted before the lab, so unmounted after the
	// lab has stopped carpd.
	stateA, stateB := mountTmpfs(b, "64m"), mountTmpfs(b, "64m")
	lab := newScaleLab(b)
	vs := scaleVIPs(n)
	a, bk := labHost(lab, "a"), labHost(lab, "b")
	a.stateDir, bk.stateDir = stateA, stateB
	a.startCarpd(b)
	bk.startCarpd(b)
	ifconfig := filepath.Join(bin, "bsd", "ifconfig")

	// Master side: all but the last few lines from one script, the last
	// ones timed one by one (the command alone, no shell).
	singles := min(n, scaleSingles)
	var lines []string
	for _, v := range vs[:n-singles] {
		lines = append(lines, carpLine(v, 0))
	}
	b.ResetTimer()
	start := time.Now()
	scriptA := configureScript(b, a, lines)
	var argvs [][]string
	for _, v := range vs[n-singles:] {
		argvs = append(argvs, append([]string{ifconfig}, strings.Fields(carpLine(v, 0))[1:]...))
	}
	ds, err := runInNS(lab.NS("a"), a.env(), argvs, 1, configTimeout(1))
	if err != nil {
		b.Fatalf("a: %v\ncarpd exited: %v; its log:\n%s", err, a.carpd.Exited(), tail(a.log(), 60))
	}
	var single []time.Duration
	for _, d := range ds {
		single = append(single, d[0])
	}
	up, ok := pollEvery(convergeTimeout(n), scalePollStep, func() bool { return carpStates(a)["MASTER"] == n })
	if !ok {
		b.Fatalf("a: not all %d vhids MASTER after %v: %v (carpd exited: %v)\n%s", n, up, carpStates(a), a.carpd.Exited(), tail(a.log(), 40))
	}
	up = time.Since(start)

	// Backup side: one script for all lines.
	lines = lines[:0]
	for _, v := range vs {
		lines = append(lines, carpLine(v, scaleSkewB))
	}
	scriptB := configureScript(b, bk, lines)
	if d, ok := pollEvery(convergeTimeout(n), scalePollStep, func() bool {
		return carpStates(bk)["BACKUP"] == n && carpStates(a)["MASTER"] == n
	}); !ok {
		b.Fatalf("not converged after %v: a %v, b %v\nb's log:\n%s", d, carpStates(a), carpStates(bk), bk.log())
	}
	if got := vipCount(lab, "a", vs); got != n {
		b.Fatalf("a is MASTER of %d vhids but holds %d of their addresses", n, got)
	}
	if got := vipCount(lab, "b", vs); got != 0 {
		b.Fatalf("b is BACKUP of %d vhids but holds %d of their addresses", n, got)
	}
	b.StopTimer()

	time.Sleep(scaleSettle) // a fixed settling period before the window, the same for both systems
	use := measureUse(b, [2]int{a.carpd.Pid(), bk.carpd.Pid()}, k.secs)
	measureNIC(b, lab, [2]int{a.carpd.Pid(), bk.carpd.Pid()}, k.secs)
	stable := carpStates(a)["MASTER"] == n && carpStates(bk)["BACKUP"] == n
	if !stable {
		b.Logf("states changed during the window: a %v, b %v", carpStates(a), carpStates(bk))
	}

	// Status latency on the master side, with one cloned carp0 added.
	a.mustSh(b, "ifconfig carp0 create && ifconfig carp0 vhid 1 pass "+scalePass+" carpdev em4 10.4.1.1 255.255.0.0")
	a.waitState(b, "carp0", "MASTER", 30*time.Second)
	ip, err := exec.LookPath("ip")
	if err != nil {
		b.Fatal(err)
	}
	sysctl := filepath.Join(bin, "bsd", "sysctl")
	status := []struct {
		name string
		argv []string
	}{
		{"ifconfig-em0", []string{ifconfig, "em0"}},
		{"ifconfig-a", []string{ifconfig, "-a"}},
		{"ifconfig-carp0", []string{ifconfig, "carp0"}},
		{"sysctl-carp", []string{sysctl, "net.inet.carp"}},
		{"stats", []string{filepath.Join(bin, "carpctl-sysctl"), "--stats"}},
		{"ip-em0", []string{ip, "addr", "show", "em0"}},
		{"ip-all", []string{ip, "addr", "show"}},
		{"ip-carp0", []string{ip, "addr", "show", "carp0"}},
		// A configuration line on the settled engine, changing something
		// each time (advskew 1, then 0 again), besides the lines timed
		// above while the vhids were still taking over.
		{"cfg-settled-1", []string{ifconfig, "em0", "vhid", "1", "advskew", "1"}},
		{"cfg-settled-0", []string{ifconfig, "em0", "vhid", "1", "advskew", "0"}},
	}
	argvs = argvs[:0]
	for _, s := range status {
		argvs = append(argvs, s.argv)
	}
	ds, err = runInNS(lab.NS("a"), a.env(), argvs, k.runs, 30*time.Second)
	if err != nil {
		b.Fatalf("a: %v\ncarpd exited: %v; its log:\n%s", err, a.carpd.Exited(), tail(a.log(), 60))
	}

	takeover, takeoverCPU := measureTakeover(b, lab, a.carpd, bk.carpd.Pid(), use[1].cpuPct, vs)
	floorPct := measureFloor(b, lab, bk, vs, k.secs)

	reportUse(b, use)
	b.ReportMetric(up.Seconds(), "master-up-s")
	b.ReportMetric(boolMetric(stable), "stable")
	b.ReportMetric(takeover.Seconds(), "takeover-s")
	b.ReportMetric(float64(takeoverCPU)/float64(time.Millisecond), "takeover-cpu-ms")
	b.ReportMetric(floorPct, "floor-cpu%")
	b.ReportMetric(medianMS(single), "cfg-line-ms")
	b.ReportMetric(meanMS(single), "cfg-line-mean-ms")
	b.ReportMetric(float64(scriptB)/float64(time.Millisecond), "cfg-script-ms/line")
	var settled []time.Duration
	for i, s := range status {
		if strings.HasPrefix(s.name, "cfg-settled") {
			settled = append(settled, ds[i]...)
			continue
		}
		b.ReportMetric(medianMS(ds[i]), s.name+"-ms")
	}
	b.ReportMetric(medianMS(settled), "cfg-settled-ms")
	b.Logf("configuration: %d timed single lines, median %.2f ms, mean %.2f ms; scripts: a %d lines at %v, b %d lines at %v a line",
		len(single), medianMS(single), meanMS(single), n-singles, scriptA.Round(10*time.Microsecond), n, scriptB.Round(10*time.Microsecond))
}

func boolMetric(ok bool) float64 {
	if ok {
		return 1
	}
	return 0
}

// keepalivedConf is a keepalived.conf with one VRRPv3 instance per vhid,
// all starting as BACKUP so that priority alone elects the master.
func keepalivedConf(name string, prio int, vs []scaleVIP) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "global_defs {\n\trouter_id scale-%s\n\tvrrp_version 3\n}\n", name)
	for _, v := range vs {
		fmt.Fprintf(&sb, "vrrp_instance %s_%d {\n\tstate BACKUP\n\tinterface %s\n\tvirtual_router_id %d\n\tpriority %d\n\tadvert_int 1\n\tvirtual_ipaddress {\n\t\t%s/32 dev %s\n\t}\n}\n",
			v.iface(), v.vhid, v.iface(), v.vhid, prio, v.addr(), v.iface())
	}
	return sb.String()
}

var keepalivedState = regexp.MustCompile(`\(([^)]+)\) Entering ([A-Z]+) STATE`)

// keepalivedStates counts the instances whose last logged state is each
// state.
func keepalivedStates(log string) map[string]int {
	last := map[string]string{}
	for _, m := range keepalivedState.FindAllStringSubmatch(log, -1) {
		last[m[1]] = m[2]
	}
	c := map[string]int{}
	for _, s := range last {
		c[s]++
	}
	return c
}

// requireKeepalived fails in CI (which installs it) and skips elsewhere.
func requireKeepalived(tb testing.TB) string {
	tb.Helper()
	p, err := exec.LookPath("keepalived")
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		tb.Fatal("keepalived is not installed (CI must run the interop tests and the benchmarks: apt-get install keepalived)")
	}
	tb.Skip("keepalived is not installed (apt-get install keepalived)")
	return ""
}

// startKeepalived runs keepalived in the foreground in host's namespace with
// its configuration and pid files in the lab directory; a cleanup stops it
// with SIGTERM (it then removes its addresses and pid files) before the lab
// kills what is left.
func startKeepalived(b *testing.B, lab *netlab.Lab, exe, name string, prio int, vs []scaleVIP) *netlab.Proc {
	return runKeepalived(b, lab, exe, name, name, keepalivedConf(name, prio, vs))
}

// runKeepalived runs keepalived (VRRP only, in the foreground, logging to
// its output) in host's namespace with configuration conf; its files are
// named after run in the lab directory.
func runKeepalived(tb testing.TB, lab *netlab.Lab, exe, host, run, conf string) *netlab.Proc {
	tb.Helper()
	base := filepath.Join(lab.Dir, "keepalived-"+run)
	if err := os.WriteFile(base+".conf", []byte(conf), 0o644); err != nil {
		tb.Fatal(err)
	}
	p := lab.Start(host, "keepalived-"+run, nil, exe, "-n", "-l", "-D", "-G", "-f", base+".conf",
		"-p", base+".pid", "-r", base+"-vrrp.pid", "-c", base+"-check.pid", "-b", base+"-bfd.pid")
	tb.Cleanup(func() {
		if p.Exited() {
			return
		}
		_ = p.Signal(syscall.SIGTERM)
		if _, ok := p.Wait(30 * time.Second); !ok {
			tb.Logf("keepalived on %s did not stop on SIGTERM within 30 s; the lab kills it", host)
		}
	})
	return p
}

func benchScaleKeepalived(b *testing.B, k scaleKnobs, n int) {
	exe := requireKeepalived(b)
	lab := newScaleLab(b)
	vs := scaleVIPs(n)
	b.ResetTimer()
	start := time.Now()
	ka := startKeepalived(b, lab, exe, "a", scalePrioA, vs)
	up, ok := pollEvery(convergeTimeout(n), scalePollStep, func() bool { return ka.Exited() || vipCount(lab, "a", vs) == n })
	if !ok || ka.Exited() {
		b.Fatalf("a: holds %d of %d addresses after %v:\n%s", vipCount(lab, "a", vs), n, up, tail(ka.Output(), 40))
	}
	up = time.Since(start)
	kb := startKeepalived(b, lab, exe, "b", scalePrioB, vs)
	if d, ok := pollEvery(convergeTimeout(n), scalePollStep, func() bool {
		return kb.Exited() || keepalivedStates(kb.Output())["BACKUP"] == n
	}); !ok || kb.Exited() {
		b.Fatalf("b: %v after %v:\n%s", keepalivedStates(kb.Output()), d, tail(kb.Output(), 40))
	}
	if got := vipCount(lab, "a", vs); got != n {
		b.Fatalf("a holds %d of %d addresses after b started:\n%s", got, n, tail(ka.Output(), 40))
	}
	if got := vipCount(lab, "b", vs); got != 0 {
		b.Fatalf("b holds %d addresses as BACKUP:\n%s", got, tail(kb.Output(), 40))
	}
	b.StopTimer()

	time.Sleep(scaleSettle) // a fixed settling period before the window, the same for both systems
	use := measureUse(b, [2]int{ka.Pid(), kb.Pid()}, k.secs)
	measureNIC(b, lab, [2]int{ka.Pid(), kb.Pid()}, k.secs)
	stable := vipCount(lab, "a", vs) == n && vipCount(lab, "b", vs) == 0 &&
		keepalivedStates(ka.Output())["MASTER"] == n && keepalivedStates(kb.Output())["BACKUP"] == n
	if !stable {
		b.Logf("states changed during the window: a %v, b %v", keepalivedStates(ka.Output()), keepalivedStates(kb.Output()))
	}
	takeover, takeoverCPU := measureTakeover(b, lab, ka, kb.Pid(), use[1].cpuPct, vs)
	reportUse(b, use)
	b.ReportMetric(up.Seconds(), "master-up-s")
	b.ReportMetric(boolMetric(stable), "stable")
	b.ReportMetric(takeover.Seconds(), "takeover-s")
	b.ReportMetric(float64(takeoverCPU)/float64(time.Millisecond), "takeover-cpu-ms")
}

// takeoverPollStep is how often measureTakeover looks at the backup side's
// addresses (with ip(8), not asking the daemon, whose CPU it measures).
const takeoverPollStep = 20 * time.Millisecond

// measureTakeover crashes the master side's daemon (SIGKILL to its process
// group: every keepalived process at once) and returns how long the backup
// side took to hold all of vs as kernel addresses, and the CPU time its
// daemon (its process tree) spent from the kill until then beyond its idle
// rate (idlePct, % of a core, as measured in the window): what taking over
// N vhids costs, without the ~3 s of listening before it. The kill falls at
// any phase of the advert interval, so the time varies by up to one advbase
// from run to run.
func measureTakeover(b *testing.B, lab *netlab.Lab, master *netlab.Proc, backup int, idlePct float64, vs []scaleVIP) (time.Duration, time.Duration) {
	b.Helper()
	cpu := func(tree []int) time.Duration {
		var sum time.Duration
		for _, p := range tree {
			t, err := procCPU(p)
			if err != nil {
				b.Fatal(err)
			}
			sum += t
		}
		return sum
	}
	tree := procTree(backup)
	c0 := cpu(tree)
	start := time.Now()
	_ = master.Kill(syscall.SIGKILL) // its error is the "killed" exit status
	if !master.Exited() {
		b.Fatal("the master side's daemon survived SIGKILL")
	}
	_, ok := pollEvery(convergeTimeout(len(vs)), takeoverPollStep, func() bool { return vipCount(lab, "b", vs) == len(vs) })
	d := time.Since(start)
	if !ok {
		b.Fatalf("b holds %d of %d addresses %v after the master side's daemon was killed", vipCount(lab, "b", vs), len(vs), d)
	}
	used := cpu(tree) - c0
	idle := time.Duration(idlePct / 100 * float64(d))
	b.Logf("takeover: b holds all %d addresses %v after the kill; its daemon used %v of CPU meanwhile, %v of it at its idle rate (%.3f%%)",
		len(vs), d.Round(time.Millisecond), used.Round(100*time.Microsecond), idle.Round(100*time.Microsecond), idlePct)
	return d, used - idle
}

// measureFloor runs, on the master side whose carpd the takeover killed,
// a least CARP master in Go (carpreplay floor, on one thread as carpd
// runs: once a second the advert of every vhid of vs, signed, from its
// virtual MAC, all sent with sendmmsg; nothing else, not even the
// addresses) and returns its CPU over a window of d once bk's carpd, which
// hears a better master, is BACKUP of every vhid again. At many vhids that
// is what N adverts a second cost on this lab's wire, the switch's and the
// backup's receive path included (the veth runs them in the sender's
// system call); at a few, what a Go program's one wake-up a second costs.
func measureFloor(b *testing.B, lab *netlab.Lab, bk *host, vs []scaleVIP, d time.Duration) float64 {
	b.Helper()
	var ifs []string
	for p := 0; p <= vs[len(vs)-1].parent; p++ {
		ifs = append(ifs, fmt.Sprintf("em%d", p))
	}
	fl := lab.Start("a", "floor", []string{"GOMAXPROCS=1"}, filepath.Join(bin, "carpreplay"), "floor", "-i", strings.Join(ifs, ","),
		"-vhids", strconv.Itoa(scaleMaxVHID), "-n", strconv.Itoa(len(vs)), "-pass", scalePass)
	defer func() { _ = fl.Kill(syscall.SIGKILL) }()
	n := len(vs)
	if d, ok := pollEvery(convergeTimeout(n), scalePollStep, func() bool { return carpStates(bk)["BACKUP"] == n }); !ok {
		b.Fatalf("floor: b not BACKUP of all %d vhids %v after the floor sender started: %v (sender exited: %v; its output: %s)",
			n, d, carpStates(bk), fl.Exited(), fl.Output())
	}
	time.Sleep(scaleSettle)
	use := measureUse(b, [2]int{fl.Pid(), bk.carpd.Pid()}, d)
	if fl.Exited() || carpStates(bk)["BACKUP"] != n {
		b.Fatalf("floor: the sender exited (%v) or b left BACKUP during the window: %v; its output: %s", fl.Exited(), carpStates(bk), fl.Output())
	}
	b.Logf("floor: a least CARP master of %d vhids in Go used %.3f%% of a core; b's carpd hearing it %.3f%%", n, use[0].cpuPct, use[1].cpuPct)
	return use[0].cpuPct
}

// TestProcCPU: the bench's CPU figure of a process is its threads' run time
// to the nanosecond where the kernel has it, and grows as the process runs.
func TestProcCPU(t *testing.T) {
	sample := []byte("carpd (1, #threads: 5)\n----\nse.exec_start : 40793273.893833\nse.sum_exec_runtime                          :          1412.221070\nnr_switches : 3\n")
	if ms, ok := schedRuntime(sample); !ok || ms != 1412.221070 {
		t.Errorf("schedRuntime = %v, %v; want 1412.221070 ms", ms, ok)
	}
	if _, ok := schedRuntime([]byte("nothing here\n")); ok {
		t.Error("schedRuntime found a figure in a file without one")
	}
	before, err := procCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	x := 0
	for after := before; after <= before; {
		for i := range 1 << 20 {
			x += i
		}
		if after, err = procCPU(os.Getpid()); err != nil {
			t.Fatal(err)
		}
	}
	_ = x
}

// nicReceive switches how the lab's links (the hosts' em0..em4 and their
// ports on the switch) take a frame in. Off (a fresh veth), the sending
// system call itself carries each frame through the switch and into the
// receiving host's stack (netif_rx, run at once on the sending CPU), so a
// daemon's CPU figure includes the switch's and the other host's receive
// work: for an advert to 255 macvlans per parent, more than a third of a
// MASTER's. On, a link receives as a NIC does: the frame is queued for the
// receiving end's NAPI poll, run by a kernel thread of its own (GRO on,
// which gives a veth its NAPI; TSO off, without which veth bypasses NAPI
// for locally sent frames; threaded NAPI). It returns the pids of the NAPI
// threads, whose CPU is the lab's receive work, when on; ok is false when
// ethtool(8) is missing (the figures are then not reported).
func nicReceive(b *testing.B, lab *netlab.Lab, on bool) (napi []int, ok bool) {
	b.Helper()
	if _, err := exec.LookPath("ethtool"); err != nil {
		b.Logf("no ethtool(8): the NIC-like receive figures are not measured (%v)", err)
		return nil, false
	}
	before := napiThreads()
	gro, tso, threaded := "off", "on", "0"
	if on {
		gro, tso, threaded = "on", "off", "1"
	}
	for _, h := range []string{"a", "b"} {
		for p := 0; p <= scaleParents; p++ {
			ifname := fmt.Sprintf("em%d", p)
			for _, end := range [][2]string{{lab.NS(h), ifname}, {lab.Switch, netlab.SwitchPort(h, ifname)}} {
				feat := fmt.Sprintf("ethtool -K %s gro %s tso %s", end[1], gro, tso)
				thr := fmt.Sprintf("echo %s > /sys/class/net/%s/threaded", threaded, end[1])
				sh := feat + " && " + thr // NAPI comes with GRO, and goes with it
				if !on {
					sh = thr + " && " + feat
				}
				if out, err := exec.Command("ip", "netns", "exec", end[0], "sh", "-c", sh).CombinedOutput(); err != nil {
					b.Fatalf("NIC-like receive %v on %s in %s: %v: %s", on, end[1], end[0], err, out)
				}
			}
		}
	}
	if on {
		for _, p := range napiThreads() {
			if !containsInt(before, p) {
				napi = append(napi, p)
			}
		}
		if len(napi) == 0 {
			b.Fatal("NIC-like receive: no NAPI thread appeared")
		}
	}
	return napi, true
}

// napiThreads returns the pids of the kernel's threaded-NAPI pollers.
func napiThreads() []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm")); err == nil && strings.HasPrefix(string(comm), "napi/") {
			pids = append(pids, p)
		}
	}
	return pids
}

// threadsCPU is the CPU time of pids so far (0 for one that has ended).
func threadsCPU(pids []int) time.Duration {
	var sum time.Duration
	for _, p := range pids {
		if t, err := procCPU(p); err == nil {
			sum += t
		}
	}
	return sum
}

// measureNIC measures both sides' daemons (roots) again over d with the
// lab's links receiving as NICs do (nicReceive), reports the figures, and
// switches the links back.
func measureNIC(b *testing.B, lab *netlab.Lab, roots [2]int, d time.Duration) {
	b.Helper()
	napi, ok := nicReceive(b, lab, true)
	if !ok {
		return
	}
	time.Sleep(scaleSettle / 2) // the queues change hands: a short settling period, the same for both systems
	k0, start := threadsCPU(napi), time.Now()
	use := measureUse(b, roots, d)
	rx := 100 * (threadsCPU(napi) - k0).Seconds() / time.Since(start).Seconds()
	b.ReportMetric(use[0].cpuPct, "master-cpu-nic%")
	b.ReportMetric(use[1].cpuPct, "backup-cpu-nic%")
	b.ReportMetric(rx, "lab-rx-cpu-nic%")
	nicReceive(b, lab, false)
}
