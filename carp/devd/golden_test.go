package devd

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// dump renders everything a Config holds, one fact per line.
func dump(c *Config) string {
	var b strings.Builder
	for _, f := range c.Files {
		fmt.Fprintf(&b, "file %s\n", f)
	}
	for _, d := range c.Directories {
		fmt.Fprintf(&b, "directory %q\n", d)
	}
	fmt.Fprintf(&b, "pid-file %q\n", c.PidFile)
	for _, k := range sortedKeys(c.Vars) {
		fmt.Fprintf(&b, "set %s %q\n", k, c.Vars[k])
	}
	for _, st := range c.Statements {
		fmt.Fprintf(&b, "%s %d %s:%d\n", st.Kind, st.Priority, st.File, st.Line)
		for _, cl := range st.Clauses {
			switch cl.Kind {
			case MatchClause:
				fmt.Fprintf(&b, "\tmatch %q %q line %d pattern %q invert %v\n", cl.Var, cl.Value, cl.Line, cl.Pattern, cl.Invert)
			case MediaClause:
				fmt.Fprintf(&b, "\tmedia-type %q line %d\n", cl.Value, cl.Line)
			case ActionClause:
				fmt.Fprintf(&b, "\taction %q line %d\n", cl.Value, cl.Line)
			}
		}
	}
	for _, w := range c.Warnings {
		fmt.Fprintf(&b, "warning %s\n", w)
	}
	return b.String()
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}

var goldenEvents = []string{
	"!system=CARP subsystem=1@em0 type=MASTER",
	"!system=CARP subsystem=1@em0 type=BACKUP",
	"!system=CARP subsystem=2@em0 type=MASTER",
	"!system=CARP subsystem=2@em0 type=BACKUP",
	"!system=CARP subsystem=2@em0 type=INIT",
	"!system=CARP subsystem=2@vlan0 type=master",
	"!system=IFNET subsystem=em0 type=LINK_UP",
	"!system=IFNET subsystem=wlan0 type=LINK_UP",
	"!system=IFNET subsystem=em0 type=LINK_DOWN",
	"!system=IFNET subsystem=carp0 type=LINK_DOWN",
	"!system=IFNET subsystem=lo0 type=LINK_DOWN",
	"!system=DEVFS subsystem=CDEV type=CREATE cdev=da0",
}

// testMedia says em* is Ethernet, wlan* 802.11, others have no media.
func testMedia(ifname string) (string, bool) {
	switch {
	case strings.HasPrefix(ifname, "em"):
		return "Ethernet", true
	case strings.HasPrefix(ifname, "wlan"):
		return "802.11", true
	}
	return "", false
}

func matchReport(c *Config) string {
	var b strings.Builder
	for _, line := range goldenEvents {
		fmt.Fprintf(&b, "event %s\n", line)
		acts := c.Match(NotifyEvent(line))
		if len(acts) == 0 {
			b.WriteString("\t(no action)\n")
		}
		for _, a := range acts {
			fmt.Fprintf(&b, "\t%s:%d prio %d: %s\n", a.File, a.Line, a.Priority, a.Command)
		}
	}
	return b.String()
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden: %v (run go test -run Golden -update)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file.\n--- got\n%s--- want\n%s", name, got, want)
	}
}

// TestGoldenLoad loads testdata/devd.conf with its directories and pins the
// whole parse result and the actions chosen for a set of events.
func TestGoldenLoad(t *testing.T) {
	c, err := Load("testdata/devd.conf")
	if err != nil {
		t.Fatal(err)
	}
	c.Media = testMedia
	checkGolden(t, "load.golden", dump(c)+matchReport(c))
}

// TestGoldenParseMain parses only the main file (no directories), so the
// handbook rule is not hidden by the catch-all of local.d.
func TestGoldenParseMain(t *testing.T) {
	data, err := os.ReadFile("testdata/devd.conf")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse("devd.conf", data)
	if err != nil {
		t.Fatal(err)
	}
	c.Media = testMedia
	checkGolden(t, "parse.golden", dump(c)+matchReport(c))
}
