package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bsdcarp/bsdcarp/internal/netlab"
)

// bin is the directory of the commands built for this test run.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "bsdcarp-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = dir
	code := build(dir)
	if code == 0 {
		netlab.RemoveStale()
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// build compiles the commands and the bsd/ links, as make build does.
func build(dir string) int {
	cmd := exec.Command("go", "build", "-o", dir+"/", "../../cmd/carpd", "../../cmd/ifconfig-carp", "../../cmd/carpctl-sysctl", "../../cmd/carpctl-compat", "./carpreplay")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		return 1
	}
	// rc.carp next to the commands, as make install puts it in sbin (the
	// service command looks for it there).
	rc, err := os.ReadFile("../../scripts/rc.carp")
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "rc.carp"), rc, 0o755)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := os.MkdirAll(filepath.Join(dir, "bsd"), 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for link, target := range map[string]string{"ifconfig": "../ifconfig-carp", "sysctl": "../carpctl-sysctl",
		"kldload": "../carpctl-compat", "kldstat": "../carpctl-compat", "service": "../carpctl-compat"} {
		if err := os.Symlink(target, filepath.Join(dir, "bsd", link)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return 0
}

// host is a lab host that runs carpd.
type host struct {
	lab      *netlab.Lab
	name     string
	sock     string
	stateDir string
	carpd    *netlab.Proc
	t        testing.TB
}

// newHost creates the namespace of a new host.
func newHost(t testing.TB, lab *netlab.Lab, name string) *host {
	lab.NewNS(name)
	return labHost(lab, name)
}

// labHost is a host whose namespace the lab already made.
func labHost(lab *netlab.Lab, name string) *host {
	return &host{lab: lab, name: name,
		sock:     filepath.Join(lab.Dir, name+".sock"),
		stateDir: filepath.Join(lab.Dir, name+".state")}
}

func (h *host) env() []string {
	return []string{"CARPD_SOCKET=" + h.sock, "CARPD_STATE_DIR=" + h.stateDir, "CARPD_DEVD_PIPE=" + h.devdPipe(),
		"CARPD_DEVD_CONF=" + h.devdConf(),
		"PATH=" + filepath.Join(bin, "bsd") + ":" + bin + ":" + os.Getenv("PATH")}
}

// devdConf is the host's devd.conf, in the lab directory (absent unless a
// test writes it: then carpd runs no actions).
func (h *host) devdConf() string { return filepath.Join(h.lab.Dir, h.name+".devd.conf") }

// devdPipe is the host's devd.pipe, in the lab directory.
func (h *host) devdPipe() string { return filepath.Join(h.lab.Dir, h.name+".devd.pipe") }

// startCarpd starts the engine and waits until its socket answers.
func (h *host) startCarpd(t testing.TB, extra ...string) {
	t.Helper()
	argv := append([]string{filepath.Join(bin, "carpd")}, extra...)
	h.carpd = h.lab.Start(h.name, h.name+"-carpd", h.env(), argv...)
	if _, ok := netlab.Eventually(10*time.Second, func() bool {
		_, _, code := h.lab.Exec(h.name, h.env(), "ifconfig", "-l")
		return code == 0 || h.carpd.Exited()
	}); !ok || h.carpd.Exited() {
		t.Fatalf("%s: carpd did not become ready:\n%s", h.name, h.carpd.Output())
	}
}

// sh runs a runbook fragment with bin/bsd first on PATH, as an admin would.
func (h *host) sh(script string) (string, string, int) {
	return h.lab.Exec(h.name, h.env(), "sh", "-c", script)
}

// mustSh runs a runbook fragment that must succeed.
func (h *host) mustSh(t testing.TB, script string) string {
	t.Helper()
	out, errOut, code := h.sh(script)
	if code != 0 {
		t.Fatalf("%s: %q exited %d: %s%s", h.name, script, code, out, errOut)
	}
	return out
}

// state returns the carp (or VRRPv3) state word of `ifconfig IF` ("" if
// none).
func (h *host) state(iface string) string {
	out, _, _ := h.sh("ifconfig " + iface)
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && (f[0] == "carp:" || f[0] == "vrrp:") {
			return f[1]
		}
	}
	return ""
}

// waitState polls until iface is in state want, returning how long it took.
func (h *host) waitState(t testing.TB, iface, want string, timeout time.Duration) time.Duration {
	t.Helper()
	d, ok := netlab.Eventually(timeout, func() bool { return h.state(iface) == want })
	if !ok {
		out, _, _ := h.sh("ifconfig " + iface)
		t.Fatalf("%s: %s not %s after %v:\n%s\ncarpd log:\n%s", h.name, iface, want, timeout, out, h.log())
	}
	return d
}

func (h *host) log() string {
	if h.carpd == nil {
		return ""
	}
	return h.carpd.Output()
}

// transitionAt returns the time carpd logged "carp: <who>: ... -> <to>" for
// the last time (its log lines carry microsecond local timestamps), so
// failover times are measured by the engine's own clock rather than by how
// quickly a poll noticed.
func (h *host) transitionAt(t testing.TB, who, to string) time.Time {
	t.Helper()
	var at time.Time
	for _, line := range strings.Split(h.log(), "\n") {
		if !strings.Contains(line, "carp: "+who+": ") || !strings.Contains(line, "-> "+to+" (") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		ts, err := time.ParseInLocation("2006/01/02 15:04:05.000000", f[0]+" "+f[1], time.Local)
		if err != nil {
			t.Fatalf("bad log timestamp in %q: %v", line, err)
		}
		at = ts
	}
	if at.IsZero() {
		t.Fatalf("%s: no %s -> %s transition in the log:\n%s", h.name, who, to, h.log())
	}
	return at
}
