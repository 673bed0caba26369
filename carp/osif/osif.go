// Package osif holds the values that cross carpd's OS boundary: links and
// their updates, received CARP packets and ARP requests, address lifetimes,
// the boundary's errors and constants. The engine declares the interfaces
// that carry them (carp/engine/kernel.go); kernelshim implements them on
// Linux and kernelshim/memkernel in memory. Standard library only, so that
// the engine links neither netlink nor the Linux adapter.
package osif

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// ErrNoLink is returned, wrapped, when a named link does not exist
// (errors.Is(err, ErrNoLink) works).
var ErrNoLink = errors.New("no such interface")

// ErrClosed is returned, wrapped, by operations on a closed kernel, and by
// operations that need OpenCARP before it was called.
var ErrClosed = errors.New("kernelshim closed or not open")

// OwnerAlias is set as IFLA_IFALIAS on every link the shim creates, so a
// restarted engine can recognise (and clean up) links left by a crashed one.
const OwnerAlias = "bsdcarp"

// CARP multicast groups and protocol number.
var (
	GroupV4 = netip.MustParseAddr("224.0.0.18")
	GroupV6 = netip.MustParseAddr("ff02::12")
)

// Protocol is the IP protocol number of CARP (and VRRP).
const Protocol = 112

// LinkGroup is the link group (IFLA_GROUP, `ip link ... group N`) of the
// macvlans carpd creates: 0x43415250, "CARP" in ASCII, a number no admin
// picks by chance. carpd deletes the group in one request at stop when
// nothing else is in it (kernelshim's DeleteLinks).
const LinkGroup = 0x43415250

// Link is a snapshot of one network interface.
type Link struct {
	Name      string
	Index     int
	MAC       net.HardwareAddr
	MTU       int
	AdminUp   bool // IFF_UP
	Carrier   bool // IFF_LOWER_UP / oper state up
	Running   bool // IFF_RUNNING
	Promisc   bool
	Broadcast bool
	Multicast bool
	Loopback  bool
	// Kind is the rtnetlink link kind: "veth", "macvlan", "bridge", ...;
	// "" for links without one (physical NICs, loopback).
	Kind string
	// ParentIndex is IFLA_LINK: the lower device of a macvlan/vlan (for a
	// veth, the peer's index, which may live in another namespace).
	ParentIndex int
	Alias       string // IFLA_IFALIAS
	// Addrs holds all addresses of the link. netip.Prefix cannot carry a
	// zone, so IPv6 link-local prefixes are zoneless; their zone is Name.
	Addrs []netip.Prefix
}

// LinkUpdate is one change reported by WatchLinks.
type LinkUpdate struct {
	Link    Link
	Deleted bool
	// Resync is set (with an empty Link) when the subscription was
	// re-established after an error: updates may have been lost and the
	// caller must re-read Links().
	Resync bool
}

// Packet is one received CARP (IP protocol 112) packet.
type Packet struct {
	Payload  []byte // CARP bytes after the IP header (a private copy)
	Src, Dst netip.Addr
	IfIndex  int // arrival interface (IP_PKTINFO / IPV6_PKTINFO)
	// TTL is the IPv4 TTL (from the header) or the IPv6 hop limit
	// (IPV6_RECVHOPLIMIT); 0 when unknown.
	TTL  int
	IPv6 bool
	// ShortHeader is true when an IPv4 datagram's header was incomplete
	// (shorter than 20 bytes, not version 4, or a header length beyond
	// the datagram): Payload is then empty and the engine counts hdrops.
	ShortHeader bool
}

// Advert is one advert of a SendCARPs batch: the arguments SendCARP takes.
type Advert struct {
	Out      string // the link it leaves out of
	Src, Dst netip.Addr
	TOS      uint8
	Payload  []byte // the CARP (or VRRP) bytes after the IP header
}

// ARPRequest is one received ARP request (operation 1, Ethernet / IPv4).
type ARPRequest struct {
	// IfIndex is the interface the frame arrived on. A broadcast request
	// arrives on the parent and, in copies, on each macvlan on it; a
	// request sent to a macvlan's own MAC arrives on that macvlan only.
	IfIndex int
	// Broadcast is set when the Ethernet destination was ff:ff:ff:ff:ff:ff.
	Broadcast bool
	SenderMAC net.HardwareAddr // ARP sender hardware address
	SenderIP  netip.Addr       // ARP sender protocol address (0.0.0.0 for a probe)
	TargetIP  netip.Addr       // the address asked for
}

// LifetimeSeconds converts an address lifetime to the whole seconds an
// implementation installs: rounded up, at least 1; 0 (or negative) means
// permanent and gives 0.
func LifetimeSeconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	s := int((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return s
}

// Flags of an installed address (AddrLifetime.Flags): Linux's IFA_F_* values.
const (
	// AddrNoDAD is IFA_F_NODAD: no duplicate address detection (IPv6).
	AddrNoDAD = 0x02
	// AddrNoPrefixRoute is IFA_F_NOPREFIXROUTE: no prefix route for the
	// address's subnet (the parent of the link already routes it).
	AddrNoPrefixRoute = 0x200
)

// AddrLifetime is an address with a lifetime as ReplaceAddr installed it,
// which RefreshAddrs writes again with a fresh lifetime: everything a
// refresh needs, decided once at the install, so that a refresh looks
// nothing up.
type AddrLifetime struct {
	Index    int           // ifindex of the link that carries the address
	Prefix   netip.Prefix  // the address and its prefix length
	Lifetime time.Duration // valid and preferred lifetime (see LifetimeSeconds)
	Flags    uint32        // AddrNoDAD, AddrNoPrefixRoute as installed
}

// AddrError is the failure of one entry of a RefreshAddrs batch.
type AddrError struct {
	Entry int          // its position in the batch
	Addr  AddrLifetime // the entry
	Err   error        // why; wraps ErrNoLink when the link index is gone
}

func (e *AddrError) Error() string {
	return fmt.Sprintf("kernelshim: refresh %s on link index %d: %v", e.Addr.Prefix, e.Addr.Index, e.Err)
}

// Unwrap returns the cause.
func (e *AddrError) Unwrap() error { return e.Err }
