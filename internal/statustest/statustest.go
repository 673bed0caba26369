// Package statustest serves a fixed status on a control socket, with or
// without carpd's text rendering, for the commands' tests.
package statustest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/bsdcarp/bsdcarp/carp/api"
	"github.com/bsdcarp/bsdcarp/carp/bsd"
	"github.com/bsdcarp/bsdcarp/carp/control"
)

// engine answers every status request with st, narrowed, keys only when
// asked for; a sysctl write reports old value 0.
type engine struct{ st api.Status }

func (e engine) Status(_ context.Context, q api.StatusQuery) (api.Status, error) {
	st := q.Narrow(e.st)
	if !q.ShowKeys {
		for i := range st.VHIDs {
			st.VHIDs[i].Key = ""
		}
	}
	return st, nil
}

func (engine) Ifconfig(context.Context, api.IfconfigRequest) error { return nil }

func (engine) SetSysctl(_ context.Context, _ string, v int64) (int64, int64, error) {
	return 0, v, nil
}

// Serve runs a control server for st, with carpd's renderer or without
// (a carpd that predates Request.Text), until the test ends; it returns
// the socket's path.
func Serve(t *testing.T, st api.Status, render bool) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "carpd.sock")
	srv, err := control.Listen(sock, engine{st})
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
