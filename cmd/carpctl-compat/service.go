package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/bsdcarp/bsdcarp/carp/api"
	"github.com/bsdcarp/bsdcarp/carp/bsd"
	"github.com/bsdcarp/bsdcarp/carp/control"
)

// hostServicePaths are where the host's service(8) is looked for before PATH.
var hostServicePaths = []string{"/usr/sbin/service", "/sbin/service"}

// service: "service netif start|restart" and "service routing
// start|restart" are bsdcarp's; anything else is the host's service(8),
// arguments as typed, its output and exit status.
func service(c control.Client, args []string, out *bufio.Writer, stderr io.Writer) int {
	if len(args) >= 2 {
		switch args[0] + " " + args[1] {
		case "netif start", "netif restart":
			return netif(c, args[1] == "restart", args[2:], out, stderr)
		case "netif stop":
			fmt.Fprint(stderr, "netif: stop is not supported by bsdcarp (remove a vhid with ifconfig; stop carpd to stop CARP)\n")
			return 1
		case "routing start", "routing restart":
			fmt.Fprint(stderr, "routing: nothing to do: rc.carp sets no routes (Linux keeps its own)\n")
			return 0
		}
	}
	out.Flush()
	path, err := findHost("service", hostServicePaths)
	if err != nil {
		fmt.Fprintf(stderr, "service: %v\n", err)
		return 1
	}
	return runChild(exec.Command(path, args...), "service", out, stderr)
}

// netif re-applies rc.conf through rc.carp, as FreeBSD's /etc/rc.d/netif
// does. restart first removes what rc.conf no longer lists (prune); start
// only applies. The files are rc.carp's defaults, or what $RC_CARP_ARGS
// says (e.g. "-f /srv/rc.conf"). Interfaces after the verb ("service netif
// restart em0", as FreeBSD's netif takes them) limit the removals to
// those interfaces and the vhids on them; rc.carp applies all of rc.conf
// (a line that changes nothing changes nothing).
func netif(c control.Client, restart bool, only []string, out *bufio.Writer, stderr io.Writer) int {
	rc, err := findRCCarp()
	if err != nil {
		fmt.Fprintf(stderr, "netif: %v\n", err)
		return 1
	}
	if err := engineUp(c); err != nil {
		fmt.Fprintf(stderr, "netif: %v: nothing applied\n", err)
		return 1
	}
	rcArgs := strings.Fields(os.Getenv("RC_CARP_ARGS"))
	failed := false
	if restart {
		cmd := exec.Command(rc, append([]string{"-n"}, rcArgs...)...)
		var dry bytes.Buffer
		cmd.Stdout = &dry
		cmd.Env = rcEnv()
		if err := cmd.Run(); err != nil {
			// Its own messages come again, with the real run below.
			fmt.Fprintf(stderr, "netif: %s -n failed (%v): nothing applied\n", rc, err)
			return 1
		}
		failed = !prune(c, dry.String(), only, out, stderr)
	}
	cmd := exec.Command(rc, rcArgs...)
	cmd.Env = rcEnv()
	code := runChild(cmd, "netif", out, stderr)
	if code == 0 && failed {
		code = 1
	}
	return code
}

// prune removes the vhids that rc.conf no longer lists, from the
// interfaces it names. script is `rc.carp -n`'s output: the ifconfig lines
// rc.conf amounts to. An interface is named when a line configures it; a
// vhid is stale when it is on a named interface, or its carpdev is one,
// (or, for a FreeBSD 9 clone without one, the interface whose subnet holds
// its address) and no line sets that vhid on that interface. A stale vhid of a carpN
// clone goes with its clone (ifconfig carpN destroy; rc.carp creates it
// again if cloned_interfaces still lists it), one on a physical interface
// with its addresses (ifconfig em0 inet ADDR -alias: the last one takes the
// vhid). With interfaces in only, only those are named (when rc.conf
// names them). It reports whether every removal succeeded.
func prune(c control.Client, script string, only []string, out *bufio.Writer, stderr io.Writer) bool {
	named := map[string]bool{}
	want := map[string]map[int]bool{}
	for _, line := range strings.Split(script, "\n") {
		w := strings.Fields(line)
		if len(w) < 2 || w[0] != "ifconfig" {
			continue
		}
		named[w[1]] = true
		p, err := bsd.ParseIfconfig(w[1:])
		if err != nil || p.Request == nil {
			continue
		}
		for _, op := range p.Request.Ops {
			if op.Kind == api.OpVHID {
				if want[w[1]] == nil {
					want[w[1]] = map[int]bool{}
				}
				want[w[1]][op.Int] = true
			}
		}
	}
	if len(only) > 0 {
		for name := range named {
			if !slices.Contains(only, name) {
				delete(named, name)
			}
		}
	}
	resp, err := c.Do(control.Request{Op: control.OpStatus})
	if err == nil {
		err = resp.StatusErr()
	}
	if err != nil {
		fmt.Fprintf(stderr, "netif: %v: no vhid removed\n", err)
		return false
	}
	st := *resp.Status
	clone := map[string]bool{}
	for _, cl := range st.Clones {
		clone[cl.Name] = true
	}
	ok := true
	do := func(why string, words ...string) {
		fmt.Fprintf(out, "netif: %s: ifconfig %s\n", why, strings.Join(words, " "))
		out.Flush()
		p, err := bsd.ParseIfconfig(words)
		if err == nil && p.Request != nil {
			var r control.Response
			r, err = c.Do(control.Request{Op: control.OpIfconfig, Ifconfig: p.Request})
			if err == nil && r.Code != "" {
				err = errors.New(bsd.Text(r.Err()))
			}
		}
		if err != nil {
			fmt.Fprintf(stderr, "netif: ifconfig %s: %v\n", strings.Join(words, " "), err)
			ok = false
		}
	}
	destroyed := map[string]bool{}
	for _, v := range st.VHIDs {
		if want[v.Iface][int(v.VHID)] || !(named[v.Iface] || named[parent(v, st)]) {
			continue
		}
		why := fmt.Sprintf("vhid %d on %s is not in rc.conf", v.VHID, v.Iface)
		if clone[v.Iface] {
			if !destroyed[v.Iface] {
				destroyed[v.Iface] = true
				do(why, v.Iface, "destroy")
			}
			continue
		}
		for _, a := range v.Addrs {
			do(why, v.Iface, family(a), a.Addr().String(), "-alias")
		}
	}
	return ok
}

// parent is the carpdev of v: the configured one, else (a FreeBSD 9 clone,
// whose kernel finds the parent by subnet) the host interface with an
// address in the subnet of one of v's.
func parent(v api.VHIDStatus, st api.Status) string {
	if v.Carpdev != "" {
		return v.Carpdev
	}
	for _, a := range v.Addrs {
		for _, l := range st.Links {
			for _, p := range l.Addrs {
				if p.Masked().Contains(a.Addr()) {
					return l.Name
				}
			}
		}
	}
	return ""
}

// family is the address family keyword of a prefix.
func family(p netip.Prefix) string {
	if p.Addr().Is4() {
		return "inet"
	}
	return "inet6"
}

// rcEnv is the environment of rc.carp: bsdcarp's ifconfig and sysctl first
// on PATH when this program runs from a build tree (bin/ with bin/bsd);
// an installed rc.carp finds PREFIX/libexec/bsdcarp/bsd itself.
func rcEnv() []string {
	env := os.Environ()
	self, err := os.Executable()
	if err != nil {
		return env
	}
	bsdDir := filepath.Join(filepath.Dir(self), "bsd")
	if fi, err := os.Stat(bsdDir); err == nil && fi.IsDir() {
		env = append(env, "PATH="+bsdDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	}
	return env
}

// findRCCarp finds rc.carp: next to this program (PREFIX/sbin), in the
// build tree (bin/../scripts), then on PATH.
func findRCCarp() (string, error) {
	if self, err := os.Executable(); err == nil {
		dir := filepath.Dir(self)
		for _, p := range []string{filepath.Join(dir, "rc.carp"), filepath.Join(dir, "..", "scripts", "rc.carp")} {
			if isExec(p) {
				return p, nil
			}
		}
	}
	if p, err := exec.LookPath("rc.carp"); err == nil {
		return p, nil
	}
	return "", errors.New("rc.carp not found (next to carpctl-compat or on PATH)")
}

// findHost finds the host's program name: paths, then PATH, skipping this
// program under any name.
func findHost(name string, paths []string) (string, error) {
	self, _ := os.Executable()
	selfInfo, selfErr := os.Stat(self)
	cands := append([]string(nil), paths...)
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if dir != "" {
			cands = append(cands, filepath.Join(dir, name))
		}
	}
	for _, p := range cands {
		fi, err := os.Stat(p)
		if err != nil || !isExec(p) {
			continue
		}
		if selfErr == nil && os.SameFile(fi, selfInfo) {
			continue
		}
		return p, nil
	}
	return "", fmt.Errorf("the host's %s(8) is not installed: bsdcarp answers only netif and routing", name)
}

// isExec reports whether p is an executable regular file.
func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// runChild runs cmd with our stdin, stdout and stderr and returns its exit
// status (128+N when killed by signal N).
func runChild(cmd *exec.Cmd, prog string, out *bufio.Writer, stderr io.Writer) int {
	out.Flush()
	cmd.Stdin = os.Stdin
	cmd.Stdout = out
	cmd.Stderr = stderr
	err := cmd.Run()
	out.Flush()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	case err != nil:
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return 1
	}
	return 0
}
