package control

import (
	"context"
	"errors"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/bsdcarp/bsdcarp/carp/api"
)

// unsavedEngine takes every change but cannot save it, as with a full state
// directory.
type unsavedEngine struct{ fakeEngine }

var errUnsaved = &api.SaveError{File: "/run/carpd/config.json", Err: errors.New("engine: save config.json: no space left on device")}

func (u *unsavedEngine) Ifconfig(context.Context, api.IfconfigRequest) error { return errUnsaved }

func (u *unsavedEngine) SetSysctl(_ context.Context, _ string, v int64) (int64, int64, error) {
	return 7, 7 + v, errUnsaved
}

// A change that took effect but was not saved is a success with a warning,
// never an error: the command must exit 0 and the admin's failover stands.
func TestUnsavedChangeIsASuccessWithAWarning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "carpd.sock")
	srv, err := Listen(path, &unsavedEngine{})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	t.Cleanup(func() { srv.Close() })
	c := Client{Path: path}
	want := errUnsaved.Error()

	resp, err := c.Do(Request{Op: OpIfconfig, Ifconfig: &api.IfconfigRequest{Iface: "carp0", Ops: []api.Op{{Kind: api.OpDown}}}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Code != "" || resp.Error != "" || resp.Warning != want {
		t.Errorf("ifconfig response = %+v, want success with warning %q", resp, want)
	}
	resp, err = c.Do(Request{Op: OpSysctl, OID: "net.inet.carp.demotion", Value: 240})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Code != "" || resp.Old != 7 || resp.New != 247 || resp.Warning != want {
		t.Errorf("sysctl response = %+v, want 7 -> 247 with warning %q", resp, want)
	}
	// Other errors stay errors.
	if w, ok := warning(syscall.EIO); ok {
		t.Errorf("EIO taken for a warning: %q", w)
	}
}
