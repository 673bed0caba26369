package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/bsdcarp/bsdcarp/internal/netlab"
)

// step is one command of a transcript with its exact expected results.
type step struct {
	line   int
	cmd    string
	stdout string
	stderr string
	exit   int
}

func parseTranscript(t *testing.T, path string) []step {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var steps []step
	for i, l := range strings.Split(string(b), "\n") {
		switch {
		case l == "" || strings.HasPrefix(l, "# "):
		case strings.HasPrefix(l, "$ "):
			steps = append(steps, step{line: i + 1, cmd: l[2:]})
		case len(steps) == 0:
			t.Fatalf("%s:%d: output before any command", path, i+1)
		case strings.HasPrefix(l, "> "):
			steps[len(steps)-1].stdout += l[2:] + "\n"
		case strings.HasPrefix(l, "! "):
			steps[len(steps)-1].stderr += l[2:] + "\n"
		case strings.HasPrefix(l, "? "):
			n, err := strconv.Atoi(l[2:])
			if err != nil {
				t.Fatalf("%s:%d: %v", path, i+1, err)
			}
			steps[len(steps)-1].exit = n
		default:
			t.Fatalf("%s:%d: cannot parse %q", path, i+1, l)
		}
	}
	return steps
}

// TestTranscriptDialectA runs every dialect A command form against a live
// engine and compares stdout, stderr and the exit status byte for byte.
func TestTranscriptDialectA(t *testing.T) {
	path := filepath.Join("..", "..", "testdata", "transcripts", "dialect-a.txt")
	steps := parseTranscript(t, path)
	lab := netlab.New(t, bin)
	lab.Bridge("lan")
	fw := newHost(t, lab, "fw")
	lab.Plug("fw", "em0", "lan", "10.0.0.2/24")
	fw.startCarpd(t)
	for _, s := range steps {
		out, errOut, code := fw.sh(s.cmd)
		if out != s.stdout || errOut != s.stderr || code != s.exit {
			t.Errorf("%s:%d: $ %s\nstdout:\n%s\nwant:\n%s\nstderr:\n%s\nwant:\n%s\nexit %d, want %d",
				path, s.line, s.cmd, out, s.stdout, errOut, s.stderr, code, s.exit)
		}
	}
}

// Only root changes anything; others see the status without keys.
func TestNonRootReadsWithoutKeysAndCannotChange(t *testing.T) {
	lab := netlab.New(t, bin)
	lab.Bridge("lan")
	fw := newHost(t, lab, "fw")
	lab.Plug("fw", "em0", "lan", "10.0.0.2/24")
	fw.startCarpd(t)
	// The socket lives in the test's private temp dir: let others reach it.
	for _, d := range []string{lab.Dir, filepath.Dir(lab.Dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	fw.mustSh(t, "ifconfig carp0 create; ifconfig carp0 vhid 1 pass lanpasswd carpdev em0 10.0.0.1/24")
	asNobody := func(cmd string) (string, string, int) {
		return fw.sh("setpriv --reuid=65534 --regid=65534 --clear-groups " + cmd)
	}
	out, errOut, code := asNobody("ifconfig -k carp0")
	if code != 0 || strings.Contains(out, "lanpasswd") || strings.Contains(out, "key") {
		t.Errorf("non-root ifconfig -k carp0: exit %d, %q %q: must succeed and show no key", code, out, errOut)
	}
	for _, c := range []struct{ cmd, want string }{
		{"ifconfig carp0 advskew 50", "ifconfig: SIOCSVH: Operation not permitted\n"},
		{"ifconfig carp1 create", "ifconfig: SIOCIFCREATE2: Operation not permitted\n"},
		{"ifconfig carp0 down", "ifconfig: down: permission denied\n"},
		{"ifconfig em0 mtu 9000", "ifconfig: ioctl SIOCSIFMTU (set mtu): Operation not permitted\n"},
	} {
		_, errOut, code := asNobody(c.cmd)
		if code != 1 || errOut != c.want {
			t.Errorf("non-root %s: exit %d stderr %q, want 1 %q", c.cmd, code, errOut, c.want)
		}
	}
	out, errOut, code = asNobody("sysctl net.inet.carp.preempt=1")
	if code != 1 || errOut != "sysctl: net.inet.carp.preempt=1: Operation not permitted\n" {
		t.Errorf("non-root sysctl write: exit %d, %q %q", code, out, errOut)
	}
	if got := strings.TrimSpace(fw.mustSh(t, "sysctl -n net.inet.carp.preempt")); got != "0" {
		t.Errorf("preempt = %s after a refused write", got)
	}
	if out := fw.mustSh(t, "ifconfig carp0"); !strings.Contains(out, "advskew 0") {
		t.Errorf("refused change applied:\n%s", out)
	}
}
