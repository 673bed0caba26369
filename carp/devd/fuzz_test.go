package devd

import (
	"bytes"
	"errors"
	"os"
	"testing"
)

// FuzzParse checks that Parse never panics, that it is deterministic, that
// every error is a *SyntaxError whose line lies inside the input, and that
// Match, MatchKind and Expand never panic on what it accepts.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"testdata/devd.conf", "testdata/devd.d/a-first.conf", "testdata/local.d/carp.conf"} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, "1@em0", "MASTER")
	}
	f.Add([]byte("notify 0 { match \"type\" \"!$x(\"; action \"$(a $* $ ${b} $$\"; };"), "carp0", "LINK_UP")
	f.Add([]byte("notify 0 { media-type \"unknown\"; action \"a\\\n  \"; };"), "", "")
	f.Add([]byte("options { set a \"[[:alpha:]\"; }; notify 1 { match \"v\" \"$a\"; action \"x\"; };"), "a", "b")
	f.Fuzz(func(t *testing.T, src []byte, subsystem, typ string) {
		_ = NotifyEvent("!" + subsystem + " " + typ)
		c, err := Parse("f.conf", src)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %T is not a *SyntaxError: %v", err, err)
			}
			if se.File != "f.conf" || se.Line < 1 || se.Line > bytes.Count(src, []byte("\n"))+1 {
				t.Fatalf("bad location in %v", err)
			}
			return
		}
		c2, err := Parse("f.conf", src)
		if err != nil {
			t.Fatalf("second parse failed: %v", err)
		}
		if d1, d2 := dump(c), dump(c2); d1 != d2 {
			t.Fatalf("parse not deterministic:\n%s\n%s", d1, d2)
		}
		c.Media = testMedia
		ev := Event{"system": "CARP", "subsystem": subsystem, "type": typ, "*": typ}
		for _, k := range []Kind{Attach, Detach, Nomatch, Notify} {
			acts := c.MatchKind(k, ev)
			st := c.First(k, ev)
			if want := st != nil && hasAction(st); want != (acts != nil) {
				t.Fatalf("First and MatchKind disagree for %s", k)
			}
		}
		for _, st := range c.Statements {
			for _, cl := range st.Clauses {
				_ = c.Expand(cl.Value, ev)
			}
		}
	})
}

func hasAction(st *Statement) bool {
	for _, cl := range st.Clauses {
		if cl.Kind == ActionClause {
			return true
		}
	}
	return false
}
