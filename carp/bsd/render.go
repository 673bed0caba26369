package bsd

import (
	"strings"

	"github.com/bsdcarp/bsdcarp/carp/api"
)

// The status commands carpd renders for a client (Render), by the name the
// client sends (control.Request.Text).
const (
	TextIfconfig = "ifconfig" // ifconfig-carp's displays: IF, -a, -l, -g GROUP (with -k)
	TextSysctl   = "sysctl"   // carpctl-sysctl's reads of net.inet.carp
	TextNetstat  = "netstat"  // carpctl-sysctl --stats (no words)
)

// Rendered is what a status command prints: Stdout, then Stderr, exit
// status Exit; or, when Err is set, Stdout, then "prog: " + Text(Err) on
// stderr, exit status 1.
type Rendered struct {
	Stdout, Stderr string
	Exit           int
	Err            error
}

// Render is the text the status command cmd prints for its BSD words args
// from st, the status the command asks carpd for, exactly as the command
// prints it from that status itself; root says whether the caller is root
// (no key is printed for anyone else). ok is false for a line that is not
// a status display (a change, sysctl -f, a sysctl write, a line that does
// not parse): the command handles those itself.
func Render(cmd string, args []string, root bool, st api.Status) (r Rendered, ok bool) {
	var b strings.Builder
	switch cmd {
	case TextIfconfig:
		p, err := ParseIfconfig(args)
		if err != nil || p.Request != nil || len(p.Warnings) > 0 {
			return Rendered{}, false
		}
		p.ShowKeys = p.ShowKeys && root
		if err := FormatStatus(&b, p, st); err != nil {
			return Rendered{Stdout: b.String(), Exit: 1, Err: err}, true
		}
		return Rendered{Stdout: b.String()}, true
	case TextSysctl:
		c, err := ParseSysctl(args)
		if err != nil || c.File != "" {
			return Rendered{}, false
		}
		res := EvalSysctl(c, st.Knobs, st.Stats, root)
		if len(res.Sets) > 0 {
			return Rendered{}, false
		}
		return Rendered{Stdout: res.Stdout, Stderr: res.Stderr, Exit: res.Exit}, true
	case TextNetstat:
		if len(args) > 0 || FormatNetstat(&b, st.Stats) != nil {
			return Rendered{}, false
		}
		return Rendered{Stdout: b.String()}, true
	}
	return Rendered{}, false
}
