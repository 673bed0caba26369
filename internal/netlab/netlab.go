// Package netlab builds throwaway networks of hosts for tests: each host is a
// network namespace whose links are named like the runbook's (em0, em1), the
// segments are bridges in a switch namespace, and each host can run its own
// carpd with its own socket and state directory. Everything a Lab creates is
// removed in t.Cleanup, also when the test fails; namespaces left by a run
// that was killed are removed by the next one (their names carry the pid).
package netlab

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Prefix starts the name of every namespace a Lab creates.
const Prefix = "bsdcarp-"

// T is what a Lab needs of its user: a *testing.T or *testing.B, or the
// demo's runner.
type T interface {
	Helper()
	Fatalf(format string, args ...any)
	Errorf(format string, args ...any)
	Logf(format string, args ...any)
	Skip(args ...any)
	Cleanup(func())
	TempDir() string
}

// Require fails (in CI) or skips (elsewhere) a test that needs root and the
// ip(8) command. In CI a skip would hide the tests that matter most.
func Require(t T) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "needs root for network namespaces"
	} else if _, err := exec.LookPath("ip"); err != nil {
		why = "needs ip(8) from iproute2"
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s (CI must run this test)", why)
	}
	t.Skip(why)
}

// Lab is one test network.
type Lab struct {
	t      T
	id     string
	Bin    string // directory with carpd, ifconfig-carp, carpctl-sysctl and bsd/
	Dir    string // scratch directory for sockets, state and logs
	mu     sync.Mutex
	nss    []string
	procs  []*Proc
	Switch string // namespace holding the bridges
}

var seq struct {
	sync.Mutex
	n int
}

// New creates a lab with an empty switch namespace. bin is the directory of
// the built commands.
func New(t T, bin string) *Lab {
	t.Helper()
	Require(t)
	seq.Lock()
	seq.n++
	n := seq.n
	seq.Unlock()
	l := &Lab{t: t, id: fmt.Sprintf("%d-%d", os.Getpid(), n), Bin: bin, Dir: t.TempDir()}
	t.Cleanup(l.cleanup)
	l.Switch = l.NewNS("sw")
	return l
}

// NS returns the full namespace name of a host of this lab.
func (l *Lab) NS(host string) string { return Prefix + l.id + "-" + host }

// NewNS creates a namespace with loopback up and returns its name.
func (l *Lab) NewNS(host string) string {
	l.t.Helper()
	ns := l.NS(host)
	l.mustIP("netns", "add", ns)
	l.mu.Lock()
	l.nss = append(l.nss, ns)
	l.mu.Unlock()
	l.mustIP("-n", ns, "link", "set", "lo", "up")
	return ns
}

// Bridge creates a bridge (a LAN segment) in the switch namespace.
func (l *Lab) Bridge(name string) {
	l.t.Helper()
	l.mustIP("-n", l.Switch, "link", "add", name, "type", "bridge")
	// Forward at once: no STP, no learning delay.
	l.mustIP("-n", l.Switch, "link", "set", name, "type", "bridge", "forward_delay", "0", "stp_state", "0")
	l.mustIP("-n", l.Switch, "link", "set", name, "up")
}

// Plug connects host's interface ifname to bridge, with addresses such as
// "172.16.0.1/24". The switch-side end is named "<host>-<ifname>" (cut to 15).
func (l *Lab) Plug(host, ifname, bridge string, addrs ...string) {
	l.t.Helper()
	ns := l.NS(host)
	peer := SwitchPort(host, ifname)
	l.mustIP("-n", l.Switch, "link", "add", peer, "type", "veth", "peer", "name", ifname, "netns", ns)
	l.mustIP("-n", l.Switch, "link", "set", peer, "master", bridge, "up")
	for _, a := range addrs {
		l.mustIP("-n", ns, "addr", "add", a, "dev", ifname)
	}
	l.mustIP("-n", ns, "link", "set", ifname, "up")
}

// Handbook285 builds the network of the FreeBSD Handbook's section 28.5:
// firewalls fw1 and fw2 on a shared LAN (em0: 172.16.0.1 and .2/24) and WAN
// (em1: 192.0.2.1 and .2/24), and a client on the LAN (eth0: 172.16.0.10/24).
func (l *Lab) Handbook285() {
	l.t.Helper()
	l.Bridge("lan")
	l.Bridge("wan")
	for _, h := range []string{"fw1", "fw2", "client"} {
		l.NewNS(h)
	}
	l.Plug("fw1", "em0", "lan", "172.16.0.1/24")
	l.Plug("fw1", "em1", "wan", "192.0.2.1/24")
	l.Plug("fw2", "em0", "lan", "172.16.0.2/24")
	l.Plug("fw2", "em1", "wan", "192.0.2.2/24")
	l.Plug("client", "eth0", "lan", "172.16.0.10/24")
}

// SwitchPort names the switch-side end of a host's link.
func SwitchPort(host, ifname string) string {
	s := host + "-" + ifname
	if len(s) > 15 {
		s = s[:15]
	}
	return s
}

// Cut sets the switch side of a host's link down or up (a pulled cable).
func (l *Lab) Cut(host, ifname string, cut bool) {
	l.t.Helper()
	state := "up"
	if cut {
		state = "down"
	}
	l.mustIP("-n", l.Switch, "link", "set", SwitchPort(host, ifname), state)
}

func (l *Lab) mustIP(args ...string) {
	l.t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// Exec runs argv inside host's namespace and returns stdout, stderr, exit status.
func (l *Lab) Exec(host string, env []string, argv ...string) (string, string, int) {
	l.t.Helper()
	full := append([]string{"netns", "exec", l.NS(host)}, argv...)
	cmd := exec.Command("ip", full...)
	cmd.Env = append(os.Environ(), env...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			l.t.Fatalf("run %v in %s: %v", argv, host, err)
		}
		code = ee.ExitCode()
	}
	return so.String(), se.String(), code
}

// Addrs returns the addresses (as "a.b.c.d/len") on ifname in host's kernel.
func (l *Lab) Addrs(host, ifname string) []string {
	l.t.Helper()
	out, _, _ := l.Exec(host, nil, "ip", "-o", "addr", "show", "dev", ifname)
	var res []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "inet" || f[i] == "inet6" {
				res = append(res, f[i+1])
			}
		}
	}
	return res
}

// HasAddr reports whether addr (without length) is on any interface of host.
func (l *Lab) HasAddr(host, addr string) bool {
	l.t.Helper()
	out, _, _ := l.Exec(host, nil, "ip", "-o", "addr", "show")
	return strings.Contains(out, " "+addr+"/")
}

// Start runs argv in the background inside host's namespace, logging its
// output to Dir/<name>.log. It is killed at cleanup.
func (l *Lab) Start(host, name string, env []string, argv ...string) *Proc {
	l.t.Helper()
	logPath := filepath.Join(l.Dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		l.t.Fatalf("%v", err)
	}
	full := append([]string{"netns", "exec", l.NS(host)}, argv...)
	cmd := exec.Command("ip", full...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	// Own process group, so a kill reaches children (ucarp's scripts).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		l.t.Fatalf("start %v: %v", argv, err)
	}
	p := &Proc{cmd: cmd, Log: logPath, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); f.Close(); close(p.done) }()
	l.mu.Lock()
	l.procs = append(l.procs, p)
	l.mu.Unlock()
	return p
}

// Proc is a background process of a lab.
type Proc struct {
	cmd  *exec.Cmd
	Log  string
	done chan struct{}
	err  error
}

// Kill sends sig to the process group and waits for the process to end.
func (p *Proc) Kill(sig syscall.Signal) error {
	_ = syscall.Kill(-p.cmd.Process.Pid, sig)
	select {
	case <-p.done:
		return p.err
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("process %d did not stop on %v", p.cmd.Process.Pid, sig)
	}
}

// Pid returns the process id (that of the command itself: ip netns exec
// execs it in place).
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Output returns what the process logged so far.
func (p *Proc) Output() string {
	b, _ := os.ReadFile(p.Log)
	return string(b)
}

// Eventually polls cond every 10 ms until it is true or timeout passes, and
// returns how long it took and whether it became true.
func Eventually(timeout time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	for {
		if cond() {
			return time.Since(start), true
		}
		if time.Since(start) > timeout {
			return time.Since(start), false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (l *Lab) cleanup() {
	l.mu.Lock()
	defer l.mu.Unlock()
	// Kill every process group, then wait until each process has really
	// ended (cmd.Wait in Start reaps it), before the namespaces go.
	for _, p := range l.procs {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
	for _, p := range l.procs {
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			l.t.Errorf("cleanup: process %d did not exit", p.cmd.Process.Pid)
		}
	}
	for i := len(l.nss) - 1; i >= 0; i-- {
		if out, err := exec.Command("ip", "netns", "del", l.nss[i]).CombinedOutput(); err != nil {
			l.t.Errorf("cleanup: ip netns del %s: %v: %s", l.nss[i], err, out)
		}
	}
	l.nss = nil
}

// RemoveStale deletes namespaces that earlier, killed test runs left behind:
// those named with this package's prefix whose creating process is gone.
func RemoveStale() {
	out, err := exec.CommandContext(context.Background(), "ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], Prefix) {
			continue
		}
		pidStr, _, _ := strings.Cut(strings.TrimPrefix(f[0], Prefix), "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if syscall.Kill(pid, 0) == nil {
			continue // still alive: another test binary running right now
		}
		_ = exec.Command("ip", "netns", "del", f[0]).Run()
	}
}
