// Package memkernel is an in-memory kernel for tests of the CARP engine:
// Memory keeps links, addresses and sysctls in maps, records every side
// effect in a transcript, and exchanges adverts and ARP frames with other
// Memory kernels over in-memory L2 Segments. Tests can inject refusals
// (Fail), send errors, carrier changes and ARP requests.
//
// It keeps the contract of the engine's Kernel interface
// (carp/engine/kernel.go) as the Linux adapter does; package
// kernelshim/kerneltest runs the same cases against both. carpd does not
// link this package.
package memkernel

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bsdcarp/bsdcarp/carp/osif"
	"github.com/bsdcarp/bsdcarp/kernelshim"
)

// Segment is an in-memory L2 segment joining links of several Memory
// kernels. SendCARP, Announce and ReplyARP on one kernel deliver to the
// others attached to it.
type Segment struct {
	mu      sync.Mutex
	ports   []segPort
	loss    func(from, to *Memory) bool
	dropped int
}

type segPort struct {
	m    *Memory
	link string // name of the physical link in m
}

// NewSegment returns an empty segment.
func NewSegment() *Segment { return &Segment{} }

// SetLoss installs a filter: a delivery from one kernel to another is
// dropped when f returns true (partitions, loss). nil removes the filter.
// f runs under the segment's lock: it must not call methods of the Memory
// kernels (comparing the pointers is fine).
func (s *Segment) SetLoss(f func(from, to *Memory) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loss = f
}

// Dropped counts deliveries dropped by the loss filter.
func (s *Segment) Dropped() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

func (s *Segment) attach(m *Memory, link string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ports = append(s.ports, segPort{m, link})
}

func (s *Segment) detach(m *Memory, link string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ports = slices.DeleteFunc(s.ports, func(p segPort) bool { return p.m == m && p.link == link })
}

// receivers returns the ports of other kernels that a packet from `from`
// reaches, after the loss filter.
func (s *Segment) receivers(from *Memory) []segPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []segPort
	for _, p := range s.ports {
		if p.m == from {
			continue
		}
		if s.loss != nil && s.loss(from, p.m) {
			s.dropped++
			continue
		}
		out = append(out, p)
	}
	return out
}

// memLink is one link of a Memory kernel.
type memLink struct {
	osif.Link          // Addrs unused here; see addrs
	carrier   bool     // physical carrier (the reported Carrier also needs AdminUp)
	parent    string   // macvlan parent name
	seg       *Segment // physical links only
	addrs     []memAddr
	joined    bool
}

type memAddr struct {
	p       netip.Prefix
	expires time.Time // zero: permanent
	flags   uint32    // osif.AddrNoDAD, AddrNoPrefixRoute
}

// MemoryStats counts what a Memory kernel did with adverts.
type MemoryStats struct {
	Sent      int // SendCARP calls that succeeded (also those of SendCARPs)
	Batches   int // SendCARPs calls
	Delivered int // packets delivered to this kernel's OpenCARP channel
	Dropped   int // packets for this kernel dropped because its channel was full
}

// Memory is an in-memory kernel for engine tests. It records every side
// effect in a transcript, expires addresses with lifetimes according to
// Clock, and exchanges adverts with other Memory kernels over Segments.
// It is safe for concurrent use.
type Memory struct {
	// Clock is the time source for address lifetimes; nil means time.Now.
	// Set it before use (or under no concurrent calls).
	Clock func() time.Time

	mu          sync.Mutex
	links       map[string]*memLink
	order       []string // link names in creation order
	nextIndex   int
	transcript  []string
	sysctl      map[string]string
	closed      bool
	open        bool
	openCtx     context.Context
	onto        chan<- osif.Packet
	watchers    map[*memWatcher]struct{}
	stats       MemoryStats
	sendErr     error
	sendHook    func(out string, p osif.Packet)
	refreshHook func(n int)
	sendTTL     int             // TTL of sent packets; 0 means 255
	failures    map[Op]error    // injected refusals, see Fail
	arpCtx      context.Context // ListenARP's, nil when not listening
	arpOnto     chan<- osif.ARPRequest
	// frameTap, when set (by this package's tests), sees every Ethernet
	// frame (Announce, ReplyARP of another kernel) arriving on one of
	// this kernel's physical links, as a packet socket on it would.
	frameTap func(link string, frame []byte)
}

// NewMemory returns an empty Memory kernel (no links).
func NewMemory() *Memory {
	return &Memory{
		links:     map[string]*memLink{},
		nextIndex: 1,
		sysctl:    map[string]string{},
		watchers:  map[*memWatcher]struct{}{},
	}
}

func (m *Memory) now() time.Time {
	if m.Clock != nil {
		return m.Clock()
	}
	return time.Now()
}

func (m *Memory) logf(format string, args ...any) {
	m.transcript = append(m.transcript, fmt.Sprintf(format, args...))
}

// AddLink adds a link behind the engine's back: a physical link attached to
// seg (nil: none), or, with Kind "macvlan" and the ParentIndex of a link
// added before, a macvlan on it (as a crashed engine leaves one). A zero
// Index is assigned; Carrier is taken as the physical carrier state; l.Addrs become
// permanent addresses. Adding is not recorded in the transcript.
func (m *Memory) AddLink(l osif.Link, seg *Segment) {
	m.mu.Lock()
	if l.Index == 0 {
		l.Index = m.nextIndex
	}
	if l.Index >= m.nextIndex {
		m.nextIndex = l.Index + 1
	}
	ml := &memLink{Link: l, carrier: l.Carrier, seg: seg}
	if l.Kind == "macvlan" {
		for n, p := range m.links {
			if p.Index == l.ParentIndex {
				ml.parent = n
			}
		}
	}
	for _, p := range l.Addrs {
		ml.addrs = append(ml.addrs, memAddr{p: p})
	}
	ml.Addrs = nil
	if _, dup := m.links[l.Name]; !dup {
		m.order = append(m.order, l.Name)
	}
	m.links[l.Name] = ml
	snap := m.snapshotLocked(ml)
	m.mu.Unlock()
	if seg != nil {
		seg.attach(m, l.Name)
	}
	m.emit(osif.LinkUpdate{Link: snap})
}

// SetCarrier changes the physical carrier of a link (and of the macvlans on
// it, as Linux does) and reports the change to watchers.
func (m *Memory) SetCarrier(name string, up bool) {
	m.mu.Lock()
	l, ok := m.links[name]
	if !ok {
		m.mu.Unlock()
		return
	}
	l.carrier = up
	ups := []osif.LinkUpdate{{Link: m.snapshotLocked(l)}}
	for _, n := range m.order {
		if c := m.links[n]; c != nil && c.parent == name {
			c.carrier = up
			ups = append(ups, osif.LinkUpdate{Link: m.snapshotLocked(c)})
		}
	}
	m.mu.Unlock()
	for _, u := range ups {
		m.emit(u)
	}
}

// Transcript returns every side effect so far, one line each, such as
// "ip link add carp0 link em0 type macvlan address 00:00:5e:00:01:01",
// "ip link set carp0 up", "ip link del carp0",
// "ip addr replace 10.0.0.1/24 dev carp0 lft 3s" (or "lft forever"),
// "ip addr refresh 10.0.0.1/24 dev carp0 lft 3s noprefixroute; 2001:db8::1/64
// dev carp1 lft 3s nodad" (one line per RefreshAddrs call, its entries in
// order, each with the flags it set),
// "ip addr del 10.0.0.1/24 dev carp0",
// "arp announce 10.0.0.1 dev carp0 lladdr 00:00:5e:00:01:01",
// "nd advertise 2001:db8::1 dev carp0 lladdr 00:00:5e:00:01:01",
// "mcast join em0", "mcast leave em0",
// "sysctl net/ipv4/conf/em0/arp_ignore=1". Adverts (SendCARP) are not in
// the transcript: see Stats and SetSendHook.
func (m *Memory) Transcript() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.transcript)
}

// ResetTranscript forgets the transcript so far.
func (m *Memory) ResetTranscript() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.transcript = nil
}

// Addrs returns the current (unexpired) addresses of a link.
func (m *Memory) Addrs(link string) []netip.Prefix {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.links[link]
	if !ok {
		return nil
	}
	return m.addrsLocked(l)
}

// Sysctl returns the current value of a sysctl set with SetSysctl or
// SetSysctlValue ("0" when never set).
func (m *Memory) Sysctl(path string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.sysctl[path]; ok {
		return v
	}
	return "0"
}

// SetSysctlValue presets a sysctl without recording a side effect.
func (m *Memory) SetSysctlValue(path, value string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sysctl[path] = value
}

// Stats returns the advert counters.
func (m *Memory) Stats() MemoryStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats
}

// SetSendError makes every SendCARP fail with err (nil: succeed again).
func (m *Memory) SetSendError(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sendErr = err
}

// Op is a kernel operation whose refusal a test can inject with Fail. Its
// values are the Op variables of this package; no other can be written.
type Op struct{ name string }

// The operations Fail can make a Memory kernel refuse.
var (
	OpSetMTU      = Op{"SetMTU"}
	OpSetLinkUp   = Op{"SetLinkUp"}
	OpReplaceAddr = Op{"ReplaceAddr"}
	OpDelAddr     = Op{"DelAddr"}
	OpListenARP   = Op{"ListenARP"}

	// OpRefreshAddrs makes every entry of a RefreshAddrs batch fail
	// (nothing is refreshed, nothing recorded).
	OpRefreshAddrs = Op{"RefreshAddrs"}
)

// String returns the name of the method op stands for.
func (op Op) String() string { return op.name }

// Fail makes every later call of op fail with err (wrapped), as a kernel
// that refuses it; a nil err makes op succeed again. The zero Op panics.
func (m *Memory) Fail(op Op, err error) {
	if op.name == "" {
		panic("memkernel: Fail with the zero Op")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failures == nil {
		m.failures = map[Op]error{}
	}
	m.failures[op] = err
}

// failure returns the injected failure of op; m.mu must be held.
func (m *Memory) failure(op Op) error {
	if err := m.failures[op]; err != nil {
		return fmt.Errorf("kernelshim: %s: %w", op, err)
	}
	return nil
}

// SetSendHook calls f (synchronously, without locks held) for every advert
// this kernel sends successfully.
func (m *Memory) SetSendHook(f func(out string, p osif.Packet)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sendHook = f
}

// SetRefreshHook calls f (synchronously, without locks held) with the
// size of every RefreshAddrs batch.
func (m *Memory) SetRefreshHook(f func(n int)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.refreshHook = f
}

// SetSendTTL makes SendCARP send with TTL / hop limit ttl instead of 255,
// as a forging host would (tests of the TTL check); 0 restores 255.
func (m *Memory) SetSendTTL(ttl int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sendTTL = ttl
}

// Resync sends osif.LinkUpdate{Resync: true} to every watcher, as the Linux
// kernel does after its netlink subscription broke.
func (m *Memory) Resync() { m.emit(osif.LinkUpdate{Resync: true}) }

func (m *Memory) addrsLocked(l *memLink) []netip.Prefix {
	now := m.now()
	l.addrs = slices.DeleteFunc(l.addrs, func(a memAddr) bool {
		return !a.expires.IsZero() && !now.Before(a.expires)
	})
	var out []netip.Prefix
	for _, a := range l.addrs {
		out = append(out, a.p)
	}
	return out
}

func (m *Memory) snapshotLocked(l *memLink) osif.Link {
	c := l.Link
	c.MAC = slices.Clone(l.MAC)
	c.Carrier = l.carrier && l.AdminUp
	c.Running = c.Carrier
	c.Addrs = m.addrsLocked(l)
	return c
}

func (m *Memory) linkLocked(name string) (*memLink, error) {
	if m.closed {
		return nil, osif.ErrClosed
	}
	l, ok := m.links[name]
	if !ok {
		return nil, fmt.Errorf("%s: %w", name, osif.ErrNoLink)
	}
	return l, nil
}

// Links: see the contract in carp/engine's kernel.go.
func (m *Memory) Links() ([]osif.Link, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, fmt.Errorf("kernelshim: list links: %w", osif.ErrClosed)
	}
	out := make([]osif.Link, 0, len(m.order))
	for _, n := range m.order {
		out = append(out, m.snapshotLocked(m.links[n]))
	}
	return out, nil
}

// LinkByName: see the contract in carp/engine's kernel.go.
func (m *Memory) LinkByName(name string) (osif.Link, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, err := m.linkLocked(name)
	if err != nil {
		return osif.Link{}, fmt.Errorf("kernelshim: link %w", err)
	}
	return m.snapshotLocked(l), nil
}

// CreateMACVLAN: see the contract in carp/engine's kernel.go.
func (m *Memory) CreateMACVLAN(name, parent string, mac net.HardwareAddr) error {
	m.mu.Lock()
	var ups []osif.LinkUpdate
	defer func() {
		m.mu.Unlock()
		for _, u := range ups {
			m.emit(u)
		}
	}()
	if m.closed {
		return fmt.Errorf("kernelshim: create macvlan %s: %w", name, osif.ErrClosed)
	}
	if old, ok := m.links[name]; ok {
		// As on Linux: a macvlan without alias but with exactly this MAC
		// is the leftover of a crash between creation and alias, ours too.
		leftover := old.Kind == "macvlan" && old.Alias == "" && slices.Equal(old.MAC, mac)
		if old.Alias != osif.OwnerAlias && !leftover {
			return fmt.Errorf("kernelshim: create macvlan %s: a link of that name exists and is not ours (alias %q)", name, old.Alias)
		}
		ups = append(ups, m.deleteLocked(old)...)
	}
	p, err := m.linkLocked(parent)
	if err != nil {
		return fmt.Errorf("kernelshim: create macvlan %s on parent %w", name, err)
	}
	if len(mac) != 6 {
		return fmt.Errorf("kernelshim: create macvlan %s: bad MAC %q", name, mac)
	}
	for _, c := range m.links {
		if c.parent == parent && slices.Equal(c.MAC, mac) {
			// As Linux: two macvlans on one parent cannot share a MAC.
			return fmt.Errorf("kernelshim: create macvlan %s on %s address %s: %w", name, parent, mac, syscall.EADDRINUSE)
		}
	}
	l := &memLink{
		Link: osif.Link{
			Name: name, Index: m.nextIndex, MAC: slices.Clone(mac), MTU: p.MTU,
			AdminUp: true, Broadcast: true, Multicast: true,
			Kind: "macvlan", ParentIndex: p.Index, Alias: osif.OwnerAlias,
		},
		carrier: p.carrier,
		parent:  parent,
	}
	if l.MTU == 0 {
		l.MTU = 1500
	}
	m.nextIndex++
	m.links[name] = l
	m.order = append(m.order, name)
	m.logf("ip link add %s link %s type macvlan address %s", name, parent, mac)
	ups = append(ups, osif.LinkUpdate{Link: m.snapshotLocked(l)})
	return nil
}

// deleteLocked removes a link and returns the updates. As on Linux, the
// macvlans on a deleted link go with it (recorded as their own deletion).
// Lock order: m.mu, then Segment.mu.
func (m *Memory) deleteLocked(l *memLink) []osif.LinkUpdate {
	var ups []osif.LinkUpdate
	for _, n := range slices.Clone(m.order) {
		if c := m.links[n]; c != nil && c.parent == l.Name {
			ups = append(ups, m.deleteLocked(c)...)
		}
	}
	delete(m.links, l.Name)
	m.order = slices.DeleteFunc(m.order, func(n string) bool { return n == l.Name })
	m.logf("ip link del %s", l.Name)
	if l.seg != nil {
		l.seg.detach(m, l.Name)
	}
	snap := m.snapshotLocked(l)
	snap.Addrs = nil
	return append(ups, osif.LinkUpdate{Link: snap, Deleted: true})
}

// DeleteLink: see the contract in carp/engine's kernel.go.
func (m *Memory) DeleteLink(name string) error {
	m.mu.Lock()
	l, err := m.linkLocked(name)
	if err != nil {
		m.mu.Unlock()
		return fmt.Errorf("kernelshim: delete link %w", err)
	}
	ups := m.deleteLocked(l)
	m.mu.Unlock()
	for _, u := range ups {
		m.emit(u)
	}
	return nil
}

// DeleteLinks: see the contract in carp/engine's kernel.go. One by one:
// the in-memory kernel has no batch to gain from.
func (m *Memory) DeleteLinks(names []string) error {
	var errs []error
	for _, n := range names {
		if err := m.DeleteLink(n); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// SetMTU: see the contract in carp/engine's kernel.go. Recorded as "ip link
// set X mtu N"; 68..65535 accepted, for a macvlan at most its parent's MTU.
func (m *Memory) SetMTU(name string, mtu int) error {
	m.mu.Lock()
	if err := m.failure(OpSetMTU); err != nil {
		m.mu.Unlock()
		return err
	}
	l, err := m.linkLocked(name)
	if err != nil {
		m.mu.Unlock()
		return fmt.Errorf("kernelshim: set mtu of %w", err)
	}
	limit := 65535
	if p := m.links[l.parent]; l.parent != "" && p != nil {
		limit = p.MTU // as Linux's macvlan: never above its parent's MTU
	}
	if mtu < 68 || mtu > limit {
		m.mu.Unlock()
		return fmt.Errorf("kernelshim: set mtu of %s to %d: %w", name, mtu, syscall.EINVAL)
	}
	l.MTU = mtu
	m.logf("ip link set %s mtu %d", name, mtu)
	u := osif.LinkUpdate{Link: m.snapshotLocked(l)}
	m.mu.Unlock()
	m.emit(u)
	return nil
}

// SetLinkUp: see the contract in carp/engine's kernel.go.
func (m *Memory) SetLinkUp(name string, up bool) error {
	m.mu.Lock()
	if err := m.failure(OpSetLinkUp); err != nil {
		m.mu.Unlock()
		return err
	}
	l, err := m.linkLocked(name)
	if err != nil {
		m.mu.Unlock()
		return fmt.Errorf("kernelshim: set link %w", err)
	}
	l.AdminUp = up
	word := "down"
	if up {
		word = "up"
	}
	m.logf("ip link set %s %s", name, word)
	u := osif.LinkUpdate{Link: m.snapshotLocked(l)}
	m.mu.Unlock()
	m.emit(u)
	return nil
}

// ReplaceAddr: see the contract in carp/engine's kernel.go.
func (m *Memory) ReplaceAddr(link string, p netip.Prefix, lifetime time.Duration) (osif.AddrLifetime, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failure(OpReplaceAddr); err != nil {
		return osif.AddrLifetime{}, err
	}
	if !p.IsValid() {
		return osif.AddrLifetime{}, fmt.Errorf("kernelshim: replace address on %s: invalid prefix %v", link, p)
	}
	l, err := m.linkLocked(link)
	if err != nil {
		return osif.AddrLifetime{}, fmt.Errorf("kernelshim: replace %s on %w", p, err)
	}
	var flags uint32
	if p.Addr().Unmap().Is6() {
		flags = osif.AddrNoDAD
	}
	if m.parentCoversLocked(l, p) {
		flags |= osif.AddrNoPrefixRoute
	}
	lft := m.setAddrLocked(l, p, lifetime, flags)
	m.logf("ip addr replace %s dev %s lft %s", p, link, lft)
	return osif.AddrLifetime{Index: l.Index, Prefix: p, Lifetime: lifetime, Flags: flags}, nil
}

// setAddrLocked adds or replaces p on l with lifetime and flags and returns
// the lifetime as the transcript writes it.
func (m *Memory) setAddrLocked(l *memLink, p netip.Prefix, lifetime time.Duration, flags uint32) string {
	secs := osif.LifetimeSeconds(lifetime)
	a := memAddr{p: p, flags: flags}
	lft := "forever"
	if secs > 0 {
		a.expires = m.now().Add(time.Duration(secs) * time.Second)
		lft = fmt.Sprintf("%ds", secs)
	}
	m.addrsLocked(l) // expire first
	if i := slices.IndexFunc(l.addrs, func(x memAddr) bool { return x.p == p }); i >= 0 {
		l.addrs[i] = a
	} else {
		l.addrs = append(l.addrs, a)
	}
	return lft
}

// parentCoversLocked reports whether l is a macvlan whose parent has an
// address of p's family whose subnet contains p's (as Linux's ReplaceAddr
// decides osif.AddrNoPrefixRoute).
func (m *Memory) parentCoversLocked(l *memLink, p netip.Prefix) bool {
	parent, ok := m.links[l.parent]
	if l.Kind != "macvlan" || !ok {
		return false
	}
	for _, a := range m.addrsLocked(parent) {
		if a.Addr().Is4() == p.Addr().Is4() && a.Bits() <= p.Bits() && a.Contains(p.Masked().Addr()) {
			return true
		}
	}
	return false
}

// RefreshAddrs: see the contract in carp/engine's kernel.go.
func (m *Memory) RefreshAddrs(batch []osif.AddrLifetime) error {
	if len(batch) == 0 {
		return nil
	}
	m.mu.Lock()
	if hook := m.refreshHook; hook != nil {
		defer hook(len(batch)) // after the unlock below
	}
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("kernelshim: refresh addresses: %w", osif.ErrClosed)
	}
	var errs []error
	if err := m.failure(OpRefreshAddrs); err != nil {
		for i, a := range batch {
			errs = append(errs, &osif.AddrError{Entry: i, Addr: a, Err: err})
		}
		return errors.Join(errs...)
	}
	var done []string
	for i, a := range batch {
		var l *memLink
		for _, c := range m.links {
			if c.Index == a.Index {
				l = c
			}
		}
		switch {
		case !a.Prefix.IsValid():
			errs = append(errs, &osif.AddrError{Entry: i, Addr: a, Err: errors.New("invalid prefix")})
		case l == nil:
			errs = append(errs, &osif.AddrError{Entry: i, Addr: a, Err: osif.ErrNoLink})
		default:
			entry := fmt.Sprintf("%s dev %s lft %s", a.Prefix, l.Name, m.setAddrLocked(l, a.Prefix, a.Lifetime, a.Flags))
			if a.Flags&osif.AddrNoPrefixRoute != 0 {
				entry += " noprefixroute"
			}
			if a.Flags&osif.AddrNoDAD != 0 {
				entry += " nodad"
			}
			done = append(done, entry)
		}
	}
	if len(done) > 0 {
		m.logf("ip addr refresh %s", strings.Join(done, "; "))
	}
	return errors.Join(errs...)
}

// AddrLifetime returns p as installed on link: the link's index, the
// remaining valid lifetime (0 for a permanent address) and the flags; false
// when p is not there.
func (m *Memory) AddrLifetime(link string, p netip.Prefix) (osif.AddrLifetime, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.links[link]
	if !ok {
		return osif.AddrLifetime{}, false
	}
	m.addrsLocked(l)
	for _, a := range l.addrs {
		if a.p == p {
			out := osif.AddrLifetime{Index: l.Index, Prefix: p, Flags: a.flags}
			if !a.expires.IsZero() {
				out.Lifetime = a.expires.Sub(m.now())
			}
			return out, true
		}
	}
	return osif.AddrLifetime{}, false
}

// DelAddr: see the contract in carp/engine's kernel.go.
func (m *Memory) DelAddr(link string, p netip.Prefix) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failure(OpDelAddr); err != nil {
		return err
	}
	l, err := m.linkLocked(link)
	if err != nil {
		return fmt.Errorf("kernelshim: delete %s from %w", p, err)
	}
	l.addrs = slices.DeleteFunc(l.addrs, func(x memAddr) bool { return x.p == p })
	m.logf("ip addr del %s dev %s", p, link)
	return nil
}

// OpenCARP: see the contract in carp/engine's kernel.go.
func (m *Memory) OpenCARP(ctx context.Context, onto chan<- osif.Packet) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("kernelshim: open CARP sockets: %w", osif.ErrClosed)
	}
	// A previous opener whose context has ended is closed, even if the
	// goroutine that tidies up after it has not run yet.
	if m.open && m.openCtx.Err() == nil {
		return errors.New("kernelshim: open CARP sockets: already open")
	}
	if m.open {
		for _, l := range m.links {
			l.joined = false
		}
	}
	m.open, m.openCtx, m.onto = true, ctx, onto
	go func() {
		<-ctx.Done()
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.openCtx == ctx {
			m.open, m.openCtx, m.onto = false, nil, nil
			for _, l := range m.links {
				l.joined = false
			}
		}
	}()
	return nil
}

func (m *Memory) setJoined(ifname string, on bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	verb := "leave"
	if on {
		verb = "join"
	}
	if !m.open {
		return fmt.Errorf("kernelshim: %s CARP group on %s: %w", verb, ifname, osif.ErrClosed)
	}
	l, err := m.linkLocked(ifname)
	if err != nil {
		return fmt.Errorf("kernelshim: %s CARP group on %w", verb, err)
	}
	if l.joined != on {
		l.joined = on
		m.logf("mcast %s %s", verb, ifname)
	}
	return nil
}

// JoinGroup: see the contract in carp/engine's kernel.go.
func (m *Memory) JoinGroup(ifname string) error { return m.setJoined(ifname, true) }

// LeaveGroup: see the contract in carp/engine's kernel.go.
func (m *Memory) LeaveGroup(ifname string) error { return m.setJoined(ifname, false) }

// SendCARPs: see the contract in carp/engine's kernel.go. Each advert is
// one SendCARP (one Sent count, one send hook call); the call counts one
// of Stats().Batches.
func (m *Memory) SendCARPs(ads []osif.Advert, errs []error) {
	m.mu.Lock()
	m.stats.Batches++
	m.mu.Unlock()
	for i, a := range ads {
		errs[i] = m.SendCARP(a.Out, a.Src, a.Dst, a.TOS, a.Payload)
	}
}

// SendCARP: see the contract in carp/engine's kernel.go. The packet reaches every other kernel on the
// segment of `out` (or of its macvlan parent) that has OpenCARP'd and joined
// the group on its attached link or a macvlan on it; a unicast dst reaches
// only the kernel that has dst on such a link. Arrival IfIndex is the
// link that joined the group (a packet arrives once on each such link), or
// for a unicast the receiver's attached physical link. A full receiver
// channel drops the packet (counted in the receiver's Stats().Dropped). As
// on Linux, a source and destination of different families are refused.
func (m *Memory) SendCARP(out string, src, dst netip.Addr, tos uint8, payload []byte) error {
	src, dst = src.Unmap(), dst.Unmap()
	if !src.IsValid() || !dst.IsValid() || src.Is4() != dst.Is4() {
		return fmt.Errorf("kernelshim: send CARP on %s: bad addresses %v -> %v", out, src, dst)
	}
	m.mu.Lock()
	if m.sendErr != nil {
		err := m.sendErr
		m.mu.Unlock()
		return fmt.Errorf("kernelshim: send CARP %s -> %s on %s: %w", src, dst, out, err)
	}
	if !m.open {
		m.mu.Unlock()
		return fmt.Errorf("kernelshim: send CARP on %s: %w", out, osif.ErrClosed)
	}
	l, err := m.linkLocked(out)
	if err != nil {
		m.mu.Unlock()
		return fmt.Errorf("kernelshim: send CARP on %w", err)
	}
	seg := l.seg
	if l.parent != "" {
		if p := m.links[l.parent]; p != nil {
			seg = p.seg
		}
	}
	up := l.AdminUp && l.carrier
	m.stats.Sent++
	hook := m.sendHook
	ttl := 255
	if m.sendTTL != 0 {
		ttl = m.sendTTL
	}
	m.mu.Unlock()

	p := osif.Packet{Payload: slices.Clone(payload), Src: src, Dst: dst, TTL: ttl, IPv6: dst.Is6()}
	if hook != nil {
		hook(out, p)
	}
	if seg == nil || !up {
		return nil // sent into the void, like a NIC without a cable
	}
	for _, r := range seg.receivers(m) {
		r.m.receive(r.link, p)
	}
	return nil
}

// receive delivers p arriving on physical link `link` if this kernel wants it.
func (m *Memory) receive(link string, p osif.Packet) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.open || m.closed {
		return
	}
	l := m.links[link]
	if l == nil || !l.AdminUp || !l.carrier {
		return
	}
	// The attached link and the macvlans on it hear the frame.
	family := []*memLink{l}
	for _, n := range m.order {
		if c := m.links[n]; c.parent == link {
			family = append(family, c)
		}
	}
	// As on Linux, a multicast arrives once on each link of the family
	// that joined the group (a macvlan's copy on the macvlan); a unicast
	// once, on the attached link, when a link of the family has dst.
	var at []int
	for _, f := range family {
		if p.Dst.IsMulticast() {
			if f.joined && f.AdminUp {
				at = append(at, f.Index)
			}
		} else if len(at) == 0 && slices.ContainsFunc(m.addrsLocked(f), func(a netip.Prefix) bool { return a.Addr() == p.Dst }) {
			at = append(at, l.Index)
		}
	}
	for _, idx := range at {
		c := p
		c.Payload = slices.Clone(p.Payload)
		c.IfIndex = idx
		select {
		case m.onto <- c:
			m.stats.Delivered++
		default:
			m.stats.Dropped++
		}
	}
}

// Announce: see the contract in carp/engine's kernel.go. Recorded as "arp announce ..." / "nd advertise ...".
func (m *Memory) Announce(link string, mac net.HardwareAddr, addr netip.Addr) error {
	frame, dst, err := kernelshim.AnnounceFrame(mac, addr)
	if err != nil {
		return err
	}
	m.mu.Lock()
	l, err := m.linkLocked(link)
	if err != nil {
		m.mu.Unlock()
		return fmt.Errorf("kernelshim: announce %s on %w", addr, err)
	}
	if addr.Unmap().Is4() {
		m.logf("arp announce %s dev %s lladdr %s", addr.Unmap(), link, mac)
	} else {
		m.logf("nd advertise %s dev %s lladdr %s", addr, link, mac)
	}
	// Out of the parent's wire, as Linux sends it: no copy to the
	// parent's other macvlans.
	seg := m.wireLocked(l)
	m.mu.Unlock()
	m.sendFrame(seg, dst, frame)
	return nil
}

// wireLocked returns the segment a frame sent on l goes out to: that of l
// or of its macvlan parent; nil when l is down or has no carrier.
func (m *Memory) wireLocked(l *memLink) *Segment {
	if !l.AdminUp || !l.carrier {
		return nil
	}
	if p := m.links[l.parent]; l.parent != "" && p != nil {
		return p.seg
	}
	return l.seg
}

// sendFrame puts an Ethernet frame for dst on seg (nil: nowhere): every
// other kernel attached to it receives it, as far as the loss filter
// lets it through.
func (m *Memory) sendFrame(seg *Segment, dst net.HardwareAddr, frame []byte) {
	if seg == nil {
		return
	}
	seg.mu.Lock()
	var ports []segPort
	for _, p := range seg.ports {
		if p.m != m {
			ports = append(ports, p)
		}
	}
	seg.mu.Unlock()
	for _, p := range ports {
		p.m.receiveFrame(m, seg, p.link, dst, frame)
	}
}

// receiveFrame takes a frame for dst arriving on physical link `link`
// from kernel `from`. As Linux does, an ARP request goes to the ARP
// listener: a broadcast on the link and in copies on each macvlan on it
// that is up, one sent to a MAC on the link of that MAC only; frames this
// kernel does not want (no listener, no tap) never reach the loss filter.
func (m *Memory) receiveFrame(from *Memory, seg *Segment, link string, dst net.HardwareAddr, frame []byte) {
	m.mu.Lock()
	l := m.links[link]
	if m.closed || l == nil || !l.AdminUp || !l.carrier {
		m.mu.Unlock()
		return
	}
	tap := m.frameTap
	family := []*memLink{l}
	for _, n := range m.order {
		if c := m.links[n]; c.parent == link && c.AdminUp {
			family = append(family, c)
		}
	}
	reqs, onto := m.arpCopiesLocked(family, dst, frame)
	m.mu.Unlock()
	if tap == nil && len(reqs) == 0 {
		return
	}
	seg.mu.Lock()
	lost := seg.loss != nil && seg.loss(from, m)
	if lost {
		seg.dropped++
	}
	seg.mu.Unlock()
	if lost {
		return
	}
	if tap != nil {
		tap(link, slices.Clone(frame))
	}
	deliverARP(onto, reqs)
}

// arpCopiesLocked returns, when frame is an ARP request and a listener is
// in force, the copies of it that arrive on links: on each for a
// broadcast, on the one whose MAC is dst otherwise.
func (m *Memory) arpCopiesLocked(links []*memLink, dst net.HardwareAddr, frame []byte) ([]osif.ARPRequest, chan<- osif.ARPRequest) {
	req, ok := kernelshim.ParseARPRequest(frame)
	if !ok || m.arpCtx == nil || m.arpCtx.Err() != nil {
		return nil, nil
	}
	var reqs []osif.ARPRequest
	for _, f := range links {
		if req.Broadcast || slices.Equal(f.MAC, dst) {
			r := req
			r.SenderMAC = slices.Clone(req.SenderMAC)
			r.IfIndex = f.Index
			reqs = append(reqs, r)
		}
	}
	return reqs, m.arpOnto
}

func deliverARP(onto chan<- osif.ARPRequest, reqs []osif.ARPRequest) {
	for _, r := range reqs {
		select { // a full listener drops it, as a full socket buffer does
		case onto <- r:
		default:
		}
	}
}

// ListenARP: see the contract in carp/engine's kernel.go. Requests come from InjectARP
// and from other kernels on a segment (their Announce of an IPv4 address).
// A full onto drops the requests of other kernels, as a full socket buffer
// does.
func (m *Memory) ListenARP(ctx context.Context, onto chan<- osif.ARPRequest) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("kernelshim: listen for ARP: %w", osif.ErrClosed)
	}
	if err := m.failure(OpListenARP); err != nil {
		return fmt.Errorf("kernelshim: listen for ARP: %w", err)
	}
	if m.arpCtx != nil && m.arpCtx.Err() == nil {
		return errors.New("kernelshim: listen for ARP: already listening")
	}
	m.arpCtx, m.arpOnto = ctx, onto
	m.logf("arp listen")
	return nil
}

// ARPListening reports whether a ListenARP is in force.
func (m *Memory) ARPListening() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return !m.closed && m.arpCtx != nil && m.arpCtx.Err() == nil
}

// InjectARP delivers an ARP request as if it had arrived on link (a
// broadcast arrives on the physical link; give a macvlan for one sent to
// its MAC). It reports whether a listener took it.
func (m *Memory) InjectARP(link string, req osif.ARPRequest) bool {
	m.mu.Lock()
	l, err := m.linkLocked(link)
	listening := !m.closed && m.arpCtx != nil && m.arpCtx.Err() == nil
	ctx, onto := m.arpCtx, m.arpOnto
	m.mu.Unlock()
	if err != nil || !listening {
		return false
	}
	req.IfIndex = l.Index
	select {
	case onto <- req:
		return true
	case <-ctx.Done():
		return false
	}
}

// ReplyARP: see the contract in carp/engine's kernel.go. Recorded as "arp reply ADDR is-at MAC to IP (MAC) dev LINK".
func (m *Memory) ReplyARP(link string, mac net.HardwareAddr, addr netip.Addr, toMAC net.HardwareAddr, toIP netip.Addr) error {
	frame, err := kernelshim.ARPReplyFrame(mac, addr, toMAC, toIP)
	if err != nil {
		return err
	}
	m.mu.Lock()
	l, err := m.linkLocked(link)
	if err != nil {
		m.mu.Unlock()
		return fmt.Errorf("kernelshim: arp reply %s on %w", addr, err)
	}
	m.logf("arp reply %s is-at %s to %s (%s) dev %s", addr.Unmap(), mac, toIP.Unmap(), toMAC, link)
	seg := m.wireLocked(l)
	m.mu.Unlock()
	m.sendFrame(seg, toMAC, frame)
	return nil
}

// memWatcher queues updates without bound so that emitting never blocks
// (the engine may cause updates from inside its own event loop).
type memWatcher struct {
	mu    sync.Mutex
	queue []osif.LinkUpdate
	kick  chan struct{}
}

func (w *memWatcher) push(u osif.LinkUpdate) {
	w.mu.Lock()
	w.queue = append(w.queue, u)
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (m *Memory) emit(u osif.LinkUpdate) {
	m.mu.Lock()
	ws := make([]*memWatcher, 0, len(m.watchers))
	for w := range m.watchers {
		ws = append(ws, w)
	}
	m.mu.Unlock()
	for _, w := range ws {
		w.push(u)
	}
}

// WatchLinks: see the contract in carp/engine's kernel.go. Updates are queued without bound and delivered in
// order; a watcher never blocks the kernel.
func (m *Memory) WatchLinks(ctx context.Context, onto chan<- osif.LinkUpdate) error {
	w := &memWatcher{kick: make(chan struct{}, 1)}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return fmt.Errorf("kernelshim: watch links: %w", osif.ErrClosed)
	}
	m.watchers[w] = struct{}{}
	m.mu.Unlock()
	go func() {
		defer func() {
			m.mu.Lock()
			delete(m.watchers, w)
			m.mu.Unlock()
		}()
		for {
			w.mu.Lock()
			q := w.queue
			w.queue = nil
			w.mu.Unlock()
			for _, u := range q {
				select {
				case onto <- u:
				case <-ctx.Done():
					return
				}
			}
			select {
			case <-w.kick:
			case <-ctx.Done():
				return
			}
		}
	}()
	return nil
}

// SetSysctl: see the contract in carp/engine's kernel.go. Unknown paths read
// as "0"; a path under net/ipv{4,6}/{conf,neigh}/LINK of a missing link is
// an error (fs.ErrNotExist), as in /proc/sys.
func (m *Memory) SetSysctl(path, value string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return "", fmt.Errorf("kernelshim: sysctl %s: %w", path, osif.ErrClosed)
	}
	if path == "" || strings.Contains(path, "..") {
		return "", fmt.Errorf("kernelshim: sysctl %q: bad path", path)
	}
	if f := strings.Split(path, "/"); len(f) > 4 && f[0] == "net" && (f[1] == "ipv4" || f[1] == "ipv6") &&
		(f[2] == "conf" || f[2] == "neigh") && f[3] != "all" && f[3] != "default" {
		if _, ok := m.links[f[3]]; !ok {
			// As /proc/sys: a link's directory goes with the link.
			return "", fmt.Errorf("kernelshim: sysctl %s=%s: %w", path, value, fs.ErrNotExist)
		}
	}
	old, ok := m.sysctl[path]
	if !ok {
		old = "0"
	}
	m.sysctl[path] = strings.TrimSpace(value)
	m.logf("sysctl %s=%s", path, strings.TrimSpace(value))
	return old, nil
}

// Close: see the contract in carp/engine's kernel.go. It detaches the kernel from its segments; watchers
// stop with their contexts.
func (m *Memory) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.open = false
	type det struct {
		s    *Segment
		name string
	}
	var ds []det
	for _, l := range m.links {
		if l.seg != nil {
			ds = append(ds, det{l.seg, l.Name})
		}
	}
	m.mu.Unlock()
	for _, d := range ds {
		d.s.detach(m, d.name)
	}
	return nil
}
