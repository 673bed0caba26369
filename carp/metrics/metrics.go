// Package metrics writes carpd's status as Prometheus metrics, in the
// text exposition format (version 0.0.4, the format node_exporter's
// textfile collector reads too). The format is small, stable and
// documented, so it is written here by hand rather than through
// prometheus/client_golang (eight more modules and 6.2 MB of stripped
// carpd): carpd keeps its counters in its own event loop and only needs
// them printed on a scrape.
package metrics

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/bsdcarp/bsdcarp/carp/api"
)

// ContentType is the HTTP Content-Type of the text format.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// states are the values of the state label of carp_vhid_state.
var states = [...]string{api.StateInit, api.StateBackup, api.StateMaster}

// Write writes the metrics of st, a status asked with Detail
// (api.StatusQuery.Detail), to w. Vhids without details (vhid 0: a clone
// not configured yet) are left out. Every family is written with its HELP
// and TYPE lines even when it has no sample.
func Write(w io.Writer, st api.Status) error {
	var b bytes.Buffer
	var vhids []api.VHIDStatus
	for _, v := range st.VHIDs {
		if v.VHID != 0 && v.Detail != nil {
			vhids = append(vhids, v)
		}
	}
	family := func(name, typ, help string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	sample := func(name string, value float64, labels ...string) {
		b.WriteString(name)
		if len(labels) > 0 {
			b.WriteByte('{')
			for i := 0; i+1 < len(labels); i += 2 {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(labels[i])
				b.WriteString(`="`)
				b.WriteString(escape(labels[i+1]))
				b.WriteByte('"')
			}
			b.WriteByte('}')
		}
		b.WriteByte(' ')
		b.WriteString(strconv.FormatFloat(value, 'g', -1, 64))
		b.WriteByte('\n')
	}
	perVHID := func(name, typ, help string, value func(v *api.VHIDStatus) (float64, bool)) {
		family(name, typ, help)
		for i := range vhids {
			if x, ok := value(&vhids[i]); ok {
				sample(name, x, "iface", vhids[i].Iface, "vhid", strconv.Itoa(int(vhids[i].VHID)))
			}
		}
	}

	family("carp_vhid_state", "gauge", "1 for the state the vhid is in (INIT, BACKUP, MASTER), 0 for the others.")
	for _, v := range vhids {
		for _, s := range states {
			sample("carp_vhid_state", bool01(v.State == s), "iface", v.Iface, "vhid", strconv.Itoa(int(v.VHID)), "carpdev", v.Carpdev, "state", s)
		}
	}
	perVHID("carp_vhid_state_change_timestamp_seconds", "gauge", "Unix time of the vhid's last state change (or of its start in this carpd).",
		func(v *api.VHIDStatus) (float64, bool) { return unix(v.Detail.Since), true })
	perVHID("carp_vhid_transitions_total", "counter", "State changes of the vhid.",
		func(v *api.VHIDStatus) (float64, bool) { return float64(v.Detail.Transitions), true })
	perVHID("carp_vhid_master_transitions_total", "counter", "State changes of the vhid to MASTER.",
		func(v *api.VHIDStatus) (float64, bool) { return float64(v.Detail.ToMaster), true })
	perVHID("carp_vhid_adverts_received_total", "counter", "Advertisements accepted for the vhid.",
		func(v *api.VHIDStatus) (float64, bool) { return float64(v.Detail.AdvertsIn), true })
	perVHID("carp_vhid_adverts_sent_total", "counter", "Advertisements sent by the vhid (one per address family).",
		func(v *api.VHIDStatus) (float64, bool) { return float64(v.Detail.AdvertsOut), true })
	perVHID("carp_vhid_master_heard_timestamp_seconds", "gauge", "Unix time of the last advertisement of the MASTER a BACKUP follows.",
		func(v *api.VHIDStatus) (float64, bool) {
			return unix(v.Detail.MasterAt), v.State == api.StateBackup && v.Detail.MasterAddr.IsValid()
		})
	family("carp_vhid_drops_total", "counter", "Advertisements dropped that carried the vhid's number on its carpdev, by carpstats reason.")
	for _, v := range vhids {
		for i, n := range api.VHIDDropNames {
			sample("carp_vhid_drops_total", float64(v.Detail.Drops[i]), "iface", v.Iface, "vhid", strconv.Itoa(int(v.VHID)), "reason", n)
		}
	}
	family("carp_vhid_demoted", "gauge", "1 while the vhid counts in the interface-down (ifdown) or send-error (senderr) demotion.")
	for _, v := range vhids {
		vhid := strconv.Itoa(int(v.VHID))
		sample("carp_vhid_demoted", bool01(v.Detail.IfDown), "iface", v.Iface, "vhid", vhid, "reason", "ifdown")
		sample("carp_vhid_demoted", bool01(v.Detail.SendErr), "iface", v.Iface, "vhid", vhid, "reason", "senderr")
	}
	if d := st.Demotion; d != nil {
		family("carp_demotion", "gauge", "The demotion every vhid advertises (net.inet.carp.demotion in effect).")
		sample("carp_demotion", float64(d.Effective))
		family("carp_demotion_part", "gauge", "The parts of carp_demotion: written by sysctl or carpdemote (knob), for parents down (ifdown), for send errors (senderr).")
		sample("carp_demotion_part", float64(d.Knob), "part", "knob")
		sample("carp_demotion_part", float64(d.IfDown), "part", "ifdown")
		sample("carp_demotion_part", float64(d.SendErr), "part", "senderr")
	}
	family("carp_stats_total", "counter", "net.inet.carp.stats (FreeBSD's struct carpstats) by counter name, and bsdcarp's replay.")
	for _, c := range st.Stats {
		sample("carp_stats_total", float64(c.Value), "name", c.Name)
	}
	family("carp_sysctl", "gauge", "The net.inet.carp sysctl knobs.")
	for _, k := range st.Knobs {
		sample("carp_sysctl", float64(k.Value), "oid", k.Name)
	}
	_, err := w.Write(b.Bytes())
	return err
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// unix is t in seconds since the epoch, with milliseconds.
func unix(t time.Time) float64 {
	return float64(t.UnixMilli()) / 1000
}

// escape escapes a label value as the text format wants: backslash,
// double quote and line feed.
func escape(s string) string {
	if !strings.ContainsAny(s, "\\\"\n") {
		return s
	}
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}
