package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/bsdcarp/bsdcarp/carp/control"
)

// Installed as bin/bsd/sysctl (first on PATH for a BSD runbook), the
// command stays out of the way of the host: a name outside net.inet.carp
// belongs to the host's sysctl(8) (procps), which gets it with the options
// as typed, and whose output and exit status are the command's. The split,
// which carpctl-sysctl(8) documents under "Names outside net.inet.carp":
//
//   - every name is carpd's (net.inet, net.inet.carp, net.inet.carp.*), or
//     -f FILE is given: carpd's alone, as carpctl-sysctl;
//   - no name is carpd's, or an option only procps' sysctl has (-p, -r,
//     -V, --system, ...): the host's sysctl, arguments as typed;
//   - both: carpd's names first (with the options), then the host's names
//     (with the same options); the exit status is carpd's part's when it
//     failed, else the host's;
//   - -a (-A, -X) without names: the host's listing, then net.inet.carp's
//     in FreeBSD's format; when carpd is not running, the host's alone and
//     a note on stderr, with the host's exit status.
//
// Under its own name, carpctl-sysctl stays carpd's alone: every name
// outside net.inet.carp is an unknown oid.

// bsdSysctlOpts are the option letters of FreeBSD's sysctl (getopt string
// "AabB:def:hiNnoqtTwWxX"); f and B take an argument.
const bsdSysctlOpts = "AabBdefhiNnoqtTwWxX"

// hostSysctlOpts are procps sysctl's option letters that FreeBSD's does not
// have (-p FILE, -r PATTERN, -V): a line with one is the host's. A letter
// neither has stays carpd's, whose usage message names FreeBSD's options.
const hostSysctlOpts = "prV"

// hostSysctlPaths are where the host's sysctl(8) is looked for before PATH.
var hostSysctlPaths = []string{"/usr/sbin/sysctl", "/sbin/sysctl"}

// sysctlLine is a command line split between carpd and the host.
type sysctlLine struct {
	opts    []string // option words (with the arguments of -f and -B)
	ours    []string // operands carpd answers
	host    []string // operands for the host's sysctl
	foreign bool     // an option only the host's sysctl has
	file    bool     // -f FILE
	all     bool     // -a, -A or -X
}

// oursName reports whether a sysctl name is carpd's: net.inet.carp, what
// is under it, and net.inet (Linux has no net.inet; FreeBSD's listing of it
// here is the carp part).
func oursName(operand string) bool {
	name, _, _ := strings.Cut(operand, "=")
	return name == "net.inet" || name == "net.inet.carp" || strings.HasPrefix(name, "net.inet.carp.")
}

// splitSysctl classifies the words of a sysctl line.
func splitSysctl(args []string) sysctlLine {
	var l sysctlLine
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "--") {
			l.foreign = true
			l.opts = append(l.opts, a)
			continue
		}
		if len(a) < 2 || a[0] != '-' {
			if oursName(a) {
				l.ours = append(l.ours, a)
			} else {
				l.host = append(l.host, a)
			}
			continue
		}
		l.opts = append(l.opts, a)
		for j := 1; j < len(a); j++ {
			c := a[j]
			if strings.ContainsRune(hostSysctlOpts, rune(c)) {
				l.foreign = true
				break
			}
			switch c {
			case 'a', 'A', 'X':
				l.all = true
			case 'f', 'B':
				l.file = l.file || c == 'f'
				if j == len(a)-1 && i+1 < len(args) {
					i++
					l.opts = append(l.opts, args[i])
				}
				j = len(a) // the rest of the word is the argument
			}
		}
	}
	return l
}

// runSplit runs a line of bin/bsd/sysctl: carpd's names through carpd, the
// others through the host's sysctl.
func runSplit(prog string, c control.Client, args []string, out *bufio.Writer, stderr io.Writer) int {
	l := splitSysctl(args)
	switch {
	case l.foreign:
		out.Flush()
		return runHost(prog, args, out, stderr)
	case l.file:
		return runOurs(prog, c, args, out, stderr)
	case l.all && len(l.ours) == 0 && len(l.host) == 0:
		code := runHost(prog, args, out, stderr)
		if _, err := c.Do(control.Request{Op: control.OpStatus, NoIfaces: true}); errors.Is(err, control.ErrNoEngine) {
			fmt.Fprintf(stderr, "%s: net.inet.carp not listed: %v\n", prog, err)
			return code
		}
		if ours := runOurs(prog, c, args, out, stderr); code == 0 {
			code = ours
		}
		return code
	case len(l.host) == 0:
		return runOurs(prog, c, args, out, stderr)
	case len(l.ours) == 0:
		return runHost(prog, args, out, stderr)
	}
	code := runOurs(prog, c, append(append([]string(nil), l.opts...), l.ours...), out, stderr)
	host := runHost(prog, append(append([]string(nil), l.opts...), l.host...), out, stderr)
	if code == 0 {
		code = host
	}
	return code
}

// freebsdOnly names FreeBSD sysctls that runbooks use and whose Linux
// counterparts differ in name (and in output format): a failed host
// sysctl on one of these is followed by a hint, never translated.
var freebsdOnly = map[string]string{
	"net.inet.ip.forwarding":   "net.ipv4.ip_forward",
	"net.inet6.ip6.forwarding": "net.ipv6.conf.all.forwarding",
	"kern.hostname":            "kernel.hostname",
}

// runHost runs the host's sysctl with args; its output goes where ours
// goes and its exit status is returned.
func runHost(prog string, args []string, out *bufio.Writer, stderr io.Writer) int {
	out.Flush()
	path, err := hostSysctl()
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return 1
	}
	cmd := exec.Command(path, args...)
	cmd.Args[0] = "sysctl" // its messages say "sysctl:", as when run by name
	cmd.Stdin = os.Stdin
	cmd.Stdout = out
	cmd.Stderr = stderr
	err = cmd.Run()
	out.Flush()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
	case err != nil:
		fmt.Fprintf(stderr, "%s: running the host's sysctl: %v\n", prog, err)
		return 1
	}
	if code != 0 {
		for _, a := range args {
			name, _, _ := strings.Cut(a, "=")
			if linux, ok := freebsdOnly[name]; ok {
				hint := "it has no Linux counterpart"
				if linux != "" {
					hint = "on Linux it is " + linux
				}
				fmt.Fprintf(stderr, "%s: note: %s is FreeBSD's (passed to the host's sysctl unchanged); %s\n", prog, name, hint)
			}
		}
	}
	return code
}

// hostSysctl finds the host's sysctl(8): hostSysctlPaths, then PATH,
// skipping this program under any name (bin/bsd/sysctl is first on PATH).
func hostSysctl() (string, error) {
	self, _ := os.Executable()
	selfInfo, selfErr := os.Stat(self)
	cands := append([]string(nil), hostSysctlPaths...)
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if dir != "" {
			cands = append(cands, filepath.Join(dir, "sysctl"))
		}
	}
	for _, p := range cands {
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			continue
		}
		if selfErr == nil && os.SameFile(fi, selfInfo) {
			continue
		}
		return p, nil
	}
	return "", errors.New("the host's sysctl(8) is not installed (/usr/sbin/sysctl; Debian: apt-get install procps): bsdcarp answers net.inet.carp only")
}
