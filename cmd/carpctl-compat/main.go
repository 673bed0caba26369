// Command carpctl-compat answers the other FreeBSD commands of the CARP
// chapters, so that their lines paste unchanged with bin/bsd first on PATH:
// kldload and kldstat (carp is built into carpd: nothing to load), and
// service (and /etc/rc.d/netif) whose "netif restart" re-applies rc.conf
// through rc.carp. It is one program under several names (bin/bsd/kldload,
// kldstat, service, and netif for /etc/rc.d/netif), or `carpctl-compat NAME
// ARGS...`. Every other service is passed to the host's service(8).
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/bsdcarp/bsdcarp/carp/control"
	"github.com/bsdcarp/bsdcarp/internal/version"
)

const help = `usage: carpctl-compat [--socket PATH] COMMAND ARGS...
  kldload [-nqv] carp|if_carp       carp is built into carpd: succeeds when carpd runs
  kldstat [-hq] [-n file] [-m mod]  FreeBSD's listing, with carp.ko while carpd runs
  service netif restart|start       rc.carp: re-apply rc.conf, removing vhids it no longer lists
  service routing restart|start     nothing to do (rc.carp sets no routes)
  service OTHER ...                 the host's service(8)
Installed as bin/bsd/{kldload,kldstat,service} and /etc/rc.d/netif. See carpctl-compat(8).
The socket defaults to $CARPD_SOCKET or ` + control.DefaultSocket + ".\n"

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

func run(argv []string, stdout, stderr io.Writer) int {
	prog := filepath.Base(argv[0])
	args := argv[1:]
	socket, flags, args, err := control.SplitFlags(args, "help", "version")
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return 1
	}
	if flags["version"] {
		fmt.Fprintln(stdout, version.String("carpctl-compat"))
		return 0
	}
	if prog == "carpctl-compat" {
		if flags["help"] || len(args) == 0 {
			fmt.Fprint(stdout, help)
			if flags["help"] {
				return 0
			}
			return 1
		}
		prog, args = args[0], args[1:]
	}
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	c := control.Client{Path: socket}
	switch prog {
	case "kldload":
		return kldload(c, args, out, stderr)
	case "kldstat":
		return kldstat(c, args, out, stderr)
	case "service":
		return service(c, args, out, stderr)
	case "netif":
		// /etc/rc.d/netif restart
		return service(c, append([]string{"netif"}, args...), out, stderr)
	}
	fmt.Fprintf(stderr, "carpctl-compat: %s: not a command it answers (kldload, kldstat, service, netif)\n", prog)
	return 1
}

// engineUp asks carpd for its status; the error says why it does not answer.
func engineUp(c control.Client) error {
	_, err := c.Do(control.Request{Op: control.OpStatus, NoIfaces: true})
	return err
}

// moduleName is the module a kldload/kldstat argument names: the file name
// without directory and ".ko" ("/boot/kernel/carp.ko" is carp).
func moduleName(s string) string {
	return strings.TrimSuffix(filepath.Base(s), ".ko")
}

// isCarpModule reports whether a module name is carp: "carp" since FreeBSD
// 10, "if_carp" before.
func isCarpModule(s string) bool {
	m := moduleName(s)
	return m == "carp" || m == "if_carp"
}

// kldload: FreeBSD's kldload [-nqv] file ... for carp. carp is built into
// carpd, so loading it succeeds, silently, while carpd runs (FreeBSD's
// kldload says "module already loaded or in kernel" and exits 1 unless -n;
// a pasted runbook wants the exit 0 it had on a fresh FreeBSD host). Without
// carpd it fails: there is no carp to use.
func kldload(c control.Client, args []string, out *bufio.Writer, stderr io.Writer) int {
	var quiet bool
	var files []string
	for i, a := range args {
		if a == "--" {
			files = append(files, args[i+1:]...)
			break
		}
		if len(a) > 1 && a[0] == '-' {
			for _, o := range a[1:] {
				switch o {
				case 'n', 'v':
				case 'q':
					quiet = true
				default:
					fmt.Fprintf(stderr, "kldload: illegal option -- %c\nusage: kldload [-nqv] file ...\n", o)
					return 1
				}
			}
			continue
		}
		files = append(files, a)
	}
	if len(files) == 0 {
		fmt.Fprint(stderr, "usage: kldload [-nqv] file ...\n")
		return 1
	}
	code := 0
	for _, f := range files {
		if !isCarpModule(f) {
			if !quiet {
				fmt.Fprintf(stderr, "kldload: can't load %s: No such file or directory\n", f)
				fmt.Fprintf(stderr, "kldload: bsdcarp loads only carp and if_carp (built into carpd); Linux modules are modprobe(8)'s\n")
			}
			code = 1
			continue
		}
		if err := engineUp(c); err != nil {
			if !quiet {
				fmt.Fprintf(stderr, "kldload: can't load %s: %v (carp is built into carpd: start carpd, e.g. systemctl start carpd)\n", f, err)
			}
			code = 1
		}
	}
	return code
}

// The files and modules kldstat lists: the kernel, and carp.ko (module
// carp) while carpd runs. Addresses and sizes have no Linux meaning and are
// 0.
const (
	kldHeader = "Id Refs Address                Size Name\n"
	kldKernel = " 1    2 0x0000000000000000        0 kernel\n"
	kldCarp   = " 2    1 0x0000000000000000        0 carp.ko\n"
)

// kldstat: FreeBSD's kldstat [-hq] [-n filename] [-m modname].
func kldstat(c control.Client, args []string, out *bufio.Writer, stderr io.Writer) int {
	var quiet bool
	var file, mod string
	usage := func() int {
		fmt.Fprint(stderr, "usage: kldstat [-dhqv] [-i id] [-n filename]\n       kldstat [-dq] [-m modname]\n")
		return 1
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if len(a) < 2 || a[0] != '-' {
			return usage()
		}
		for j := 1; j < len(a); j++ {
			switch o := a[j]; o {
			case 'h', 'd':
			case 'q':
				quiet = true
			case 'n', 'm':
				v := a[j+1:]
				if v == "" {
					if i+1 >= len(args) {
						return usage()
					}
					i++
					v = args[i]
				}
				if o == 'n' {
					file = v
				} else {
					mod = v
				}
				j = len(a)
			default:
				fmt.Fprintf(stderr, "kldstat: illegal option -- %c\n", o)
				return usage()
			}
		}
	}
	if file != "" && mod != "" {
		return usage()
	}
	upErr := engineUp(c)
	up := upErr == nil
	switch {
	case mod != "":
		id := 0
		switch {
		case mod == "kernel":
			id = 1
		case up && isCarpModule(mod) && !strings.HasSuffix(mod, ".ko"):
			id = 2
		}
		if id == 0 {
			if !quiet {
				fmt.Fprintf(stderr, "kldstat: can't find module %s: No such file or directory\n", mod)
			}
			return 1
		}
		if !quiet {
			fmt.Fprintf(out, "Id  Refs Name\n%3d %4d %s\n", id, 1, mod)
		}
		return 0
	case file != "":
		line := ""
		switch {
		case moduleName(file) == "kernel":
			line = kldKernel
		case up && isCarpModule(file):
			line = kldCarp
		}
		if line == "" {
			if !quiet {
				fmt.Fprintf(stderr, "kldstat: can't find file %s: No such file or directory\n", file)
			}
			return 1
		}
		if !quiet {
			fmt.Fprint(out, kldHeader+line)
		}
		return 0
	}
	fmt.Fprint(out, kldHeader+kldKernel)
	if up {
		fmt.Fprint(out, kldCarp)
	} else if !quiet {
		out.Flush()
		fmt.Fprintf(stderr, "kldstat: carp.ko not listed: %v\n", upErr)
	}
	return 0
}
