package e2e

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/bsdcarp/bsdcarp/internal/netlab"
)

// step is one command of a transcript with its exact expected results.
type step struct {
	line     int
	comments string // "# " lines before the command
	cmd      string
	stdout   string
	stderr   string
	exit     int
}

func (s step) render() string {
	var b strings.Builder
	b.WriteString(s.comments)
	b.WriteString("$ " + s.cmd + "\n")
	for _, pair := range []struct{ prefix, text string }{{"> ", s.stdout}, {"! ", s.stderr}} {
		if pair.text == "" {
			continue
		}
		for _, l := range strings.Split(strings.TrimSuffix(pair.text, "\n"), "\n") {
			b.WriteString(pair.prefix + l + "\n")
		}
	}
	if s.exit != 0 {
		fmt.Fprintf(&b, "? %d\n", s.exit)
	}
	return b.String()
}

func parseTranscript(t *testing.T, path string) []step {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var steps []step
	comments := ""
	inHeader := true
	for i, l := range strings.Split(string(b), "\n") {
		switch {
		case l == "":
		case strings.HasPrefix(l, "# ") || l == "#":
			if !inHeader {
				comments += l + "\n"
			}
		case strings.HasPrefix(l, "$ "):
			inHeader = false
			steps = append(steps, step{line: i + 1, cmd: l[2:], comments: comments})
			comments = ""
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

var updateTranscripts = flag.Bool("update-transcripts", false, "rewrite testdata/transcripts/*.txt from what the commands print (review the diff!)")

// TestTranscripts runs every command form of man/ifconfig-carp.8 and
// man/carpctl-sysctl.8 against a live
// engine, one file of testdata/transcripts per dialect or command, and
// compares stdout, stderr and the exit status byte for byte. Each file gets
// a fresh host "fw" with em0 (10.0.0.2/24, MAC 00:0c:29:aa:bb:cc) and em1
// (192.168.1.3/24, MAC 00:0c:29:aa:bb:cd) on two bridges.
func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "testdata", "transcripts", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			steps := parseTranscript(t, path)
			lab := netlab.New(t, bin)
			lab.Bridge("lan")
			lab.Bridge("wan")
			fw := newHost(t, lab, "fw")
			for _, l := range []struct{ dev, br, mac, addr string }{
				{"em0", "lan", "00:0c:29:aa:bb:cc", "10.0.0.2/24"},
				{"em1", "wan", "00:0c:29:aa:bb:cd", "192.168.1.3/24"},
			} {
				lab.Plug("fw", l.dev, l.br)
				// Set the MAC with the link down, so that the IPv6
				// link-local address is derived from it when it comes up.
				lab.Exec("fw", nil, "ip", "link", "set", l.dev, "down")
				lab.Exec("fw", nil, "ip", "link", "set", l.dev, "address", l.mac)
				lab.Exec("fw", nil, "ip", "link", "set", l.dev, "up")
				lab.Exec("fw", nil, "ip", "addr", "add", l.addr, "dev", l.dev)
			}
			fw.startCarpd(t)
			var b strings.Builder
			for _, s := range steps {
				out, errOut, code := fw.sh(s.cmd)
				if *updateTranscripts {
					s.stdout, s.stderr, s.exit = out, errOut, code
				}
				if out != s.stdout || errOut != s.stderr || code != s.exit {
					t.Errorf("%s:%d: $ %s\nstdout:\n%s\nwant:\n%s\nstderr:\n%s\nwant:\n%s\nexit %d, want %d",
						path, s.line, s.cmd, out, s.stdout, errOut, s.stderr, code, s.exit)
				}
				b.WriteString(s.render())
			}
			if *updateTranscripts {
				if err := os.WriteFile(path, []byte(headerOf(t, path)+b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// headerOf is the leading comment block of a transcript.
func headerOf(t *testing.T, path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var h strings.Builder
	for _, l := range strings.SplitAfter(string(data), "\n") {
		if !strings.HasPrefix(l, "# ") && l != "#\n" {
			break
		}
		h.WriteString(l)
	}
	return h.String()
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
		{"ifconfig -g carp carpdemote 50", "ifconfig: carp: SIOCSIFGATTR: Operation not permitted\n"},
		{"ifconfig -g carp -carpdemote", "ifconfig: carp: SIOCSIFGATTR: Operation not permitted\n"},
		// OpenBSD's clone on demand is a write like any other.
		{"ifconfig carp5 vhid 5 carpdev em0 10.0.0.5", "ifconfig: SIOCSVH: Operation not permitted\n"},
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
	if got := strings.TrimSpace(fw.mustSh(t, "sysctl -n net.inet.carp.demotion")); got != "0" {
		t.Errorf("demotion = %s after a refused carpdemote", got)
	}
	if out := fw.mustSh(t, "ifconfig -g carp"); out != "carp0\n" {
		t.Errorf("ifconfig -g carp after refused writes = %q", out)
	}
	if out := fw.mustSh(t, "ifconfig carp0"); !strings.Contains(out, "advskew 0") {
		t.Errorf("refused change applied:\n%s", out)
	}
}
