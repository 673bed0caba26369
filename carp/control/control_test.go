package control

import (
	"bytes"
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bsdcarp/bsdcarp/carp/api"
)

// fakeEngine records what reached it.
type fakeEngine struct {
	ifconfigs []api.IfconfigRequest
	showKeys  []bool
}

func (f *fakeEngine) Ifconfig(_ context.Context, r api.IfconfigRequest) error {
	f.ifconfigs = append(f.ifconfigs, r)
	if r.Iface == "carp9" {
		return &api.Error{Reason: api.ReasonNoInterface, Name: "carp9"}
	}
	return nil
}

func (f *fakeEngine) Status(_ context.Context, q api.StatusQuery) (api.Status, error) {
	f.showKeys = append(f.showKeys, q.ShowKeys)
	st := api.Status{VHIDs: []api.VHIDStatus{{Iface: "carp0", VHID: 1}}}
	if q.ShowKeys {
		st.VHIDs[0].Key = "secret"
	}
	return q.Narrow(st), nil
}

func (f *fakeEngine) SetSysctl(_ context.Context, oid string, v int64) (int64, int64, error) {
	return 0, v, nil
}

func serve(t *testing.T) (*fakeEngine, string) {
	t.Helper()
	f := &fakeEngine{}
	path := filepath.Join(t.TempDir(), "carpd.sock")
	srv, err := Listen(path, f)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	t.Cleanup(func() { srv.Close() })
	return f, path
}

func TestRequestsReachTheEngineAndRefusalsComeBackTyped(t *testing.T) {
	f, path := serve(t)
	c := Client{Path: path}
	resp, err := c.Do(Request{Op: OpIfconfig, Ifconfig: &api.IfconfigRequest{Iface: "carp9"}})
	if err != nil {
		t.Fatal(err)
	}
	want := api.Error{Reason: api.ReasonNoInterface, Name: "carp9"}
	var ae *api.Error
	if resp.Code != CodeRefused || !errors.As(resp.Err(), &ae) || *ae != want {
		t.Fatalf("response = %+v, want refusal %+v", resp, want)
	}
	if len(f.ifconfigs) != 1 || f.ifconfigs[0].Iface != "carp9" {
		t.Fatalf("engine saw %+v", f.ifconfigs)
	}
	resp, err = c.Do(Request{Op: OpStatus, ShowKeys: true})
	if err != nil || resp.Status == nil {
		t.Fatalf("status: %v %+v", err, resp)
	}
	// These tests run as root (the suite needs it): root asked for keys, gets them.
	if resp.Status.VHIDs[0].Key != "secret" {
		t.Fatalf("root with show_keys got no key: %+v", resp.Status)
	}
}

func TestSecondServerOnALiveSocketIsRefused(t *testing.T) {
	_, path := serve(t)
	if _, err := Listen(path, &fakeEngine{}); err == nil || !strings.Contains(err.Error(), "another carpd") {
		t.Fatalf("second Listen on a live socket: %v", err)
	}
}

func TestOversizedAndMalformedMessagesAreRefusedWithoutReachingTheEngine(t *testing.T) {
	f, path := serve(t)
	for name, payload := range map[string][]byte{
		"oversized":     append(bytes.Repeat([]byte("x"), MaxMessage+10), '\n'),
		"not json":      []byte("hello\n"),
		"wrong version": []byte(`{"v":99,"op":"ifconfig","ifconfig":{"iface":"carp0"}}` + "\n"),
		"unknown op":    []byte(`{"v":1,"op":"reboot"}` + "\n"),
		"no body":       []byte(`{"v":1,"op":"ifconfig"}` + "\n"),
	} {
		conn, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		go conn.Write(payload)
		var resp Response
		err = readMessage(conn, &resp)
		conn.Close()
		if err != nil {
			t.Fatalf("%s: no response: %v", name, err)
		}
		if resp.Code != CodeFail || resp.Error == "" {
			t.Errorf("%s: response %+v, want a failure", name, resp)
		}
	}
	if len(f.ifconfigs) != 0 {
		t.Fatalf("engine received %+v", f.ifconfigs)
	}
}

func TestSplitFlagsLeavesBSDWordsAlone(t *testing.T) {
	sock, seen, rest, err := SplitFlags([]string{"--socket", "/x.sock", "--stats", "-a", "-alias", "--socket"}, "stats")
	if err != nil || sock != "/x.sock" || !seen["stats"] || strings.Join(rest, " ") != "-a -alias --socket" {
		t.Fatalf("SplitFlags = %q %v %q %v", sock, seen, rest, err)
	}
	if _, _, _, err := SplitFlags([]string{"--socket"}); err == nil {
		t.Fatal("--socket without a path accepted")
	}
}

func FuzzReadMessage(f *testing.F) {
	f.Add([]byte(`{"v":1,"op":"status"}` + "\n"))
	f.Add([]byte(`{"v":1,"op":"ifconfig","ifconfig":{"iface":"carp0","ops":[{"kind":"vhid","int":1}]}}` + "\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var req Request
		if err := readMessage(bytes.NewReader(b), &req); err != nil {
			return
		}
		// Whatever decodes re-encodes within the bound.
		var buf bytes.Buffer
		if err := writeMessage(&buf, req); err != nil && len(b) < MaxMessage/2 {
			t.Fatalf("decoded request does not re-encode: %v", err)
		}
	})
}

func TestIdleRootClientsCannotStarveOthers(t *testing.T) {
	_, path := serve(t)
	// As many root clients as root has slots connect and say nothing.
	var idle []net.Conn
	for i := 0; i < DefaultLimits().RootConns; i++ {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	// Each idle one is dropped at its read deadline, so a real client gets
	// through (here within root's 2 s deadline plus slack).
	c := Client{Path: path, Timeout: 5 * time.Second}
	var resp Response
	var err error
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err = c.Do(Request{Op: OpStatus}); err == nil && resp.Status != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("status never answered while idle clients held the slots: %v %+v", err, resp)
}

// TestResponseErrors: a response that reports no failure but lacks the
// status a command asked for is an error too, never a nil one.
func TestResponseErrors(t *testing.T) {
	if err := (Response{}).Err(); err != nil {
		t.Errorf("empty response Err() = %v, want nil (an ifconfig line that succeeded)", err)
	}
	if err := (Response{}).StatusErr(); err == nil {
		t.Error("empty response StatusErr() = nil, want an error")
	}
	if err := (Response{Code: CodeFail}).Err(); err == nil || err.Error() == "" {
		t.Errorf("code without text: %v", err)
	}
	ref := &api.Error{Reason: api.ReasonNoInterface, Name: "em9"}
	if err := (Response{Code: CodeRefused, Refusal: ref}).StatusErr(); err != ref {
		t.Errorf("refusal: %v", err)
	}
	if err := (Response{Status: &api.Status{}}).StatusErr(); err != nil {
		t.Errorf("status: %v", err)
	}
}
