// Command ifconfig-carp is ifconfig(8) for carp: it takes FreeBSD / OpenBSD
// ifconfig command lines verbatim, sends them to carpd, and prints what a BSD
// host prints. Installed as bin/bsd/ifconfig it reports errors as "ifconfig:".
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"

	"github.com/bsdcarp/bsdcarp/carp/bsd"
	"github.com/bsdcarp/bsdcarp/carp/control"
	"github.com/bsdcarp/bsdcarp/carp/engine"
)

const help = `usage: ifconfig-carp [--socket PATH] BSD-IFCONFIG-ARGUMENTS...
  ifconfig carp0 create
  ifconfig carp0 vhid 1 pass lanpasswd carpdev em0 advskew 100 10.0.0.1 255.255.255.0
  ifconfig carp0 [down|up|destroy|state backup]
  ifconfig [-a|-l|-g carp|-k]
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
	socket, flags, args, err := control.SplitFlags(argv[1:], "help")
	if err != nil {
		return fail(err.Error())
	}
	if flags["help"] {
		fmt.Fprint(out, help)
		return 0
	}
	p, err := bsd.ParseIfconfig(args)
	if err != nil {
		var ue *bsd.UsageError
		if errors.As(err, &ue) {
			fmt.Fprint(stderr, ue.Text)
			return 1
		}
		return fail(err.Error())
	}
	for _, w := range p.Warnings {
		fmt.Fprintf(stderr, "%s: %s\n", prog, w)
	}
	c := control.Client{Path: socket}
	if p.Request != nil {
		resp, err := c.Do(control.Request{Op: control.OpIfconfig, Ifconfig: p.Request})
		if err != nil {
			return fail(err.Error())
		}
		switch resp.Code {
		case "":
			return 0
		case control.CodePerm:
			return fail(permText(p.Request))
		default:
			return fail(resp.Error)
		}
	}
	resp, err := c.Do(control.Request{Op: control.OpStatus, ShowKeys: p.ShowKeys})
	if err != nil {
		return fail(err.Error())
	}
	if resp.Code != "" || resp.Status == nil {
		return fail(resp.Error)
	}
	st := *resp.Status
	switch {
	case p.ListNames:
		bsd.FormatList(out, allNames(st))
	case p.Group != "":
		if p.Group == "carp" {
			for _, cl := range st.Clones {
				fmt.Fprintln(out, cl.Name)
			}
		}
	case p.ListAll:
		for _, cl := range st.Clones {
			if err := bsd.FormatInterface(out, cl.Name, st, p.ShowKeys); err != nil {
				return fail(err.Error())
			}
		}
	default:
		if !engine.IsCloneName(p.Iface) {
			if _, err := net.InterfaceByName(p.Iface); err == nil {
				// Not "does not exist": it does, this release just cannot
				// print it yet (the FreeBSD format of physical interfaces
				// comes with dialect C).
				return fail(p.Iface + ": status of non-carp interfaces is not supported yet by bsdcarp")
			}
		}
		if err := bsd.FormatInterface(out, p.Iface, st, p.ShowKeys); err != nil {
			return fail(err.Error())
		}
	}
	return 0
}

// allNames lists the host's interfaces and the carp clones, as `ifconfig -l`.
func allNames(st engine.Status) []string {
	var names []string
	if ifs, err := net.Interfaces(); err == nil {
		for _, i := range ifs {
			names = append(names, i.Name)
		}
	}
	for _, cl := range st.Clones {
		if !slices.Contains(names, cl.Name) {
			names = append(names, cl.Name)
		}
	}
	return names
}

// permText is what BSD's ifconfig prints when a non-root user tries a change:
// the failing ioctl and EPERM.
func permText(r *engine.IfconfigRequest) string {
	ioctl := "SIOCSVH"
	if len(r.Ops) > 0 {
		switch r.Ops[0].Kind {
		case engine.OpCreate:
			ioctl = "SIOCIFCREATE2"
		case engine.OpDestroy:
			ioctl = "SIOCIFDESTROY"
		case engine.OpAddr:
			ioctl = "ioctl (SIOCAIFADDR)"
		case engine.OpDelAddr:
			ioctl = "ioctl (SIOCDIFADDR)"
		case engine.OpUp, engine.OpDown:
			ioctl = "ioctl (SIOCSIFFLAGS)"
		}
	}
	return ioctl + ": Operation not permitted"
}
