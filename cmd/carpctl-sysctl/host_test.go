package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/bsdcarp/bsdcarp/carp/control"
)

func TestSplitSysctl(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want sysctlLine
	}{
		{[]string{"net.ipv4.ip_forward"}, sysctlLine{host: []string{"net.ipv4.ip_forward"}}},
		{[]string{"-w", "net.ipv4.ip_forward=1"}, sysctlLine{opts: []string{"-w"}, host: []string{"net.ipv4.ip_forward=1"}}},
		{[]string{"-w", "net.inet.carp.preempt=1"}, sysctlLine{opts: []string{"-w"}, ours: []string{"net.inet.carp.preempt=1"}}},
		{[]string{"net.inet.carp.preempt=1", "net.ipv4.ip_forward=1"},
			sysctlLine{ours: []string{"net.inet.carp.preempt=1"}, host: []string{"net.ipv4.ip_forward=1"}}},
		{[]string{"net.inet", "net.inet.carp", "net.inet.carpx", "net"},
			sysctlLine{ours: []string{"net.inet", "net.inet.carp"}, host: []string{"net.inet.carpx", "net"}}},
		{[]string{"-a"}, sysctlLine{opts: []string{"-a"}, all: true}},
		{[]string{"-Nn", "-X"}, sysctlLine{opts: []string{"-Nn", "-X"}, all: true}},
		{[]string{"-f", "/etc/sysctl.conf"}, sysctlLine{opts: []string{"-f", "/etc/sysctl.conf"}, file: true}},
		{[]string{"-qf/etc/x", "net.inet.carp.log"}, sysctlLine{opts: []string{"-qf/etc/x"}, file: true, ours: []string{"net.inet.carp.log"}}},
		{[]string{"-p", "/etc/sysctl.d/x.conf"}, sysctlLine{opts: []string{"-p"}, host: []string{"/etc/sysctl.d/x.conf"}, foreign: true}},
		{[]string{"--system"}, sysctlLine{opts: []string{"--system"}, foreign: true}},
		{[]string{"-r", "ip_forward"}, sysctlLine{opts: []string{"-r"}, host: []string{"ip_forward"}, foreign: true}},
		{[]string{"-z"}, sysctlLine{opts: []string{"-z"}}}, // neither's: FreeBSD's usage
	} {
		if got := splitSysctl(tc.args); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("splitSysctl(%q) = %+v, want %+v", tc.args, got, tc.want)
		}
	}
}

// fakeHost installs a stand-in for the host's sysctl that prints its
// arguments and exits with the status in $FAKE_EXIT.
func fakeHost(t *testing.T) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sysctl")
	script := "#!/bin/sh\necho \"host $*\"\necho \"host stderr\" >&2\nexit ${FAKE_EXIT:-0}\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	old := hostSysctlPaths
	hostSysctlPaths = []string{p}
	t.Cleanup(func() { hostSysctlPaths = old })
	t.Setenv("PATH", "/nonexistent")
}

func runAs(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(append([]string{"/x/bin/bsd/sysctl", "--socket", filepath.Join(t.TempDir(), "none.sock")}, args...), &o, &e)
	return o.String(), e.String(), code
}

func TestHostNamesPassThrough(t *testing.T) {
	fakeHost(t)
	for _, tc := range []struct {
		args []string
		exit string
		out  string
		code int
	}{
		{[]string{"net.ipv4.ip_forward"}, "0", "host net.ipv4.ip_forward\n", 0},
		{[]string{"-w", "net.ipv4.ip_forward=1"}, "0", "host -w net.ipv4.ip_forward=1\n", 0},
		{[]string{"-p", "/etc/sysctl.d/99.conf"}, "0", "host -p /etc/sysctl.d/99.conf\n", 0},
		{[]string{"--system"}, "0", "host --system\n", 0},
		{[]string{"net.nope"}, "255", "host net.nope\n", 255},
	} {
		t.Setenv("FAKE_EXIT", tc.exit)
		o, e, code := runAs(t, tc.args...)
		if o != tc.out || e != "host stderr\n" || code != tc.code {
			t.Errorf("sysctl %q: stdout %q stderr %q exit %d, want %q, %q, %d", tc.args, o, e, code, tc.out, "host stderr\n", tc.code)
		}
	}
}

func TestFreeBSDOnlyNameHint(t *testing.T) {
	fakeHost(t)
	t.Setenv("FAKE_EXIT", "1")
	_, e, code := runAs(t, "net.inet.ip.forwarding=1")
	want := "host stderr\nsysctl: note: net.inet.ip.forwarding is FreeBSD's (passed to the host's sysctl unchanged); on Linux it is net.ipv4.ip_forward\n"
	if e != want || code != 1 {
		t.Errorf("stderr %q exit %d, want %q, 1", e, code, want)
	}
}

func TestListAllWithoutCarpd(t *testing.T) {
	fakeHost(t)
	o, e, code := runAs(t, "-a")
	if o != "host -a\n" || code != 0 || !strings.HasPrefix(e, "host stderr\nsysctl: net.inet.carp not listed: ") {
		t.Errorf("sysctl -a without carpd: stdout %q stderr %q exit %d", o, e, code)
	}
	if !strings.Contains(e, control.ErrNoEngine.Error()) {
		t.Errorf("sysctl -a without carpd: stderr %q does not say carpd is not running", e)
	}
}

func TestMixedLineWithoutCarpd(t *testing.T) {
	fakeHost(t)
	o, e, code := runAs(t, "net.inet.carp.preempt=1", "net.ipv4.ip_forward=1")
	// carpd's part fails (it is not running) and says so; the host's part
	// still runs; the exit status is carpd's part's.
	if o != "host net.ipv4.ip_forward=1\n" || code != 1 || !strings.Contains(e, control.ErrNoEngine.Error()) {
		t.Errorf("mixed line: stdout %q stderr %q exit %d", o, e, code)
	}
}

func TestOwnNameStaysCarpOnly(t *testing.T) {
	fakeHost(t)
	var o, e bytes.Buffer
	code := run([]string{"carpctl-sysctl", "--socket", filepath.Join(t.TempDir(), "none.sock"), "net.ipv4.ip_forward"}, &o, &e)
	if strings.Contains(o.String(), "host ") || code != 1 {
		t.Errorf("carpctl-sysctl net.ipv4.ip_forward ran the host's sysctl: stdout %q stderr %q exit %d", o.String(), e.String(), code)
	}
}

func TestHostSysctlSkipsSelf(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Symlink(self, filepath.Join(dir, "sysctl")); err != nil {
		t.Fatal(err)
	}
	old := hostSysctlPaths
	hostSysctlPaths = []string{filepath.Join(dir, "sysctl")}
	t.Cleanup(func() { hostSysctlPaths = old })
	t.Setenv("PATH", dir)
	if p, err := hostSysctl(); err == nil {
		t.Fatalf("hostSysctl() = %s: found this program itself", p)
	}
}
