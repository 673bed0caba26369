// A command lives a few milliseconds: start-up settings that change
// nothing it does. It keeps no goroutine to update GOMAXPROCS from the
// cgroup's CPU limit and does not name its memory mappings (a prctl(2)
// per mapping).
//
//go:debug updatemaxprocs=0
//go:debug decoratemappings=0

// Command ifconfig-carp is ifconfig(8) for carp: it takes FreeBSD / OpenBSD
// ifconfig command lines verbatim, sends them to carpd, and prints what a BSD
// host prints. Installed as bin/bsd/ifconfig it reports errors as "ifconfig:".
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/bsdcarp/bsdcarp/carp/api"
	"github.com/bsdcarp/bsdcarp/carp/bsd"
	"github.com/bsdcarp/bsdcarp/carp/control"
	"github.com/bsdcarp/bsdcarp/internal/version"
)

const help = `usage: ifconfig-carp [--socket PATH] [--version] BSD-IFCONFIG-ARGUMENTS...
  ifconfig carp0 create
  ifconfig carp0 vhid 1 pass lanpasswd carpdev em0 advskew 100 10.0.0.1 255.255.255.0
  ifconfig carp0 [down|up|destroy|state backup]
  ifconfig em0 vhid 1 advskew 100 pass testpass alias 192.168.1.50/32
  ifconfig em0 inet 192.168.1.3 netmask 255.255.255.0 | mtu 9000 | up
  ifconfig [-a|-l|-g carp|-k] | ifconfig em0
  ifconfig -g carp carpdemote 50 | ifconfig -g carp -carpdemote 50
  ifconfig-carp --json [-k] [carp0]   (machine-readable status, see ifconfig-carp(8))
See ifconfig-carp(8). The socket defaults to $CARPD_SOCKET or ` + control.DefaultSocket + ".\n"

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
	socket, flags, args, err := control.SplitFlags(argv[1:], "help", "json", "version")
	if err != nil {
		return fail(err.Error())
	}
	if flags["help"] {
		fmt.Fprint(out, help)
		return 0
	}
	if flags["version"] {
		fmt.Fprintln(out, version.String("ifconfig-carp"))
		return 0
	}
	if flags["json"] {
		if err := jsonStatus(socket, args, out); err != nil {
			return fail(err.Error())
		}
		return 0
	}
	p, err := bsd.ParseIfconfig(args)
	if err != nil {
		var ue *bsd.UsageError
		if errors.As(err, &ue) {
			fmt.Fprint(stderr, ue.Text)
			return 1
		}
		return fail(bsd.Text(err))
	}
	for _, w := range p.Warnings {
		fmt.Fprintf(stderr, "%s: %s\n", prog, w)
	}
	c := control.Client{Path: socket}
	if p.Request != nil {
		resp, err := c.Do(control.Request{Op: control.OpIfconfig, Ifconfig: p.Request})
		if err != nil {
			if errors.Is(err, control.ErrNoEngine) && !isCarpName(p.Iface) {
				// Read-only without carpd (kernel.go): say so.
				fail(err.Error())
				return fail(p.Iface + ": not changed: without carpd this ifconfig only shows interfaces (use ip(8) to change " + p.Iface + ", or start carpd)")
			}
			return fail(err.Error())
		}
		switch resp.Code {
		case "":
			// The change took effect; carpd could not save it yet.
			if resp.Warning != "" {
				fmt.Fprintf(stderr, "%s: warning: %s\n", prog, resp.Warning)
			}
			if p.Group == "" {
				return 0
			}
			// "ifconfig -g carp carpdemote N": show the group's new
			// demotion counter, as "ifconfig -g carp" does on OpenBSD.
		case control.CodePerm:
			return fail(permText(p.Request))
		default:
			return fail(bsd.Text(resp.Err()))
		}
	}
	// Ask only for what is printed: one interface's status, or (after
	// "-g carp carpdemote N") the knobs.
	req := control.Request{Op: control.OpStatus, ShowKeys: p.ShowKeys && p.Request == nil}
	switch {
	case p.Request != nil:
		req.NoIfaces = true
	case !p.ListAll && !p.ListNames && p.Group == "":
		req.Iface = p.Iface
	}
	if p.Request == nil {
		// carpd prints the display itself; one that does not answers
		// with the status, formatted here into the same text.
		req.Text, req.Args = bsd.TextIfconfig, args
	}
	resp, err := c.Do(req)
	if err != nil {
		if code, ok := showWithoutCarpd(err, p, out, fail); ok {
			return code
		}
		return fail(err.Error())
	}
	if resp.Text != nil {
		out.WriteString(*resp.Text)
		if err := resp.Err(); err != nil {
			return fail(bsd.Text(err))
		}
		return 0
	}
	if err := resp.StatusErr(); err != nil {
		return fail(bsd.Text(err))
	}
	if p.Request != nil {
		bsd.FormatGroupAttribs(out, p.Group, *resp.Status)
		return 0
	}
	if err := bsd.FormatStatus(out, p, *resp.Status); err != nil {
		return fail(bsd.Text(err))
	}
	return 0
}

// permText is what BSD's ifconfig prints when a non-root user tries a
// change: the first kernel request of the line refused with EPERM.
func permText(r *api.IfconfigRequest) string {
	e := api.Refused(r.Step(), syscall.EPERM)
	if e.Step == api.StepGroupAttr {
		e.Name = r.Iface
	}
	return bsd.Text(e)
}
