package devd

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

func mustParse(t *testing.T, src string) *Config {
	t.Helper()
	c, err := Parse("t.conf", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

func commands(acts []Action) []string {
	var out []string
	for _, a := range acts {
		out = append(out, a.Command)
	}
	return out
}

// TestSyntaxErrors pins the exact message of each error case.
func TestSyntaxErrors(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"unterminated string", "notify 0 {\n\tmatch \"system\" \"CARP;\n};\n",
			`devd: t.conf:2: unterminated string`},
		{"missing semicolon after clause", "notify 0 {\n\tmatch \"system\" \"CARP\"\n\taction \"x\";\n};\n",
			`devd: t.conf:3: syntax error near "action"`},
		{"missing semicolon after block", "notify 0 {\n\taction \"x\";\n}\nnotify 1 { action \"y\"; };\n",
			`devd: t.conf:4: syntax error near "notify"`},
		{"unbalanced close", "notify 0 {\n\taction \"x\";\n};\n};\n",
			`devd: t.conf:4: syntax error near "}"`},
		{"unbalanced open", "notify 0 {\n\taction \"x\";\n",
			`devd: t.conf:3: syntax error at end of file`},
		{"nested braces", "notify 0 {\n\t{ action \"x\"; };\n};\n",
			`devd: t.conf:2: syntax error near "{"`},
		{"no priority", "notify {\n};\n",
			`devd: t.conf:1: syntax error near "{"`},
		{"negative priority", "notify -1 { action \"x\"; };\n",
			`devd: t.conf:1: syntax error near "-"`},
		{"empty options", "options { };\n",
			`devd: t.conf:1: syntax error near "}"`},
		{"set outside options", "notify 0 { set a \"b\"; };\n",
			`devd: t.conf:1: syntax error near "set"`},
		{"set keyword as name", "options { set class \"b\"; };\n",
			`devd: t.conf:1: syntax error near "class"`},
		{"escaped quote is not an escape", "notify 0 { action \"a \\\"b\\\"\"; };\n",
			`devd: t.conf:1: syntax error near "b"`},
		{"empty string", "notify 0 { action \"\"; };\n",
			`devd: t.conf:1: syntax error near "\"\""`},
		{"unterminated comment", "# ok\n/* never\nclosed\n",
			`devd: t.conf:2: unterminated comment`},
		{"unknown statement", "\n\nfoo 0 { };\n",
			`devd: t.conf:3: syntax error near "foo"`},
		{"line counts strings and comments", "/*\n\n*/ options { set a \"x\ny\"; };\n\"stray\"\n",
			`devd: t.conf:5: syntax error near "\"stray\""`},
		{"priority too large", "notify 99999999999 { };\n",
			`devd: t.conf:1: number out of range near "99999999999"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.conf", []byte(tc.src))
			if err == nil {
				t.Fatalf("no error, want %s", tc.want)
			}
			if err.Error() != tc.want {
				t.Fatalf("error\n got %s\nwant %s", err, tc.want)
			}
			var se *SyntaxError
			if !errors.As(err, &se) || se.File != "t.conf" {
				t.Fatalf("error %T %v is not a *SyntaxError naming t.conf", err, err)
			}
		})
	}
}

// TestEmptyFile: devd's grammar accepts an empty file and comments only.
func TestEmptyFile(t *testing.T) {
	c := mustParse(t, "# nothing\n// at all\n/* here */\n")
	if len(c.Statements) != 0 || c.Match(Event{"system": "CARP"}) != nil {
		t.Fatalf("empty file: %d statements", len(c.Statements))
	}
}

// TestEveryMatchInPriorityOrder pins bsdcarp's rule (carpd(8), "Events"): the actions of every
// matching notify statement, the statements stable-sorted by decreasing
// priority as devd sorts them (devd itself runs only the first: First).
func TestEveryMatchInPriorityOrder(t *testing.T) {
	c := mustParse(t, `
notify 0 { match "system" "CARP"; action "low"; };
notify 5 { match "system" "CARP"; action "mid-a"; action "mid-b"; };
notify 5 { match "system" "CARP"; action "mid-second"; };
notify 9 { match "system" "CARP"; match "type" "MASTER"; action "high"; };
`)
	got := commands(c.Match(Event{"system": "CARP", "type": "BACKUP"}))
	if want := []string{"mid-a", "mid-b", "mid-second", "low"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("BACKUP: got %q, want %q", got, want)
	}
	got = commands(c.Match(Event{"system": "CARP", "type": "MASTER"}))
	if want := []string{"high", "mid-a", "mid-b", "mid-second", "low"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("MASTER: got %q, want %q", got, want)
	}
	if st := c.First(Notify, Event{"system": "CARP", "type": "BACKUP"}); st == nil || st.Priority != 5 {
		t.Fatalf("First (devd's choice) = %+v", st)
	}
	if got := c.Match(Event{"system": "IFNET"}); got != nil {
		t.Fatalf("IFNET: got %v, want nothing", got)
	}
}

// TestEmptyBlockDropped: devd calls add_notify only for a non-empty block,
// so "notify 99 { };" neither matches nor hides anything.
func TestEmptyBlockDropped(t *testing.T) {
	c := mustParse(t, "notify 99 { };\nnotify 0 { action \"x\"; };\n")
	if len(c.Statements) != 1 {
		t.Fatalf("%d statements, want 1", len(c.Statements))
	}
	if got := commands(c.Match(Event{})); !reflect.DeepEqual(got, []string{"x"}) {
		t.Fatalf("got %q", got)
	}
}

// TestKindsAreSeparate: Match looks at notify statements only.
func TestKindsAreSeparate(t *testing.T) {
	c := mustParse(t, `
attach 0 { action "a"; };
detach 0 { action "d"; };
nomatch 0 { action "n"; };
`)
	if got := c.Match(Event{"system": "CARP"}); got != nil {
		t.Fatalf("Match ran %v", got)
	}
	for k, want := range map[Kind]string{Attach: "a", Detach: "d", Nomatch: "n"} {
		if got := commands(c.MatchKind(k, Event{})); !reflect.DeepEqual(got, []string{want}) {
			t.Errorf("%s: got %q", k, got)
		}
	}
}

// TestRegexSemantics pins how devd builds and runs a match.
func TestRegexSemantics(t *testing.T) {
	cases := []struct {
		re, value string
		want      bool
	}{
		{"CARP", "CARP", true},
		{"CARP", "CARPX", false}, // anchored at the end
		{"CARP", "XCARP", false}, // and at the start
		{"carp", "CARP", true},   // REG_ICASE
		{"(MASTER|BACKUP)", "BACKUP", true},
		{"(MASTER|BACKUP)", "MASTERX", false},
		{"MASTER|BACKUP", "MASTERX", true}, // ^MASTER|BACKUP$ is (^MASTER)|(BACKUP$)
		{"MASTER|BACKUP", "XBACKUP", true},
		{"!MASTER", "BACKUP", true}, // leading ! inverts
		{"!MASTER", "MASTER", false},
		{"[0-9]+@[0-9a-z]+", "12@em0", true},
		{"[0-9]+@[0-9a-z]+", "12@em0.5", false},
		{"[[:digit:]]+@em0", "3@em0", true},
		{`[\.]x`, `\x`, true}, // backslash is literal inside brackets (POSIX)
		{`[\.]x`, `.x`, true},
		{`[]a]`, `]`, true}, // ] first in a bracket is literal
		{`a\.b`, `a.b`, true},
		{`a\.b`, `axb`, false},
		{".*", "", true}, // unset variables are ""
	}
	for _, tc := range cases {
		c := mustParse(t, `notify 0 { match "v" "`+tc.re+`"; action "hit"; };`)
		if len(c.Warnings) != 0 {
			t.Fatalf("%q: warnings %v", tc.re, c.Warnings)
		}
		ev := Event{}
		if tc.value != "" {
			ev["v"] = tc.value
		}
		if got := c.Match(ev) != nil; got != tc.want {
			t.Errorf("match %q against %q = %v, want %v", tc.re, tc.value, got, tc.want)
		}
	}
}

// TestBadRegexNeverMatches: devd ignores regcomp's failure and the match
// then fails; here the statement is kept, never matches, and a warning
// names the file and line.
func TestBadRegexNeverMatches(t *testing.T) {
	c := mustParse(t, "\nnotify 1 { match \"v\" \"(\"; action \"bad\"; };\nnotify 0 { action \"good\"; };\n")
	if got := commands(c.Match(Event{"v": "("})); !reflect.DeepEqual(got, []string{"good"}) {
		t.Fatalf("got %q", got)
	}
	if len(c.Warnings) != 1 || !strings.HasPrefix(c.Warnings[0], "devd: t.conf:2: match \"v\" \"(\": ") {
		t.Fatalf("warnings %q", c.Warnings)
	}
}

// TestParseTimeExpansion: a match's variables are expanded when it is
// parsed, with the set options read so far; event variables play no part.
func TestParseTimeExpansion(t *testing.T) {
	c := mustParse(t, `
options { set dev "em[0-9]+"; };
notify 1 { match "subsystem" "$dev"; action "early"; };
notify 0 { match "subsystem" "x$late"; action "late"; };
options { set late "carp0"; };
`)
	if got := commands(c.Match(Event{"subsystem": "em3"})); !reflect.DeepEqual(got, []string{"early"}) {
		t.Fatalf("em3: got %q", got)
	}
	// $late was unset when its match was parsed: the pattern is ^x$.
	if got := commands(c.Match(Event{"subsystem": "x", "late": "zzz"})); !reflect.DeepEqual(got, []string{"late"}) {
		t.Fatalf("x: got %q", got)
	}
	if p := c.Statements[1].Clauses[0].Pattern; p != "^x$" {
		t.Fatalf("pattern %q", p)
	}
}

// TestExpand pins devd's expand_one rules for action strings.
func TestExpand(t *testing.T) {
	c := mustParse(t, `options { set g "global"; set type "from-set"; };`)
	ev := Event{"subsystem": "1@em0", "type": "MASTER", "quote": "it's", "*": "!line", "_": "line", "a-b": "dash"}
	cases := []struct{ in, want string }{
		{"x $subsystem $type", "x '1@em0' 'MASTER'"}, // event hides set
		{"$g", "'global'"},
		{"$unset.", "''."},                 // unset is "", still one word
		{"$$subsystem", "$subsystem"},      // $$ is $
		{"${type}", "${type}"},             // braces are not devd syntax
		{"$1 $@ $.", "$1 $@ $."},           // $ + non-name char kept
		{"$(date) $type", "$(date) $type"}, // $( copies until balanced: needs two )
		{"$(a)) $type", "$(a)) 'MASTER'"},  // ...the opening ( counts itself
		{"$* $_", "'!line' 'line'"},        // * may start a name
		{"$a-b", "'dash'"},                 // - is a name character
		{"$subsystem1", "''"},              // longest name
		{"$quote", `'it'\''s'`},            // quoting
		{"end $", "end $"},                 // trailing $
		{"no vars", "no vars"},
	}
	for _, tc := range cases {
		if got := c.Expand(tc.in, ev); got != tc.want {
			t.Errorf("Expand(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestStrings pins token.l's string processing.
func TestStrings(t *testing.T) {
	c := mustParse(t, "notify 0 {\n"+
		"\taction \"a\\\n\t\t   b\";\n"+ // backslash-newline and the blanks after it vanish
		"\taction \"keep \\t \\n \\\\ \\$\";\n"+ // other backslashes stay
		"\taction \"two\nlines\";\n"+ // a newline may be in a string
		"\taction \"x\\\n   \";\n"+ // continuation up to the closing quote copies it
		"};\n")
	var got []string
	for _, cl := range c.Statements[0].Clauses {
		got = append(got, cl.Value)
	}
	want := []string{"ab", `keep \t \n \\ \$`, "two\nlines", `x"`}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	if l := c.Statements[0].Clauses[3].Line; l != 7 {
		t.Fatalf("line after multi-line strings = %d, want 7", l)
	}
}

// TestComments pins the three comment forms.
func TestComments(t *testing.T) {
	c := mustParse(t, `# hash { ; "
// slashes } "
/* block
   notify 0 { action "no"; };
*/ notify /* inline */ 3 { action "yes"; /* ; */ }; // trailing
`)
	if len(c.Statements) != 1 || c.Statements[0].Priority != 3 || c.Statements[0].Line != 5 {
		t.Fatalf("statements %+v", c.Statements)
	}
}

// TestMedia pins the media-type clause: device-name, else subsystem, is
// asked for its media; a known type needs that media; "unknown" (or any
// name devd does not know) needs an interface without media.
func TestMedia(t *testing.T) {
	c := mustParse(t, `
notify 2 { media-type "ETHERNET"; action "eth"; };
notify 1 { media-type "802.11"; action "wifi"; };
notify 0 { media-type "unknown"; action "none"; };
`)
	c.Media = testMedia
	for _, tc := range []struct {
		ev   Event
		want string
	}{
		{Event{"subsystem": "em0"}, "eth"},
		{Event{"subsystem": "wlan0"}, "wifi"},
		{Event{"subsystem": "carp0"}, "none"},
		{Event{"device-name": "em1", "subsystem": "carp0"}, "eth"},
		{Event{"device-name": "", "subsystem": "wlan1"}, "wifi"},
	} {
		got := commands(c.Match(tc.ev))
		if !reflect.DeepEqual(got, []string{tc.want}) {
			t.Errorf("%v: got %q, want %q", tc.ev, got, tc.want)
		}
	}
	c.Media = nil
	if got := commands(c.Match(Event{"subsystem": "em0"})); !reflect.DeepEqual(got, []string{"none"}) {
		t.Errorf("nil Media: got %q", got)
	}
}

// TestLoad pins directory handling: a missing directory is fine, only
// *.conf files are read, in name order, and errors name the file.
func TestLoad(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "d")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(sub, "dir.conf"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, s string) {
		t.Helper()
		if err := os.WriteFile(name, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	main := filepath.Join(dir, "devd.conf")
	write(main, `options { directory "`+sub+`"; directory "`+filepath.Join(dir, "nope")+`"; };`)
	write(filepath.Join(sub, "z.conf"), `notify 0 { action "z"; };`)
	write(filepath.Join(sub, "a.conf"), `notify 0 { action "a"; };`)
	write(filepath.Join(sub, "a.conf.sample"), `garbage {`)
	c, err := Load(main)
	if err != nil {
		t.Fatal(err)
	}
	wantFiles := []string{main, filepath.Join(sub, "a.conf"), filepath.Join(sub, "z.conf")}
	if !reflect.DeepEqual(c.Files, wantFiles) {
		t.Fatalf("files %q, want %q", c.Files, wantFiles)
	}
	if got := commands(c.Match(Event{})); !reflect.DeepEqual(got, []string{"a", "z"}) {
		t.Fatalf("got %q, want both files' actions in file order", got)
	}

	bad := filepath.Join(sub, "m.conf")
	write(bad, "notify 0 {\n\taction \"x\"\n};\n")
	_, err = Load(main)
	if want := `devd: ` + bad + `:3: syntax error near "}"`; err == nil || err.Error() != want {
		t.Fatalf("error %v, want %s", err, want)
	}

	_, err = Load(filepath.Join(dir, "absent.conf"))
	if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "absent.conf") {
		t.Fatalf("missing main file: %v", err)
	}
}

// TestNotifyEvent pins the variables of a kernel notify line.
func TestNotifyEvent(t *testing.T) {
	got := NotifyEvent(`!system=CARP subsystem=1@em0 type=MASTER`)
	want := Event{"*": "!system=CARP subsystem=1@em0 type=MASTER", "_": "system=CARP subsystem=1@em0 type=MASTER",
		"system": "CARP", "subsystem": "1@em0", "type": "MASTER"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v", got)
	}
	line := `!system=X msg="a \"b\" c"  n=1 q=x\"y bare word=2`
	got = NotifyEvent(line)
	want = Event{"*": line, "_": line[1:], "system": "X", "msg": `a "b" c`, "n": "1", "q": `x"y`}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v", got)
	}
	if NotifyEvent("+em0 at") != nil {
		t.Fatal("non-notify line accepted")
	}
}

// TestActionlessStatement: a matching statement without actions is the
// one devd picks (First), but under bsdcarp's every-match rule it hides nothing.
func TestActionlessStatement(t *testing.T) {
	c := mustParse(t, `
notify 9 { match "type" "MASTER"; };
notify 0 { action "lower"; };
`)
	if got := commands(c.Match(Event{"type": "MASTER"})); !reflect.DeepEqual(got, []string{"lower"}) {
		t.Fatalf("got %q, want the lower statement's action", got)
	}
	if st := c.First(Notify, Event{"type": "MASTER"}); st == nil || st.Priority != 9 {
		t.Fatalf("First = %+v", st)
	}
	if got := commands(c.Match(Event{"type": "BACKUP"})); !reflect.DeepEqual(got, []string{"lower"}) {
		t.Fatalf("BACKUP: got %q", got)
	}
}

// A FIFO named *.conf in an options directory is refused, not read: it
// would hang carpd's start.
func TestLoadRefusesAFIFO(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "devd.conf")
	if err := os.WriteFile(main, []byte(`options { directory "`+dir+`/d"; };`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "d", "x.conf"), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := Load(main); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("Load with a FIFO: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Load blocked on a FIFO")
	}
}
