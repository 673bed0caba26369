package api

import (
	"net/netip"
	"time"
)

// VHIDDetail is what the engine adds to a VHIDStatus when the status
// query asks for details (StatusQuery.Detail): the per-vhid bookkeeping
// behind `ifconfig-carp --json` and carpd's metrics. The counters start at
// zero when the vhid starts running in this carpd (a restart, or a change
// that replaces the vhid, starts them again).
type VHIDDetail struct {
	// Since is when the vhid last changed state (or started running, or,
	// for a vhid that never ran, when carpd started).
	Since       time.Time `json:"since"`
	Transitions uint64    `json:"transitions"` // state changes
	ToMaster    uint64    `json:"to_master"`   // of which to MASTER
	AdvertsIn   uint64    `json:"adverts_in"`  // adverts accepted for this vhid
	AdvertsOut  uint64    `json:"adverts_out"` // adverts sent (one per address family)
	// Drops counts the adverts dropped that carried this vhid's number on
	// its carpdev, by reason: Drops[i] is of VHIDDropNames[i] (an array of
	// numbers keeps 255 vhids well inside a control message).
	Drops [len(VHIDDropNames)]uint64 `json:"drops"`
	// MasterAddr and MasterAt are the source and arrival time of the last
	// advert after which this vhid was BACKUP: the MASTER it follows.
	// Zero until one is heard.
	MasterAddr netip.Addr `json:"master_addr,omitzero"`
	MasterAt   time.Time  `json:"master_at,omitzero"`
	// IfDown is set while this vhid counts in the interface-down demotion
	// (its parent is down); SendErr while it counts in the send-error one.
	IfDown  bool `json:"ifdown"`
	SendErr bool `json:"senderr"`
}

// VHIDDropNames are the drop reasons counted per vhid, as carpstats names
// them. Only these can be told apart per vhid: badvhid, badif and hdrops
// are packets that belong to no configured vhid (host-wide only).
var VHIDDropNames = [...]string{StatBadTTL, StatBadSum, StatBadVer, StatBadLen, StatBadAuth, StatReplay}

// Demotion is what the effective net.inet.carp.demotion is made of: the
// value written by sysctl or carpdemote, plus ifdown_demotion_factor for
// each vhid whose parent is down, plus senderr_demotion_factor for each
// vhid that cannot send.
type Demotion struct {
	Effective    int64 `json:"effective"`
	Knob         int64 `json:"knob"`          // written by sysctl / carpdemote
	IfDown       int64 `json:"ifdown"`        // IfDownVHIDs * ifdown_demotion_factor
	SendErr      int64 `json:"senderr"`       // SendErrVHIDs * senderr_demotion_factor
	IfDownVHIDs  int   `json:"ifdown_vhids"`  // vhids with their parent down
	SendErrVHIDs int   `json:"senderr_vhids"` // vhids that failed to send 3 times in a row
}
