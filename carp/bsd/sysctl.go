package bsd

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/bsdcarp/bsdcarp/carp/api"
)

// StatsOID is the opaque struct carpstats node. Plain listings skip it (BSD
// sysctl prints opaque values only with -o / -x); -N and -d show it.
const StatsOID = "net.inet.carp.stats"

// sysctlNodes are the interior nodes above the carp knobs and their
// descriptions (sysctl -d on a node prints the node's own line first).
var sysctlNodes = []struct{ name, descr string }{
	{"net", "Network, (see socket.h)"},
	{"net.inet", "Internet Family"},
	{"net.inet.carp", "CARP"},
}

// SysctlOpts are the output options of sysctl(8).
type SysctlOpts struct {
	All           bool // -a
	ValuesOnly    bool // -n
	NamesOnly     bool // -N
	Equals        bool // -e: "name=value"
	Descr         bool // -d
	Quiet         bool // -q: no "unknown oid" message (still a failure)
	IgnoreUnknown bool // -i: unknown oids are silently ignored
	Opaque        bool // -o: dump opaque values (the first 16 bytes)
	Hex           bool // -x: integers in hex, opaque values dumped whole
}

// SysctlArg is one name[=value] argument. Line is the line number in the
// -f file File (0 for the command line); errors then end in " at line N of
// FILE": FreeBSD says " at line N", and bsdcarp names the file too, so that
// an admin with several sysctl.conf files knows where to look.
type SysctlArg struct {
	Text string
	Line int
	File string
}

// where is the suffix of a message about this argument.
func (a SysctlArg) where() string {
	switch {
	case a.Line > 0 && a.File != "":
		return fmt.Sprintf(" at line %d of %s", a.Line, a.File)
	case a.Line > 0:
		return fmt.Sprintf(" at line %d", a.Line)
	}
	return ""
}

// SysctlCmd is a parsed sysctl command line.
type SysctlCmd struct {
	Opts SysctlOpts
	// File is the -f argument. The command reads it with ParseSysctlFile
	// and puts its arguments before Args (BSD processes the file first).
	// An unreadable file is "sysctl: FILE: <strerror>" with exit status 66
	// (EX_NOINPUT).
	File string
	Args []SysctlArg
}

const sysctlUsage = "usage: sysctl [-bdehiNnoqTtWx] [ -B <bufsize> ] [-f filename] name[=value] ...\n" +
	"       sysctl [-bdehNnoqTtWx] [ -B <bufsize> ] -a\n"

func sysctlUsageErr(prefix string) error { return &UsageError{Text: prefix + sysctlUsage} }

// ParseSysctl parses the words after the program name (getopt string
// "AabB:def:hiNnoqtTwWxX"). Errors are *UsageError (print verbatim, exit 1)
// or a refusal (*CommandError: print "sysctl: " + Text(err), exit 1).
func ParseSysctl(args []string) (SysctlCmd, error) {
	var cmd SysctlCmd
	o := &cmd.Opts
	rest, err := getopt(args, "f", func(c byte, arg string) error {
		switch c {
		case 'A':
			o.All, o.Opaque = true, true
		case 'a':
			o.All = true
		case 'd':
			o.Descr = true
		case 'e':
			o.Equals = true
		case 'h':
			// Thousands separators follow LC_NUMERIC, which is "C"
			// for scripts: no visible effect.
		case 'i':
			o.IgnoreUnknown = true
		case 'N':
			o.NamesOnly = true
		case 'n':
			o.ValuesOnly = true
		case 'o':
			o.Opaque = true
		case 'q':
			o.Quiet = true
		case 'w':
			// compatibility, ignored
		case 'X':
			o.All, o.Hex = true, true
		case 'x':
			o.Hex = true
		case 'f':
			cmd.File = arg
		case 'b', 'B', 't', 'T', 'W':
			return cliErr(fmt.Sprintf("-%c is not supported by bsdcarp", c))
		default:
			return sysctlUsageErr(fmt.Sprintf("sysctl: illegal option -- %c\n", c))
		}
		return nil
	}, func(c byte) error {
		return sysctlUsageErr(fmt.Sprintf("sysctl: option requires an argument -- %c\n", c))
	})
	if err != nil {
		return SysctlCmd{}, err
	}
	if o.NamesOnly && o.ValuesOnly {
		return SysctlCmd{}, sysctlUsageErr("")
	}
	if o.All && len(rest) == 0 {
		cmd.File = "" // BSD lists everything and never opens the file
		return cmd, nil
	}
	if len(rest) == 0 && cmd.File == "" {
		return SysctlCmd{}, sysctlUsageErr("")
	}
	for _, r := range rest {
		cmd.Args = append(cmd.Args, SysctlArg{Text: r})
	}
	return cmd, nil
}

// ParseSysctlFile reads a sysctl.conf(5) file the way sysctl -f does: the
// first unquoted, unescaped '#' starts a comment, surrounding white space is
// trimmed, blank lines are skipped, every other line is an argument carrying
// its line number. BSD reports problems in a line while processing it
// ("sysctl: unknown oid 'x' at line 3"), so the only errors here are read
// errors, as "FILE: <error>" (print after "sysctl: ").
func ParseSysctlFile(r io.Reader, filename string) ([]SysctlArg, []error) {
	var out []SysctlArg
	var errs []error
	br := bufio.NewReader(r)
	lineno := 0
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			lineno++
			if s := confLine(line); s != "" {
				out = append(out, SysctlArg{Text: s, Line: lineno, File: filename})
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			errs = append(errs, cliErr(fmt.Sprintf("%s: %v", filename, err)))
			break
		}
	}
	return out, errs
}

// confLine is the per-line processing of sysctl.c parsefile().
func confLine(line string) string {
	pq := strings.IndexByte(line, '\'')
	pdq := strings.IndexByte(line, '"')
	p := 0
	for {
		k := strings.IndexByte(line[p:], '#')
		if k < 0 {
			break
		}
		k += p
		if pq >= 0 && k > pq {
			if e := strings.IndexByte(line[pq+1:], '\''); e >= 0 {
				line = line[:pq+1+e+1]
			}
			break
		} else if pdq >= 0 && k > pdq {
			if e := strings.IndexByte(line[pdq+1:], '"'); e >= 0 {
				line = line[:pdq+1+e+1]
			}
			break
		} else if k == 0 || line[k-1] != '\\' {
			line = line[:k]
			break
		}
		p = k + 1
	}
	return strings.TrimFunc(line, func(r rune) bool { return r < 0x80 && isSpace(byte(r)) })
}

// SysctlSet is one value the engine is asked to write.
type SysctlSet struct {
	Name  string
	Value int64
}

// SysctlOutcome is the engine's answer to one SysctlSet: the value before
// and after the write, or the errno text it refused with ("Invalid
// argument").
type SysctlOutcome struct {
	Old, New int64
	Err      error
}

// SysctlResult is the planned output of one sysctl command.
//
// Stdout, Stderr and Exit are final when Sets is empty. Otherwise they
// assume every set succeeds with Old = the current value and New = the
// requested value; call Complete with the engine's outcomes to get the real
// text (the output of a set sits between the outputs of its neighbours).
type SysctlResult struct {
	Stdout, Stderr string
	Exit           int
	Sets           []SysctlSet

	items []sysctlItem
}

type sysctlItem struct {
	stdout, stderr string
	fail           int
	set            int // index into Sets, or -1
	value          int64
	name, arg      string
	line           string // where, for -f lines
	opts           SysctlOpts
}

// EvalSysctl evaluates a parsed command against the engine's knobs, listed
// in the order the engine gives them (FreeBSD's listing order), and the
// carpstats counters (Status.Stats) that -o / -x dump as the value of
// net.inet.carp.stats. Reads are answered at once; assignments are
// validated (unknown oid, non-leaf, read only, empty or invalid value,
// permission) and the valid ones returned in Sets for the engine to apply.
func EvalSysctl(cmd SysctlCmd, knobs []api.Knob, stats []api.Counter, isRoot bool) SysctlResult {
	var res SysctlResult
	o := cmd.Opts
	opaque := CarpstatsBytes(stats)
	if o.All && len(cmd.Args) == 0 {
		res.items = append(res.items, sysctlItem{set: -1, stdout: listNode("", knobs, opaque, o)})
	}
	for _, a := range cmd.Args {
		it := evalArg(a, knobs, opaque, isRoot, o)
		if it.set >= 0 {
			it.set = len(res.Sets)
			res.Sets = append(res.Sets, SysctlSet{Name: it.name, Value: it.value})
		}
		res.items = append(res.items, it)
	}
	// Provisional output: every set succeeds as requested.
	outs := make([]SysctlOutcome, len(res.Sets))
	for i, s := range res.Sets {
		k, _ := FindKnob(knobs, s.Name)
		outs[i] = SysctlOutcome{Old: k.Value, New: s.Value}
	}
	res.Stdout, res.Stderr, res.Exit = res.Complete(outs)
	return res
}

// Complete renders the output once the engine has applied r.Sets;
// outcomes[i] answers r.Sets[i]. A missing outcome counts as success with
// the requested value.
func (r SysctlResult) Complete(outcomes []SysctlOutcome) (stdout, stderr string, exit int) {
	var so, se strings.Builder
	for _, it := range r.items {
		if it.set < 0 {
			so.WriteString(it.stdout)
			se.WriteString(it.stderr)
			exit += it.fail
			continue
		}
		oc := SysctlOutcome{New: r.Sets[it.set].Value}
		if it.set < len(outcomes) {
			oc = outcomes[it.set]
		}
		if oc.Err != nil {
			o, e := FormatSetError(it.name, it.arg, it.line, oc.Old, Text(oc.Err), it.opts)
			so.WriteString(o)
			se.WriteString(e)
			exit++
			continue
		}
		so.WriteString(FormatSet(it.name, oc.Old, oc.New, it.opts))
	}
	return so.String(), se.String(), exit
}

func failItem(msg string) sysctlItem {
	return sysctlItem{set: -1, stderr: "sysctl: " + msg + "\n", fail: 1}
}

// evalArg is sysctl.c parse() for one argument.
func evalArg(a SysctlArg, knobs []api.Knob, opaque []byte, isRoot bool, o SysctlOpts) sysctlItem {
	line := a.where()
	name, value, hasValue := a.Text, "", false
	if k := strings.IndexAny(a.Text, "=:"); k >= 0 {
		name, value, hasValue = a.Text[:k], a.Text[k+1:], true
		value = strings.TrimLeft(value, " \t\n\v\f\r")
		if value != "" && (value[0] == '"' || value[0] == '\'') {
			if len(value) > 1 && value[len(value)-1] == value[0] {
				value = value[1 : len(value)-1]
			} else if len(value) == 1 {
				value = ""
			} else {
				value = value[1:]
			}
		}
	}
	name = strings.TrimRight(name, " \t\n\v\f\r")

	knob, isLeaf := FindKnob(knobs, name)
	isNode := !isLeaf && isNodeName(knobs, name)
	if !isLeaf && !isNode {
		if o.IgnoreUnknown {
			return sysctlItem{set: -1}
		}
		if o.Quiet {
			return sysctlItem{set: -1, fail: 1}
		}
		return failItem(fmt.Sprintf("unknown oid '%s'%s", name, line))
	}
	if !hasValue || o.Descr {
		if isNode {
			var s string
			if o.Descr {
				s = showVar(name, 0, nodeDescr(name), nil, o)
			}
			return sysctlItem{set: -1, stdout: s + listNode(name, knobs, opaque, o)}
		}
		return sysctlItem{set: -1, stdout: showVar(knob.Name, knob.Value, knob.Description, opaque, o)}
	}
	if isNode {
		return failItem(fmt.Sprintf("oid '%s' isn't a leaf node%s", name, line))
	}
	if knob.ReadOnly {
		return failItem(fmt.Sprintf("oid '%s' is read only%s", name, line))
	}
	if knob.Name == StatsOID {
		return failItem(fmt.Sprintf("oid '%s' is type 5, cannot set that%s", name, line))
	}
	if value == "" {
		return failItem("empty numeric value")
	}
	var vals []int64
	for _, tok := range strings.FieldsFunc(value, func(r rune) bool { return r == ' ' || r == ',' }) {
		v, ok := strtol(tok)
		if !ok {
			return failItem(fmt.Sprintf("invalid integer '%s'%s", tok, line))
		}
		vals = append(vals, v)
	}
	if len(vals) == 0 {
		// "name=," writes nothing; sysctl(3) succeeds and shows old -> old.
		return sysctlItem{set: -1, stdout: FormatSet(knob.Name, knob.Value, knob.Value, o)}
	}
	if !isRoot {
		out, errText := FormatSetError(knob.Name, a.Text, a.where(), knob.Value, "Operation not permitted", o)
		return sysctlItem{set: -1, stdout: out, stderr: errText, fail: 1}
	}
	// The kernel's SYSCTL_IN reads one int: further values are ignored.
	return sysctlItem{
		set:   0,
		name:  knob.Name,
		arg:   a.Text,
		line:  a.where(),
		opts:  o,
		value: vals[0],
	}
}

// strtol is strtol(3) with base 0 followed by sysctl's (int) cast: hex with
// 0x, octal with a leading 0, optional sign and leading white space; the
// whole token must be consumed and fit in a long.
func strtol(s string) (int64, bool) {
	t := strings.TrimLeft(s, " \t\n\v\f\r")
	neg := false
	if t != "" && (t[0] == '+' || t[0] == '-') {
		neg = t[0] == '-'
		t = t[1:]
	}
	base := 10
	switch {
	case len(t) > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X') && isHex(t[2]):
		base, t = 16, t[2:]
	case len(t) > 1 && t[0] == '0':
		base, t = 8, t[1:]
	}
	if t == "" {
		return 0, false
	}
	u, err := strconv.ParseUint(t, base, 64)
	if err != nil {
		return 0, false
	}
	if (!neg && u > 1<<63-1) || (neg && u > 1<<63) {
		return 0, false // ERANGE
	}
	v := int64(u)
	if neg {
		v = -v
	}
	return int64(int32(v)), true // (int)strtol(...): FreeBSD truncates
}

func isHex(c byte) bool {
	return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// FindKnob returns the knob with the full oid name.
func FindKnob(knobs []api.Knob, name string) (api.Knob, bool) {
	for _, k := range knobs {
		if k.Name == name {
			return k, true
		}
	}
	return api.Knob{}, false
}

func isNodeName(knobs []api.Knob, name string) bool {
	if name == "" {
		return false
	}
	for _, k := range knobs {
		if strings.HasPrefix(k.Name, name+".") {
			return true
		}
	}
	return false
}

func nodeDescr(name string) string {
	for _, n := range sysctlNodes {
		if n.name == name {
			return n.descr
		}
	}
	return ""
}

// listNode prints every leaf under prefix ("" = all), in knob order.
func listNode(prefix string, knobs []api.Knob, opaque []byte, o SysctlOpts) string {
	var b strings.Builder
	for _, k := range knobs {
		if prefix != "" && !strings.HasPrefix(k.Name, prefix+".") {
			continue
		}
		b.WriteString(showVar(k.Name, k.Value, k.Description, opaque, o))
	}
	return b.String()
}

// showVar is sysctl.c show_var() plus the newline parse() adds. The opaque
// stats node prints nothing unless -N, -d, -o or -x (opaque holds its
// value). With -x an integer prints as C's "%#0*jx" with the width of a hex
// int (10): "0x000000f0", and 0 as "0000000000" because C's '#' flag adds no
// "0x" to a zero (FreeBSD 14 sbin/sysctl/sysctl.c show_var).
func showVar(name string, value int64, descr string, opaque []byte, o SysctlOpts) string {
	if o.NamesOnly {
		return name + "\n"
	}
	sep := ": "
	if o.Equals {
		sep = "="
	}
	if o.Descr {
		if o.ValuesOnly {
			return descr + "\n"
		}
		return name + sep + descr + "\n"
	}
	var v string
	switch {
	case name == StatsOID:
		if !o.Opaque && !o.Hex {
			return ""
		}
		v = opaqueDump(opaque, o.Hex)
	case o.Hex:
		v = hexInt(value)
	default:
		v = strconv.FormatInt(value, 10)
	}
	if o.ValuesOnly {
		return v + "\n"
	}
	return name + sep + v + "\n"
}

// hexInt is printf("%#0*jx", 10, (u_int)v).
func hexInt(v int64) string {
	if uint32(v) == 0 {
		return "0000000000"
	}
	return fmt.Sprintf("0x%08x", uint32(v))
}

// CarpstatsBytes is the value of net.inet.carp.stats: struct carpstats in
// amd64 byte order (little-endian), 128 bytes: sixteen uint64_t counters in
// the order of api.CarpstatsNames. Counters are matched by name
// (api.Counter.Name, without the carps_ prefix); missing ones are 0 and
// unknown ones are ignored.
func CarpstatsBytes(stats []api.Counter) []byte {
	b := make([]byte, 8*len(api.CarpstatsNames))
	for _, c := range stats {
		for i, f := range api.CarpstatsNames {
			if c.Name == f {
				binary.LittleEndian.PutUint64(b[8*i:], c.Value)
			}
		}
	}
	return b
}

// opaqueDump is the tail of FreeBSD's sysctl.c show_var() for an opaque
// node without a formatter (both FreeBSD 9 and 14):
//
//	printf("Format:%s Length:%zu Dump:0x", fmt, len);
//	while (len-- && (xflag || p < val + 16))
//		printf("%02x", *p++);
//	if (!xflag && len > 16)
//		printf("...");
//
// The format string of net.inet.carp.stats is "I": ip_carp.c declares it
// with SYSCTL_VNET_PCPUSTAT (sys/net/vnet.h), whose SYSCTL_PROC passes
// CTLTYPE_OPAQUE with format "I". So -o prints the first 16 bytes and
// "...", -x all 128 bytes.
func opaqueDump(val []byte, hex bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Format:I Length:%d Dump:0x", len(val))
	n := len(val)
	if !hex && n > 16 {
		n = 16
	}
	for _, c := range val[:n] {
		fmt.Fprintf(&b, "%02x", c)
	}
	// C's len after the loop: len(val)-17 when it stopped at byte 16, or
	// SIZE_MAX (the size_t wrapped) when it ran out of bytes.
	if !hex && (len(val) <= 16 || len(val)-17 > 16) {
		b.WriteString("...")
	}
	return b.String()
}

// FormatSet is the stdout line of a successful write:
// "net.inet.carp.preempt: 0 -> 1" (-n: "0 -> 1", -e: "name=0 -> 1").
func FormatSet(name string, old, new int64, o SysctlOpts) string {
	o.Descr = false
	before := strings.TrimSuffix(showVar(name, old, "", nil, o), "\n")
	o.ValuesOnly = true
	after := showVar(name, new, "", nil, o)
	return before + " -> " + after
}

// FormatSetError is the output of a write the kernel refused: the current
// value on stdout, then "sysctl: ARG: ERRNO TEXT" on stderr, where ARG is
// the argument as typed and where, for -f lines, " at line N of FILE".
func FormatSetError(name, arg, where string, cur int64, errText string, o SysctlOpts) (stdout, stderr string) {
	o.Descr = false
	return showVar(name, cur, "", nil, o), fmt.Sprintf("sysctl: %s%s: %s\n", arg, where, errText)
}
