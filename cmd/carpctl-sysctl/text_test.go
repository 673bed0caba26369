package main

import (
	"bytes"
	"testing"

	"github.com/bsdcarp/bsdcarp/carp/api/apitest"
	"github.com/bsdcarp/bsdcarp/internal/statustest"
)

// The command prints the same whether carpd renders the text or sends the
// status: reads, errors, --stats, and a write (which carpd does not render).
func TestTextFromCarpdIsWhatTheStatusPrints(t *testing.T) {
	st := apitest.Status(255)
	old, now := statustest.Serve(t, st, false), statustest.Serve(t, st, true)
	for _, args := range [][]string{{"net.inet.carp"}, {"-a"}, {"-n", "net.inet.carp.allow"}, {"-d", "net.inet.carp"},
		{"net.inet.carp.nosuch"}, {"net.inet.carp.nosuch", "net.inet.carp.log"}, {"--stats"}, {"net.inet.carp.preempt=1"}, {"-z"}} {
		for _, argv0 := range []string{"carpctl-sysctl", "/x/bsd/sysctl"} {
			if argv0 == "/x/bsd/sysctl" && args[0] == "-a" {
				continue // the host's listing comes first, and changes by the second
			}
			var o1, e1, o2, e2 bytes.Buffer
			c1 := run(append([]string{argv0, "--socket", old}, args...), &o1, &e1)
			c2 := run(append([]string{argv0, "--socket", now}, args...), &o2, &e2)
			if c1 != c2 || o1.String() != o2.String() || e1.String() != e2.String() {
				t.Errorf("%s %q: from the status exit %d\n%s%s\nfrom the text exit %d\n%s%s", argv0, args, c1, o1.String(), e1.String(), c2, o2.String(), e2.String())
			}
			if o1.Len() == 0 && e1.Len() == 0 {
				t.Errorf("%s %q printed nothing", argv0, args)
			}
		}
	}
}
