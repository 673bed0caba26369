// Command demo builds the FreeBSD Handbook's two-firewall CARP lab (28.5) in
// network namespaces, runs each firewall's runbook verbatim through bin/bsd,
// shows both vhids (LAN and WAN) on both firewalls, and then, while a client
// pings the shared LAN address every 10 ms, fails the master three ways: a
// crash (kill -9 of its carpd), its return (carpd restarted, preemption) and
// a planned failover (the handbook's 28.6 `ifconfig carp0 down`). For each
// it prints carpd's log lines as they come, the pings lost, and the failover
// time against the protocol's bound; a summary ends the run. Everything it
// made is removed at the end, also on failure and on Ctrl-C. The exit status
// is 0 only if every step worked, so the demo is also a smoke test. Run it as
// root through `make demo` (scripts/demo.sh).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bsdcarp/bsdcarp/carp"
	"github.com/bsdcarp/bsdcarp/internal/netlab"
)

// The handbook's shared addresses.
const (
	lanAddr = "172.16.0.100"
	wanAddr = "192.0.2.100"
)

// stampLayout is the time at the start of carpd's log lines.
const stampLayout = "2006/01/02 15:04:05.000000"

// outMu keeps the lines of the demo and of the log tailers whole.
var outMu sync.Mutex

func say(format string, args ...any) {
	outMu.Lock()
	defer outMu.Unlock()
	fmt.Printf(format+"\n", args...)
}

// runner is a netlab.T for a program: Fatalf stops the demo, and cleanups run
// in reverse order at the end, on failure and on Ctrl-C.
type runner struct {
	mu       sync.Mutex
	cleanups []func()
	dir      string
	failed   bool
	stopping atomic.Bool // Ctrl-C: the signal handler cleans up and exits
}

type fatal struct{ msg string }

func (r *runner) Helper()                         {}
func (r *runner) Logf(format string, args ...any) { say(format, args...) }
func (r *runner) Errorf(format string, args ...any) {
	r.failed = true
	outMu.Lock()
	fmt.Fprintf(os.Stderr, "demo: "+format+"\n", args...)
	outMu.Unlock()
}
func (r *runner) Fatalf(format string, args ...any) { panic(fatal{fmt.Sprintf(format, args...)}) }
func (r *runner) Skip(args ...any)                  { panic(fatal{fmt.Sprint(args...)}) }
func (r *runner) Cleanup(f func())                  { r.cleanups = append(r.cleanups, f) }
func (r *runner) TempDir() string                   { return r.dir }

// cleanup runs once, whichever of the end, a failure or Ctrl-C comes first.
func (r *runner) cleanup() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
	r.cleanups = nil
	os.RemoveAll(r.dir)
}

func fail(format string, args ...any) { panic(fatal{fmt.Sprintf(format, args...)}) }

func main() {
	bin := flag.String("bin", "bin", "directory of the built commands")
	runbooks := flag.String("runbooks", "testdata/runbooks", "directory of the handbook runbooks")
	flag.Parse()
	abs, err := filepath.Abs(*bin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
	if _, err := exec.LookPath("ping"); err != nil {
		fmt.Fprintln(os.Stderr, "demo: needs ping(8) from iputils-ping (apt-get install iputils-ping)")
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "bsdcarp-demo-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
	r := &runner{dir: dir}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sigs
		r.stopping.Store(true)
		outMu.Lock()
		fmt.Fprintln(os.Stderr, "\ndemo: interrupted, cleaning up")
		outMu.Unlock()
		r.cleanup()
		fmt.Fprintln(os.Stderr, "demo: removed every namespace, link and process the demo created")
		os.Exit(130)
	}()
	var summary []string
	failure := ""
	func() {
		defer func() {
			if v := recover(); v != nil {
				if f, ok := v.(fatal); ok {
					failure = f.msg
					return
				}
				r.cleanup()
				panic(v)
			}
		}()
		summary = demo(r, abs, *runbooks)
	}()
	r.cleanup()
	if r.stopping.Load() {
		select {} // the signal handler exits once it has cleaned up
	}
	say("\nRemoved every namespace, link and process the demo created.")
	if failure != "" {
		fmt.Fprintln(os.Stderr, "\ndemo: FAILED: "+failure)
		os.Exit(1)
	}
	if r.failed {
		fmt.Fprintln(os.Stderr, "\ndemo: FAILED: see the errors above")
		os.Exit(1)
	}
	say("\n== Summary")
	for _, l := range summary {
		say("%s", l)
	}
	say("demo: OK, every step worked")
}

type fw struct {
	lab   *netlab.Lab
	name  string
	env   []string
	carpd *netlab.Proc
	bin   string
}

func (f *fw) start() {
	f.carpd = f.lab.Start(f.name, f.name+"-carpd", f.env, filepath.Join(f.bin, "carpd"))
	logs.watch(f.name, f.carpd.Log)
	if _, ok := netlab.Eventually(10*time.Second, func() bool {
		_, _, code := f.lab.Exec(f.name, f.env, "ifconfig", "-l")
		return code == 0 || f.carpd.Exited()
	}); !ok || f.carpd.Exited() {
		fail("%s: carpd did not start:\n%s", f.name, f.carpd.Output())
	}
}

// run shows a command as the admin would type it, and its output; a command
// that fails stops the demo.
func (f *fw) run(cmd string) string {
	return f.show(cmd, "")
}

// runAt is run with the time the command started in front of the prompt, in
// the format of carpd's log lines.
func (f *fw) runAt(cmd string) time.Time {
	t0 := time.Now()
	f.show(cmd, t0.Format(stampLayout)+" ")
	return t0
}

func (f *fw) show(cmd, prefix string) string {
	logs.poll() // what carpd logged before the command comes before it
	say("%s%s# %s", prefix, f.name, cmd)
	out, errOut, code := f.lab.Exec(f.name, f.env, "sh", "-c", cmd)
	if o := strings.TrimSuffix(out+errOut, "\n"); o != "" {
		say("%s", o)
	}
	if code != 0 {
		fail("%s: %q exited %d", f.name, cmd, code)
	}
	return out
}

// carp returns the words after "carp:" in `ifconfig iface` (state, carpdev,
// vhid, advbase, advskew).
func (f *fw) carp(iface string) []string {
	out, _, _ := f.lab.Exec(f.name, f.env, "ifconfig", iface)
	for _, l := range strings.Split(out, "\n") {
		if fs := strings.Fields(l); len(fs) > 1 && fs[0] == "carp:" {
			return fs[1:]
		}
	}
	return nil
}

func (f *fw) state(iface string) string {
	if c := f.carp(iface); len(c) > 0 {
		return c[0]
	}
	return ""
}

// masterDown is the protocol's bound for iface on this host: a BACKUP takes
// over after 3 × advbase + advskew/256 without an advert.
func (f *fw) masterDown(iface string) (time.Duration, string) {
	c := f.carp(iface)
	var base, skew int
	for i := 0; i+1 < len(c); i++ {
		switch c[i] {
		case "advbase":
			base, _ = strconv.Atoi(c[i+1])
		case "advskew":
			skew, _ = strconv.Atoi(c[i+1])
		}
	}
	if base == 0 {
		fail("%s: no advbase in `ifconfig %s`: %q", f.name, iface, c)
	}
	return carp.MasterDown(uint8(base), uint8(skew)),
		fmt.Sprintf("3 × advbase %d + advskew %d/256", base, skew)
}

func (f *fw) wait(iface, state string, timeout time.Duration) {
	if _, ok := netlab.Eventually(timeout, func() bool { return f.state(iface) == state }); !ok {
		fail("%s: %s did not become %s in %v:\n%s", f.name, iface, state, timeout, f.carpd.Output())
	}
}

// watcher prints the carpds' log lines as they are written, merged in the
// order of their timestamps, and keeps them for the failover times.
type watcher struct {
	once  sync.Once
	mu    sync.Mutex
	files []*logFile
	lines map[string][]logLine // by host
}

type logFile struct {
	host    string
	path    string
	f       *os.File
	rd      *bufio.Reader
	partial string
}

type logLine struct {
	host string
	text string
	at   time.Time // carpd's own timestamp, else when the line was read
}

var logs = &watcher{lines: map[string][]logLine{}}

// watch adds host's log file (once; a restarted carpd appends to it), and
// starts the polling on the first call.
func (w *watcher) watch(host, path string) {
	w.once.Do(func() {
		go func() {
			for {
				time.Sleep(10 * time.Millisecond) // poll the files for new lines
				w.poll()
			}
		}()
	})
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, lf := range w.files {
		if lf.path == path {
			return
		}
	}
	w.files = append(w.files, &logFile{host: host, path: path})
}

func (w *watcher) poll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	var batch []logLine
	for _, lf := range w.files {
		if lf.f == nil {
			f, err := os.Open(lf.path)
			if err != nil {
				continue
			}
			lf.f, lf.rd = f, bufio.NewReader(f)
		}
		for {
			s, err := lf.rd.ReadString('\n')
			lf.partial += s
			if err != nil {
				break // end of file for now
			}
			line := strings.TrimSuffix(lf.partial, "\n")
			lf.partial = ""
			at := time.Now()
			if fs := strings.Fields(line); len(fs) > 2 {
				if ts, err := time.ParseInLocation(stampLayout, fs[0]+" "+fs[1], time.Local); err == nil {
					at = ts
				}
			}
			batch = append(batch, logLine{lf.host, line, at})
		}
	}
	sort.SliceStable(batch, func(i, j int) bool { return batch[i].at.Before(batch[j].at) })
	for _, l := range batch {
		w.lines[l.host] = append(w.lines[l.host], l)
		say("    %s carpd log | %s", l.host, l.text)
	}
}

// transition returns when host's carpd logged "carp: <who>: X -> <to> (...)"
// at or after since.
func (w *watcher) transition(host, who, to string, since time.Time) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, l := range w.lines[host] {
		if strings.Contains(l.text, "carp: "+who+": ") && strings.Contains(l.text, "-> "+to+" (") && !l.at.Before(since) {
			return l.at, true
		}
	}
	return time.Time{}, false
}

// waitTransition waits for that line and returns how long after since it
// was logged.
func (w *watcher) waitTransition(host, who, to string, since time.Time) time.Duration {
	var at time.Time
	if _, ok := netlab.Eventually(2*time.Second, func() bool {
		var ok bool
		at, ok = w.transition(host, who, to, since)
		return ok
	}); !ok {
		fail("%s: carpd logged no %q -> %s", host, who, to)
	}
	return at.Sub(since)
}

func demo(r *runner, bin, runbooks string) []string {
	say("== Building the handbook's 28.5 lab: fw1 and fw2 on a shared LAN (em0) and WAN (em1), and a client on the LAN")
	say("   (network namespaces; carpd's log lines are shown as they are written, indented)")
	lab := netlab.New(r, bin)
	lab.Handbook285()
	mk := func(name string) *fw {
		return &fw{lab: lab, name: name, bin: bin, env: []string{
			"CARPD_SOCKET=" + filepath.Join(lab.Dir, name+".sock"),
			"CARPD_STATE_DIR=" + filepath.Join(lab.Dir, name+".state"),
			// The lab's own event socket and rules, not the host's.
			"CARPD_DEVD_PIPE=" + filepath.Join(lab.Dir, name+".devd.pipe"),
			"CARPD_DEVD_CONF=off",
			"PATH=" + filepath.Join(bin, "bsd") + ":" + bin + ":" + os.Getenv("PATH"),
		}}
	}
	fw1, fw2 := mk("fw1"), mk("fw2")
	fw1.start()
	fw2.start()

	for _, h := range []*fw{fw1, fw2} {
		b, err := os.ReadFile(filepath.Join(runbooks, "handbook-28.5-"+h.name+".sh"))
		if err != nil {
			fail("%v", err)
		}
		say("\n== %s: the handbook's runbook, verbatim", h.name)
		for _, cmd := range commands(string(b)) {
			h.run(cmd)
		}
	}
	fw1.wait("carp0", "MASTER", 8*time.Second)
	fw1.wait("carp1", "MASTER", 8*time.Second)
	fw2.wait("carp0", "BACKUP", 2*time.Second)
	fw2.wait("carp1", "BACKUP", 2*time.Second)
	say("\n== Both vhids on both firewalls: LAN vhid 1 (carp0, %s) and WAN vhid 2 (carp1, %s)", lanAddr, wanAddr)
	for _, h := range []*fw{fw1, fw2} {
		h.run("ifconfig carp0")
		h.run("ifconfig carp1")
	}
	summary := []string{fmt.Sprintf("runbooks: LAN vhid 1 (carp0 %s) and WAN vhid 2 (carp1 %s) configured verbatim on fw1 (MASTER) and fw2 (BACKUP)", lanAddr, wanAddr)}

	bound, why := fw2.masterDown("carp0")
	// The backup's timer runs from the last advert it heard, which left
	// before the kill; the slack is for scheduling only.
	const slack = 100 * time.Millisecond
	ev := event{lab: lab, title: "1. Crash failover: kill -9 of fw1's carpd (the MASTER; no goodbye advert)",
		note: "the gap starts after the kill: fw1's kernel answers until the address lifetime, which its dead carpd no longer refreshes, runs out (carpd(8))"}
	ev.run(func() time.Time {
		t0 := time.Now()
		say("%s fw1# kill -9 %d   (fw1's carpd, the MASTER)", t0.Format(stampLayout), fw1.carpd.Pid())
		_ = fw1.carpd.Kill(syscall.SIGKILL)
		return t0
	}, func(t0 time.Time) string {
		fw2.wait("carp0", "MASTER", bound+3*time.Second)
		fw2.wait("carp1", "MASTER", bound+3*time.Second)
		lan := logs.waitTransition("fw2", "1@em0", "MASTER", t0)
		wan := logs.waitTransition("fw2", "2@em1", "MASTER", t0)
		if lan > bound+slack || wan > bound+slack {
			fail("fw2 took over %.2f s (carp0) / %.2f s (carp1) after the kill, over the bound %.2f s", lan.Seconds(), wan.Seconds(), bound.Seconds())
		}
		if lab.HasAddr("fw1", lanAddr) {
			fail("fw1's kernel still holds %s after its carpd died", lanAddr)
		}
		say("failover: fw2 MASTER of carp0 %.2f s and of carp1 %.2f s after the kill (carpd's log time); bound %.2f s (%s)",
			lan.Seconds(), wan.Seconds(), bound.Seconds(), why)
		return fmt.Sprintf("fw2 MASTER after %.2f s, bound %.2f s", lan.Seconds(), bound.Seconds())
	})
	summary = append(summary, ev.summary("crash", "kill -9 of fw1's carpd"))

	ev = event{lab: lab, title: "2. fw1 returns: its carpd restarted, the saved configuration comes back, and with preempt=1 it takes MASTER back"}
	ev.run(func() time.Time {
		t0 := time.Now()
		say("%s fw1# carpd   (restarted)", t0.Format(stampLayout))
		fw1.start()
		return t0
	}, func(t0 time.Time) string {
		fw1.wait("carp0", "MASTER", 8*time.Second)
		fw1.wait("carp1", "MASTER", 8*time.Second)
		fw2.wait("carp0", "BACKUP", 3*time.Second)
		fw2.wait("carp1", "BACKUP", 3*time.Second)
		d := logs.waitTransition("fw1", "1@em0", "MASTER", t0)
		say("preemption: fw1 MASTER of carp0 %.2f s after its carpd started; fw2 back to BACKUP", d.Seconds())
		return fmt.Sprintf("fw1 MASTER after %.2f s (preempt)", d.Seconds())
	})
	summary = append(summary, ev.summary("return", "fw1's carpd restarted"))

	ev = event{lab: lab, title: "3. Planned failover (28.6): ifconfig carp0 down on fw1, the MASTER"}
	ev.run(func() time.Time {
		return fw1.runAt("ifconfig carp0 down")
	}, func(t0 time.Time) string {
		fw2.wait("carp0", "MASTER", bound+3*time.Second)
		d := logs.waitTransition("fw2", "1@em0", "MASTER", t0)
		// The bow-out advert makes the backup take over at once, not
		// after the master-down interval.
		if d > time.Second {
			fail("fw2 took over %.2f s after `ifconfig carp0 down`: the bow-out advert did not work", d.Seconds())
		}
		say("failover: fw2 MASTER of carp0 %.2f s after the command (fw1's bow-out advert; no wait for the %.2f s bound)", d.Seconds(), bound.Seconds())
		return fmt.Sprintf("fw2 MASTER after %.2f s (bow-out)", d.Seconds())
	})
	summary = append(summary, ev.summary("planned", "ifconfig carp0 down on fw1"))
	say("")
	fw1.run("ifconfig carp0")
	fw2.run("ifconfig carp0")
	say("fw1 carp1: %s, fw2 carp1: %s (the WAN vhid is not part of `ifconfig carp0 down`)", fw1.state("carp1"), fw2.state("carp1"))
	return summary
}

// event is one failover with a client pinging the shared LAN address every
// 10 ms across it.
type event struct {
	lab    *netlab.Lab
	title  string
	note   string // said after the loss, if any was lost
	result string
	loss   pingLoss
}

var pingSeq = 0

// run starts the ping, waits for replies, does act (which returns when it
// began), lets settle wait for the new master (returning the failover
// result), waits for the replies to come back and counts the loss.
func (e *event) run(act func() time.Time, settle func(t0 time.Time) string) {
	say("\n== %s", e.title)
	pingSeq++
	argv := []string{"ping", "-D", "-n", "-i", "0.01", lanAddr}
	pinger := e.lab.Start("client", fmt.Sprintf("ping%d", pingSeq), nil, argv...)
	replies := func() int { return len(pingReply.FindAllString(pinger.Output(), -1)) }
	if _, ok := netlab.Eventually(5*time.Second, func() bool { return replies() >= 20 }); !ok {
		fail("client: no replies from %s before the failover:\n%s", lanAddr, pinger.Output())
	}
	say("client$ %s   (running: one ping every 10 ms)", strings.Join(argv, " "))
	t0 := act()
	e.result = settle(t0)
	n := replies()
	if _, ok := netlab.Eventually(5*time.Second, func() bool { return replies() >= n+30 }); !ok {
		fail("client: %s does not answer after the failover:\n%s", lanAddr, tailOf(pinger.Output(), 10))
	}
	_ = pinger.Kill(syscall.SIGINT)
	e.loss = countLoss(pinger.Output())
	if e.loss.sent == 0 {
		fail("client: no ping replies parsed:\n%s", tailOf(pinger.Output(), 10))
	}
	l := e.loss
	if l.lost == 0 {
		say("client: %d of %d pings lost; longest gap between replies %.2f s (ping -D timestamps)%s", l.lost, l.sent, l.gap.Seconds(), l.dupNote())
		return
	}
	rel := func(unix float64) float64 { return unix - float64(t0.UnixNano())/1e9 }
	say("client: %d of %d pings lost; no reply from %+.2f s to %+.2f s: unreachable for %.2f s (ping -D timestamps)%s",
		l.lost, l.sent, rel(l.gapFrom), rel(l.gapTo), l.gap.Seconds(), l.dupNote())
	say("note: ping sends less often than every 10 ms while its pings go unanswered, so the gap is longer than lost × 10 ms")
	if e.note != "" {
		say("note: %s", e.note)
	}
}

// summary is the event's line of the summary.
func (e *event) summary(what, how string) string {
	return fmt.Sprintf("%-8s %-27s %-40s client: %d/%d pings lost, longest gap %.2f s%s",
		what, how, e.result, e.loss.lost, e.loss.sent, e.loss.gap.Seconds(), e.loss.dupNote())
}

// pingReply is one reply line of `ping -D -n`.
var pingReply = regexp.MustCompile(`(?m)^\[(\d+\.\d+)\] \d+ bytes from [0-9.]+: icmp_seq=(\d+) .*?( \(DUP!\))?$`)

type pingLoss struct {
	sent, lost, dups int
	gap              time.Duration // the longest time between two replies
	gapFrom, gapTo   float64       // its ends, as ping -D prints them
}

func (l pingLoss) dupNote() string {
	if l.dups == 0 {
		return ""
	}
	return fmt.Sprintf(", %d duplicate replies", l.dups)
}

// countLoss counts the requests up to the last one answered (later ones may
// still be in flight when ping is stopped) that got no reply, and the longest
// time between two replies.
func countLoss(out string) pingLoss {
	got := map[int]bool{}
	var l pingLoss
	var prev float64
	for _, m := range pingReply.FindAllStringSubmatch(out, -1) {
		ts, _ := strconv.ParseFloat(m[1], 64)
		n, _ := strconv.Atoi(m[2])
		if m[3] != "" || got[n] {
			l.dups++
			continue
		}
		got[n] = true
		l.sent = max(l.sent, n)
		if prev != 0 {
			if g := time.Duration((ts - prev) * float64(time.Second)); g > l.gap {
				l.gap, l.gapFrom, l.gapTo = g, prev, ts
			}
		}
		prev = ts
	}
	for n := 1; n <= l.sent; n++ {
		if !got[n] {
			l.lost++
		}
	}
	return l
}

func tailOf(s string, n int) string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// commands splits a runbook into its commands as written, a command with
// backslash continuations keeping its lines, and skips comments and blank
// lines.
func commands(s string) []string {
	var cmds []string
	cur := ""
	for _, line := range strings.Split(s, "\n") {
		if cur == "" && (strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#")) {
			continue
		}
		cur += line
		if strings.HasSuffix(line, "\\") {
			cur += "\n"
			continue
		}
		cmds = append(cmds, cur)
		cur = ""
	}
	return cmds
}
