package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bsdcarp/bsdcarp/carp/api"
	"github.com/bsdcarp/bsdcarp/carp/metrics"
	"github.com/bsdcarp/bsdcarp/internal/jsonschema"
	"github.com/bsdcarp/bsdcarp/internal/netlab"
)

// metricsAddr is where each lab host's carpd serves its metrics, inside
// its own namespace (so the two do not collide).
const metricsAddr = "127.0.0.1:9542"

// scrape fetches h's /metrics from inside its namespace and parses it
// strictly (every line # HELP, # TYPE or a sample).
func (h *host) scrape(t *testing.T) []metrics.Sample {
	t.Helper()
	out, errOut, code := h.lab.Exec(h.name, nil, "curl", "-sS", "--fail", "--max-time", "5", "http://"+metricsAddr+"/metrics")
	if code != 0 {
		t.Fatalf("%s: curl /metrics: exit %d: %s\ncarpd log:\n%s", h.name, code, errOut, h.log())
	}
	s, err := metrics.Parse(out)
	if err != nil {
		t.Fatalf("%s: %v\n%s", h.name, err, out)
	}
	return s
}

// value is the one sample of name with labels in s, failing the test if
// there is not exactly one.
func value(t *testing.T, s []metrics.Sample, name string, labels ...string) float64 {
	t.Helper()
	v, ok := metrics.Find(s, name, labels...)
	if !ok {
		t.Fatalf("no single sample %s%v", name, labels)
	}
	return v
}

// jsonStatus runs `ifconfig-carp --json args...` on h, validates its output
// against docs/status.schema.json and decodes it.
func (h *host) jsonStatus(t *testing.T, args ...string) api.Report {
	t.Helper()
	argv := append([]string{filepath.Join(bin, "ifconfig-carp"), "--json"}, args...)
	out, errOut, code := h.lab.Exec(h.name, h.env(), argv...)
	if code != 0 {
		t.Fatalf("%s: ifconfig-carp --json %v: exit %d: %s", h.name, args, code, errOut)
	}
	schema, err := os.ReadFile(filepath.Join("..", "..", "docs", "status.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	bad, err := jsonschema.Validate(schema, []byte(out))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bad {
		t.Errorf("%s: status.schema.json: %s", h.name, b)
	}
	if len(bad) > 0 {
		t.Fatalf("%s: document:\n%s", h.name, out)
	}
	var r api.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestMetricsAndJSONStatusOfALivePair: the Handbook's 28.5 pair (two
// vhids), each carpd serving metrics on its namespace's loopback: the
// state gauges say MASTER on fw1 and BACKUP on fw2 for both vhids; between
// two scrapes fw1's adverts sent and fw2's adverts received grow; fw2's
// textfile holds the same format; `ifconfig-carp --json` of both hosts
// validates against the documented schema and names the MASTER fw2 hears.
func TestMetricsAndJSONStatusOfALivePair(t *testing.T) {
	lab := netlab.New(t, bin)
	lab.Handbook285()
	fw1, fw2 := labHost(lab, "fw1"), labHost(lab, "fw2")
	textfile := filepath.Join(lab.Dir, "fw2.prom")
	fw1.startCarpd(t, "--metrics-listen", metricsAddr)
	fw2.startCarpd(t, "--metrics-listen", metricsAddr, "--metrics-textfile", textfile, "--metrics-interval", "1s")
	fw1.mustSh(t, runbook(t, "handbook-28.5-fw1.sh"))
	fw1.waitState(t, "carp0", "MASTER", 6*time.Second)
	fw1.waitState(t, "carp1", "MASTER", 6*time.Second)
	fw2.mustSh(t, runbook(t, "handbook-28.5-fw2.sh"))
	fw2.waitState(t, "carp0", "BACKUP", 2*time.Second)
	fw2.waitState(t, "carp1", "BACKUP", 2*time.Second)

	vhids := []struct{ iface, vhid, dev string }{{"carp0", "1", "em0"}, {"carp1", "2", "em1"}}
	first1, first2 := fw1.scrape(t), fw2.scrape(t)
	for _, v := range vhids {
		for _, c := range []struct {
			h     *host
			s     []metrics.Sample
			state string
		}{{fw1, first1, "MASTER"}, {fw2, first2, "BACKUP"}} {
			for _, st := range []string{"INIT", "BACKUP", "MASTER"} {
				want := 0.0
				if st == c.state {
					want = 1
				}
				if got := value(t, c.s, "carp_vhid_state", "iface", v.iface, "vhid", v.vhid, "carpdev", v.dev, "state", st); got != want {
					t.Errorf("%s: carp_vhid_state{%s,%s} = %v, want %v", c.h.name, v.iface, st, got, want)
				}
			}
		}
	}
	// advbase 1: a new advert every second.
	var last1, last2 []metrics.Sample
	if _, ok := netlab.Eventually(5*time.Second, func() bool {
		last1, last2 = fw1.scrape(t), fw2.scrape(t)
		for _, v := range vhids {
			l := []string{"iface", v.iface, "vhid", v.vhid}
			if value(t, last1, "carp_vhid_adverts_sent_total", l...) <= value(t, first1, "carp_vhid_adverts_sent_total", l...) ||
				value(t, last2, "carp_vhid_adverts_received_total", l...) <= value(t, first2, "carp_vhid_adverts_received_total", l...) {
				return false
			}
		}
		return true
	}); !ok {
		t.Fatalf("adverts did not grow between scrapes:\nfw1 sent %v -> %v\nfw2 received %v -> %v",
			value(t, first1, "carp_vhid_adverts_sent_total", "vhid", "1"), value(t, last1, "carp_vhid_adverts_sent_total", "vhid", "1"),
			value(t, first2, "carp_vhid_adverts_received_total", "vhid", "1"), value(t, last2, "carp_vhid_adverts_received_total", "vhid", "1"))
	}
	if got := value(t, last1, "carp_stats_total", "name", "opackets"); got < value(t, last1, "carp_vhid_adverts_sent_total", "vhid", "1") {
		t.Errorf("fw1: host opackets %v below one vhid's adverts sent", got)
	}
	if got := value(t, last1, "carp_vhid_master_transitions_total", "iface", "carp0"); got != 1 {
		t.Errorf("fw1: carp0 went MASTER %v times, want 1", got)
	}
	if _, ok := metrics.Find(last2, "carp_vhid_master_heard_timestamp_seconds", "iface", "carp0"); !ok {
		t.Error("fw2: no master heard for carp0")
	}

	// The textfile (written every second) parses and agrees on the state.
	var text []metrics.Sample
	if _, ok := netlab.Eventually(5*time.Second, func() bool {
		b, err := os.ReadFile(textfile)
		if err != nil {
			return false
		}
		if text, err = metrics.Parse(string(b)); err != nil {
			t.Fatalf("textfile: %v\n%s", err, b)
		}
		return true
	}); !ok {
		t.Fatalf("no textfile %s:\n%s", textfile, fw2.log())
	}
	if got := value(t, text, "carp_vhid_state", "iface", "carp1", "state", "BACKUP"); got != 1 {
		t.Errorf("textfile: carp1 BACKUP = %v", got)
	}

	// The JSON status of both hosts.
	r1, r2 := fw1.jsonStatus(t), fw2.jsonStatus(t, "-k", "carp0")
	if len(r1.VHIDs) != 2 || len(r2.VHIDs) != 1 {
		t.Fatalf("vhids: fw1 %d, fw2 (carp0 only) %d", len(r1.VHIDs), len(r2.VHIDs))
	}
	m, b := r1.VHIDs[0], r2.VHIDs[0]
	if m.State != "MASTER" || m.Key != "" || m.Adverts.Out == 0 || m.Transitions.ToMaster != 1 || m.CARP == nil || m.CARP.AdvSkew != 0 {
		t.Errorf("fw1 carp0 %+v", m)
	}
	if b.State != "BACKUP" || b.Key != "lanpasswd" || b.Adverts.In == 0 || b.MasterHeard == nil || b.MasterHeard.Addr != "172.16.0.1" ||
		time.Since(b.MasterHeard.At) > 3*time.Second || b.CARP == nil || b.CARP.AdvSkew != 128 {
		t.Errorf("fw2 carp0 %+v (heard %+v)", b, b.MasterHeard)
	}
	if r2.Stats["ipackets"] == 0 || r2.Knobs["net.inet.carp.preempt"] != 1 {
		t.Errorf("fw2 host stats %v knobs %v", r2.Stats, r2.Knobs)
	}
}
