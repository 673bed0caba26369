// A command lives a few milliseconds: start-up settings that change
// nothing it does. It keeps no goroutine to update GOMAXPROCS from the
// cgroup's CPU limit and does not name its memory mappings (a prctl(2)
// per mapping).
//
//go:debug updatemaxprocs=0
//go:debug decoratemappings=0

// Command carpctl-sysctl is sysctl(8) for the net.inet.carp tree kept by
// carpd. It takes FreeBSD sysctl command lines verbatim and prints what a BSD
// host prints; installed as bin/bsd/sysctl it reports errors as "sysctl:".
// --stats prints the carpstats counters as `netstat -s -p carp` does.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/bsdcarp/bsdcarp/carp/api"
	"github.com/bsdcarp/bsdcarp/carp/bsd"
	"github.com/bsdcarp/bsdcarp/carp/control"
	"github.com/bsdcarp/bsdcarp/internal/version"
)

const help = `usage: carpctl-sysctl [--socket PATH] [--version] [--stats] BSD-SYSCTL-ARGUMENTS...
  sysctl -w net.inet.carp.preempt=1
  sysctl net.inet.carp
  sysctl -n net.inet.carp.allow
  sysctl -f /etc/sysctl.conf
  carpctl-sysctl --stats          # netstat -s -p carp
See carpctl-sysctl(8). The socket defaults to $CARPD_SOCKET or ` + control.DefaultSocket + ".\n"

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

func run(argv []string, stdout, stderr io.Writer) int {
	prog := filepath.Base(argv[0])
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	fail := func(msg string) int {
		out.Flush()
		fmt.Fprintf(stderr, "%s: %s\n", prog, msg)
		return 1
	}
	socket, flags, args, err := control.SplitFlags(argv[1:], "help", "stats", "version")
	if err != nil {
		return fail(err.Error())
	}
	if flags["help"] {
		fmt.Fprint(out, help)
		return 0
	}
	if flags["version"] {
		fmt.Fprintln(out, version.String("carpctl-sysctl"))
		return 0
	}
	c := control.Client{Path: socket}
	if flags["stats"] {
		resp, err := c.Do(control.Request{Op: control.OpStatus, NoIfaces: true, Text: bsd.TextNetstat})
		if err != nil {
			return fail(err.Error())
		}
		if err := resp.Err(); err == nil && resp.Text != nil {
			fmt.Fprint(out, *resp.Text)
			return 0
		}
		if err := resp.StatusErr(); err != nil {
			return fail(bsd.Text(err))
		}
		if err := bsd.FormatNetstat(out, resp.Status.Stats); err != nil {
			return fail(err.Error())
		}
		return 0
	}
	if prog == "sysctl" {
		// Installed as bin/bsd/sysctl: names outside net.inet.carp are the
		// host's (host.go).
		return runSplit(prog, c, args, out, stderr)
	}
	return runOurs(prog, c, args, out, stderr)
}

// runOurs runs a sysctl line whose names are all net.inet.carp ones (or
// that lists -a or reads -f FILE) through carpd.
func runOurs(prog string, c control.Client, args []string, out *bufio.Writer, stderr io.Writer) int {
	fail := func(msg string) int {
		out.Flush()
		fmt.Fprintf(stderr, "%s: %s\n", prog, msg)
		return 1
	}
	cmd, err := bsd.ParseSysctl(args)
	if err != nil {
		var ue *bsd.UsageError
		if errors.As(err, &ue) {
			fmt.Fprint(stderr, ue.Text)
			return 1
		}
		return fail(bsd.Text(err))
	}
	if cmd.File != "" {
		f, err := os.Open(cmd.File)
		if err != nil {
			var pe *os.PathError
			msg := err.Error()
			if errors.As(err, &pe) {
				msg = pe.Err.Error()
			}
			fmt.Fprintf(stderr, "%s: %s: %s\n", prog, cmd.File, capitalize(msg))
			return 66 // EX_NOINPUT, as FreeBSD
		}
		fileArgs, errs := bsd.ParseSysctlFile(f, cmd.File)
		f.Close()
		for _, e := range errs {
			fmt.Fprintln(stderr, e)
		}
		cmd.Args = append(fileArgs, cmd.Args...)
	}
	req := control.Request{Op: control.OpStatus, NoIfaces: true}
	if cmd.File == "" {
		// carpd prints a read itself; one that does not (or a write)
		// answers with the status, evaluated here.
		req.Text, req.Args = bsd.TextSysctl, args
	}
	resp, err := c.Do(req)
	if err != nil {
		return fail(err.Error())
	}
	if err := resp.Err(); err == nil && resp.Text != nil {
		fmt.Fprint(out, *resp.Text)
		out.Flush()
		fmt.Fprint(stderr, resp.Stderr)
		return resp.Exit
	}
	if err := resp.StatusErr(); err != nil {
		return fail(bsd.Text(err))
	}
	res := bsd.EvalSysctl(cmd, resp.Status.Knobs, resp.Status.Stats, os.Geteuid() == 0)
	if len(res.Sets) == 0 {
		fmt.Fprint(out, res.Stdout)
		out.Flush()
		fmt.Fprint(stderr, res.Stderr)
		return res.Exit
	}
	outcomes := make([]bsd.SysctlOutcome, len(res.Sets))
	var warnings []string // values that took effect but are not saved yet, once each
	for i, s := range res.Sets {
		r, err := c.Do(control.Request{Op: control.OpSysctl, OID: s.Name, Value: s.Value})
		switch {
		case err != nil:
			outcomes[i] = bsd.SysctlOutcome{Err: err}
		case r.Code == control.CodePerm:
			outcomes[i] = bsd.SysctlOutcome{Old: current(resp.Status.Knobs, s.Name), Err: api.Refused(api.StepSysctl, syscall.EPERM)}
		case r.Code != "":
			outcomes[i] = bsd.SysctlOutcome{Old: current(resp.Status.Knobs, s.Name), Err: r.Err()}
		default:
			outcomes[i] = bsd.SysctlOutcome{Old: r.Old, New: r.New}
			if r.Warning != "" && !slices.Contains(warnings, r.Warning) {
				warnings = append(warnings, r.Warning)
			}
		}
	}
	so, se, code := res.Complete(outcomes)
	fmt.Fprint(out, so)
	out.Flush()
	fmt.Fprint(stderr, se)
	for _, w := range warnings {
		fmt.Fprintf(stderr, "%s: warning: %s\n", prog, w)
	}
	return code
}

// current is the value a knob had before a failed write (BSD prints it).
func current(knobs []api.Knob, name string) int64 {
	k, _ := bsd.FindKnob(knobs, name)
	return k.Value
}

// capitalize turns Go's "no such file or directory" into strerror's
// "No such file or directory".
func capitalize(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}
