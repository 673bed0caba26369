package main

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/bsdcarp/bsdcarp/carp/api"
	"github.com/bsdcarp/bsdcarp/carp/api/apitest"
	"github.com/bsdcarp/bsdcarp/carp/bsd"
	"github.com/bsdcarp/bsdcarp/carp/control"
)

// statusEngine answers every status request with st, narrowed.
type statusEngine struct{ st api.Status }

func (e statusEngine) Status(_ context.Context, q api.StatusQuery) (api.Status, error) {
	return q.Narrow(e.st), nil
}
func (statusEngine) Ifconfig(context.Context, api.IfconfigRequest) error { return nil }
func (statusEngine) SetSysctl(_ context.Context, _ string, v int64) (int64, int64, error) {
	return 0, v, nil
}

// serveStatus runs a control server for st, with carpd's renderer or
// without (a carpd that predates Request.Text); it returns the socket.
func serveStatus(t *testing.T, st api.Status, render bool) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "carpd.sock")
	srv, err := control.Listen(sock, statusEngine{st})
	if err != nil {
		t.Fatal(err)
	}
	if render {
		srv.Render = func(cmd string, args []string, root bool, st api.Status) (control.Rendered, bool) {
			r, ok := bsd.Render(cmd, args, root, st)
			return control.Rendered(r), ok
		}
	}
	go srv.Serve()
	t.Cleanup(func() { srv.Close() })
	return sock
}

// The command prints the same whether carpd renders the text or sends the
// status: reads, errors, --stats, and a write (which carpd does not render).
func TestTextFromCarpdIsWhatTheStatusPrints(t *testing.T) {
	st := apitest.Status(255)
	old, now := serveStatus(t, st, false), serveStatus(t, st, true)
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
