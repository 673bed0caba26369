package engine

import (
	"maps"
	"net/netip"
	"slices"

	"github.com/bsdcarp/bsdcarp/carp"
)

// Config is the engine's whole configuration: what `ifconfig` and `sysctl`
// were told. It is the truth that ifconfig prints in every state and what is
// saved in the state directory, so a restarted carpd comes back as it was.
type Config struct {
	// Version of the on-disk format.
	Version int `json:"version"`
	// Knobs holds the writable net.inet.carp values that differ from their
	// defaults, keyed by leaf name (preempt, log, ...).
	Knobs map[string]int64 `json:"knobs,omitempty"`
	// Ifaces lists the interfaces that carry carp configuration, in creation
	// order: cloned carpN interfaces (dialects A and B) and physical
	// interfaces with vhids on their addresses (dialect C).
	Ifaces []IfaceConfig `json:"ifaces,omitempty"`

	// valid: Validate found nothing wrong with this configuration (as
	// loaded, or as a line left it), which no one changes in place.
	valid bool
}

// IfaceConfig is one interface as ifconfig knows it.
type IfaceConfig struct {
	Name  string `json:"name"`  // BSD name: carp0, em0
	Clone bool   `json:"clone"` // created with `ifconfig carpN create`
	Down  bool   `json:"down"`  // administratively down (clones only)
	// VHIDs in creation order. A clone has at most one; its VHID may be 0
	// while only addresses or a carpdev have been set.
	VHIDs []VHIDConfig `json:"vhids,omitempty"`
}

// VHIDConfig is one virtual host.
type VHIDConfig struct {
	VHID uint8 `json:"vhid"`
	// Carpdev is the BSD name of the physical parent. Empty for a dialect B
	// clone, whose parent is the interface with an address in the subnet of
	// the virtual address.
	Carpdev string         `json:"carpdev,omitempty"`
	AdvBase uint8          `json:"advbase"`
	AdvSkew uint8          `json:"advskew"`
	Key     string         `json:"key,omitempty"`
	Addrs   []netip.Prefix `json:"addrs,omitempty"`
	// Version is 3 for a VRRPv3 vhid (ifconfig carpver 3); 0 (as saved
	// before VRRP) or 2 for CARP. It cannot change once the vhid exists.
	Version uint8 `json:"carpver,omitempty"`
	// Prio and Interval (centiseconds) of a VRRPv3 vhid; 0 means the
	// default (VRRPDefaultPriority, VRRPDefaultInterval).
	Prio     uint8  `json:"vrrpprio,omitempty"`
	Interval uint16 `json:"vrrpinterval,omitempty"`
	// Peer and Peer6 are the unicast peers adverts of each family go to
	// (ifconfig peer, peer6); unset means the multicast group.
	Peer  netip.Addr `json:"peer,omitzero"`
	Peer6 netip.Addr `json:"peer6,omitzero"`
}

// isVRRP reports whether v runs VRRPv3 rather than CARP.
func (v *VHIDConfig) isVRRP() bool { return v.Version == carp.VRRPVersion }

// vrrpPrio is v's VRRPv3 priority, the default when unset.
func (v *VHIDConfig) vrrpPrio() uint8 {
	if v.Prio == 0 {
		return carp.VRRPDefaultPriority
	}
	return v.Prio
}

// vrrpInterval is v's VRRPv3 interval in centiseconds, the default when
// unset.
func (v *VHIDConfig) vrrpInterval() uint16 {
	if v.Interval == 0 {
		return carp.VRRPDefaultInterval
	}
	return v.Interval
}

// advertDst is where v's adverts of a family go: its unicast peer, or the
// CARP group.
func (v *VHIDConfig) advertDst(ipv6 bool) netip.Addr {
	if ipv6 {
		if v.Peer6.IsValid() {
			return v.Peer6
		}
		return carp.GroupV6
	}
	if v.Peer.IsValid() {
		return v.Peer
	}
	return carp.GroupV4
}

// Defaults from carp(4).
const (
	DefaultAdvBase = 1
	DefaultAdvSkew = 0
	configVersion  = 1
)

func (c *Config) clone() *Config {
	n := &Config{Version: c.Version, Knobs: make(map[string]int64, len(c.Knobs))}
	for k, v := range c.Knobs {
		n.Knobs[k] = v
	}
	for _, ifc := range c.Ifaces {
		n.Ifaces = append(n.Ifaces, ifc.clone())
	}
	return n
}

// cloneFor is a copy of c in which interface name (if present) may be
// changed: that one gets its own vhids, the others share theirs with c,
// which no one changes in place (a change is a new Config). The vhids of
// name share their addresses with c too, clipped so that an append makes
// a new array: whoever changes an address in place clones them first
// (ownAddrs).
func (c *Config) cloneFor(name string) *Config {
	n := &Config{Version: c.Version, Knobs: maps.Clone(c.Knobs), Ifaces: slices.Clone(c.Ifaces)}
	if n.Knobs == nil {
		n.Knobs = map[string]int64{}
	}
	for i := range n.Ifaces {
		if ifc := &n.Ifaces[i]; ifc.Name == name {
			ifc.VHIDs = slices.Clone(ifc.VHIDs)
			for j := range ifc.VHIDs {
				ifc.VHIDs[j].Addrs = slices.Clip(ifc.VHIDs[j].Addrs)
			}
		}
	}
	return n
}

// ownAddrs gives v addresses of its own before one of them is changed in
// place (see cloneFor).
func (v *VHIDConfig) ownAddrs() { v.Addrs = slices.Clone(v.Addrs) }

// clone is a deep copy of ifc.
func (ifc IfaceConfig) clone() IfaceConfig {
	ni := ifc
	ni.VHIDs = make([]VHIDConfig, len(ifc.VHIDs))
	for i, v := range ifc.VHIDs {
		v.Addrs = slices.Clone(v.Addrs)
		ni.VHIDs[i] = v
	}
	return ni
}

func (c *Config) iface(name string) *IfaceConfig {
	for i := range c.Ifaces {
		if c.Ifaces[i].Name == name {
			return &c.Ifaces[i]
		}
	}
	return nil
}

func (c *Config) removeIface(name string) {
	c.Ifaces = slices.DeleteFunc(c.Ifaces, func(i IfaceConfig) bool { return i.Name == name })
}

func (v *VHIDConfig) hasAddr(p netip.Prefix) int {
	for i, a := range v.Addrs {
		if a.Addr() == p.Addr() {
			return i
		}
	}
	return -1
}

// addrs returns the bare virtual addresses, as the HMAC covers them.
func (v *VHIDConfig) addrs() []netip.Addr {
	out := make([]netip.Addr, 0, len(v.Addrs))
	for _, p := range v.Addrs {
		out = append(out, p.Addr())
	}
	return out
}

func (v *VHIDConfig) families() (v4, v6 bool) {
	for _, p := range v.Addrs {
		if p.Addr().Is4() {
			v4 = true
		} else {
			v6 = true
		}
	}
	return v4, v6
}
