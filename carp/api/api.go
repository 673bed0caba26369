// Package api holds what carpd's engine and the BSD commands exchange over
// the control socket: ifconfig requests, the status snapshot and the typed
// refusals. It imports only the standard library, so that the commands
// (cmd/ifconfig-carp, cmd/carpctl-sysctl) link neither the engine nor the
// Linux adapter. The engine produces these values; carp/bsd alone turns them
// into the text a FreeBSD host prints.
package api

import (
	"net/netip"
	"strings"
)

// OpKind names one word (or word group) of an ifconfig command line, as the
// BSD grammar produced it. The engine applies the ops of one request in order,
// validating the whole request against its configuration before changing
// anything.
type OpKind string

// The ifconfig operations the engine understands. Dialect A (cloned carpN
// with carpdev), B (cloned carpN, parent found by subnet) and C (vhid on an
// address of a physical interface) all reduce to these.
const (
	OpCreate  OpKind = "create"  // ifconfig carpN create
	OpDestroy OpKind = "destroy" // ifconfig carpN destroy
	OpVHID    OpKind = "vhid"    // Int: 1..255
	OpPass    OpKind = "pass"    // Str: the key (cut to 19 bytes by the protocol)
	OpCarpdev OpKind = "carpdev" // Str: BSD name of the parent interface
	OpAdvBase OpKind = "advbase" // Int: 1..255
	OpAdvSkew OpKind = "advskew" // Int: 0..254
	OpState   OpKind = "state"   // Str: "init", "backup" or "master" (lower case)
	OpUp      OpKind = "up"      // administratively up
	OpDown    OpKind = "down"    // administratively down (MASTER bows out)
	OpAddr    OpKind = "addr"    // Prefix: add an address (Alias: keep existing ones)
	OpDelAddr OpKind = "-alias"  // Prefix: remove an address (the bits may be unknown: match the address)
	OpMTU     OpKind = "mtu"     // Int: set the MTU of a physical interface
	// FreeBSD 14's VRRPv3 mode and unicast peers (ifconfig carpver,
	// vrrpprio, vrrpinterval, peer, peer6, mcast, mcast6).
	OpVersion      OpKind = "carpver"      // Int: 2 (CARP) or 3 (VRRPv3)
	OpVRRPPrio     OpKind = "vrrpprio"     // Int: 1..254
	OpVRRPInterval OpKind = "vrrpinterval" // Int: centiseconds, 1..4095
	OpPeer         OpKind = "peer"         // Str: IPv4 peer; the CARP group 224.0.0.18 means multicast
	OpPeer6        OpKind = "peer6"        // Str: IPv6 peer; the CARP group ff02::12 means multicast
	// OpGroupDemote is OpenBSD's "ifconfig -g carp [-]carpdemote [N]": Int
	// is added to the carp group's demotion counter, which bsdcarp keeps as
	// net.inet.carp.demotion. Iface is the group name; it is the only op of
	// its request.
	OpGroupDemote OpKind = "carpdemote"
)

// The multicast destinations of adverts (the peers a vhid has until peer
// or peer6 names another), as ifconfig prints and takes them, and the
// largest vrrpinterval (the 12-bit field of RFC 9568).
const (
	MulticastPeer    = "224.0.0.18"
	MulticastPeer6   = "ff02::12"
	MaxVRRPInterval  = 4095
	MaxVRRPPriority  = 254
	DefaultVRRPPrio  = 100
	DefaultVRRPIntvl = 100
)

// Op is one parsed element of an ifconfig command line.
type Op struct {
	Kind OpKind `json:"kind"`
	// Int carries the numeric argument of vhid, advbase and advskew, exactly
	// as typed (range checks belong to the engine, which answers in BSD's words).
	Int int `json:"int,omitempty"`
	// Str carries the argument of pass, carpdev and state.
	Str string `json:"str,omitempty"`
	// Prefix is the address and mask of OpAddr / OpDelAddr.
	Prefix netip.Prefix `json:"prefix,omitzero"`
	// Alias is true when the line said "alias" (add without replacing).
	Alias bool `json:"alias,omitempty"`
}

// IfconfigRequest is one ifconfig command line for one interface.
type IfconfigRequest struct {
	Iface string `json:"iface"` // BSD name as typed: carp0, em0
	Ops   []Op   `json:"ops"`
}

// Knob is one node of the net.inet.carp sysctl tree.
type Knob struct {
	Name        string `json:"name"` // full oid: net.inet.carp.preempt
	Value       int64  `json:"value"`
	Description string `json:"descr"`
	ReadOnly    bool   `json:"ro,omitempty"`
}

// CloneStatus describes a cloned carpN interface (dialects A and B).
type CloneStatus struct {
	Name string `json:"name"`
	Up   bool   `json:"up"` // administrative state
	MTU  int    `json:"mtu"`
}

// VHIDStatus describes one virtual host as ifconfig shows it.
type VHIDStatus struct {
	Iface   string         `json:"iface"`   // interface the vhid is configured on (carp0, or em0 in dialect C)
	Carpdev string         `json:"carpdev"` // BSD name of the physical parent; "" when not known yet
	VHID    uint8          `json:"vhid"`
	AdvBase uint8          `json:"advbase"`
	AdvSkew uint8          `json:"advskew"`
	State   string         `json:"state"`         // INIT, BACKUP or MASTER
	Key     string         `json:"key,omitempty"` // only for root callers that asked for it (ifconfig -k)
	Addrs   []netip.Prefix `json:"addrs"`         // in configuration order
	// AuthMismatch is the address of a host whose adverts for this vhid
	// fail authentication (another key or address set: both may be
	// MASTER), while it keeps sending them; "" otherwise.
	AuthMismatch string `json:"auth_mismatch,omitempty"`
	// InitReason says why a vhid in INIT cannot leave it, as one of the
	// Init* words below; "" when the vhid is not in INIT. FreeBSD's
	// ifconfig prints no such thing: carp/bsd does not show it.
	InitReason string `json:"init_reason,omitempty"`
	// Version is 3 for a VRRPv3 vhid (carpver 3), with its Priority and
	// Interval (centiseconds); 0 or 2 for CARP.
	Version  uint8  `json:"version,omitempty"`
	Priority uint8  `json:"vrrp_prio,omitempty"`
	Interval uint16 `json:"vrrp_interval,omitempty"`
	// Peer and Peer6 are where the adverts of each family go (ifconfig
	// peer, peer6); "" means the multicast group.
	Peer  string `json:"peer,omitempty"`
	Peer6 string `json:"peer6,omitempty"`
	// Detail is set when the query asked for it (StatusQuery.Detail).
	Detail *VHIDDetail `json:"detail,omitempty"`
}

// PeerLine returns the peers of v as FreeBSD prints them on the line after
// a CARP vhid's: "peer 224.0.0.18 peer6 ff02::12" for multicast.
func (v *VHIDStatus) PeerLine() string {
	p, p6 := v.Peer, v.Peer6
	if p == "" {
		p = MulticastPeer
	}
	if p6 == "" {
		p6 = MulticastPeer6
	}
	return "peer " + p + " peer6 " + p6
}

// The words of VHIDStatus.InitReason, stable for scripts. They follow the
// conditions of FreeBSD's carp_setrun() in the order they are checked: a
// vhid for which several hold reports the first.
const (
	InitCarpDisabled = "carp_disabled" // net.inet.carp.allow is 0
	InitNoAddress    = "no_address"    // the vhid has no virtual address
	InitNoParent     = "no_parent"     // carpdev unknown (dialect B: no interface in the address's subnet) or its link not found
	InitAdminDown    = "admin_down"    // the interface is down by the admin (ifconfig carpN down)
	InitParentDown   = "parent_down"   // the parent interface is administratively down
	InitNoCarrier    = "no_carrier"    // the parent interface has no carrier
	InitNoVlink      = "vlink_failed"  // the macvlan with the virtual MAC could not be created
)

// LinkStatus is one host interface as ifconfig shows it, by the admin's
// (BSD) name. Virtual addresses of vhids are not in Addrs: they come from
// VHIDs, which are the configuration's truth in every state.
type LinkStatus struct {
	Name      string         `json:"name"` // BSD name (after the interface map)
	Index     int            `json:"index"`
	MAC       string         `json:"mac,omitempty"` // "00:0c:29:aa:bb:cc"; empty for links without one
	MTU       int            `json:"mtu"`
	Up        bool           `json:"up"`      // IFF_UP
	Running   bool           `json:"running"` // IFF_RUNNING
	Carrier   bool           `json:"carrier"` // LOWER_UP: "status: active" / "no carrier"
	Broadcast bool           `json:"broadcast"`
	Multicast bool           `json:"multicast"`
	Loopback  bool           `json:"loopback"`
	Promisc   bool           `json:"promisc"`
	Kind      string         `json:"kind,omitempty"` // Linux kind: veth, bridge, "" for hardware
	Addrs     []netip.Prefix `json:"addrs"`          // kernel addresses, in kernel order; IPv6 link-local without zone
}

// Status is a snapshot of the engine for the BSD commands.
type Status struct {
	Links  []LinkStatus  `json:"links"`  // host interfaces in ifindex order, without the links carpd made
	Clones []CloneStatus `json:"clones"` // in creation order
	VHIDs  []VHIDStatus  `json:"vhids"`  // in creation order
	Knobs  []Knob        `json:"knobs"`  // in declaration order
	Stats  []Counter     `json:"stats"`  // carpstats, in struct carpstats order, then bsdcarp's own ("replay")
	// Demotion is set when the query asked for details (StatusQuery.Detail).
	Demotion *Demotion `json:"demotion,omitempty"`
}

// Counter is one carpstats counter.
type Counter struct {
	Name  string `json:"name"` // field name without the carps_ prefix: ipackets, badauth, ...
	Value uint64 `json:"value"`
}

// The states a vhid reports in VHIDStatus.State, as ifconfig prints them.
// OpState takes them in lower case.
const (
	StateInit   = "INIT"
	StateBackup = "BACKUP"
	StateMaster = "MASTER"
)

// IsState reports whether s names a state, in any case, as the argument
// of ifconfig's "state" does.
func IsState(s string) bool {
	s = strings.ToUpper(s)
	return s == StateInit || s == StateBackup || s == StateMaster
}

// Step is the kernel request a FreeBSD host makes first for this line: the
// one a refusal of the whole line (a user who is not root) is reported as.
func (r IfconfigRequest) Step() Step {
	if len(r.Ops) == 0 {
		return StepSetVHID
	}
	switch r.Ops[0].Kind {
	case OpCreate:
		return StepCreate
	case OpDestroy:
		return StepDestroy
	case OpAddr:
		return StepAddAddr
	case OpDelAddr:
		return StepDelAddr
	case OpUp:
		return StepSetUp
	case OpDown:
		return StepSetDown
	case OpGroupDemote:
		return StepGroupAttr
	case OpMTU:
		return StepSetMTU
	}
	return StepSetVHID
}

// StatusQuery says what a status request wants: the keys (root callers
// that asked, ifconfig -k), one interface only (ifconfig IF), or no
// interfaces at all (sysctl, netstat: knobs and counters). The engine
// builds only what is wanted.
type StatusQuery struct {
	ShowKeys bool
	Iface    string // one interface (BSD name) with its vhids; "" for all
	NoIfaces bool   // knobs and counters only
	Detail   bool   // per-vhid VHIDDetail and the host's Demotion (--json, metrics)
}

// Wants reports whether the interface named name (a link, a clone, or the
// interface a vhid is configured on) belongs in the answer.
func (q StatusQuery) Wants(name string) bool {
	return !q.NoIfaces && (q.Iface == "" || q.Iface == name)
}

// Narrow keeps of st what q wants, in new slices (st's may be shared).
func (q StatusQuery) Narrow(st Status) Status {
	st.Links = keep(st.Links, func(l LinkStatus) bool { return q.Wants(l.Name) })
	st.Clones = keep(st.Clones, func(c CloneStatus) bool { return q.Wants(c.Name) })
	st.VHIDs = keep(st.VHIDs, func(v VHIDStatus) bool { return q.Wants(v.Iface) })
	return st
}

// keep returns the elements of s for which f holds, in a new slice.
func keep[T any](s []T, f func(T) bool) []T {
	var out []T
	for _, x := range s {
		if f(x) {
			out = append(out, x)
		}
	}
	return out
}
