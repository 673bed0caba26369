package metrics

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/bsdcarp/bsdcarp/carp/api"
)

func TestWriteParses(t *testing.T) {
	since := time.Date(2026, 11, 29, 12, 0, 0, 500e6, time.UTC)
	st := api.Status{
		VHIDs: []api.VHIDStatus{
			{Iface: "carp0", Carpdev: "em0", VHID: 1, State: api.StateBackup, Detail: &api.VHIDDetail{
				Since: since, Transitions: 3, ToMaster: 1, AdvertsIn: 40, AdvertsOut: 7,
				Drops:      [len(api.VHIDDropNames)]uint64{2, 0, 0, 0, 5, 0}, // badttl, badauth
				MasterAddr: netip.MustParseAddr("10.0.0.2"), MasterAt: since.Add(time.Second), IfDown: true}},
			{Iface: `we"ird\`, VHID: 2, State: api.StateInit, Detail: &api.VHIDDetail{Since: since}},
			{Iface: "carp9", VHID: 0, State: api.StateInit}, // a clone without a vhid: left out
		},
		Demotion: &api.Demotion{Effective: 240, IfDown: 240, IfDownVHIDs: 1},
		Stats:    []api.Counter{{Name: "ipackets", Value: 41}, {Name: "replay", Value: 0}},
		Knobs:    []api.Knob{{Name: "net.inet.carp.allow", Value: 1}},
	}
	var b bytes.Buffer
	if err := Write(&b, st); err != nil {
		t.Fatal(err)
	}
	samples, err := Parse(b.String())
	if err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"carp_vhid_state", []string{"iface", "carp0", "vhid", "1", "state", "BACKUP", "carpdev", "em0"}, 1},
		{"carp_vhid_state", []string{"iface", "carp0", "vhid", "1", "state", "MASTER"}, 0},
		{"carp_vhid_state", []string{"iface", `we"ird\`, "vhid", "2", "state", "INIT"}, 1},
		{"carp_vhid_state_change_timestamp_seconds", []string{"vhid", "1"}, float64(since.UnixMilli()) / 1000},
		{"carp_vhid_transitions_total", []string{"vhid", "1"}, 3},
		{"carp_vhid_master_transitions_total", []string{"vhid", "1"}, 1},
		{"carp_vhid_adverts_received_total", []string{"vhid", "1"}, 40},
		{"carp_vhid_adverts_sent_total", []string{"vhid", "1"}, 7},
		{"carp_vhid_master_heard_timestamp_seconds", []string{"vhid", "1"}, float64(since.Add(time.Second).UnixMilli()) / 1000},
		{"carp_vhid_drops_total", []string{"vhid", "1", "reason", "badauth"}, 5},
		{"carp_vhid_drops_total", []string{"vhid", "1", "reason", "badttl"}, 2},
		{"carp_vhid_demoted", []string{"vhid", "1", "reason", "ifdown"}, 1},
		{"carp_vhid_demoted", []string{"vhid", "1", "reason", "senderr"}, 0},
		{"carp_demotion", nil, 240},
		{"carp_demotion_part", []string{"part", "ifdown"}, 240},
		{"carp_stats_total", []string{"name", "ipackets"}, 41},
		{"carp_sysctl", []string{"oid", "net.inet.carp.allow"}, 1},
	} {
		if got, ok := Find(samples, c.name, c.labels...); !ok || got != c.want {
			t.Errorf("%s%v = %v (found once: %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	if _, ok := Find(samples, "carp_vhid_master_heard_timestamp_seconds", "vhid", "2"); ok {
		t.Error("an INIT vhid has a master heard")
	}
	if strings.Contains(b.String(), "carp9") {
		t.Errorf("vhid 0 in the metrics:\n%s", b.String())
	}
}

func TestParseRefusesWhatIsNotTheFormat(t *testing.T) {
	typ := "# TYPE m gauge\n"
	for _, text := range []string{
		"m 1\n",                    // no TYPE before
		typ + "# random comment\n", // not HELP / TYPE
		typ + "m{a=\"1\"}1\n",      // no space
		typ + "m{a=1} 1\n",         // unquoted
		typ + "m{a=\"1\" 1\n",      // unterminated
		typ + "m 1 2 3\n",          // trailing junk
		typ + "m one\n",            // not a number
		typ + "1m 1\n",             // bad name
		typ + typ,                  // TYPE twice
		typ + "\n",                 // empty line
	} {
		if _, err := Parse(text); err == nil {
			t.Errorf("Parse(%q) accepted it", text)
		}
	}
}
