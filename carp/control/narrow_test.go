package control

import (
	"bytes"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/bsdcarp/bsdcarp/carp/api"
	"github.com/bsdcarp/bsdcarp/carp/api/apitest"
	"github.com/bsdcarp/bsdcarp/carp/bsd"
)

// narrowStatus has every kind of interface "ifconfig IF" prints: links,
// a dialect A clone, a dialect B clone and vhids on a link.
func narrowStatus() api.Status {
	st := apitest.Status(5)
	st.Clones = append(st.Clones, api.CloneStatus{Name: "carp1", Up: true})
	st.VHIDs = append(st.VHIDs, api.VHIDStatus{Iface: "carp1", VHID: 9, AdvBase: 1, State: api.StateMaster, AuthMismatch: "10.99.0.9",
		Addrs: []netip.Prefix{netip.MustParsePrefix("10.99.9.1/24")}})
	return st
}

func format(st api.Status, args ...string) string {
	p, err := bsd.ParseIfconfig(args)
	if err != nil {
		return "parse: " + err.Error()
	}
	var b bytes.Buffer
	err = bsd.FormatStatus(&b, p, st)
	return fmt.Sprintf("%s\nerr: %v", b.String(), err)
}

// "ifconfig IF" prints the same from one interface's status as from the
// whole, also for an interface that does not exist.
func TestNarrowedStatusPrintsTheSame(t *testing.T) {
	for _, name := range []string{"lo", "em0", "carp0", "carp1", "em1"} {
		st := narrowStatus()
		want := format(st, name)
		got := format(api.StatusQuery{Iface: name}.Narrow(narrowStatus()), name)
		if got != want {
			t.Errorf("ifconfig %s from the narrowed status:\n%s\nfrom the whole:\n%s", name, got, want)
		}
	}
	st := api.StatusQuery{Iface: "carp1"}.Narrow(narrowStatus())
	if len(st.Links) != 0 || len(st.Clones) != 1 || len(st.VHIDs) != 1 || len(st.Knobs) == 0 || len(st.Stats) == 0 {
		t.Fatalf("narrowed to carp1: %+v", st)
	}
}

func TestStatusRequestNarrowsTheAnswer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "carpd.sock")
	srv, err := Listen(path, staticEngine{narrowStatus()})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	defer srv.Close()
	c := Client{Path: path}
	for _, tc := range []struct {
		req                  Request
		links, clones, vhids int
	}{
		{Request{Op: OpStatus}, 2, 2, 6},
		{Request{Op: OpStatus, Iface: "em0"}, 1, 0, 4},
		{Request{Op: OpStatus, Iface: "carp0"}, 0, 1, 1},
		{Request{Op: OpStatus, NoIfaces: true}, 0, 0, 0},
	} {
		resp, err := c.Do(tc.req)
		if err != nil || resp.Status == nil {
			t.Fatalf("%+v: %v %+v", tc.req, err, resp)
		}
		st := resp.Status
		if len(st.Links) != tc.links || len(st.Clones) != tc.clones || len(st.VHIDs) != tc.vhids || len(st.Knobs) != 9 || len(st.Stats) != len(api.CarpstatsNames)+1 {
			t.Errorf("%+v: %d links, %d clones, %d vhids, %d knobs, %d stats", tc.req, len(st.Links), len(st.Clones), len(st.VHIDs), len(st.Knobs), len(st.Stats))
		}
	}
}
