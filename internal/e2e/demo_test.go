package e2e

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
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

// demoCmd is scripts/demo.sh, as `make demo` runs it, on the commands this
// test run built. The script execs the demo, so the process's pid is the
// one in the names of the demo's namespaces.
func demoCmd(ctx context.Context) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "../../scripts/demo.sh")
	cmd.Env = append(os.Environ(), "DEMO_BIN="+bin)
	return cmd
}

// demoLeftovers names what a demo run with pid left behind: its namespaces,
// its scratch directory, processes (carpd) still using that directory.
func demoLeftovers(t *testing.T, pid int, out string) []string {
	t.Helper()
	var left []string
	nss, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatalf("ip netns list: %v", err)
	}
	for _, l := range strings.Split(string(nss), "\n") {
		if strings.HasPrefix(l, netlab.Prefix+strconv.Itoa(pid)+"-") {
			left = append(left, "namespace "+strings.Fields(l)[0])
		}
	}
	dir := regexp.MustCompile(`(/\S*/bsdcarp-demo-\d+)/`).FindStringSubmatch(out)
	if dir == nil {
		t.Fatalf("no scratch directory in the demo's output:\n%s", out)
	}
	if _, err := os.Stat(dir[1]); err == nil {
		left = append(left, "directory "+dir[1])
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/environ")
	for _, p := range procs {
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(dir[1]+"/")) {
			left = append(left, "process "+filepath.Base(filepath.Dir(p)))
		}
	}
	return left
}

// TestDemo runs `make demo`'s script and checks what an adopter must see:
// both vhids of the runbook on both firewalls, carpd's log lines at the
// failover, and a summary with the pings lost and the failover time against
// the protocol's bound for the crash, the return and the planned failover;
// exit status 0, and nothing left behind.
func TestDemo(t *testing.T) {
	netlab.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := demoCmd(ctx)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	start := time.Now()
	err := cmd.Run()
	out := so.String()
	if err != nil {
		t.Fatalf("demo: %v after %v\n%s\nstderr:\n%s", err, time.Since(start), out, se.String())
	}
	t.Logf("demo ran %v", time.Since(start).Round(time.Millisecond))
	if left := demoLeftovers(t, cmd.Process.Pid, out); len(left) > 0 {
		t.Errorf("the demo left %v", left)
	}
	for _, want := range []string{
		"carp: MASTER carpdev em0 vhid 1 advbase 1 advskew 0\n",
		"carp: MASTER carpdev em1 vhid 2 advbase 1 advskew 0\n",
		"carp: BACKUP carpdev em0 vhid 1 advbase 1 advskew 128\n",
		"carp: BACKUP carpdev em1 vhid 2 advbase 1 advskew 128\n",
		"fw2 carpd log | ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the demo did not show %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`(?m)^    fw2 carpd log \| \S+ \S+ carp: 1@em0: BACKUP -> MASTER \(master timed out\)$`).MatchString(out) {
		t.Errorf("the demo did not show fw2's log line of the crash failover:\n%s", out)
	}
	_, summary, ok := strings.Cut(out, "\n== Summary\n")
	if !ok {
		t.Fatalf("no summary:\n%s", out)
	}
	line := func(re string) []float64 {
		t.Helper()
		m := regexp.MustCompile(`(?m)^` + re + `$`).FindStringSubmatch(summary)
		if m == nil {
			t.Fatalf("the summary has no line matching %q:\n%s", re, summary)
		}
		var v []float64
		for _, s := range m[1:] {
			f, _ := strconv.ParseFloat(s, 64)
			v = append(v, f)
		}
		return v
	}
	line(`runbooks: LAN vhid 1 \(carp0 172\.16\.0\.100\) and WAN vhid 2 \(carp1 192\.0\.2\.100\) configured verbatim on fw1 \(MASTER\) and fw2 \(BACKUP\)`)
	const num = `(\d+\.\d+)`
	const loss = ` +client: (\d+)/(\d+) pings lost, longest gap ` + num + ` s`
	bound := carp.MasterDown(1, 128).Seconds()
	crash := line(`crash +kill -9 of fw1's carpd +fw2 MASTER after ` + num + ` s, bound ` + num + ` s` + loss)
	if crash[1] != bound || crash[0] > bound+0.1 || crash[0] < bound-1.05 {
		t.Errorf("crash failover %.2f s, bound %.2f s: want the bound %.2f s, the failover within it and after bound - advbase", crash[0], crash[1], bound)
	}
	// The address leaves fw1's kernel about advbase after the kill, fw2
	// adds it at the takeover: replies are lost in between, never more
	// than the whole failover.
	if crash[2] == 0 || crash[2] >= crash[3] || crash[4] > crash[0]+0.1 {
		t.Errorf("crash: %v/%v pings lost, longest gap %.2f s, failover %.2f s", crash[2], crash[3], crash[4], crash[0])
	}
	ret := line(`return +fw1's carpd restarted +fw1 MASTER after ` + num + ` s \(preempt\)` + loss)
	planned := line(`planned +ifconfig carp0 down on fw1 +fw2 MASTER after ` + num + ` s \(bow-out\)` + loss)
	// As TestPlannedHandoverLosesNothing: a planned handover loses nothing.
	for _, ev := range []struct {
		name string
		v    []float64
	}{{"return", ret}, {"planned", planned}} {
		if ev.v[1] != 0 || ev.v[2] == 0 {
			t.Errorf("%s: %v of %v pings lost", ev.name, ev.v[1], ev.v[2])
		}
	}
	if planned[0] > 1 {
		t.Errorf("planned failover took %.2f s: the bow-out advert should make it immediate", planned[0])
	}
	if !strings.HasSuffix(out, "\ndemo: OK, every step worked\n") {
		t.Errorf("the demo does not end with its verdict:\n%s", out)
	}
}

// TestDemoInterrupted sends the demo SIGINT (Ctrl-C) in the middle of the
// crash failover: it must remove everything it made and exit 130.
func TestDemoInterrupted(t *testing.T) {
	netlab.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := demoCmd(ctx)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var se bytes.Buffer
	cmd.Stdout, cmd.Stderr = pw, &se
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	var out strings.Builder
	sc := bufio.NewScanner(pr)
	sent := false
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if !sent && strings.Contains(sc.Text(), "fw1# kill -9 ") {
			// The leftover check below means something only if the
			// namespaces carry this pid.
			if nss, _ := exec.Command("ip", "netns", "list").Output(); !regexp.MustCompile(`(?m)^` + netlab.Prefix + strconv.Itoa(cmd.Process.Pid) + `-\d+-fw1\b`).Match(nss) {
				t.Errorf("no namespace %s%d-N-fw1 while the demo runs:\n%s", netlab.Prefix, cmd.Process.Pid, nss)
			}
			if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			sent = true
		}
	}
	err = cmd.Wait()
	if !sent {
		t.Fatalf("the demo never reached the crash failover (%v):\n%s\nstderr:\n%s", err, out.String(), se.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Errorf("interrupted demo exited %d (%v), want 130:\n%s", code, err, se.String())
	}
	if !strings.Contains(se.String(), "demo: removed every namespace, link and process the demo created") {
		t.Errorf("interrupted demo did not say it cleaned up:\n%s", se.String())
	}
	if left := demoLeftovers(t, cmd.Process.Pid, out.String()); len(left) > 0 {
		t.Errorf("the interrupted demo left %v", left)
	}
}
