package engine

import (
	"context"
	"net"
	"net/netip"
	"time"

	"github.com/bsdcarp/bsdcarp/carp/osif"
)

// The engine's view of the operating system, declared here by its consumer.
// carpd passes a *kernelshim.Linux; tests pass a *memkernel.Memory. Package
// kernelshim/kerneltest checks that both keep this contract alike.
// Implementations are safe for concurrent use.

// Links is the part of the kernel that lists links and changes them and
// their addresses.
type Links interface {
	// Links returns every link of the namespace with its addresses.
	Links() ([]osif.Link, error)
	// LinkByName returns one link with its addresses; ErrNoLink-wrapped
	// when missing.
	LinkByName(name string) (osif.Link, error)
	// CreateMACVLAN creates a macvlan `name` on `parent`, mode bridge, with
	// MAC `mac`, IPv6 addr_gen_mode none (no link-local, no SLAAC), alias
	// osif.OwnerAlias, admin up. A link of that name left by a
	// crashed engine (alias OwnerAlias, or a macvlan without alias with
	// exactly this MAC) is deleted and re-created; any other link of that
	// name is refused with an error. A missing parent gives an
	// ErrNoLink-wrapped error.
	CreateMACVLAN(name, parent string, mac net.HardwareAddr) error
	// DeleteLink deletes a link; ErrNoLink-wrapped when missing.
	DeleteLink(name string) error
	// DeleteLinks deletes links as DeleteLink does each, faster where the
	// kernel can delete them together; the errors of the links it could
	// not delete are joined (errors.Join).
	DeleteLinks(names []string) error
	// SetLinkUp sets the administrative state; ErrNoLink-wrapped when missing.
	SetLinkUp(name string, up bool) error
	// SetMTU sets a link's MTU; the kernel's refusal (EINVAL) is returned
	// wrapped, ErrNoLink-wrapped when missing.
	SetMTU(name string, mtu int) error
	// ReplaceAddr adds or replaces an address with a valid and preferred
	// lifetime (osif.LifetimeSeconds; 0 means permanent). IPv6
	// addresses get osif.AddrNoDAD; an address on a macvlan whose
	// parent has an address of the same family whose subnet contains it
	// gets osif.AddrNoPrefixRoute (the parent already routes that
	// subnet). It returns the address as installed (link index, flags)
	// for RefreshAddrs. Used for virtual addresses so that they expire
	// from the kernel if the engine dies and stops refreshing.
	ReplaceAddr(link string, p netip.Prefix, lifetime time.Duration) (osif.AddrLifetime, error)
	// RefreshAddrs writes every entry of batch (as ReplaceAddr returned
	// it, with the lifetime to set) again in one go: valid and preferred
	// lifetime set to Lifetime from now, the flags as given, an address
	// missing from its link added again. It looks nothing up. It returns
	// nil, or an error joining (errors.Join) one *osif.AddrError per
	// entry not refreshed (wrapping ErrNoLink when the link index no longer
	// exists; the other entries are refreshed all the same) and, when the
	// kernel could not be asked or answered, one error saying so.
	RefreshAddrs(batch []osif.AddrLifetime) error
	// DelAddr removes an address; a missing address is not an error, a
	// missing link is (ErrNoLink-wrapped).
	DelAddr(link string, p netip.Prefix) error
}

// CARPIO is the part of the kernel that sends and receives adverts and
// announces addresses.
type CARPIO interface {
	// OpenCARP opens the raw protocol-112 sockets (IPv4 always; IPv6 too if
	// possible — an IPv6 failure is logged and only IPv4 is used) and
	// delivers received packets to onto until ctx ends or the kernel is
	// closed. onto is never closed by the kernel. Multicast loop is off,
	// TTL / hop limit 255 on send. Calling it twice is an error.
	OpenCARP(ctx context.Context, onto chan<- osif.Packet) error
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
	// SendCARPs sends every advert of ads as SendCARP would, and sets
	// errs[i] (len(errs) >= len(ads)) to what SendCARP would have
	// returned for ads[i]: a failed advert does not stop the others. It
	// exists for the cost of a round of many vhids: on Linux the adverts
	// that leave as frames go out a batch per system call (sendmmsg).
	SendCARPs(ads []osif.Advert, errs []error)
	// Announce sends, as a whole Ethernet frame on `link`'s wire (out of
	// the parent of a macvlan, with no copy to the parent's other
	// macvlans), a gratuitous ARP request (IPv4: sender = target = addr,
	// sender hw = mac, to ff:ff:ff:ff:ff:ff) or an unsolicited neighbour
	// advertisement (IPv6: from addr to ff02::1 / 33:33:00:00:00:01,
	// Override flag, target link-layer option = mac, hop limit 255).
	Announce(link string, mac net.HardwareAddr, addr netip.Addr) error
}

// ARP is the part of the kernel that answers ARP requests itself, used only
// for net.inet.carp.arpbalance.
type ARP interface {
	// ListenARP delivers every ARP request received on any interface of
	// the namespace (not frames this host sends, not replies) to onto until
	// ctx ends or the kernel is closed; onto is never closed by the kernel.
	// A broadcast one macvlan sends is received by the other macvlans on
	// its parent (bridge mode), so it is delivered once for each of them.
	// Calling it again after the previous ctx ended opens a new listener.
	ListenARP(ctx context.Context, onto chan<- osif.ARPRequest) error
	// ReplyARP sends, as a whole Ethernet frame on `link`, an ARP reply
	// saying that addr is at mac, from mac to toMAC (toIP is the target
	// protocol address, the requester's).
	ReplyARP(link string, mac net.HardwareAddr, addr netip.Addr, toMAC net.HardwareAddr, toIP netip.Addr) error
}

// LinkWatcher is the part of the kernel that reports link changes.
type LinkWatcher interface {
	// WatchLinks delivers link changes to onto until ctx ends or the kernel
	// is closed (onto is never closed by the kernel). When the subscription
	// fails it is re-established and one LinkUpdate{Resync: true} is sent.
	WatchLinks(ctx context.Context, onto chan<- osif.LinkUpdate) error
}

// Sysctls is the part of the kernel that writes /proc/sys values.
type Sysctls interface {
	// SetSysctl writes a /proc/sys value (path like
	// "net/ipv4/conf/em0/arp_ignore") and returns the previous value, trimmed.
	SetSysctl(path, value string) (old string, err error)
}

// Kernel is everything the engine asks of the operating system. The engine
// never closes it: its owner does, after Run has returned.
type Kernel interface {
	Links
	CARPIO
	ARP
	LinkWatcher
	Sysctls
}
