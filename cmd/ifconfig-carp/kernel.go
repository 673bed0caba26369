package main

import (
	"errors"
	"io"
	"strings"

	"github.com/bsdcarp/bsdcarp/carp/api"
	"github.com/bsdcarp/bsdcarp/carp/bsd"
	"github.com/bsdcarp/bsdcarp/carp/control"
)

// Without carpd, ifconfig stays useful for the host's own interfaces (it is
// first on PATH for BSD runbooks): "ifconfig IF" for an interface that is
// not a carpN, and "ifconfig -a", print the kernel's links in FreeBSD's
// format, read directly from the kernel (kernelLinks) with the kernel's
// names and no carp lines. Everything else still needs carpd and says so:
// changes (to any interface), carpN, -l (rc.carp's test that carpd
// answers) and -g.

// isCarpName reports whether name is a carp(4) clone name, carpN.
func isCarpName(name string) bool {
	n := strings.TrimPrefix(name, "carp")
	if n == name || n == "" {
		return false
	}
	for _, c := range n {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// showWithoutCarpd prints the status p asks for from the kernel when err
// says carpd is not running and p is a read-only display of a host
// interface (or -a); ok is false when the caller is to report err.
func showWithoutCarpd(err error, p bsd.ParsedIfconfig, out io.Writer, fail func(string) int) (code int, ok bool) {
	if !errors.Is(err, control.ErrNoEngine) || p.Request != nil || p.ListNames || p.Group != "" {
		return 0, false
	}
	if !p.ListAll && (p.Iface == "" || isCarpName(p.Iface)) {
		return 0, false
	}
	links, kerr := kernelLinks()
	if kerr != nil {
		return fail(err.Error() + "; reading the kernel's interfaces: " + kerr.Error()), true
	}
	if err := bsd.FormatStatus(out, p, api.Status{Links: links}); err != nil {
		return fail(bsd.Text(err)), true
	}
	return 0, true
}
