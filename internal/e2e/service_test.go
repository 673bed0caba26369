package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bsdcarp/bsdcarp/carp"
	"github.com/bsdcarp/bsdcarp/carp/control"
	"github.com/bsdcarp/bsdcarp/internal/netlab"
)

// Every command answers --version with one line naming itself and the same
// build, the bsd/ links and rc.carp -V too.
func TestVersionFlags(t *testing.T) {
	env := append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	var rest string
	for _, c := range []struct {
		prog string
		argv []string
	}{
		{"carpd", []string{filepath.Join(bin, "carpd"), "--version"}},
		{"ifconfig-carp", []string{filepath.Join(bin, "ifconfig-carp"), "--version"}},
		{"carpctl-sysctl", []string{filepath.Join(bin, "carpctl-sysctl"), "--version"}},
		{"ifconfig-carp", []string{filepath.Join(bin, "bsd", "ifconfig"), "--version"}},
		{"carpctl-sysctl", []string{filepath.Join(bin, "bsd", "sysctl"), "--version"}},
		{"carpctl-compat", []string{filepath.Join(bin, "carpctl-compat"), "--version"}},
		{"carpctl-compat", []string{filepath.Join(bin, "bsd", "kldstat"), "--version"}},
		{"rc.carp", []string{"../../scripts/rc.carp", "--version"}},
		{"rc.carp", []string{"../../scripts/rc.carp", "-V"}},
	} {
		cmd := exec.Command(c.argv[0], c.argv[1:]...)
		cmd.Env = env
		var so, se strings.Builder
		cmd.Stdout, cmd.Stderr = &so, &se
		err := cmd.Run()
		out := so.String()
		if err != nil || se.Len() != 0 || strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, c.prog+" ") {
			t.Errorf("%v: %v, stdout %q, stderr %q; want one line \"%s VERSION\"", c.argv, err, out, se.String(), c.prog)
			continue
		}
		v := strings.TrimPrefix(out, c.prog+" ")
		if rest == "" {
			rest = v
		} else if v != rest {
			t.Errorf("%v: version %q, carpd's is %q", c.argv, v, rest)
		}
	}
}

// unitDir is the systemd units with @PREFIX@ replaced by a prefix holding
// the built carpd and rc.carp, as make install writes them.
func unitDir(t *testing.T) string {
	t.Helper()
	prefix := t.TempDir()
	if err := os.MkdirAll(filepath.Join(prefix, "sbin"), 0o755); err != nil {
		t.Fatal(err)
	}
	for src, dst := range map[string]string{filepath.Join(bin, "carpd"): "carpd", "../../scripts/rc.carp": "rc.carp"} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(prefix, "sbin", dst), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	units := t.TempDir()
	for _, u := range []string{"carpd.service", "carp-rc.service"} {
		b, err := os.ReadFile(filepath.Join("../../dist/systemd", u))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(units, u), []byte(strings.ReplaceAll(string(b), "@PREFIX@", prefix)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return units
}

// systemd itself checks the units: every directive known and valid, the
// commands present. (PID 1 need not be systemd: verify loads the units
// offline.) The man pages are not looked up: they are installed elsewhere.
func TestUnitsVerify(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("systemd-analyze missing (Debian's systemd package; CI must run this test)")
		}
		t.Skip("needs systemd-analyze (Debian's systemd package)")
	}
	units := unitDir(t)
	cmd := exec.Command("systemd-analyze", "verify", "--man=no", "./carpd.service", "./carp-rc.service")
	cmd.Dir = units
	out, err := cmd.CombinedOutput()
	// verify exits 0 on an unknown key and only says so: any output fails.
	if err != nil || len(out) != 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(filepath.Join(units, "carpd.service"))
	for _, want := range []string{"\nType=notify\n", "\nNotifyAccess=main\n", "\nExecReload=/bin/kill -HUP $MAINPID\n"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("carpd.service lacks %q", strings.TrimSpace(want))
		}
	}
}

// unitValue is the value of key= in dist/systemd/carpd.service.
func unitValue(t *testing.T, key string) string {
	t.Helper()
	b, err := os.ReadFile("../../dist/systemd/carpd.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+"="); ok {
			return v
		}
	}
	t.Fatalf("carpd.service has no %s=", key)
	return ""
}

// confined is the command prefix that runs a program as carpd.service runs
// carpd: with its capability bounding set and no new privileges (setpriv),
// and, as ProtectSystem=strict with ReadWritePaths=/run does, in a mount
// namespace where the file system is read-only but for /run, /proc, /sys,
// /dev and rw, the lab directory that stands in for /run/carpd here.
func confined(t *testing.T, rw string) []string {
	t.Helper()
	for _, tool := range []string{"setpriv", "unshare"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s (util-linux) missing", tool)
		}
	}
	if unitValue(t, "ProtectSystem") != "strict" || unitValue(t, "ReadWritePaths") != "/run" {
		t.Fatal("carpd.service no longer has ProtectSystem=strict and ReadWritePaths=/run: update confined")
	}
	set := "-all"
	for _, c := range strings.Fields(unitValue(t, "CapabilityBoundingSet")) {
		set += ",+" + strings.ToLower(strings.TrimPrefix(c, "CAP_"))
	}
	script := `set -e
mount --rbind "$1" "$1"
mount --rbind /run /run
mount -o remount,bind,ro /
shift
exec setpriv --bounding-set "$0" `
	if unitValue(t, "NoNewPrivileges") == "yes" {
		script += "--no-new-privs "
	}
	return []string{"unshare", "--mount", "--propagation", "private", "sh", "-c", script + `-- "$@"`, set, rw}
}

// notifications is the receiving end of $NOTIFY_SOCKET, as systemd has it.
type notifications struct {
	path string
	c    *net.UnixConn
}

func listenNotify(t *testing.T, dir string) *notifications {
	t.Helper()
	path := filepath.Join(dir, "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &notifications{path: path, c: c}
}

// next waits for one datagram; log is what the sender logged, for a failure.
func (n *notifications) next(t *testing.T, timeout time.Duration, log func() string) string {
	t.Helper()
	buf := make([]byte, 4096)
	if err := n.c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		t.Fatal(err)
	}
	k, err := n.c.Read(buf)
	if err != nil {
		t.Fatalf("no notification within %v: %v\ncarpd's log:\n%s", timeout, err, log())
	}
	return string(buf[:k])
}

// none checks that nothing more came.
func (n *notifications) none(t *testing.T) {
	t.Helper()
	buf := make([]byte, 4096)
	_ = n.c.SetReadDeadline(time.Now())
	if k, err := n.c.Read(buf); err == nil {
		t.Errorf("unexpected notification %q", buf[:k])
	}
}

func hasLine(msg, line string) bool {
	return strings.Contains("\n"+msg, "\n"+line+"\n")
}

// Type=notify: carpd, confined as carpd.service confines it, says READY=1
// only once its control socket answers and its saved state is applied;
// STOPPING=1 at SIGTERM; RELOADING=1 then READY=1 at SIGHUP, which changes
// nothing that runs. Under the unit's capability bounding set carpd still
// makes its link, addresses and sysctls.
func TestSdNotify(t *testing.T) {
	lab := netlab.New(t, bin)
	lab.Handbook285()
	fw1 := labHost(lab, "fw1")
	n := listenNotify(t, lab.Dir)
	prefix := confined(t, lab.Dir)
	// The confinement bites: outside /run and the lab nothing is written.
	probe := filepath.Join("/var/tmp", fmt.Sprintf("bsdcarp-confined-%d", os.Getpid()))
	if _, errOut, code := lab.Exec("fw1", nil, append(prefix, "sh", "-c", ": >"+probe)...); code == 0 || !strings.Contains(errOut, "Read-only file system") {
		os.Remove(probe)
		t.Fatalf("confined, %s was writable (exit %d: %s)", probe, code, errOut)
	}
	if _, errOut, code := lab.Exec("fw1", nil, append(prefix, "sh", "-c", ": >"+filepath.Join(lab.Dir, "probe"))...); code != 0 {
		t.Fatalf("confined, the lab directory is not writable: %s", errOut)
	}
	start := func(run string) {
		t.Helper()
		argv := append(append([]string{}, prefix...), filepath.Join(bin, "carpd"))
		fw1.carpd = lab.Start("fw1", "fw1-carpd-"+run, append(fw1.env(), "NOTIFY_SOCKET="+n.path), argv...)
	}
	// ready waits for READY=1 and asks the socket at once: it must answer,
	// with the vhids of the saved state when there are any.
	ready := func(wantVHIDs int) {
		t.Helper()
		msg := n.next(t, 10*time.Second, fw1.log)
		if !hasLine(msg, "READY=1") || !hasLine(msg, fmt.Sprintf("MAINPID=%d", fw1.carpd.Pid())) {
			t.Fatalf("first notification %q, want READY=1 and MAINPID=%d\n%s", msg, fw1.carpd.Pid(), fw1.log())
		}
		resp, err := control.Client{Path: fw1.sock, Timeout: 2 * time.Second}.Do(control.Request{Op: control.OpStatus})
		if err == nil {
			err = resp.StatusErr()
		}
		if err != nil {
			t.Fatalf("READY=1 came but the socket does not answer: %v", err)
		}
		if got := len(resp.Status.VHIDs); got != wantVHIDs {
			t.Fatalf("at READY=1 the status has %d vhids, want %d (the saved state)", got, wantVHIDs)
		}
	}
	stop := func() {
		t.Helper()
		if err := fw1.carpd.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if msg := n.next(t, 5*time.Second, fw1.log); !hasLine(msg, "STOPPING=1") {
			t.Fatalf("at SIGTERM: %q, want STOPPING=1", msg)
		}
		if code, ok := fw1.carpd.Wait(15 * time.Second); !ok || code != 0 {
			t.Fatalf("carpd exited %d (ended: %v) after SIGTERM:\n%s", code, ok, fw1.log())
		}
	}

	start("1")
	ready(0)
	fw1.mustSh(t, "ifconfig carp0 create; ifconfig carp0 vhid 1 pass lanpasswd carpdev em0 172.16.0.100 255.255.255.0")
	fw1.waitState(t, "carp0", "MASTER", carp.MasterDown(1, 0)+3*time.Second)
	untouched(t, lab, fw1) // link, address, sysctls, MASTER: made under the bounding set

	before := strings.Count(fw1.log(), " -> ")
	if err := fw1.carpd.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if msg := n.next(t, 5*time.Second, fw1.log); !hasLine(msg, "RELOADING=1") || !strings.Contains(msg, "\nMONOTONIC_USEC=") {
		t.Fatalf("at SIGHUP: %q, want RELOADING=1 with MONOTONIC_USEC", msg)
	}
	if msg := n.next(t, 5*time.Second, fw1.log); !hasLine(msg, "READY=1") {
		t.Fatalf("after the reload: %q, want READY=1", msg)
	}
	untouched(t, lab, fw1)
	if after := strings.Count(fw1.log(), " -> "); after != before {
		t.Errorf("SIGHUP changed a state:\n%s", fw1.log())
	}
	n.none(t)
	stop()

	// Within the same boot the saved state comes back before READY=1.
	start("2")
	ready(1)
	fw1.waitState(t, "carp0", "MASTER", carp.MasterDown(1, 0)+3*time.Second)
	stop()
	n.none(t)

	for _, run := range []string{"1", "2"} {
		b, _ := os.ReadFile(filepath.Join(lab.Dir, "fw1-carpd-"+run+".log"))
		if s := strings.ToLower(string(b)); strings.Contains(s, "not permitted") || strings.Contains(s, "permission denied") {
			t.Errorf("carpd under the unit's limits was refused something:\n%s", b)
		}
	}
}

// stampRE is the time carpd writes at the start of a line off journald.
var stampRE = regexp.MustCompile(`^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d{6} `)

// With stderr on journald ($JOURNAL_STREAM naming it), each line carries its
// syslog priority and no time: a state change <6>, a split-brain warning
// <4>, a bad packet <7> at net.inet.carp.log=2 and not before; without it
// the lines are as before. (The priority of every level, a refusal's
// warning among them, is loglines' unit test.)
func TestJournalPriorities(t *testing.T) {
	lab := netlab.New(t, bin)
	lab.Handbook285()
	fw1, fw2 := labHost(lab, "fw1"), labHost(lab, "fw2")
	// fw1's stderr is its log file: JOURNAL_STREAM names that file, as
	// systemd names the stream it hands a service.
	logPath := filepath.Join(lab.Dir, "fw1-carpd.log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	f.Close()
	fw1.carpd = lab.Start("fw1", "fw1-carpd", append(fw1.env(), fmt.Sprintf("JOURNAL_STREAM=%d:%d", st.Dev, st.Ino)), filepath.Join(bin, "carpd"))
	fw2.startCarpd(t)
	if _, ok := netlab.Eventually(10*time.Second, func() bool {
		_, _, code := fw1.sh("ifconfig -l")
		return code == 0 || fw1.carpd.Exited()
	}); !ok || fw1.carpd.Exited() {
		t.Fatalf("fw1: carpd did not become ready:\n%s", fw1.log())
	}
	fw1.mustSh(t, "ifconfig carp0 create; ifconfig carp0 vhid 1 pass lanpasswd carpdev em0 172.16.0.100 255.255.255.0")
	fw1.waitState(t, "carp0", "MASTER", carp.MasterDown(1, 0)+3*time.Second)
	fw2.mustSh(t, "ifconfig carp0 create; ifconfig carp0 vhid 1 pass lanpasswd advskew 100 carpdev em0 172.16.0.100 255.255.255.0")
	fw2.waitState(t, "carp0", "BACKUP", carp.MasterDown(1, 100)+3*time.Second)
	if strings.Contains(fw1.log(), "<7>") {
		t.Errorf("debug lines at net.inet.carp.log=1:\n%s", fw1.log())
	}
	fw1.mustSh(t, "sysctl net.inet.carp.log=2")
	// fw2 with another password: both MASTER, fw1 warns, and at log=2
	// says why each advert is dropped.
	fw2.mustSh(t, "ifconfig carp0 vhid 1 pass otherpasswd")
	want := []string{
		"<6>carpd: ready on " + fw1.sock,
		"<6>carp: ",
		"<4>carp: ",
		"<7>carp_input_c: incorrect hash for VHID 1@em0",
	}
	if _, ok := netlab.Eventually(10*time.Second, func() bool {
		log := "\n" + fw1.log()
		for _, w := range want {
			if !strings.Contains(log, "\n"+w) {
				return false
			}
		}
		return true
	}); !ok {
		t.Fatalf("fw1's log lacks one of %q:\n%s", want, fw1.log())
	}
	lines := strings.Split(strings.TrimRight(fw1.log(), "\n"), "\n")
	prio := regexp.MustCompile(`^<[3467]>\S`)
	for _, line := range lines {
		if !prio.MatchString(line) || stampRE.MatchString(line[3:]) {
			t.Errorf("journald line %q: want <N> then the message, no time", line)
		}
		switch {
		case strings.Contains(line, " -> MASTER (") && !strings.HasPrefix(line, "<6>carp: "):
			t.Errorf("state change %q not at LOG_INFO", line)
		case strings.Contains(line, "fail authentication") && !strings.HasPrefix(line, "<4>carp: "):
			t.Errorf("split-brain warning %q not at LOG_WARNING", line)
		}
	}
	// fw2, not on journald, logs as before: a time, no priority.
	for _, line := range strings.Split(strings.TrimRight(fw2.log(), "\n"), "\n") {
		if !stampRE.MatchString(line) || strings.HasPrefix(line, "<") {
			t.Errorf("fw2 line %q: want the time first and no priority", line)
		}
	}
	if !strings.Contains(fw2.log(), "carp: ") {
		t.Errorf("fw2 logged no state change:\n%s", fw2.log())
	}
}
