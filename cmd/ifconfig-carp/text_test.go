package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/bsdcarp/bsdcarp/carp/api/apitest"
	"github.com/bsdcarp/bsdcarp/internal/statustest"
)

// The command prints the same whether carpd renders the text or sends the
// status: every display, the error of an unknown interface included.
func TestTextFromCarpdIsWhatTheStatusPrints(t *testing.T) {
	st := apitest.Status(255)
	for i := range st.VHIDs {
		st.VHIDs[i].Key = "k"
	}
	old, now := statustest.Serve(t, st, false), statustest.Serve(t, st, true)
	for _, args := range [][]string{{"em0"}, {"-k", "em0"}, {"carp0"}, {"-a"}, {"-a", "-k"}, {}, {"-l"}, {"-g", "carp"}, {"lo"}, {"em9"}, {"carp9"}} {
		var o1, e1, o2, e2 bytes.Buffer
		c1 := run(append([]string{"ifconfig", "--socket", old}, args...), &o1, &e1)
		c2 := run(append([]string{"ifconfig", "--socket", now}, args...), &o2, &e2)
		if c1 != c2 || o1.String() != o2.String() || e1.String() != e2.String() {
			t.Errorf("ifconfig %q: from the status exit %d\n%s%s\nfrom the text exit %d\n%s%s", args, c1, o1.String(), e1.String(), c2, o2.String(), e2.String())
		}
		if o1.Len() == 0 && e1.Len() == 0 {
			t.Errorf("ifconfig %q printed nothing", args)
		}
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"ifconfig", "--socket", now, "em0"}, &out, &errOut); code != 0 || strings.Count(out.String(), "\tcarp: ") != 254 {
		t.Errorf("ifconfig em0: exit %d, %d carp lines, stderr %q", code, strings.Count(out.String(), "\tcarp: "), errOut.String())
	}
	out.Reset()
	if code := run([]string{"ifconfig", "--socket", now, "em9"}, &out, &errOut); code != 1 || out.Len() != 0 || !strings.HasSuffix(errOut.String(), "ifconfig: interface em9 does not exist\n") {
		t.Errorf("ifconfig em9: exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
}
