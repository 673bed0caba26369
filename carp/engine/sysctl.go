package engine

import (
	"syscall"

	"github.com/bsdcarp/bsdcarp/carp/api"
)

// knobDef describes one net.inet.carp leaf: its default, its range and its
// sysctl -d description, as carp(4) documents them.
type knobDef struct {
	name     string
	def      int64
	min, max int64 // inclusive; min > max means any value
	readOnly bool
	additive bool // writing N adds N (demotion)
	opaque   bool // not an integer: no value, no writes
	descr    string
}

// knobDefs is in FreeBSD 14's listing order (the reverse of declaration),
// followed by the knobs only FreeBSD <= 9 had.
var knobDefs = []knobDef{
	// stats is the opaque struct carpstats, declared last in FreeBSD 14 and
	// so listed first. FreeBSD declares it writable
	// (CTLFLAG_RW), so sysctl(8) refuses a write by its type, not as read
	// only; listings skip it.
	{name: "stats", opaque: true, min: 1, max: 0, descr: "CARP statistics (struct carpstats, netinet/ip_carp.h)"},
	{name: "ifdown_demotion_factor", def: 240, min: 1, max: 0, descr: "Interface down demotion factor adjustment"},
	{name: "senderr_demotion_factor", def: 240, min: 1, max: 0, descr: "Send error demotion factor adjustment"},
	{name: "demotion", def: 0, min: 1, max: 0, additive: true, descr: "Adjust demotion factor (skew of advskew)"},
	{name: "log", def: 1, min: 1, max: 0, descr: "CARP log level"},
	{name: "preempt", def: 0, min: 1, max: 0, descr: "High-priority backup preemption mode"},
	{name: "dscp", def: 56, min: 0, max: 63, descr: "DSCP value for carp packets"},
	{name: "allow", def: 1, min: 1, max: 0, descr: "Accept incoming CARP packets"},
	{name: "arpbalance", def: 0, min: 1, max: 0, descr: "balance arp responses"},
	{name: "suppress_preempt", def: 0, min: 1, max: 0, readOnly: true, descr: "Preemption is suppressed"},
}

func knobByName(leaf string) (knobDef, bool) {
	for _, k := range knobDefs {
		if k.name == leaf {
			return k, true
		}
	}
	return knobDef{}, false
}

// knob returns the current value of a leaf.
func (e *Engine) knob(leaf string) int64 {
	if leaf == "demotion" {
		return int64(e.demotion())
	}
	if v, ok := e.cfg.Knobs[leaf]; ok {
		return v
	}
	k, _ := knobByName(leaf)
	return k.def
}

func (e *Engine) knobs() []api.Knob {
	out := make([]api.Knob, 0, len(knobDefs))
	for _, k := range knobDefs {
		out = append(out, api.Knob{Name: api.SysctlPrefix + k.name, Value: e.knob(k.name), Description: k.descr, ReadOnly: k.readOnly})
	}
	return out
}

// checkKnob validates a write the way FreeBSD's kernel handlers do.
func checkKnob(k knobDef, v int64) error {
	if k.opaque {
		return &api.Error{Reason: api.ReasonNodeOID, Name: api.SysctlPrefix + k.name}
	}
	if k.readOnly {
		return &api.Error{Reason: api.ReasonReadOnlyOID, Name: api.SysctlPrefix + k.name}
	}
	if k.min <= k.max && (v < k.min || v > k.max) {
		return api.Refused(api.StepSysctl, syscall.EINVAL)
	}
	return nil
}
