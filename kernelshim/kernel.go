// Package kernelshim is bsdcarp's OS adapter: everything the CARP engine asks
// of the operating system goes through the Kernel interface.
//
// Two implementations exist: NewLinux (netlink for links, addresses and
// macvlans, raw IP protocol 112 sockets for adverts, AF_PACKET for
// gratuitous ARP and unsolicited neighbour advertisements, /proc/sys for
// sysctls) and Memory, an in-memory kernel whose links can be attached to an
// in-memory L2 Segment shared with other Memory kernels, for unit and
// simulation tests of the engine.
package kernelshim

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"
)

// ErrNoLink is returned, wrapped, when a named link does not exist
// (errors.Is(err, ErrNoLink) works).
var ErrNoLink = errors.New("no such interface")

// ErrClosed is returned, wrapped, by operations on a closed Kernel, and by
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

// Kernel is what the engine needs from the operating system. Implementations
// are safe for concurrent use.
type Kernel interface {
	// Links returns every link of the namespace with its addresses.
	Links() ([]Link, error)
	// LinkByName returns one link; ErrNoLink-wrapped when missing.
	LinkByName(name string) (Link, error)
	// CreateMACVLAN creates a macvlan `name` on `parent`, mode bridge, with
	// MAC `mac`, IPv6 addr_gen_mode none (no link-local, no SLAAC), alias
	// OwnerAlias, admin up. If a link of that name already exists with alias
	// OwnerAlias it is deleted and re-created (leftover of a crashed engine);
	// if it exists and is not ours, an error is returned. A missing parent
	// gives an ErrNoLink-wrapped error.
	CreateMACVLAN(name, parent string, mac net.HardwareAddr) error
	// DeleteLink deletes a link; ErrNoLink-wrapped when missing.
	DeleteLink(name string) error
	// SetLinkUp sets the administrative state; ErrNoLink-wrapped when missing.
	SetLinkUp(name string, up bool) error
	// SetMTU sets a link's MTU; the kernel's refusal (EINVAL) is returned
	// wrapped, ErrNoLink-wrapped when missing.
	SetMTU(name string, mtu int) error
	// ReplaceAddr adds or refreshes an address with a valid and preferred
	// lifetime (whole seconds, rounded up, at least 1 s; 0 means permanent).
	// IPv6 addresses get IFA_F_NODAD. Used for virtual addresses so that
	// they expire from the kernel if the engine dies and stops refreshing.
	ReplaceAddr(link string, p netip.Prefix, lifetime time.Duration) error
	// DelAddr removes an address; a missing address is not an error, a
	// missing link is (ErrNoLink-wrapped).
	DelAddr(link string, p netip.Prefix) error
	// OpenCARP opens the raw protocol-112 sockets (IPv4 always; IPv6 too if
	// possible — an IPv6 failure is logged and only IPv4 is used) and
	// delivers received packets to onto until ctx ends or Close. onto is
	// never closed by the Kernel. Multicast loop is off, TTL / hop limit
	// 255 on send. Calling it twice is an error.
	OpenCARP(ctx context.Context, onto chan<- Packet) error
	// JoinGroup joins 224.0.0.18 (and ff02::12 when IPv6 is open) on the
	// named interface so that its adverts are received. Joining twice is not
	// an error. Needs OpenCARP first.
	JoinGroup(ifname string) error
	// LeaveGroup undoes JoinGroup; leaving a group not joined is not an error.
	LeaveGroup(ifname string) error
	// SendCARP sends payload as an IP protocol 112 packet to dst
	// (224.0.0.18, ff02::12 or a unicast peer) out of interface `out`, with
	// source address src, TTL / hop limit 255, TOS / traffic class tos, DF
	// set for IPv4 (total length 56 for a 36-byte payload). Needs OpenCARP.
	SendCARP(out string, src, dst netip.Addr, tos uint8, payload []byte) error
	// Announce sends, as a whole Ethernet frame on `link`, a gratuitous ARP
	// request (IPv4: sender = target = addr, sender hw = mac, to
	// ff:ff:ff:ff:ff:ff) or an unsolicited neighbour advertisement (IPv6:
	// from addr to ff02::1 / 33:33:00:00:00:01, Override flag, target
	// link-layer option = mac, hop limit 255).
	Announce(link string, mac net.HardwareAddr, addr netip.Addr) error
	// ListenARP delivers every ARP request received on any interface of
	// the namespace (not frames this host sends, not replies) to onto until
	// ctx ends or Close; onto is never closed by the Kernel. It is used
	// only for net.inet.carp.arpbalance; calling it again after the
	// previous ctx ended opens a new listener.
	ListenARP(ctx context.Context, onto chan<- ARPRequest) error
	// ReplyARP sends, as a whole Ethernet frame on `link`, an ARP reply
	// saying that addr is at mac, from mac to toMAC (toIP is the target
	// protocol address, the requester's).
	ReplyARP(link string, mac net.HardwareAddr, addr netip.Addr, toMAC net.HardwareAddr, toIP netip.Addr) error
	// WatchLinks delivers link changes to onto until ctx ends or Close (onto
	// is never closed by the Kernel). When the subscription fails it is
	// re-established and one LinkUpdate{Resync: true} is sent.
	WatchLinks(ctx context.Context, onto chan<- LinkUpdate) error
	// SetSysctl writes a /proc/sys value (path like
	// "net/ipv4/conf/em0/arp_ignore") and returns the previous value, trimmed.
	SetSysctl(path, value string) (old string, err error)
	// Close releases sockets and stops every goroutine the Kernel started.
	Close() error
}

// lifetimeSeconds converts a lifetime to whole seconds, rounded up, at least
// 1; 0 (or negative) means permanent and gives 0.
func lifetimeSeconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	s := int((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return s
}
