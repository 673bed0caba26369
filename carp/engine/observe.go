package engine

import (
	"net/netip"
	"time"

	"github.com/bsdcarp/bsdcarp/carp"
	"github.com/bsdcarp/bsdcarp/carp/api"
	"github.com/bsdcarp/bsdcarp/carp/osif"
)

// vhidCounters is the per-vhid bookkeeping behind the detailed status
// (api.VHIDDetail): fixed-size fields the event loop bumps in O(1),
// without allocating, on each advert.
type vhidCounters struct {
	since       time.Time // last state change, or when the vhost was made
	transitions uint64
	toMaster    uint64
	advIn       uint64
	advOut      uint64
	drops       [carp.DropReplay + 1]uint64 // by carp.Drop
	master      netip.Addr                  // source of the last advert that left (or kept) the vhid BACKUP
	masterAt    time.Time
}

// vhidDropIndex maps api.VHIDDropNames to the carp.Drop they count.
var vhidDropIndex = [len(api.VHIDDropNames)]carp.Drop{carp.DropBadTTL, carp.DropBadSum, carp.DropBadVer, carp.DropBadLen, carp.DropBadAuth, carp.DropReplay}

// noteDrop counts a dropped packet against the vhid it carried the number
// of: h when the validation found it, else the vhid of the header's vhid
// byte on dev, if there is one (a bad checksum or length is checked before
// the vhid is looked up).
func (e *Engine) noteDrop(h *vhost, d carp.Drop, dev string, p osif.Packet) {
	if d <= carp.DropHdr || d > carp.DropReplay {
		return // not a drop, or not one a vhid can be told for
	}
	if h == nil && len(p.Payload) >= 2 {
		h = e.hostFor(p.Payload[1], dev, p.IPv6)
	}
	if h != nil {
		h.obs.drops[d]++
	}
}

// noteHeard records an accepted advert from src at now: counted in, and,
// when h is BACKUP after it, the MASTER h follows.
func (h *vhost) noteHeard(now time.Time, src netip.Addr) {
	h.obs.advIn++
	if h.m.State() == carp.Backup {
		h.obs.master, h.obs.masterAt = src.WithZone(""), now
	}
}

// detail is h's api.VHIDDetail.
func (h *vhost) detail() *api.VHIDDetail {
	d := &api.VHIDDetail{
		Since: h.obs.since, Transitions: h.obs.transitions, ToMaster: h.obs.toMaster,
		AdvertsIn: h.obs.advIn, AdvertsOut: h.obs.advOut,
		MasterAddr: h.obs.master, MasterAt: h.obs.masterAt,
		IfDown: h.suppressed, SendErr: h.senderr,
	}
	for i, drop := range vhidDropIndex {
		d.Drops[i] = h.obs.drops[drop]
	}
	return d
}

// idleDetail is the detail of a configured vhid that is not running (no
// vhost): nothing counted since carpd started.
func (e *Engine) idleDetail() *api.VHIDDetail {
	h := vhost{obs: vhidCounters{since: e.started}}
	return h.detail()
}

// demotionStatus is the effective demotion and its parts.
func (e *Engine) demotionStatus() *api.Demotion {
	f := e.demotionFacts()
	return &api.Demotion{
		Effective: int64(f.effective()), Knob: f.knob,
		IfDown: int64(f.ifdown) * f.ifdownFactor, SendErr: int64(f.senderr) * f.senderrFactor,
		IfDownVHIDs: f.ifdown, SendErrVHIDs: f.senderr,
	}
}
