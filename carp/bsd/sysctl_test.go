package bsd

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/bsdcarp/bsdcarp/carp/api"
)

// testKnobs is the tree in FreeBSD 14's listing order (freebsd-cli.md
// section 2), with the opaque stats node first and one read-only knob.
func testKnobs() []api.Knob {
	return []api.Knob{
		{Name: "net.inet.carp.stats", Description: "CARP statistics (struct carpstats, netinet/ip_carp.h)"},
		{Name: "net.inet.carp.ifdown_demotion_factor", Value: 240, Description: "Interface down demotion factor adjustment"},
		{Name: "net.inet.carp.senderr_demotion_factor", Value: 240, Description: "Send error demotion factor adjustment"},
		{Name: "net.inet.carp.demotion", Value: 0, Description: "Adjust demotion factor (skew of advskew)"},
		{Name: "net.inet.carp.log", Value: 1, Description: "CARP log level"},
		{Name: "net.inet.carp.preempt", Value: 0, Description: "High-priority backup preemption mode"},
		{Name: "net.inet.carp.dscp", Value: 56, Description: "DSCP value for carp packets"},
		{Name: "net.inet.carp.allow", Value: 1, Description: "Accept incoming CARP packets"},
	}
}

func roKnobs() []api.Knob {
	return append(testKnobs(), api.Knob{Name: "net.inet.carp.suppress_preempt", Description: "Preemption is suppressed", ReadOnly: true})
}

func TestParseSysctl(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want SysctlCmd
	}{
		{"one name", []string{"net.inet.carp.preempt"},
			SysctlCmd{Args: []SysctlArg{{Text: "net.inet.carp.preempt"}}}},
		{"-w is ignored", []string{"-w", "net.inet.carp.preempt=1"},
			SysctlCmd{Args: []SysctlArg{{Text: "net.inet.carp.preempt=1"}}}},
		{"-a alone", []string{"-a"}, SysctlCmd{Opts: SysctlOpts{All: true}}},
		{"-a with names keeps names", []string{"-a", "net.inet.carp"},
			SysctlCmd{Opts: SysctlOpts{All: true}, Args: []SysctlArg{{Text: "net.inet.carp"}}}},
		{"combined flags", []string{"-nqi", "x"},
			SysctlCmd{Opts: SysctlOpts{ValuesOnly: true, Quiet: true, IgnoreUnknown: true}, Args: []SysctlArg{{Text: "x"}}}},
		{"-N -e -d -o -x", []string{"-N", "-e", "-d", "-o", "-x", "net"},
			SysctlCmd{Opts: SysctlOpts{NamesOnly: true, Equals: true, Descr: true, Opaque: true, Hex: true}, Args: []SysctlArg{{Text: "net"}}}},
		{"-f FILE", []string{"-f", "/etc/sysctl.conf"}, SysctlCmd{File: "/etc/sysctl.conf"}},
		{"-fFILE", []string{"-f/etc/sysctl.conf"}, SysctlCmd{File: "/etc/sysctl.conf"}},
		{"-f then names", []string{"-f", "f.conf", "net.inet.carp.log"},
			SysctlCmd{File: "f.conf", Args: []SysctlArg{{Text: "net.inet.carp.log"}}}},
		{"-a ignores -f without names", []string{"-a", "-f", "f.conf"}, SysctlCmd{Opts: SysctlOpts{All: true}}},
		{"-- ends options", []string{"--", "-x"}, SysctlCmd{Args: []SysctlArg{{Text: "-x"}}}},
		{"options stop at first name", []string{"net.inet.carp", "-n"},
			SysctlCmd{Args: []SysctlArg{{Text: "net.inet.carp"}, {Text: "-n"}}}},
		{"-A is -a -o", []string{"-A"}, SysctlCmd{Opts: SysctlOpts{All: true, Opaque: true}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseSysctl(tc.args)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseSysctlErrors(t *testing.T) {
	usage := "usage: sysctl [-bdehiNnoqTtWx] [ -B <bufsize> ] [-f filename] name[=value] ...\n" +
		"       sysctl [-bdehNnoqTtWx] [ -B <bufsize> ] -a\n"
	tests := []struct {
		name string
		args []string
		text string // full stderr for UsageError; "sysctl: "+Text(err) for a refusal
	}{
		{"no arguments", nil, usage},
		{"-n with -N", []string{"-n", "-N", "net"}, usage},
		{"illegal option", []string{"-z", "net"}, "sysctl: illegal option -- z\n" + usage},
		{"-f without file", []string{"-f"}, "sysctl: option requires an argument -- f\n" + usage},
		{"unsupported -b", []string{"-b", "net"}, "sysctl: -b is not supported by bsdcarp"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSysctl(tc.args)
			var ue *UsageError
			switch {
			case errors.As(err, &ue):
				if ue.Text != tc.text {
					t.Errorf("got %q want %q", ue.Text, tc.text)
				}
			case printable(err):
				if "sysctl: "+Text(err) != tc.text {
					t.Errorf("got %q want %q", "sysctl: "+Text(err), tc.text)
				}
			default:
				t.Fatalf("err = %T %v", err, err)
			}
		})
	}
}

func evalLine(t *testing.T, line string, knobs []api.Knob, root bool) SysctlResult {
	t.Helper()
	cmd, err := ParseSysctl(strings.Fields(line))
	if err != nil {
		t.Fatalf("ParseSysctl(%q): %v", line, err)
	}
	return EvalSysctl(cmd, knobs, nil, root)
}

func readGolden(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSysctlListings(t *testing.T) {
	carp := readGolden(t, "sysctl-net.inet.carp.txt")
	tests := []struct {
		name, line, stdout string
	}{
		{"subtree in knob order, stats skipped", "net.inet.carp", carp},
		{"prefix net.inet", "net.inet", carp},
		{"prefix net", "net", carp},
		{"-a lists everything", "-a", carp},
		{"one leaf", "net.inet.carp.preempt", "net.inet.carp.preempt: 0\n"},
		{"-n value", "-n net.inet.carp.dscp", "56\n"},
		{"-e", "-e net.inet.carp.allow", "net.inet.carp.allow=1\n"},
		{"-N names include stats", "-N net.inet.carp",
			"net.inet.carp.stats\nnet.inet.carp.ifdown_demotion_factor\nnet.inet.carp.senderr_demotion_factor\nnet.inet.carp.demotion\nnet.inet.carp.log\nnet.inet.carp.preempt\nnet.inet.carp.dscp\nnet.inet.carp.allow\n"},
		{"-d subtree starts with the node", "-d net.inet.carp", readGolden(t, "sysctl-d-net.inet.carp.txt")},
		{"-d leaf", "-d net.inet.carp.preempt", "net.inet.carp.preempt: High-priority backup preemption mode\n"},
		{"-dn leaf", "-dn net.inet.carp.log", "CARP log level\n"},
		{"-de leaf", "-de net.inet.carp.log", "net.inet.carp.log=CARP log level\n"},
		{"-d with value only describes", "-d net.inet.carp.preempt=1", "net.inet.carp.preempt: High-priority backup preemption mode\n"},
		{"stats leaf alone prints nothing", "net.inet.carp.stats", ""},
		{"several names in order", "net.inet.carp.allow net.inet.carp.log", "net.inet.carp.allow: 1\nnet.inet.carp.log: 1\n"},
		{"-i ignores unknown", "-i net.inet.carp.foo net.inet.carp.log", "net.inet.carp.log: 1\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := evalLine(t, tc.line, testKnobs(), false)
			if r.Stdout != tc.stdout || r.Stderr != "" || r.Exit != 0 || len(r.Sets) != 0 {
				t.Errorf("got stdout %q stderr %q exit %d sets %v\nwant stdout %q", r.Stdout, r.Stderr, r.Exit, r.Sets, tc.stdout)
			}
		})
	}
}

func TestSysctlSets(t *testing.T) {
	tests := []struct {
		name, line string
		sets       []SysctlSet
		stdout     string
	}{
		{"set prints old -> new", "net.inet.carp.preempt=1",
			[]SysctlSet{{"net.inet.carp.preempt", 1}}, "net.inet.carp.preempt: 0 -> 1\n"},
		{"-w accepted", "-w net.inet.carp.allow=1",
			[]SysctlSet{{"net.inet.carp.allow", 1}}, "net.inet.carp.allow: 1 -> 1\n"},
		{"-n", "-n net.inet.carp.preempt=1", []SysctlSet{{"net.inet.carp.preempt", 1}}, "0 -> 1\n"},
		{"-e", "-e net.inet.carp.preempt=1", []SysctlSet{{"net.inet.carp.preempt", 1}}, "net.inet.carp.preempt=0 -> 1\n"},
		{"colon separator", "net.inet.carp.log:2", []SysctlSet{{"net.inet.carp.log", 2}}, "net.inet.carp.log: 1 -> 2\n"},
		{"double quotes stripped", `net.inet.carp.log="2"`, []SysctlSet{{"net.inet.carp.log", 2}}, "net.inet.carp.log: 1 -> 2\n"},
		{"single quotes stripped", `net.inet.carp.log='0'`, []SysctlSet{{"net.inet.carp.log", 0}}, "net.inet.carp.log: 1 -> 0\n"},
		{"hex value", "net.inet.carp.dscp=0x10", []SysctlSet{{"net.inet.carp.dscp", 16}}, "net.inet.carp.dscp: 56 -> 16\n"},
		{"octal value", "net.inet.carp.dscp=010", []SysctlSet{{"net.inet.carp.dscp", 8}}, "net.inet.carp.dscp: 56 -> 8\n"},
		{"negative demotion", "net.inet.carp.demotion=-240", []SysctlSet{{"net.inet.carp.demotion", -240}}, "net.inet.carp.demotion: 0 -> -240\n"},
		{"first of several values", "net.inet.carp.log=2,3", []SysctlSet{{"net.inet.carp.log", 2}}, "net.inet.carp.log: 1 -> 2\n"},
		{"value wider than int is truncated", "net.inet.carp.log=4294967298", []SysctlSet{{"net.inet.carp.log", 2}}, "net.inet.carp.log: 1 -> 2\n"},
		{"read then set then read", "net.inet.carp.allow net.inet.carp.preempt=1 net.inet.carp.log",
			[]SysctlSet{{"net.inet.carp.preempt", 1}},
			"net.inet.carp.allow: 1\nnet.inet.carp.preempt: 0 -> 1\nnet.inet.carp.log: 1\n"},
		{"-N set", "-N net.inet.carp.preempt=1", []SysctlSet{{"net.inet.carp.preempt", 1}}, "net.inet.carp.preempt -> net.inet.carp.preempt\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := evalLine(t, tc.line, testKnobs(), true)
			if !reflect.DeepEqual(r.Sets, tc.sets) {
				t.Errorf("sets %v want %v", r.Sets, tc.sets)
			}
			if r.Stdout != tc.stdout || r.Stderr != "" || r.Exit != 0 {
				t.Errorf("got stdout %q stderr %q exit %d\nwant %q", r.Stdout, r.Stderr, r.Exit, tc.stdout)
			}
		})
	}
}

func TestSysctlErrors(t *testing.T) {
	tests := []struct {
		name, line     string
		root           bool
		stdout, stderr string
		exit           int
	}{
		{"unknown oid", "net.inet.carp.foo", true, "", "sysctl: unknown oid 'net.inet.carp.foo'\n", 1},
		{"unknown oid on set", "net.inet.carp.foo=1", true, "", "sysctl: unknown oid 'net.inet.carp.foo'\n", 1},
		{"partial component is unknown", "net.in", true, "", "sysctl: unknown oid 'net.in'\n", 1},
		{"-q silences but fails", "-q net.inet.carp.foo", true, "", "", 1},
		{"-i ignores", "-i net.inet.carp.foo=1", true, "", "", 0},
		{"not a leaf", "net.inet.carp=1", true, "", "sysctl: oid 'net.inet.carp' isn't a leaf node\n", 1},
		{"read only", "net.inet.carp.suppress_preempt=1", true, "", "sysctl: oid 'net.inet.carp.suppress_preempt' is read only\n", 1},
		{"read only before permission", "net.inet.carp.suppress_preempt=1", false, "", "sysctl: oid 'net.inet.carp.suppress_preempt' is read only\n", 1},
		{"empty numeric value", "net.inet.carp.preempt=", true, "", "sysctl: empty numeric value\n", 1},
		{"empty after quotes", `net.inet.carp.preempt=""`, true, "", "sysctl: empty numeric value\n", 1},
		{"invalid integer", "net.inet.carp.preempt=abc", true, "", "sysctl: invalid integer 'abc'\n", 1},
		{"invalid integer trailing junk", "net.inet.carp.preempt=1x", true, "", "sysctl: invalid integer '1x'\n", 1},
		{"non-root write", "net.inet.carp.preempt=1", false,
			"net.inet.carp.preempt: 0\n", "sysctl: net.inet.carp.preempt=1: Operation not permitted\n", 1},
		{"non-root write -n", "-n net.inet.carp.preempt=1", false,
			"0\n", "sysctl: net.inet.carp.preempt=1: Operation not permitted\n", 1},
		{"non-root may read", "net.inet.carp.preempt", false, "net.inet.carp.preempt: 0\n", "", 0},
		{"stats cannot be set", "net.inet.carp.stats=0", true, "", "sysctl: oid 'net.inet.carp.stats' is type 5, cannot set that\n", 1},
		{"exit counts failed arguments", "net.inet.carp.a net.inet.carp.log net.inet.carp.b=1 net=1", true,
			"net.inet.carp.log: 1\n",
			"sysctl: unknown oid 'net.inet.carp.a'\nsysctl: unknown oid 'net.inet.carp.b'\nsysctl: oid 'net' isn't a leaf node\n", 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := evalLine(t, tc.line, roKnobs(), tc.root)
			if r.Stdout != tc.stdout || r.Stderr != tc.stderr || r.Exit != tc.exit || len(r.Sets) != 0 {
				t.Errorf("got stdout %q stderr %q exit %d sets %v\nwant stdout %q stderr %q exit %d",
					r.Stdout, r.Stderr, r.Exit, r.Sets, tc.stdout, tc.stderr, tc.exit)
			}
		})
	}
}

func TestSysctlComplete(t *testing.T) {
	r := evalLine(t, "net.inet.carp.preempt=1 net.inet.carp.dscp=64 net.inet.carp.demotion=50 net.inet.carp.log", testKnobs(), true)
	want := []SysctlSet{{"net.inet.carp.preempt", 1}, {"net.inet.carp.dscp", 64}, {"net.inet.carp.demotion", 50}}
	if !reflect.DeepEqual(r.Sets, want) {
		t.Fatalf("sets %v", r.Sets)
	}
	stdout, stderr, exit := r.Complete([]SysctlOutcome{
		{Old: 0, New: 1},
		{Old: 56, Err: api.Refused(api.StepSysctl, syscall.EINVAL)},
		{Old: 240, New: 290}, // demotion adds
	})
	wantOut := "net.inet.carp.preempt: 0 -> 1\nnet.inet.carp.dscp: 56\nnet.inet.carp.demotion: 240 -> 290\nnet.inet.carp.log: 1\n"
	wantErr := "sysctl: net.inet.carp.dscp=64: Invalid argument\n"
	if stdout != wantOut || stderr != wantErr || exit != 1 {
		t.Errorf("got %q %q %d", stdout, stderr, exit)
	}
}

func TestFormatSetAndError(t *testing.T) {
	if got := FormatSet("net.inet.carp.preempt", 0, 1, SysctlOpts{}); got != "net.inet.carp.preempt: 0 -> 1\n" {
		t.Errorf("FormatSet %q", got)
	}
	if got := FormatSet("net.inet.carp.preempt", 0, 1, SysctlOpts{ValuesOnly: true}); got != "0 -> 1\n" {
		t.Errorf("FormatSet -n %q", got)
	}
	o, e := FormatSetError("net.inet.carp.dscp", "net.inet.carp.dscp=64", "", 56, "Invalid argument", SysctlOpts{})
	if o != "net.inet.carp.dscp: 56\n" || e != "sysctl: net.inet.carp.dscp=64: Invalid argument\n" {
		t.Errorf("FormatSetError %q %q", o, e)
	}
	where := SysctlArg{Line: 4, File: "/etc/sysctl.conf"}.where()
	o, e = FormatSetError("net.inet.carp.dscp", "net.inet.carp.dscp=64", where, 56, "Invalid argument", SysctlOpts{ValuesOnly: true})
	if o != "56\n" || e != "sysctl: net.inet.carp.dscp=64 at line 4 of /etc/sysctl.conf: Invalid argument\n" {
		t.Errorf("FormatSetError -f %q %q", o, e)
	}
}

func TestParseSysctlFile(t *testing.T) {
	conf := "# /etc/sysctl.conf\n" +
		"\n" +
		"net.inet.carp.preempt=1\n" +
		"   net.inet.carp.log=2   # chatty\n" +
		"net.inet.carp.foo=1\n" +
		"net.inet.carp.dscp=\"40\" # quoted\n" +
		"\t\n" +
		"net.inet.carp.allow\n" +
		"net.inet.carp.demotion=abc"
	args, errs := ParseSysctlFile(strings.NewReader(conf), "/etc/sysctl.conf")
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	want := []SysctlArg{
		{"net.inet.carp.preempt=1", 3, "/etc/sysctl.conf"},
		{"net.inet.carp.log=2", 4, "/etc/sysctl.conf"},
		{"net.inet.carp.foo=1", 5, "/etc/sysctl.conf"},
		{`net.inet.carp.dscp="40"`, 6, "/etc/sysctl.conf"},
		{"net.inet.carp.allow", 8, "/etc/sysctl.conf"},
		{"net.inet.carp.demotion=abc", 9, "/etc/sysctl.conf"},
	}
	if !reflect.DeepEqual(args, want) {
		t.Fatalf("args %+v", args)
	}
	cmd, err := ParseSysctl([]string{"-f", "/etc/sysctl.conf"})
	if err != nil {
		t.Fatal(err)
	}
	cmd.Args = append(args, cmd.Args...)
	r := EvalSysctl(cmd, testKnobs(), nil, true)
	wantOut := "net.inet.carp.preempt: 0 -> 1\nnet.inet.carp.log: 1 -> 2\nnet.inet.carp.dscp: 56 -> 40\nnet.inet.carp.allow: 1\n"
	wantErr := "sysctl: unknown oid 'net.inet.carp.foo' at line 5 of /etc/sysctl.conf\nsysctl: invalid integer 'abc' at line 9 of /etc/sysctl.conf\n"
	if r.Stdout != wantOut || r.Stderr != wantErr || r.Exit != 2 {
		t.Errorf("got %q\n%q\n%d", r.Stdout, r.Stderr, r.Exit)
	}
	_, stderr, _ := r.Complete([]SysctlOutcome{{Old: 0, New: 1}, {Old: 1, New: 2}, {Old: 56, Err: errors.New("Invalid argument")}})
	if !strings.Contains(stderr, "sysctl: net.inet.carp.dscp=\"40\" at line 6 of /etc/sysctl.conf: Invalid argument\n") {
		t.Errorf("stderr %q", stderr)
	}
}

func TestConfLineComments(t *testing.T) {
	tests := map[string]string{
		"a=1 # c\n":        "a=1",
		"# only\n":         "",
		`a=1\#2`:           `a=1\#2`,
		`a="x#y" # c`:      `a="x#y"`,
		`a='x#y' # c`:      `a='x#y'`,
		"  a=1  \r\n":      "a=1",
		"a=1#c":            "a=1",
		"#":                "",
		"\\#a=1 #comment ": "\\#a=1",
	}
	for in, want := range tests {
		if got := confLine(in); got != want {
			t.Errorf("confLine(%q) = %q want %q", in, got, want)
		}
	}
}

func TestStrtol(t *testing.T) {
	tests := []struct {
		in string
		v  int64
		ok bool
	}{
		{"1", 1, true}, {"-1", -1, true}, {"+7", 7, true}, {"0x3f", 63, true}, {"0X3F", 63, true},
		{"010", 8, true}, {"0", 0, true}, {"-0x10", -16, true},
		{"08", 0, false}, {"0x", 0, false}, {"abc", 0, false}, {"1.5", 0, false}, {"", 0, false},
		{"99999999999999999999", 0, false}, {"2147483648", -2147483648, true},
	}
	for _, tc := range tests {
		v, ok := strtol(tc.in)
		if v != tc.v || ok != tc.ok {
			t.Errorf("strtol(%q) = %d,%v want %d,%v", tc.in, v, ok, tc.v, tc.ok)
		}
	}
}

func testStats() []api.Counter {
	return []api.Counter{
		{Name: "ipackets", Value: 5}, {Name: "ipackets6", Value: 256}, {Name: "badauth", Value: 0x1122334455667788},
		{Name: "opackets", Value: 1000}, {Name: "preempt", Value: 1}, {Name: "nosuchcounter", Value: 9},
	}
}

func evalStats(t *testing.T, line string, root bool) SysctlResult {
	t.Helper()
	cmd, err := ParseSysctl(strings.Fields(line))
	if err != nil {
		t.Fatalf("ParseSysctl(%q): %v", line, err)
	}
	return EvalSysctl(cmd, roKnobs(), testStats(), root)
}

// The opaque struct carpstats: skipped without -o / -x, dumped with them.
func TestSysctlOpaqueStats(t *testing.T) {
	dumpO := readGolden(t, "sysctl-o-stats.txt")
	dumpX := readGolden(t, "sysctl-x-stats.txt")
	valueO := strings.TrimPrefix(dumpO, "net.inet.carp.stats: ")
	tests := []struct {
		name, line, stdout string
	}{
		{"plain read prints nothing", "net.inet.carp.stats", ""},
		{"-o: 16 bytes then ...", "-o net.inet.carp.stats", dumpO},
		{"-x: the whole value", "-x net.inet.carp.stats", dumpX},
		{"-o -x: -x wins", "-ox net.inet.carp.stats", dumpX},
		{"-n -o: value only", "-no net.inet.carp.stats", valueO},
		{"-e -o", "-eo net.inet.carp.stats", strings.Replace(dumpO, ": ", "=", 1)},
		{"-o listing includes stats in knob order", "-o net.inet.carp",
			dumpO + readGolden(t, "sysctl-net.inet.carp.txt") + "net.inet.carp.suppress_preempt: 0\n"},
		{"-N is unchanged by -o", "-N -o net.inet.carp.stats", "net.inet.carp.stats\n"},
		{"-d is unchanged by -o", "-d -o net.inet.carp.stats", "net.inet.carp.stats: CARP statistics (struct carpstats, netinet/ip_carp.h)\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := evalStats(t, tc.line, false)
			if r.Stdout != tc.stdout || r.Stderr != "" || r.Exit != 0 {
				t.Errorf("got stdout\n%s\nstderr %q exit %d; want\n%s", r.Stdout, r.Stderr, r.Exit, tc.stdout)
			}
		})
	}
}

func TestSysctlOpaqueStatsAll(t *testing.T) {
	r := evalStats(t, "-A", false)
	if !strings.HasPrefix(r.Stdout, readGolden(t, "sysctl-o-stats.txt")) {
		t.Errorf("-A:\n%s", r.Stdout)
	}
	r = evalStats(t, "-a", false)
	if strings.Contains(r.Stdout, "stats") {
		t.Errorf("-a shows stats:\n%s", r.Stdout)
	}
}

// FreeBSD 14 prints integers in hex with -x: "%#0*jx" with width 10, and C
// prints a zero without "0x".
func TestSysctlHexIntegers(t *testing.T) {
	tests := []struct {
		name, line, stdout string
		root               bool
	}{
		{"nonzero", "-x net.inet.carp.dscp", "net.inet.carp.dscp: 0x00000038\n", false},
		{"zero has no 0x", "-x net.inet.carp.preempt", "net.inet.carp.preempt: 0000000000\n", false},
		{"-n", "-xn net.inet.carp.ifdown_demotion_factor", "0x000000f0\n", false},
		{"set shows both values in hex", "-x net.inet.carp.preempt=1", "net.inet.carp.preempt: 0000000000 -> 0x00000001\n", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := evalStats(t, tc.line, tc.root)
			if r.Stdout != tc.stdout {
				t.Errorf("got %q want %q", r.Stdout, tc.stdout)
			}
		})
	}
	if got := hexInt(-1); got != "0xffffffff" {
		t.Errorf("hexInt(-1) = %q", got)
	}
}

func TestCarpstatsBytesLayout(t *testing.T) {
	b := CarpstatsBytes([]api.Counter{{Name: "ipackets", Value: 1}, {Name: "preempt", Value: 0x0102}})
	if len(b) != 128 {
		t.Fatalf("len %d", len(b))
	}
	if b[0] != 1 || b[120] != 2 || b[121] != 1 {
		t.Errorf("layout % x", b)
	}
	if got := opaqueDump(make([]byte, 4), false); got != "Format:I Length:4 Dump:0x00000000..." {
		t.Errorf("short dump %q (C's size_t wraps and prints ...)", got)
	}
}
