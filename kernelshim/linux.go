// Package kernelshim is bsdcarp's Linux adapter: Linux, the implementation
// of the engine's kernel interfaces (carp/engine/kernel.go) that carpd runs
// on: netlink for links, addresses and macvlans, raw IP protocol 112 sockets
// to receive adverts (and send unicast ones), AF_PACKET to send multicast
// adverts, gratuitous ARP and unsolicited neighbour advertisements,
// /proc/sys for sysctls. The values it exchanges are
// package carp/osif's; the in-memory kernel for tests is package
// kernelshim/memkernel, and package kernelshim/kerneltest holds the contract
// both must meet.
//go:build linux

package kernelshim

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/bsdcarp/bsdcarp/carp/osif"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// readBufSize bounds every read of the raw sockets. A CARP advert is 56
// bytes (IPv4) or 36 (IPv6 payload); anything longer is delivered truncated
// and left to the caller's validation.
const readBufSize = 1500 + 512

// readBatch is how many datagrams a reader takes from its socket in one
// recvmmsg: adverts queued together cost one wake-up of the reader.
const readBatch = 16

// errorPause is how long a reader waits after a receive error, and the link
// watcher between attempts to resubscribe, so that a lasting error does not
// make it spin.
const errorPause = 100 * time.Millisecond

// Netlink subscriptions: updateQueue updates wait between the netlink
// goroutine and the watcher, and the socket's receive buffer of
// netlinkRcvBuf bytes holds a burst of messages (carpd creating or removing
// a macvlan per vhid at start or stop) so that the kernel does not drop
// them with ENOBUFS, which breaks the subscription and costs a resync.
const (
	updateQueue   = 64
	netlinkRcvBuf = 1 << 20
)

// Linux is the kernel adapter carpd runs on. It remembers the network namespace it was
// created in and performs every namespace-sensitive operation (socket
// creation, /proc/sys access, netlink subscriptions) there, whatever OS
// thread the caller happens to run on.
type Linux struct {
	h     *netlink.Handle
	hmu   sync.Mutex // serialises requests on h
	nsFd  int        // the namespace NewLinux ran in
	nsID  nsID
	log   *slog.Logger
	close chan struct{}
	wg    sync.WaitGroup

	mu     sync.Mutex
	closed bool
	opened bool
	c4     *net.IPConn
	r4     *ipv4.RawConn
	c6     *net.IPConn
	p6     *ipv6.PacketConn
	rcv    []*batchReader // the receive sockets' readers (see recv_linux.go)
	pktFd  int            // AF_PACKET send socket (Announce, ReplyARP, SendCARP), -1 until first use
	subs   map[*subscription]struct{}
	ours   map[int]bool // ifindexes of the macvlans this kernel created

	// Address notifications the link watch read, and those of them about
	// our own links (which its socket filter should have dropped), for tests.
	addrNotes, ownAddrNotes atomic.Uint64
	// linkLookups counts netlink link lookups by name (nlLink), for tests.
	linkLookups atomic.Uint64
	// filterStale: a macvlan was made since the address watch's filters
	// were last built (written under mu; see refilter).
	filterStale atomic.Bool

	// RefreshAddrs's netlink socket (-1 until first use), its next
	// sequence number and buffers, under rmu (see refresh_linux.go).
	rmu  sync.Mutex
	rfd  int
	rseq uint32
	wbuf []byte
	rbuf []byte

	// sendLinks caches what SendCARP, Announce and ReplaceAddr need of
	// the links they use, so that an advert costs one sendmsg and no
	// netlink round trip; an entry is dropped when a send through it fails
	// (the link was re-created) and when carpd changes the link, and
	// replaced by what a link update says of it (see updateSendLink).
	smu       sync.Mutex
	sendLinks map[string]sendLink
	sendNames map[int]string // sendNames[sl.index] is the name of each entry sl

	// fmu guards the buffer and address multicast adverts are built in
	// and sent from on the AF_PACKET socket (see sendFrame).
	fmu   sync.Mutex
	frame []byte
	rsa   unix.RawSockaddrLinklayer
	batch frameBatch // SendCARPs' frames (see sendbatch_linux.go)
	// mmsgCalls counts SendCARPs' sendmmsg calls, for the tests.
	mmsgCalls atomic.Int64

	dellinks atomic.Int64 // RTM_DELLINK requests sent, for the tests
	addrMsgs atomic.Int64 // addresses addrsOf received, for the tests

	// parentCovers' dump of every address, and when it was taken (amu).
	amu     sync.Mutex
	addrs   map[int][]netip.Prefix
	addrsAt time.Time
}

type nsID struct{ dev, ino uint64 }

func nsOf(path string) (nsID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return nsID{}, err
	}
	return nsID{uint64(st.Dev), st.Ino}, nil
}

// NewLinux returns the Linux adapter, bound to the network namespace of the
// calling OS thread (for an ordinary process: the process's namespace). It
// logs what it cannot report as an error (a receive failure, a lost link
// subscription) to lg, with component=kernelshim; nil discards them. It is
// safe for concurrent use.
func NewLinux(lg *slog.Logger) (*Linux, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("kernelshim: open network namespace: %w", err)
	}
	id, err := nsOf("/proc/thread-self/ns/net")
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("kernelshim: stat network namespace: %w", err)
	}
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("kernelshim: netlink handle: %w", err)
	}
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	return &Linux{h: h, nsFd: fd, nsID: id, log: lg.With("component", "kernelshim"),
		close: make(chan struct{}), pktFd: -1, rfd: -1}, nil
}

// inNS runs f on an OS thread that is in the adapter's network namespace.
func (k *Linux) inNS(f func() error) error {
	runtime.LockOSThread()
	if id, err := nsOf("/proc/thread-self/ns/net"); err == nil && id == k.nsID {
		defer runtime.UnlockOSThread()
		return f()
	}
	runtime.UnlockOSThread()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open current namespace: %w", err)
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(k.nsFd, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns: %w", err)
			return
		}
		ferr := f()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err == nil {
			runtime.UnlockOSThread()
		} // else: leave the thread locked; it dies with this goroutine.
		errc <- ferr
	}()
	return <-errc
}

func (k *Linux) isClosed() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.closed
}

// withHandle runs f with the netlink handle, serialised.
func (k *Linux) withHandle(f func(h *netlink.Handle) error) error {
	k.hmu.Lock()
	defer k.hmu.Unlock()
	if k.isClosed() {
		return osif.ErrClosed
	}
	return f(k.h)
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV)
}

func (k *Linux) nlLink(name string) (netlink.Link, error) {
	k.linkLookups.Add(1)
	var l netlink.Link
	err := k.withHandle(func(h *netlink.Handle) error {
		var err error
		l, err = h.LinkByName(name)
		return err
	})
	if err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("%s: %w", name, osif.ErrNoLink)
		}
		return nil, err
	}
	return l, nil
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	ip := n.IP
	if v4 := ip.To4(); v4 != nil {
		ip = v4
	}
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a, ones), true
}

func ipNetOf(p netip.Prefix) *net.IPNet {
	a := p.Addr().Unmap()
	bits := a.BitLen()
	return &net.IPNet{IP: net.IP(a.AsSlice()), Mask: net.CIDRMask(p.Bits(), bits)}
}

// retryDump repeats a netlink dump interrupted by a concurrent change.
func retryDump(f func() error) error {
	var err error
	for range 5 {
		if err = f(); !errors.Is(err, netlink.ErrDumpInterrupted) {
			return err
		}
	}
	return err
}

func (k *Linux) addrsByIndex(index int) (map[int][]netip.Prefix, error) {
	out := map[int][]netip.Prefix{}
	if index > 0 {
		err := retryDump(func() error {
			clear(out)
			ps, err := k.addrsOf(index)
			if len(ps) > 0 {
				out[index] = ps
			}
			return err
		})
		return out, err
	}
	err := k.withHandle(func(h *netlink.Handle) error {
		return retryDump(func() error {
			clear(out)
			var link netlink.Link
			if index > 0 {
				link = &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: index}}
			}
			as, err := h.AddrList(link, netlink.FAMILY_ALL)
			if err != nil {
				return err
			}
			for _, a := range as {
				if p, ok := prefixOf(a.IPNet); ok {
					out[a.LinkIndex] = append(out[a.LinkIndex], p)
				}
			}
			return nil
		})
	})
	return out, err
}

func convertLink(l netlink.Link) osif.Link {
	a := l.Attrs()
	kind := l.Type()
	if kind == "device" {
		kind = ""
	}
	var mac net.HardwareAddr
	if len(a.HardwareAddr) > 0 {
		mac = append(net.HardwareAddr(nil), a.HardwareAddr...)
	}
	return osif.Link{
		Name:        a.Name,
		Index:       a.Index,
		MAC:         mac,
		MTU:         a.MTU,
		AdminUp:     a.RawFlags&unix.IFF_UP != 0,
		Carrier:     a.RawFlags&unix.IFF_LOWER_UP != 0 || a.OperState == netlink.OperUp,
		Running:     a.RawFlags&unix.IFF_RUNNING != 0,
		Promisc:     a.RawFlags&unix.IFF_PROMISC != 0,
		Broadcast:   a.RawFlags&unix.IFF_BROADCAST != 0,
		Multicast:   a.RawFlags&unix.IFF_MULTICAST != 0,
		Loopback:    a.RawFlags&unix.IFF_LOOPBACK != 0,
		Kind:        kind,
		ParentIndex: a.ParentIndex,
		Alias:       a.Alias,
	}
}

// Links returns every link of the namespace with its addresses.
func (k *Linux) Links() ([]osif.Link, error) {
	var nls []netlink.Link
	err := k.withHandle(func(h *netlink.Handle) error {
		return retryDump(func() error {
			var err error
			nls, err = h.LinkList()
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("kernelshim: list links: %w", err)
	}
	addrs, err := k.addrsByIndex(0)
	if err != nil {
		return nil, fmt.Errorf("kernelshim: list addresses: %w", err)
	}
	out := make([]osif.Link, 0, len(nls))
	for _, l := range nls {
		c := convertLink(l)
		c.Addrs = addrs[c.Index]
		out = append(out, c)
	}
	return out, nil
}

// LinkByName returns one link; osif.ErrNoLink-wrapped when missing.
func (k *Linux) LinkByName(name string) (osif.Link, error) {
	l, err := k.nlLink(name)
	if err != nil {
		return osif.Link{}, fmt.Errorf("kernelshim: link %w", err)
	}
	c := convertLink(l)
	addrs, err := k.addrsByIndex(c.Index)
	if err != nil {
		return osif.Link{}, fmt.Errorf("kernelshim: addresses of %s: %w", name, err)
	}
	c.Addrs = addrs[c.Index]
	return c, nil
}

// CreateMACVLAN: see the contract in carp/engine's kernel.go.
func (k *Linux) CreateMACVLAN(name, parent string, mac net.HardwareAddr) error {
	k.forgetSendLink(name, 0)
	if old, err := k.nlLink(name); err == nil {
		// The kernel ignores an alias given at creation, so it is set in a
		// second step: a crash between the two leaves a macvlan without
		// alias but with exactly the virtual MAC we ask for. That is ours too.
		leftover := old.Type() == "macvlan" && old.Attrs().Alias == "" && bytes.Equal(old.Attrs().HardwareAddr, mac)
		if old.Attrs().Alias != osif.OwnerAlias && !leftover {
			return fmt.Errorf("kernelshim: create macvlan %s: a link of that name exists and is not ours (alias %q)", name, old.Attrs().Alias)
		}
		if err := k.withHandle(func(h *netlink.Handle) error { return h.LinkDel(old) }); err != nil && !isNotFound(err) {
			return fmt.Errorf("kernelshim: create macvlan %s: delete leftover: %w", name, err)
		}
	} else if !errors.Is(err, osif.ErrNoLink) {
		return fmt.Errorf("kernelshim: create macvlan %s: %w", name, err)
	}
	p, err := k.nlLink(parent)
	if err != nil {
		return fmt.Errorf("kernelshim: create macvlan %s on parent %w", name, err)
	}
	mv := &netlink.Macvlan{
		LinkAttrs: netlink.LinkAttrs{Name: name, ParentIndex: p.Attrs().Index, HardwareAddr: mac, Group: osif.LinkGroup},
		Mode:      netlink.MACVLAN_MODE_BRIDGE,
	}
	if err := k.withHandle(func(h *netlink.Handle) error { return h.LinkAdd(mv) }); err != nil {
		return fmt.Errorf("kernelshim: create macvlan %s on %s address %s: %w", name, parent, mac, err)
	}
	fail := func(step string, err error) error {
		_ = k.withHandle(func(h *netlink.Handle) error { return h.LinkDel(mv) })
		return fmt.Errorf("kernelshim: create macvlan %s: %s: %w", name, step, err)
	}
	// The new link is down: set alias and addr_gen_mode before it comes up,
	// so that no link-local address is ever generated.
	if err := k.withHandle(func(h *netlink.Handle) error { return h.LinkSetAlias(mv, osif.OwnerAlias) }); err != nil {
		return fail("set alias", err)
	}
	if err := k.withHandle(func(h *netlink.Handle) error {
		return h.LinkSetIP6AddrGenMode(mv, nl.IN6_ADDR_GEN_MODE_NONE)
	}); err != nil {
		// Without IPv6 in the kernel (or disabled on the link) there is no
		// link-local to suppress.
		if !errors.Is(err, unix.EAFNOSUPPORT) && !errors.Is(err, unix.EOPNOTSUPP) {
			return fail("set addrgenmode none", err)
		}
	}
	if err := k.withHandle(func(h *netlink.Handle) error { return h.LinkSetUp(mv) }); err != nil {
		return fail("set up", err)
	}
	// LinkAdd learnt the new link's index (by a lookup of its own).
	if index := mv.Attrs().Index; index != 0 {
		// What SendCARP, Announce and ReplaceAddr need of it, known here:
		// its first takeover looks nothing up, and a late update about a
		// link of this name that was deleted cannot take its place.
		sl := sendLink{index: index, wire: p.Attrs().Index, parent: p.Attrs().Index}
		copy(sl.mac[:], mac)
		k.storeSendLink(name, sl)
		k.setBCCutoff(index)
		k.mu.Lock()
		if k.ours == nil {
			k.ours = map[int]bool{}
		}
		k.ours[index] = true
		// The filters are rebuilt when the watch first reads a
		// notification of the new link (refilter), not here: a new
		// macvlan has no address yet, and a script of configuration
		// lines then pays one rebuild, not one per line.
		k.filterStale.Store(len(k.subs) > 0)
		k.mu.Unlock()
	}
	return nil
}

// setBCCutoff makes the macvlans of the parent of the macvlan of index
// take multicast and broadcast frames in the receive path itself, not
// through the parent's broadcast work queue (IFLA_MACVLAN_BC_CUTOFF -1,
// Linux 6.2; an older kernel ignores the attribute). A parent with many
// macvlans is promiscuous (more MACs than its filter holds), and then every
// multicast frame, each CARP advert among them, was queued and woke a
// kernel worker that offered it to every macvlan of the parent: with 255
// vhids per parent, a thousand wake-ups a second on a BACKUP. The setting
// belongs to the parent's macvlan port: other macvlans of the parent get
// the same delivery, the same frames in the same order. A failure only
// costs that speed: it is logged at debug level.
func (k *Linux) setBCCutoff(index int) {
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, 0)
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = int32(index)
	req.AddData(msg)
	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated("macvlan"))
	data := info.AddRtAttr(nl.IFLA_INFO_DATA, nil)
	data.AddRtAttr(unix.IFLA_MACVLAN_BC_CUTOFF, nl.Uint32Attr(macvlanNoBCQueue))
	req.AddData(info)
	if err := k.request(req.Serialize()); err != nil {
		k.log.Debug("macvlan broadcast cutoff", "index", index, "err", err)
	}
}

// macvlanNoBCQueue is IFLA_MACVLAN_BC_CUTOFF -1 as the kernel reads it (an
// s32): never queue multicast or broadcast for the port's work queue.
const macvlanNoBCQueue = 0xffffffff

func (k *Linux) isOurs(index int) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.ours[index]
}

// DeleteLink: see the contract in carp/engine's kernel.go.
func (k *Linux) DeleteLink(name string) error {
	k.forgetSendLink(name, 0)
	l, err := k.nlLink(name)
	if err != nil {
		return fmt.Errorf("kernelshim: delete link %w", err)
	}
	k.dellinks.Add(1)
	if err := k.withHandle(func(h *netlink.Handle) error { return h.LinkDel(l) }); err != nil {
		if isNotFound(err) {
			return fmt.Errorf("kernelshim: delete link %s: %w", name, osif.ErrNoLink)
		}
		return fmt.Errorf("kernelshim: delete link %s: %w", name, err)
	}
	k.mu.Lock()
	delete(k.ours, l.Attrs().Index)
	k.ourLinksChangedLocked()
	k.mu.Unlock()
	return nil
}

// DeleteLinks: see the contract in carp/engine's kernel.go. When the
// links of osif.LinkGroup (the group CreateMACVLAN puts its macvlans in)
// are all among names, they go in one RTM_DELLINK of the group: the kernel
// unregisters them in one batch, with one wait for RCU readers instead of
// one per link (~25 ms each here: 1,020 macvlans took 25 s to delete one
// by one, 150 ms in a batch). The rest are deleted one by one.
func (k *Linux) DeleteLinks(names []string) error {
	if len(names) == 0 {
		return nil
	}
	for _, n := range names {
		k.forgetSendLink(n, 0)
	}
	// The group goes in one request only when a whole list of the links
	// shows nothing else in it; an incomplete list (an interrupted dump:
	// links being added) or none at all means one by one.
	var all []netlink.Link
	listErr := k.withHandle(func(h *netlink.Handle) error {
		return retryDump(func() error {
			var err error
			all, err = h.LinkList()
			return err
		})
	})
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	var group []netlink.Link
	batch := listErr == nil
	for _, l := range all {
		if l.Attrs().Group != osif.LinkGroup {
			continue
		}
		if !want[l.Attrs().Name] {
			batch = false // someone else's link in the group: never delete it
			break
		}
		group = append(group, l)
	}
	var errs []error
	if batch && len(group) > 1 {
		k.dellinks.Add(1)
		err := k.inNS(func() error {
			req := nl.NewNetlinkRequest(unix.RTM_DELLINK, unix.NLM_F_ACK)
			req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
			req.AddData(nl.NewRtAttr(unix.IFLA_GROUP, nl.Uint32Attr(osif.LinkGroup)))
			_, err := req.Execute(unix.NETLINK_ROUTE, 0)
			return err
		})
		if err == nil {
			k.mu.Lock()
			for _, l := range group {
				delete(k.ours, l.Attrs().Index)
				delete(want, l.Attrs().Name)
			}
			k.ourLinksChangedLocked()
			k.mu.Unlock()
		}
		// On an error, one by one below.
	}
	for _, n := range names {
		if !want[n] {
			continue
		}
		if err := k.DeleteLink(n); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// SetMTU: see the contract in carp/engine's kernel.go.
func (k *Linux) SetMTU(name string, mtu int) error {
	l, err := k.nlLink(name)
	if err != nil {
		return fmt.Errorf("kernelshim: set mtu of %w", err)
	}
	if err := k.withHandle(func(h *netlink.Handle) error { return h.LinkSetMTU(l, mtu) }); err != nil {
		return fmt.Errorf("kernelshim: set mtu of %s to %d: %w", name, mtu, err)
	}
	return nil
}

// SetLinkUp: see the contract in carp/engine's kernel.go.
func (k *Linux) SetLinkUp(name string, up bool) error {
	defer k.forgetSendLink(name, 0) // SendCARP sends frames only out of a link that is up
	l, err := k.nlLink(name)
	if err != nil {
		return fmt.Errorf("kernelshim: set link %w", err)
	}
	err = k.withHandle(func(h *netlink.Handle) error {
		if up {
			return h.LinkSetUp(l)
		}
		return h.LinkSetDown(l)
	})
	if err != nil {
		return fmt.Errorf("kernelshim: set link %s up=%v: %w", name, up, err)
	}
	return nil
}

// ReplaceAddr: see the contract in carp/engine's kernel.go.
//
// The message is the refresh's (see RefreshAddrs), for the ifindex of one
// of our macvlans from the cache SendCARP uses: a takeover installs every
// address of every vhid it takes, and a netlink link lookup before each
// cost as much as the install. A link re-created under the same name (its
// cached ifindex gone) is looked up again and the address written once
// more. Any other link is looked up by name each time.
func (k *Linux) ReplaceAddr(link string, p netip.Prefix, lifetime time.Duration) (osif.AddrLifetime, error) {
	if !p.IsValid() {
		return osif.AddrLifetime{}, fmt.Errorf("kernelshim: replace address on %s: invalid prefix %v", link, p)
	}
	secs := osif.LifetimeSeconds(lifetime)
	write := func(sl sendLink) (osif.AddrLifetime, error) {
		a := osif.AddrLifetime{Index: sl.index, Prefix: p, Lifetime: lifetime}
		if p.Addr().Unmap().Is6() {
			a.Flags = unix.IFA_F_NODAD
		}
		if k.parentCovers(sl.parent, p) {
			// The parent already routes this subnet. A second prefix route via
			// the macvlan could win after a parent flap and send the host's own
			// traffic from the shared address, breaking it at the next failover.
			a.Flags |= unix.IFA_F_NOPREFIXROUTE
		}
		err := k.refreshAddrs([]osif.AddrLifetime{a}, false)
		var ae *osif.AddrError
		if errors.As(err, &ae) {
			err = ae.Err
		}
		return a, err
	}
	sl, cached, err := k.sendLink(link)
	if err == nil && cached && !k.isOurs(sl.index) {
		// Not one of our macvlans (an address an ifconfig line sets on a
		// parent, say): such a link may be renamed behind carpd's back,
		// and a write by a stale index would land on another link.
		k.forgetSendLink(link, 0)
		sl, cached, err = k.sendLink(link)
	}
	if err != nil {
		return osif.AddrLifetime{}, fmt.Errorf("kernelshim: replace %s on %w", p, err)
	}
	a, err := write(sl)
	if err != nil && cached && errors.Is(err, osif.ErrNoLink) {
		k.forgetSendLink(link, 0)
		if sl, _, lerr := k.sendLink(link); lerr != nil {
			err = lerr
		} else {
			a, err = write(sl)
		}
	}
	if err != nil {
		return osif.AddrLifetime{}, fmt.Errorf("kernelshim: replace %s on %s (lifetime %ds): %w", p, link, secs, err)
	}
	return a, nil
}

// parentCovers reports whether parent (a macvlan's parent's ifindex, 0 for
// no macvlan) has an address of p's family whose prefix contains p's
// subnet.
func (k *Linux) parentCovers(parent int, p netip.Prefix) bool {
	if parent == 0 {
		return false
	}
	addrs, err := k.recentAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs[parent] {
		if a.Addr().Is4() == p.Addr().Is4() && a.Bits() <= p.Bits() && a.Contains(p.Masked().Addr()) {
			return true
		}
	}
	return false
}

// addrsFresh is how long parentCovers reuses one dump of the namespace's
// addresses: a takeover installs the addresses of every vhid at once, and a
// dump per address made that quadratic (1,020 vhids: a second late). The
// answer only decides IFA_F_NOPREFIXROUTE at install; a parent address
// changed within this time is seen at the next install.
const addrsFresh = time.Second

// recentAddrs returns the addresses of every link by ifindex, from a dump
// at most addrsFresh old.
func (k *Linux) recentAddrs() (map[int][]netip.Prefix, error) {
	k.amu.Lock()
	defer k.amu.Unlock()
	if k.addrs != nil && time.Since(k.addrsAt) < addrsFresh {
		return k.addrs, nil
	}
	m, err := k.addrsByIndex(0)
	if err != nil {
		return nil, err
	}
	k.addrs, k.addrsAt = m, time.Now()
	return m, nil
}

// DelAddr: see the contract in carp/engine's kernel.go.
func (k *Linux) DelAddr(link string, p netip.Prefix) error {
	l, err := k.nlLink(link)
	if err != nil {
		return fmt.Errorf("kernelshim: delete %s from %w", p, err)
	}
	a := &netlink.Addr{IPNet: ipNetOf(p)}
	err = k.withHandle(func(h *netlink.Handle) error { return h.AddrDel(l, a) })
	if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("kernelshim: delete %s from %s: %w", p, link, err)
	}
	return nil
}

// OpenCARP: see the contract in carp/engine's kernel.go.
func (k *Linux) OpenCARP(ctx context.Context, onto chan<- osif.Packet) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return fmt.Errorf("kernelshim: open CARP sockets: %w", osif.ErrClosed)
	}
	if k.opened {
		return errors.New("kernelshim: open CARP sockets: already open")
	}
	var c4, c6 net.PacketConn
	var err6 error
	err := k.inNS(func() error {
		var err error
		c4, err = net.ListenPacket(fmt.Sprintf("ip4:%d", osif.Protocol), "0.0.0.0")
		if err != nil {
			return err
		}
		c6, err6 = net.ListenPacket(fmt.Sprintf("ip6:%d", osif.Protocol), "::")
		return nil
	})
	if err != nil {
		return fmt.Errorf("kernelshim: open raw IPv4 protocol 112 socket: %w", err)
	}
	r4, err := ipv4.NewRawConn(c4)
	if err == nil {
		err = setup4(r4)
	}
	if err == nil {
		err = dropAll(c4)
	}
	var rd4, rd6 *batchReader
	if err == nil {
		rd4, err = k.openReceiver(false)
	}
	if err != nil {
		c4.Close()
		if c6 != nil {
			c6.Close()
		}
		return fmt.Errorf("kernelshim: set up raw IPv4 socket: %w", err)
	}
	k.c4, k.r4 = c4.(*net.IPConn), r4
	k.rcv = []*batchReader{rd4}
	if err6 == nil {
		p6 := ipv6.NewPacketConn(c6)
		err := setup6(p6)
		if err == nil {
			err = dropAll(c6)
		}
		if err == nil {
			rd6, err = k.openReceiver(true)
		}
		if err != nil {
			c6.Close()
			err6 = err
		} else {
			k.c6, k.p6 = c6.(*net.IPConn), p6
			k.rcv = append(k.rcv, rd6)
		}
	}
	if err6 != nil {
		k.log.Warn("IPv6 CARP disabled: cannot open raw IPv6 protocol 112 socket", "err", err6)
	}
	k.opened = true
	myc4 := k.c4

	stop := make(chan struct{})
	var once sync.Once
	shut := func() { once.Do(func() { close(stop) }) }
	k.wg.Add(1)
	go func() { // closes the sockets when ctx ends (Close closes them too)
		defer k.wg.Done()
		select {
		case <-ctx.Done():
		case <-k.close:
		case <-stop:
		}
		k.mu.Lock()
		k.closeSocketsLocked()
		if k.c4 == myc4 { // allow a later OpenCARP with a new context
			k.opened = false
			k.c4, k.r4, k.c6, k.p6, k.rcv = nil, nil, nil, nil, nil
		}
		k.mu.Unlock()
	}()
	readers := 1
	if rd6 != nil {
		readers++
	}
	var rwg sync.WaitGroup
	rwg.Add(readers)
	k.wg.Add(readers)
	done := func() { rwg.Done(); k.wg.Done() }
	go func() { defer done(); k.read4(ctx, rd4, onto) }()
	if rd6 != nil {
		go func() { defer done(); k.read6(ctx, rd6, onto) }()
	}
	go func() { rwg.Wait(); shut() }()
	return nil
}

// carpRcvBuf is the receive buffer of the CARP sockets: the adverts of
// every vhid of a LAN arrive in bursts (a MASTER sends those due together
// back to back; a NIC delivers them at line rate), and a queue that
// overflows drops the tail of each burst, every second the same vhids',
// until their backup takes over. The default (208 KiB) holds about 270 small
// datagrams on a veth and fewer from a NIC with 2-4 KiB buffers; 4 MiB holds
// a burst of more than 1,020.
const carpRcvBuf = 4 << 20

// openReceiver opens the raw protocol 112 socket the adverts of one family
// are read from, in k's namespace, with carpRcvBuf of receive buffer
// (SO_RCVBUFFORCE, as root in the host's user namespace; else as much as
// net.core.rmem_max allows, and a warning says so), and returns its reader.
// It joins no group: the groups are joined on the sending sockets, and a
// socket that joined none hears every group joined on the link
// (IP_MULTICAST_ALL, IPV6_MULTICAST_ALL: on by default, and set).
func (k *Linux) openReceiver(ipv6 bool) (*batchReader, error) {
	fam, level, opts := unix.AF_INET, unix.IPPROTO_IP, []int{unix.IP_PKTINFO, unix.IP_RECVTTL, unix.IP_MULTICAST_ALL}
	oobLen := len(ipv4.NewControlMessage(ipv4.FlagTTL | ipv4.FlagInterface | ipv4.FlagDst))
	if ipv6 {
		fam, level, opts = unix.AF_INET6, unix.IPPROTO_IPV6, []int{unix.IPV6_RECVPKTINFO, unix.IPV6_RECVHOPLIMIT, unix.IPV6_MULTICAST_ALL}
		oobLen = len(ipv6NewControlMessage())
	}
	var fd int
	err := k.inNS(func() error {
		var err error
		fd, err = unix.Socket(fam, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, osif.Protocol)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("receive socket: %w", err)
	}
	for _, o := range opts {
		err := unix.SetsockoptInt(fd, level, o, 1)
		if o == unix.IPV6_MULTICAST_ALL && errors.Is(err, unix.ENOPROTOOPT) {
			continue // before Linux 4.20: IPv6 had no such filter
		}
		if err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("receive socket: control messages: %w", err)
		}
	}
	k.setBuf(fd, unix.SO_RCVBUF, unix.SO_RCVBUFFORCE, carpRcvBuf, "net.core.rmem_max")
	r, err := newBatchReader(fd, oobLen)
	if err != nil {
		return nil, fmt.Errorf("receive socket: %w", err)
	}
	return r, nil
}

func ipv6NewControlMessage() []byte {
	return ipv6.NewControlMessage(ipv6.FlagHopLimit | ipv6.FlagInterface | ipv6.FlagDst)
}

// dropAll gives the sending socket c a filter that drops every datagram
// before it is queued: it would otherwise hear every advert the receive
// sockets hear, fill its buffer and wake the runtime's poller for each.
func dropAll(c net.PacketConn) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return errors.New("drop filter: not a syscall.Conn")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return fmt.Errorf("drop filter: %w", err)
	}
	var serr error
	ret0 := unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: 0}
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptSockFprog(int(fd), unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: 1, Filter: &ret0})
		if serr != nil {
			return
		}
		// What arrived before the filter would stay queued for good.
		var b [1]byte
		for i := 0; i < 1<<16; i++ {
			if _, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_DONTWAIT|unix.MSG_TRUNC); err != nil {
				break
			}
		}
	}); err != nil {
		return fmt.Errorf("drop filter: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("drop filter: %w", serr)
	}
	return nil
}

// setBuf sets a socket buffer (opt, or force as root) to size bytes and
// warns when the kernel keeps it smaller (it reports twice what it keeps
// of a request, for its own bookkeeping).
func (k *Linux) setBuf(fd, opt, force, size int, sysctl string) {
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, force, size) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, opt, size)
	}
	if got, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, opt); err == nil && got < size {
		k.log.Warn("CARP socket buffer smaller than asked: adverts of many vhids sent together may be lost; raise "+sysctl,
			"bytes", got/2, "want", size)
	}
}

func setup4(r *ipv4.RawConn) error {
	if err := r.SetControlMessage(ipv4.FlagTTL|ipv4.FlagInterface|ipv4.FlagDst, true); err != nil {
		return fmt.Errorf("control messages: %w", err)
	}
	if err := r.SetMulticastLoopback(false); err != nil {
		return fmt.Errorf("multicast loop off: %w", err)
	}
	if err := r.SetMulticastTTL(carpTTL); err != nil {
		return fmt.Errorf("multicast TTL: %w", err)
	}
	return nil
}

func setup6(p *ipv6.PacketConn) error {
	if err := p.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagInterface|ipv6.FlagDst, true); err != nil {
		return fmt.Errorf("control messages: %w", err)
	}
	if err := p.SetMulticastLoopback(false); err != nil {
		return fmt.Errorf("multicast loop off: %w", err)
	}
	if err := p.SetMulticastHopLimit(carpTTL); err != nil {
		return fmt.Errorf("multicast hop limit: %w", err)
	}
	if err := p.SetHopLimit(carpTTL); err != nil {
		return fmt.Errorf("hop limit: %w", err)
	}
	// IPv6 refuses a link-local source that is not on the outgoing device
	// (EINVAL). Adverts leave through the macvlan (virtual MAC, like
	// FreeBSD) with the carpdev's link-local source, and the macvlan has
	// none (addr_gen_mode none): allow non-local sources, as IPv4's
	// IP_HDRINCL does.
	if err := setFreebind6(p); err != nil {
		return fmt.Errorf("IPV6_FREEBIND: %w", err)
	}
	return nil
}

func setFreebind6(p *ipv6.PacketConn) error {
	sc, ok := p.PacketConn.(syscall.Conn)
	if !ok {
		return errors.New("not a syscall.Conn")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_FREEBIND, 1)
	}); err != nil {
		return err
	}
	return serr
}

func (k *Linux) closeSocketsLocked() {
	for _, r := range k.rcv {
		r.stop()
	}
	if k.c4 != nil {
		k.c4.Close()
	}
	if k.c6 != nil {
		k.c6.Close()
	}
}

func deliver(ctx context.Context, stop <-chan struct{}, onto chan<- osif.Packet, p osif.Packet) bool {
	select {
	case onto <- p:
		return true
	case <-ctx.Done():
	case <-stop:
	}
	return false
}

// errorPauseOr waits errorPause, so that a reader does not spin on a
// persistent error; false when the reader must stop.
func (k *Linux) errorPauseOr(ctx context.Context) bool {
	select {
	case <-time.After(errorPause):
		return true
	case <-ctx.Done():
	case <-k.close:
	}
	return false
}

func (k *Linux) read4(ctx context.Context, r *batchReader, onto chan<- osif.Packet) {
	defer r.close()
	for {
		n, err := r.read()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || ctx.Err() != nil || !k.errorPauseOr(ctx) {
				return
			}
			k.log.Warn("CARP IPv4 receive", "err", err)
			continue
		}
		for i := range n {
			pi, _ := parseCmsgs(r.control(i)) // what is missing stays zero
			if !deliver(ctx, k.close, onto, parse4(r.datagram(i), pi, r.source(i))) {
				return
			}
		}
	}
}

// parse4 turns a raw IPv4 datagram (header included) into a osif.Packet,
// tolerating short or odd headers: the caller validates.
func parse4(b []byte, pi pktInfo, from netip.Addr) osif.Packet {
	p := osif.Packet{IfIndex: pi.ifIndex, TTL: pi.ttl, Src: from.Unmap(), Dst: pi.dst.Unmap()}
	if len(b) >= ipv4.HeaderLen && b[0]>>4 == 4 {
		p.TTL = int(b[8])
		p.Src = netip.AddrFrom4([4]byte(b[12:16]))
		p.Dst = netip.AddrFrom4([4]byte(b[16:20]))
		ihl := int(b[0]&0x0f) * 4
		if ihl >= ipv4.HeaderLen && ihl <= len(b) {
			p.Payload = append([]byte(nil), b[ihl:]...)
		} else {
			p.Payload, p.ShortHeader = []byte{}, true
		}
	} else {
		p.Payload, p.ShortHeader = []byte{}, true
	}
	return p
}

func (k *Linux) read6(ctx context.Context, r *batchReader, onto chan<- osif.Packet) {
	defer r.close()
	for {
		n, err := r.read()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || ctx.Err() != nil || !k.errorPauseOr(ctx) {
				return
			}
			k.log.Warn("CARP IPv6 receive", "err", err)
			continue
		}
		for i := range n {
			pi, err := parseCmsgs(r.control(i))
			if err != nil {
				k.log.Warn("CARP IPv6 receive", "err", err)
				continue
			}
			p := osif.Packet{Payload: append([]byte(nil), r.datagram(i)...), IPv6: true,
				Src: r.source(i), IfIndex: pi.ifIndex, TTL: pi.ttl, Dst: pi.dst}
			if !deliver(ctx, k.close, onto, p) {
				return
			}
		}
	}
}

func (k *Linux) sockets() (*ipv4.RawConn, *ipv6.PacketConn, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed || !k.opened {
		return nil, nil, osif.ErrClosed
	}
	return k.r4, k.p6, nil
}

func (k *Linux) iface(name string) (*net.Interface, error) {
	l, err := k.nlLink(name)
	if err != nil {
		return nil, err
	}
	// Not net.InterfaceByName: that asks the namespace of the calling thread.
	return &net.Interface{Index: l.Attrs().Index, Name: name}, nil
}

var (
	group4 = &net.IPAddr{IP: net.IP(osif.GroupV4.AsSlice())}
	group6 = &net.IPAddr{IP: net.IP(osif.GroupV6.AsSlice())}
)

// JoinGroup: see the contract in carp/engine's kernel.go.
func (k *Linux) JoinGroup(ifname string) error {
	r4, p6, err := k.sockets()
	if err != nil {
		return fmt.Errorf("kernelshim: join CARP group on %s: %w", ifname, err)
	}
	ifi, err := k.iface(ifname)
	if err != nil {
		return fmt.Errorf("kernelshim: join CARP group on %w", err)
	}
	if err := r4.JoinGroup(ifi, group4); err != nil && !errors.Is(err, unix.EADDRINUSE) {
		return fmt.Errorf("kernelshim: join %s on %s: %w", osif.GroupV4, ifname, err)
	}
	if p6 != nil {
		if err := p6.JoinGroup(ifi, group6); err != nil && !errors.Is(err, unix.EADDRINUSE) {
			return fmt.Errorf("kernelshim: join %s on %s: %w", osif.GroupV6, ifname, err)
		}
	}
	return nil
}

// LeaveGroup: see the contract in carp/engine's kernel.go.
func (k *Linux) LeaveGroup(ifname string) error {
	r4, p6, err := k.sockets()
	if err != nil {
		return fmt.Errorf("kernelshim: leave CARP group on %s: %w", ifname, err)
	}
	ifi, err := k.iface(ifname)
	if err != nil {
		return fmt.Errorf("kernelshim: leave CARP group on %w", err)
	}
	notJoined := func(err error) bool {
		return err == nil || errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EINVAL)
	}
	if err := r4.LeaveGroup(ifi, group4); !notJoined(err) {
		return fmt.Errorf("kernelshim: leave %s on %s: %w", osif.GroupV4, ifname, err)
	}
	if p6 != nil {
		if err := p6.LeaveGroup(ifi, group6); !notJoined(err) {
			return fmt.Errorf("kernelshim: leave %s on %s: %w", osif.GroupV6, ifname, err)
		}
	}
	return nil
}

// SendCARP: see the contract in carp/engine's kernel.go.
//
// An advert to a multicast group leaves as a whole Ethernet frame on the
// AF_PACKET socket, out of the parent of a macvlan `out` (of `out` itself
// when it is an Ethernet link but no macvlan), from `out`'s MAC: what the
// macvlan would put on the parent's wire, without the route lookup,
// netfilter and the copy to every sibling macvlan (bridge mode) a send
// through the raw IP socket costs. Anything else, and every advert when
// the AF_PACKET socket cannot be opened, goes through the raw IP sockets.
func (k *Linux) SendCARP(out string, src, dst netip.Addr, tos uint8, payload []byte) error {
	src, dst = src.Unmap(), dst.Unmap()
	if !src.IsValid() || !dst.IsValid() || src.Is4() != dst.Is4() {
		return fmt.Errorf("kernelshim: send CARP on %s: bad addresses %v -> %v", out, src, dst)
	}
	r4, p6, err := k.sockets()
	if err != nil {
		return fmt.Errorf("kernelshim: send CARP on %s: %w", out, err)
	}
	if dst.Is6() && p6 == nil {
		return fmt.Errorf("kernelshim: send CARP %s -> %s on %s: IPv6 socket not open", src, dst, out)
	}
	sl, cached, err := k.sendLink(out)
	if err != nil {
		return fmt.Errorf("kernelshim: send CARP on %w", err)
	}
	err = k.sendAdvert(r4, p6, out, sl, src, dst, tos, payload)
	if err != nil && cached {
		// The link may have been re-created under the same name: look it
		// up again and send once more.
		k.forgetSendLink(out, 0)
		if sl, _, lerr := k.sendLink(out); lerr == nil {
			err = k.sendAdvert(r4, p6, out, sl, src, dst, tos, payload)
		}
	}
	return err
}

// sendLink is what SendCARP needs to know of the link it sends out of.
type sendLink struct {
	index int // the link's ifindex, for the raw IP sockets
	// wire is the ifindex of the Ethernet link whose wire the link's
	// frames go out on (a macvlan's parent, else the link itself) and mac
	// the link's MAC; wire is 0 when multicast adverts cannot be sent as
	// frames: not an Ethernet link, administratively down (the raw socket
	// reports that as before) or a macvlan whose parent is in another
	// namespace.
	wire int
	mac  [6]byte
	// parent is the ifindex of a macvlan's parent, up or not, when it is
	// a link of this namespace; 0 for any other link.
	parent int
}

// sendLink returns the sendLink of link name, from the cache when it is
// there (cached reports that).
func (k *Linux) sendLink(name string) (sl sendLink, cached bool, err error) {
	k.smu.Lock()
	sl, ok := k.sendLinks[name]
	k.smu.Unlock()
	if ok {
		return sl, true, nil
	}
	l, err := k.nlLink(name)
	if err != nil {
		return sendLink{}, false, err
	}
	sl = sendLinkOf(l)
	k.storeSendLink(name, sl)
	return sl, false, nil
}

// sendLinkOf is the sendLink of l.
func sendLinkOf(l netlink.Link) sendLink {
	var sl sendLink
	a := l.Attrs()
	sl.index = a.Index
	if l.Type() == "macvlan" && a.NetNsID < 0 && a.ParentIndex != a.Index {
		sl.parent = a.ParentIndex
	}
	if a.EncapType == "ether" && len(a.HardwareAddr) == 6 && a.RawFlags&unix.IFF_UP != 0 {
		sl.wire = a.Index
		copy(sl.mac[:], a.HardwareAddr)
		if l.Type() == "macvlan" {
			sl.wire = a.ParentIndex
			if a.NetNsID >= 0 || a.ParentIndex == 0 {
				sl.wire = 0 // the parent's ifindex is not one of this namespace
			}
		}
	}
	return sl
}

// storeSendLink caches sl as the sendLink of link name.
func (k *Linux) storeSendLink(name string, sl sendLink) {
	k.smu.Lock()
	k.storeSendLinkLocked(name, sl)
	k.smu.Unlock()
}

func (k *Linux) storeSendLinkLocked(name string, sl sendLink) {
	if k.sendLinks == nil {
		k.sendLinks, k.sendNames = map[string]sendLink{}, map[int]string{}
	}
	k.forgetSendLinkLocked(name, sl.index) // its old index, another name of this one
	k.sendLinks[name] = sl
	k.sendNames[sl.index] = name
}

// updateSendLink takes sl, what a link update says of link name, into the
// send cache: as name's entry when name has none or one of the same
// ifindex (the same link, changed), dropping any other name of that index
// (a rename). When name's entry is of another ifindex, the update may be a
// late one about a link carpd has since deleted and made again under that
// name, or about one made behind its back: the entry is dropped, and the
// next use looks the name up.
func (k *Linux) updateSendLink(name string, sl sendLink) {
	k.smu.Lock()
	defer k.smu.Unlock()
	if old, ok := k.sendLinks[name]; ok && old.index != sl.index {
		k.forgetSendLinkLocked(name, sl.index)
		return
	}
	k.storeSendLinkLocked(name, sl)
}

// clearSendLinks empties the send cache.
func (k *Linux) clearSendLinks() {
	k.smu.Lock()
	k.sendLinks, k.sendNames = nil, nil
	k.smu.Unlock()
}

// forgetSendLink drops the cached sendLink of link name and, for an index
// other than 0, that of any link of that ifindex (a link renamed).
func (k *Linux) forgetSendLink(name string, index int) {
	k.smu.Lock()
	k.forgetSendLinkLocked(name, index)
	k.smu.Unlock()
}

// forgetSendLinkLocked is forgetSendLink with k.smu held: no scan of the
// cache, which the link watch fills with every link of the namespace.
func (k *Linux) forgetSendLinkLocked(name string, index int) {
	if sl, ok := k.sendLinks[name]; ok {
		delete(k.sendLinks, name)
		delete(k.sendNames, sl.index)
	}
	if n, ok := k.sendNames[index]; ok && index != 0 {
		delete(k.sendLinks, n)
		delete(k.sendNames, index)
	}
}

// sendAdvert sends one advert out of link out (sl).
func (k *Linux) sendAdvert(r4 *ipv4.RawConn, p6 *ipv6.PacketConn, out string, sl sendLink, src, dst netip.Addr, tos uint8, payload []byte) error {
	if sl.wire != 0 && dst.IsMulticast() {
		if fd, err := k.packetSocket(); err == nil {
			return k.sendFrame(fd, out, sl, src, dst, tos, payload)
		}
	}
	return k.sendCARP(r4, p6, out, sl.index, src, dst, tos, payload)
}

// sendFrame sends one advert to a multicast group as a whole Ethernet
// frame on the AF_PACKET socket fd, out of sl's wire from sl's MAC.
func (k *Linux) sendFrame(fd int, out string, sl sendLink, src, dst netip.Addr, tos uint8, payload []byte) error {
	k.fmu.Lock()
	defer k.fmu.Unlock()
	if k.isClosed() {
		return fmt.Errorf("kernelshim: send CARP on %s: %w", out, osif.ErrClosed)
	}
	f, err := AppendAdvertFrame(k.frame[:0], sl.mac, src, dst, tos, payload)
	if err != nil {
		return fmt.Errorf("kernelshim: send CARP on %s: %w", out, err)
	}
	k.frame = f
	k.rsa = frameDest(sl, f)
	// A raw system call, not unix.Sendto: the send never blocks
	// (MSG_DONTWAIT; a full queue is an error, counted as FreeBSD counts
	// it), so it needs none of the runtime's bookkeeping for a call that
	// may park its thread, and that bookkeeping wakes the runtime's
	// monitor thread (sysmon) on each call while it sleeps, for a
	// millisecond of 20 µs polls: 20% of a MASTER's CPU at 1,020 vhids.
	var errno syscall.Errno
	for {
		_, _, errno = unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&f[0])), uintptr(len(f)),
			unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(&k.rsa)), unix.SizeofSockaddrLinklayer)
		if errno != unix.EINTR {
			break
		}
	}
	if errno != 0 {
		return fmt.Errorf("kernelshim: send CARP %s -> %s on %s: %w", src, dst, out, errno)
	}
	return nil
}

// frameDest is where advert frame f (from AppendAdvertFrame) goes on the
// AF_PACKET socket: out of sl's wire, to f's destination MAC.
func frameDest(sl sendLink, f []byte) unix.RawSockaddrLinklayer {
	proto := uint16(etherTypeIPv4)
	if binary.BigEndian.Uint16(f[12:]) == etherTypeIPv6 {
		proto = etherTypeIPv6
	}
	sa := unix.RawSockaddrLinklayer{Family: unix.AF_PACKET, Protocol: htons(proto), Ifindex: int32(sl.wire), Halen: 6}
	copy(sa.Addr[:], f[:6])
	return sa
}

// sendCARP sends one advert out of the link of index idx.
func (k *Linux) sendCARP(r4 *ipv4.RawConn, p6 *ipv6.PacketConn, out string, idx int, src, dst netip.Addr, tos uint8, payload []byte) error {
	if dst.Is4() {
		h := &ipv4.Header{
			Version:  ipv4.Version,
			Len:      ipv4.HeaderLen,
			TOS:      int(tos),
			TotalLen: ipv4.HeaderLen + len(payload),
			Flags:    ipv4.DontFragment,
			TTL:      carpTTL,
			Protocol: osif.Protocol,
			Src:      net.IP(src.AsSlice()),
			Dst:      net.IP(dst.AsSlice()),
		}
		if err := r4.WriteTo(h, payload, &ipv4.ControlMessage{IfIndex: idx}); err != nil {
			return fmt.Errorf("kernelshim: send CARP %s -> %s on %s: %w", src, dst, out, err)
		}
		return nil
	}
	if p6 == nil {
		return fmt.Errorf("kernelshim: send CARP %s -> %s on %s: IPv6 socket not open", src, dst, out)
	}
	cm := &ipv6.ControlMessage{IfIndex: idx, Src: net.IP(src.WithZone("").AsSlice()), HopLimit: carpTTL, TrafficClass: int(tos)}
	to := &net.IPAddr{IP: net.IP(dst.WithZone("").AsSlice())}
	if dst.IsLinkLocalUnicast() || dst.IsLinkLocalMulticast() || dst.IsInterfaceLocalMulticast() {
		to.Zone = fmt.Sprint(idx) // numeric zone: no lookup in the caller thread's namespace
	}
	if _, err := p6.WriteTo(payload, cm, to); err != nil {
		return fmt.Errorf("kernelshim: send CARP %s -> %s on %s: %w", src, dst, out, err)
	}
	return nil
}

// Announce: see the contract in carp/engine's kernel.go.
//
// Like a multicast advert (see SendCARP), the frame leaves out of the
// parent of a macvlan `link`, from the MAC given: on the parent's wire it
// is the frame the macvlan would send, but the macvlan (bridge mode) would
// first copy a broadcast to every sibling macvlan of the parent, each of
// which ran it through ARP or neighbour discovery for nothing: with 255
// vhids on a parent, 254 copies of each announcement, and a takeover of
// every vhid announces every address at once. The link comes from the
// cache SendCARP uses, not from a netlink lookup per announcement. A link
// that is no Ethernet link, is down, or whose parent is in another
// namespace gets the frame itself.
func (k *Linux) Announce(link string, mac net.HardwareAddr, addr netip.Addr) error {
	frame, dst, err := AnnounceFrame(mac, addr)
	if err != nil {
		return err
	}
	fd, err := k.packetSocket()
	if err != nil {
		return fmt.Errorf("kernelshim: announce %s on %s: %w", addr, link, err)
	}
	proto := unix.ETH_P_ARP
	if addr.Unmap().Is6() {
		proto = unix.ETH_P_IPV6
	}
	send := func(sl sendLink) error {
		sa := &unix.SockaddrLinklayer{Protocol: htons(uint16(proto)), Ifindex: sl.index, Halen: 6}
		if sl.wire != 0 {
			sa.Ifindex = sl.wire
		}
		copy(sa.Addr[:], dst)
		if err := unix.Sendto(fd, frame, 0, sa); err != nil {
			return fmt.Errorf("kernelshim: announce %s on %s: send: %w", addr, link, err)
		}
		return nil
	}
	sl, cached, err := k.sendLink(link)
	if err != nil {
		return fmt.Errorf("kernelshim: announce %s on %w", addr, err)
	}
	err = send(sl)
	if err != nil && cached {
		// The link may have been re-created under the same name: look it
		// up again and send once more.
		k.forgetSendLink(link, 0)
		if sl, _, lerr := k.sendLink(link); lerr == nil {
			err = send(sl)
		}
	}
	return err
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// packetSndBuf is the send buffer of the AF_PACKET socket, in bytes.
const packetSndBuf = 2 << 20

// packetSocket returns the (lazily created) AF_PACKET send socket. It has
// protocol 0, so it never receives anything; each frame names its interface.
func (k *Linux) packetSocket() (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return -1, osif.ErrClosed
	}
	if k.pktFd >= 0 {
		return k.pktFd, nil
	}
	err := k.inNS(func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("AF_PACKET socket: %w", err)
		}
		// Room for the adverts of every vhid in one burst (sendFrame does
		// not wait for room): 1,020 frames of ~1 KB of kernel memory each.
		k.setBuf(fd, unix.SO_SNDBUF, unix.SO_SNDBUFFORCE, packetSndBuf, "net.core.wmem_max")
		k.pktFd = fd
		return nil
	})
	return k.pktFd, err
}

// WatchLinks: see the contract in carp/engine's kernel.go.
func (k *Linux) WatchLinks(ctx context.Context, onto chan<- osif.LinkUpdate) error {
	if k.isClosed() {
		return fmt.Errorf("kernelshim: watch links: %w", osif.ErrClosed)
	}
	sub, err := k.subscribe()
	if err != nil {
		return fmt.Errorf("kernelshim: watch links: %w", err)
	}
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		for {
			if !k.pump(ctx, sub, onto) {
				return
			}
			// The subscription broke: resubscribe, then ask for a resync.
			for {
				select {
				case <-ctx.Done():
					return
				case <-k.close:
					return
				case <-time.After(errorPause):
				}
				if sub, err = k.subscribe(); err == nil {
					break
				}
				k.log.Warn("link watch: resubscribe failed", "err", err)
			}
			// Updates were lost: what the send cache holds may be stale.
			k.clearSendLinks()
			select {
			case onto <- osif.LinkUpdate{Resync: true}:
			case <-ctx.Done():
				k.endSub(sub)
				return
			case <-k.close:
				k.endSub(sub)
				return
			}
		}
	}()
	return nil
}

type subscription struct {
	ch   chan netlink.LinkUpdate
	ach  chan int // link index of address changes: a parent's source address may come after its link
	aw   *addrWatch
	done chan struct{}
	errc chan error
	once sync.Once
}

func (s *subscription) stop() { s.once.Do(func() { close(s.done) }) }
func (s *subscription) drain() {
	for range s.ch { //nolint:revive // let the netlink goroutine finish
	}
	for range s.ach { //nolint:revive // likewise
	}
}

func (k *Linux) subscribe() (*subscription, error) {
	s := &subscription{
		ch:   make(chan netlink.LinkUpdate, updateQueue),
		ach:  make(chan int, updateQueue),
		done: make(chan struct{}),
		errc: make(chan error, 1),
	}
	onErr := func(err error) {
		select {
		case s.errc <- err:
		default:
		}
	}
	var linkErr, addrErr error
	_ = k.inNS(func() error {
		linkErr = netlink.LinkSubscribeWithOptions(s.ch, s.done, netlink.LinkSubscribeOptions{
			ErrorCallback: onErr, ReceiveBufferSize: netlinkRcvBuf,
		})
		return nil
	})
	if linkErr == nil {
		// Under k.mu from the filter's ifindexes to k.subs, so that no
		// change of k.ours falls between them (see ourLinksChangedLocked).
		k.mu.Lock()
		s.aw, addrErr = k.openAddrWatch(k.ourIndexesLocked())
		if addrErr == nil {
			if k.subs == nil {
				k.subs = map[*subscription]struct{}{}
			}
			k.subs[s] = struct{}{}
		}
		k.mu.Unlock()
	}
	switch {
	case linkErr != nil:
		return nil, linkErr // nothing was started
	case addrErr != nil:
		// Stop the link subscription; its goroutine closes s.ch.
		close(s.ach)
		s.stop()
		s.drain()
		return nil, addrErr
	}
	go func() { <-s.done; s.aw.f.Close() }() // ends readAddrWatch's read
	go k.readAddrWatch(s.aw, s.ach, s.done, onErr)
	return s, nil
}

// ourIndexesLocked lists k.ours; k.mu is held.
func (k *Linux) ourIndexesLocked() []int {
	idx := make([]int, 0, len(k.ours))
	for i := range k.ours {
		idx = append(idx, i)
	}
	return idx
}

// ourLinksChangedLocked rebuilds the address notification filter of every
// subscription after k.ours changed; k.mu is held. A failure costs only
// CPU: the reader drops our links' notifications all the same.
func (k *Linux) ourLinksChangedLocked() {
	k.filterStale.Store(false)
	if len(k.subs) == 0 {
		return
	}
	idx := k.ourIndexesLocked()
	for s := range k.subs {
		if err := s.aw.setFilter(idx); err != nil {
			k.log.Debug("link watch: address notification filter", "err", err)
		}
	}
}

// refilter rebuilds the address watch's filters if a macvlan was made
// since they were built: called by the watch for a notification of one of
// our links that got through.
func (k *Linux) refilter() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.filterStale.Load() {
		k.ourLinksChangedLocked()
	}
}

// endSub stops a subscription and waits for its netlink goroutine.
func (k *Linux) endSub(s *subscription) {
	s.stop()
	s.drain()
	k.mu.Lock()
	delete(k.subs, s)
	k.mu.Unlock()
}

// breakSubscriptions ends every netlink subscription as a socket error
// would (tests of the resync path).
func (k *Linux) breakSubscriptions() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for s := range k.subs {
		s.stop()
	}
}

// pump forwards updates until the subscription breaks (returns true: the
// caller resubscribes) or ctx / Close ends the watch (returns false).
func (k *Linux) pump(ctx context.Context, s *subscription, onto chan<- osif.LinkUpdate) bool {
	defer k.endSub(s)
	for {
		select {
		case <-ctx.Done():
			return false
		case <-k.close:
			return false
		case err := <-s.errc:
			if errors.Is(err, netlink.ErrDumpInterrupted) {
				continue
			}
			k.log.Warn("link watch: subscription error, resubscribing", "err", err)
			return true
		case index, ok := <-s.ach:
			if !ok {
				return true
			}
			// Our own virtual addresses are refreshed several times a
			// second: their updates are of no interest to anyone (the
			// watch drops most before they get here).
			if k.isOurs(index) {
				continue
			}
			var l netlink.Link
			if err := k.withHandle(func(h *netlink.Handle) error {
				var err error
				l, err = h.LinkByIndex(index)
				return err
			}); err != nil {
				continue // the link went away: its RTM_DELLINK follows
			}
			lu := osif.LinkUpdate{Link: convertLink(l)}
			if addrs, err := k.addrsByIndex(lu.Link.Index); err == nil {
				lu.Link.Addrs = addrs[lu.Link.Index]
			}
			select {
			case onto <- lu:
			case <-ctx.Done():
				return false
			case <-k.close:
				return false
			}
		case u, ok := <-s.ch:
			if !ok {
				return true
			}
			lu := osif.LinkUpdate{Link: convertLink(u.Link), Deleted: u.Header.Type == unix.RTM_DELLINK}
			// The link changed (deleted, renamed, down, another MAC)
			// maybe behind carpd's back: the send cache takes what the
			// notification says of it, or drops it (see updateSendLink).
			if lu.Deleted {
				k.forgetSendLink(lu.Link.Name, lu.Link.Index)
			} else {
				k.updateSendLink(u.Link.Attrs().Name, sendLinkOf(u.Link))
				if addrs, err := k.addrsByIndex(lu.Link.Index); err == nil {
					lu.Link.Addrs = addrs[lu.Link.Index]
				}
			}
			select {
			case onto <- lu:
			case <-ctx.Done():
				return false
			case <-k.close:
				return false
			}
		}
	}
}

// SetSysctl: see the contract in carp/engine's kernel.go.
func (k *Linux) SetSysctl(path, value string) (string, error) {
	rel := strings.TrimPrefix(path, "/proc/sys/")
	if !strings.Contains(rel, "/") {
		rel = strings.ReplaceAll(rel, ".", "/") // sysctl(8) style: net.ipv4.ip_forward
	}
	clean := filepath.Clean("/" + rel)
	if rel == "" || strings.Contains(rel, "..") || clean == "/" {
		return "", fmt.Errorf("kernelshim: sysctl %q: bad path", path)
	}
	full := "/proc/sys" + clean
	var old string
	err := k.inNS(func() error {
		b, err := os.ReadFile(full)
		if err != nil {
			return err
		}
		old = strings.TrimSpace(string(b))
		return os.WriteFile(full, []byte(value), 0o644)
	})
	if err != nil {
		return old, fmt.Errorf("kernelshim: sysctl %s=%s: %w", path, value, err)
	}
	return old, nil
}

// Close: see the contract in carp/engine's kernel.go.
func (k *Linux) Close() error {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return nil
	}
	k.closed = true
	close(k.close)
	k.closeSocketsLocked()
	k.mu.Unlock()
	// The packet socket closes with no frame being sent on it (sendFrame
	// holds fmu and sees the adapter closed before it uses the socket).
	k.fmu.Lock()
	k.mu.Lock()
	if k.pktFd >= 0 {
		unix.Close(k.pktFd)
		k.pktFd = -1
	}
	k.mu.Unlock()
	k.fmu.Unlock()
	k.wg.Wait()
	k.rmu.Lock()
	if k.rfd >= 0 {
		unix.Close(k.rfd)
		k.rfd = -1
	}
	k.rmu.Unlock()
	k.hmu.Lock()
	k.h.Close()
	k.hmu.Unlock()
	unix.Close(k.nsFd)
	return nil
}
