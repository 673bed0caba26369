package engine

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/bsdcarp/bsdcarp/carp"
	"github.com/bsdcarp/bsdcarp/carp/osif"
)

// vhost is the running side of one VHIDConfig.
type vhost struct {
	iface   string // BSD interface the vhid is configured on (carp0 / em0)
	clone   bool
	cfg     VHIDConfig
	carpdev string // BSD name of the resolved parent; "" while unknown
	vlink   string // Linux name of the macvlan carrying the virtual MAC
	made    bool   // the macvlan exists
	m       *carp.Machine
	counter carp.Counter

	lastSent    []byte         // the last advert sent: seen again, it is our own, looped back
	installed   []netip.Prefix // virtual addresses now in the kernel
	draining    bool           // bowed out of MASTER, addresses kept until the new MASTER is heard
	drainUntil  time.Time      // the drain ends at the latest then
	nextRefresh time.Time
	sendErrs    int // consecutive failed sends
	sendOKs     int // consecutive good sends after the senderr demotion
	senderr     bool
	suppressed  bool // counted in the interface-down demotion
	linkKnown   bool // an IFNET event for the cloned carpN was reported
	linkUp      bool // ... and it was LINK_UP
	balanced    bool // the macvlan has arp_ignore=8: carpd answers ARP (arpbalance.go)

	// lifetimes[i] is installed[i] as ReplaceAddr installed it, for the
	// refresh tick; Index 0 when that failed (installed again by name at
	// the next refresh). installed must be written again by nextRefresh
	// (half a lifetime after the last time).
	lifetimes []osif.AddrLifetime

	why initReason // why the vhid is in INIT, as last noted (noteInit); initNone while it may run

	obs vhidCounters // state changes, adverts and drops, for the detailed status (observe.go)

	// mismatch is the last host heard speaking for this vhid whose adverts
	// fail authentication: a different key or address set, so both hosts
	// may be MASTER. It is shown until mismatchUntil.
	mismatch       netip.Addr
	mismatchUntil  time.Time
	mismatchLogged time.Time

	// Kept by the engine's indexes and scheduler (index.go, sched.go).
	pos   int       // index in e.hosts
	at    time.Time // deadline as scheduled
	slot  int       // heap position + 1; 0: not scheduled
	dirty bool      // marked for rescheduling
	due   bool      // in advance's list of due vhosts
}

func (h *vhost) name() string {
	return fmt.Sprintf("%d@%s", h.cfg.VHID, h.carpdev)
}

// vlinkName is the Linux name of the macvlan of a vhid: the clone itself for
// dialects A and B; a hidden one named after the parent's index for dialect C.
func (e *Engine) vlinkName(ifc IfaceConfig, v VHIDConfig) string {
	if ifc.Clone {
		return ifc.Name
	}
	idx := 0
	if l, ok := e.linkByLinuxName(e.linuxName(ifc.Name)); ok {
		idx = l.Index
	}
	return "carpv" + strconv.Itoa(idx) + "." + strconv.Itoa(int(v.VHID)) // per vhid at every line: no fmt
}

// addrLifetime is how long a virtual address stays in the kernel without a
// refresh: one advbase, at least a second (the kernel counts whole seconds).
//
// The guarantee is that a killed engine's addresses leave the kernel before
// any backup can take over. Let k be the kill, r <= k the last refresh (so
// the refresh rate does not enter), a the last advert the backups heard
// (a > k - advbase - the master's advskew/256), L the lifetime:
//
//   - Linux deletes an address when a lifetime check finds its age, in
//     whole seconds of now - r + 20 ms, >= L (IPv4: net/ipv4/devinet.c
//     check_lifetime; IPv6: addrconf_verify, alike). Every RTM_NEWADDR
//     runs a check at once, which schedules the next at r + L (rounded up
//     to a second boundary when that is within 250 ms). So the address is
//     gone by r + L + 0.25 s. Only when some other address change runs a
//     check in the last second before r + L does the kernel's minimum
//     interval (ADDRCONF_TIMER_FUZZ_MAX, 1 s) push the next one, to at
//     most r + L + 1 s. The refresh tick writes all our addresses in one
//     batch, so they share one timestamp and go in the same check.
//   - A backup takes over at the earliest 3 * advbase + its advskew/256
//     after a, so after k + 2 * advbase + (its advskew - the dead
//     master's advskew)/256: the backups that preemption lets win have the
//     higher advskew.
//
// With L = advbase the addresses are gone by k + advbase + 0.25 s, a margin
// of at least advbase - 0.25 s (0.75 s at advbase 1), and in the kernel's
// worst case by k + advbase + 1 s <= k + 2 * advbase: a margin of advbase -
// 1 s plus the advskew difference (at advbase 1, that difference and the
// 20 ms). The lifetime cannot be shorter: 1 s is the kernel's least.
//
// The refresh rate only has to keep a live engine's addresses: one
// refreshed at r expires at r + L - 20 ms at the earliest, and the refresh
// tick (refreshEvery) writes it again within L/2 (see refreshTick), leaving
// the event loop 480 ms of delay at advbase 1 (twice a lifetime is enough;
// it was three times).
func addrLifetime(advbase uint8) time.Duration {
	d := time.Duration(advbase) * time.Second
	if d < time.Second {
		d = time.Second
	}
	return d
}

func (e *Engine) machineConfig(v VHIDConfig) carp.Config {
	v4, v6 := v.families()
	return carp.Config{
		AdvBase:  v.AdvBase,
		AdvSkew:  v.AdvSkew,
		Preempt:  e.knob("preempt") != 0,
		Demotion: e.demotion(),
		IPv4:     v4,
		IPv6:     v6,
		VRRP:     v.isVRRP(),
		Priority: v.vrrpPrio(),
		Interval: v.vrrpInterval(),
	}
}

// wantedVHID is one vhid of the configuration, with its interface.
type wantedVHID struct {
	ifc IfaceConfig
	v   VHIDConfig
}

// reconcile brings the running vhosts in line with the configuration.
func (e *Engine) reconcile(now time.Time) { e.reconcileOnly(now, "") }

// touchedBy is whether a reconcile limited to interface only ("" for all)
// configures and re-runs h, which w configures: a vhid of that interface
// whose configuration changed (a clone's: any), a vhid of another
// interface running on that one as its parent (a clone with carpdev),
// one whose parent is not resolved yet, and one in INIT (it tries again,
// as at every line).
func (h *vhost) touchedBy(only string, w wantedVHID) bool {
	switch {
	case only == "" || h.carpdev == "" || h.why != initNone:
		return true
	case h.iface == only:
		return w.ifc.Clone || !sameVHID(h.cfg, w.v)
	}
	return h.carpdev == only
}

// sameVHID is whether a and b are the same configuration (every field:
// TestSameVHIDSeesEveryField).
func sameVHID(a, b VHIDConfig) bool {
	return a.VHID == b.VHID && a.Carpdev == b.Carpdev && a.AdvBase == b.AdvBase && a.AdvSkew == b.AdvSkew &&
		a.Key == b.Key && slices.Equal(a.Addrs, b.Addrs) &&
		a.Version == b.Version && a.Prio == b.Prio && a.Interval == b.Interval && a.Peer == b.Peer && a.Peer6 == b.Peer6
}

// reconcileOnly is reconcile after a change to the configuration of
// interface only alone (no change to any Linux link): the other vhids keep
// their configuration and run facts, so only the vhosts touchedBy(only)
// are configured and re-run. A line then costs about the same with 1 or
// 1,020 vhids configured.
func (e *Engine) reconcileOnly(now time.Time, only string) {
	if only != "" && e.reconcileIface(now, only) {
		return
	}
	n := 0
	for _, ifc := range e.cfg.Ifaces {
		n += len(ifc.VHIDs)
	}
	wants := make([]wantedVHID, 0, n)
	for _, ifc := range e.cfg.Ifaces {
		for _, v := range ifc.VHIDs {
			if v.VHID != 0 {
				wants = append(wants, wantedVHID{ifc, v})
			}
		}
	}
	prev := e.hosts
	kept := e.dropUnwanted(now, wants)
	var byName byIfaceVHID[*vhost]
	for _, x := range kept {
		byName.set(x.iface, x.cfg.VHID, x) // the last, as a scan would find
	}
	ordered := make([]*vhost, 0, len(wants))
	reindex := false // something the indexes hold changed (index.go)
	var run []*vhost // the vhosts configured here, in order: all, or a few
	for _, w := range wants {
		h := byName.get(w.ifc.Name, w.v.VHID)
		if h != nil && !h.touchedBy(only, w) {
			ordered = append(ordered, h)
			continue
		}
		h, moved := e.configure(now, h, w)
		reindex = reindex || moved
		ordered = append(ordered, h)
		run = append(run, h)
	}
	e.hosts = ordered
	if reindex || !slices.Equal(prev, ordered) {
		e.indexHosts()
	}
	e.syncGroups()
	for _, h := range run {
		e.setRun(now, h, carp.ReasonInitComplete)
	}
	e.emitParentLinks() // a parent new to the configuration: its carrier now
	e.syncARPBalance()
}

// touchedHost is a vhost a line configures again, with what it is told.
type touchedHost struct {
	h *vhost
	w wantedVHID
}

// reconcileIface is reconcileOnly(now, only) for the common line, one that
// keeps the vhids of interface only (their numbers, order and parents) and
// changes their parameters, while no vhost retries at every line (none in
// INIT, none with its parent unresolved): then the vhosts stay as they
// are in e.hosts, and those touchedBy(only) are the vhosts of only whose
// configuration changed (a clone's: any) and the clones running on only
// (hostIdx.guests). It does what reconcileOnly's pass over every vhid
// does, in the same order, and reports false, having changed nothing,
// for any other line.
func (e *Engine) reconcileIface(now time.Time, only string) bool {
	if e.nInit > 0 || e.hostIdx.devs[""] > 0 {
		return false
	}
	ifc := e.cfg.iface(only)
	span, ok := e.hostIdx.ifaces[only]
	if ifc == nil || !ok || span.n < 0 {
		return false
	}
	hs := e.hosts[span.lo : span.lo+span.n]
	touched := e.touched[:0]
	fail := func() bool {
		clear(touched) // the buffer is kept, not what it pointed to
		return false
	}
	guests := e.hostIdx.guests[only]
	g := 0
	for ; g < len(guests) && guests[g].pos < span.lo; g++ {
		t, ok := e.guestWant(guests[g])
		if !ok {
			return fail()
		}
		touched = append(touched, t)
	}
	k := 0
	for _, v := range ifc.VHIDs {
		if v.VHID == 0 {
			continue
		}
		if k == len(hs) || hs[k].cfg.VHID != v.VHID || hs[k].cfg.Carpdev != v.Carpdev {
			return fail() // a vhid added, removed or moved: the full pass
		}
		if ifc.Clone || !sameVHID(hs[k].cfg, v) {
			touched = append(touched, touchedHost{hs[k], wantedVHID{*ifc, v}})
		}
		k++
	}
	if k != len(hs) {
		return fail()
	}
	for ; g < len(guests); g++ {
		t, ok := e.guestWant(guests[g])
		if !ok {
			return fail()
		}
		touched = append(touched, t)
	}
	reindex := false
	for _, t := range touched {
		h := t.h
		dev, vlink, addrs := h.carpdev, h.vlink, h.cfg.Addrs
		if _, moved := e.configure(now, h, t.w); moved {
			// Only its addresses moved: the index follows them.
			reindex = reindex || h.carpdev != dev || h.vlink != vlink || !e.reindexAddrs(h, addrs)
		}
	}
	if reindex {
		e.indexHosts()
	}
	e.syncGroups()
	for _, t := range touched {
		e.setRun(now, t.h, carp.ReasonInitComplete)
	}
	clear(touched)
	e.touched = touched[:0]
	e.emitParentLinks()
	e.syncARPBalance()
	return true
}

// guestWant is what the configuration tells h, a vhost of another
// interface than its parent (a clone's).
func (e *Engine) guestWant(h *vhost) (touchedHost, bool) {
	ifc := e.cfg.iface(h.iface)
	if ifc == nil {
		return touchedHost{}, false
	}
	for _, v := range ifc.VHIDs {
		if v.VHID == h.cfg.VHID {
			return touchedHost{h, wantedVHID{*ifc, v}}, true
		}
	}
	return touchedHost{}, false
}

// dropUnwanted tears down the vhosts whose vhid is gone from the
// configuration or changed identity (vhid, parent) and returns the others.
// e.hosts is not filtered in place: a teardown counts the demotion over it.
func (e *Engine) dropUnwanted(now time.Time, wants []wantedVHID) []*vhost {
	// The configuration holds each vhid of an interface once (Validate).
	type want struct {
		ok      bool
		carpdev string
	}
	var wanted byIfaceVHID[want]
	for _, w := range wants {
		wanted.set(w.ifc.Name, w.v.VHID, want{true, w.v.Carpdev})
	}
	kept := make([]*vhost, 0, len(e.hosts))
	for _, h := range e.hosts {
		if w := wanted.get(h.iface, h.cfg.VHID); w.ok && w.carpdev == h.cfg.Carpdev {
			kept = append(kept, h)
		} else {
			e.teardown(now, h, "")
		}
	}
	e.hosts = kept
	return kept
}

// configure gives the vhost of w (h, or a new one when h is nil) its
// configuration, and reports whether what the indexes hold of it changed
// (parent, macvlan, addresses).
func (e *Engine) configure(now time.Time, h *vhost, w wantedVHID) (*vhost, bool) {
	if h == nil {
		h = &vhost{iface: w.ifc.Name, clone: w.ifc.Clone, cfg: w.v, m: carp.NewMachine(e.machineConfig(w.v))}
		h.obs.since = now
		k := counterKey(w.ifc.Name, w.v.VHID)
		if cs, ok := e.counters[k]; ok {
			h.counter.Restore(cs) // what an earlier run of this boot had seen
			delete(e.counters, k)
		}
	}
	old, oldDev, oldVlink := h.cfg, h.carpdev, h.vlink
	h.cfg = w.v
	if h.carpdev == "" || w.v.Carpdev != "" {
		h.carpdev = e.resolveCarpdev(w.v)
	}
	h.vlink = e.vlinkName(w.ifc, w.v)
	moved := h.carpdev != oldDev || h.vlink != oldVlink || !slices.Equal(old.Addrs, w.v.Addrs)
	e.apply(now, h, h.m.SetConfig(now, e.machineConfig(w.v)))
	if h.m.State() == carp.Master && !slices.Equal(old.Addrs, w.v.Addrs) {
		e.installAddrs(now, h)
		for _, p := range w.v.Addrs {
			if !slices.Contains(old.Addrs, p) {
				e.announce(h, p)
			}
		}
	}
	return h, moved
}

// resolveCarpdev finds the parent of a vhid: the configured carpdev, or
// (dialect B) the interface with an address in the virtual address's subnet.
func (e *Engine) resolveCarpdev(v VHIDConfig) string {
	return e.hostView().resolveCarpdev(v)
}

// setRun applies setrun(): INIT <-> BACKUP as the conditions come and go.
// The conditions are facts (runFacts); the macvlan a runnable vhid needs is
// created here, and its failure is one more reason to stay in INIT.
func (e *Engine) setRun(now time.Time, h *vhost, upReason string) {
	facts := e.runFacts(h)
	why := facts.reason()
	if why == initNone && !e.ensureVlink(h) {
		why = initNoVlink
	}
	e.suppress(h, facts.parentDown())
	switch {
	case why == initNone:
		e.apply(now, h, h.m.SetRunnable(now, true, upReason))
	case facts.adminDown:
		// `ifconfig carp0 down`: a MASTER bows out with advbase and
		// advskew 255 so that a backup takes over at once; then the
		// Linux link goes down too, as `ip link` should show.
		e.apply(now, h, h.m.BowOut(now, ""))
		if h.clone && !h.draining {
			e.setVlinkUp(h, false) // else when the drain ends
		}
	default:
		e.apply(now, h, h.m.SetRunnable(now, false, carp.ReasonIfDown))
	}
	e.noteInit(h, why)
}

// suppress adds ifdown_demotion_factor once while a vhid's parent is down and
// removes it when it comes back (FreeBSD's sc_suppress), so every other vhid
// of the host advertises the demotion and a preempting peer takes them over.
func (e *Engine) suppress(h *vhost, on bool) {
	if on == h.suppressed {
		return
	}
	before := e.demotion()
	e.setSuppressed(h, on)
	if on {
		e.demote(e.demotion()-before, "interface down")
	} else {
		e.demote(e.demotion()-before, "interface up")
	}
}

// ensureVlink creates the macvlan with the virtual MAC on the parent.
func (e *Engine) ensureVlink(h *vhost) bool {
	if h.made {
		if _, ok := e.linkByLinuxName(h.vlink); ok {
			e.setVlinkUp(h, true)
			return true
		}
		h.made = false
	}
	parent := e.linuxName(h.carpdev)
	e.tuneParent(parent)
	if err := e.kern().CreateMACVLAN(h.vlink, parent, carp.VirtualMAC(h.cfg.VHID)); err != nil {
		e.errorf("carpd: create %s on %s: %v", h.vlink, parent, err)
		return false
	}
	// The macvlan must not answer ARP for the parent's own addresses with
	// the virtual MAC, nor announce them from it.
	e.setKernel("net/ipv4/conf/"+h.vlink+"/arp_ignore", e.vlinkArpIgnore(), false)
	e.setKernel("net/ipv4/conf/"+h.vlink+"/arp_announce", "2", false)
	h.balanced = e.balancing()
	e.arpStale = e.arpStale || h.balanced != e.arpOn
	h.made = true
	// One link asked for, not the whole list again: a line that creates a
	// vhid costs the same with 1 or 255 others.
	if l, err := e.kern().LinkByName(h.vlink); err == nil {
		e.putLink(l)
	} else {
		e.relist("after creating " + h.vlink)
	}
	return true
}

// setVlinkUp sets the macvlan's administrative state if it differs.
func (e *Engine) setVlinkUp(h *vhost, up bool) {
	l, ok := e.linkByLinuxName(h.vlink)
	if !ok || l.AdminUp == up {
		return
	}
	if err := e.kern().SetLinkUp(h.vlink, up); err != nil {
		e.errorf("carpd: set %s up=%v: %v", h.vlink, up, err)
		return
	}
	l.AdminUp = up
	e.putLink(l)
}

// tuneParent stops the parent from answering ARP for the virtual addresses
// with its real MAC (they live on the macvlan), remembering the old values.
func (e *Engine) tuneParent(parent string) {
	if e.tuned[parent] {
		return
	}
	e.tuned[parent] = true
	e.setKernel("net/ipv4/conf/"+parent+"/arp_ignore", "1", true)
	e.setKernel("net/ipv4/conf/"+parent+"/arp_announce", "2", true)
	// On a parent without an IPv4 address of its own (the vhid's address is
	// the only one on the link) the peers advertise from the vhid's
	// address (sourceAddr), which the MASTER here holds: without
	// accept_local the kernel drops those adverts as martians and both
	// stay MASTER. Elsewhere martian filtering stays as the admin set it.
	if l, ok := e.linkByLinuxName(parent); ok && !slices.ContainsFunc(l.Addrs, func(p netip.Prefix) bool { return p.Addr().Is4() }) {
		e.setKernel("net/ipv4/conf/"+parent+"/accept_local", "1", true)
	}
}

// setKernel writes a /proc/sys value. With restore, the value it replaces is
// recorded (in kernel.json too, before anything else changes) unless an
// earlier run already recorded the original: after a crash within one boot
// what the admin had is what gets restored, while the value is always written
// again. kernel.json lives in the state directory, which carpd holds locked
// and which a reboot clears (under /run), so it only ever names values that
// this process or the dead engine whose lock it inherited changed.
func (e *Engine) setKernel(path, value string, restore bool) {
	old, err := e.kern().SetSysctl(path, value)
	if err != nil {
		e.errorf("carpd: set %s=%s: %v", path, value, err)
		return
	}
	if _, recorded := e.kernelOriginal[path]; restore && !recorded {
		e.kernelOriginal[path] = old
		if err := saveKernelState(e.opts.StateDir, e.kernelOriginal); err != nil {
			e.errorf("carpd: %v", err)
		}
	}
}

func (e *Engine) restoreKernel() {
	// In a fixed order (by path), so that a stop is the same every time.
	for _, path := range slices.Sorted(maps.Keys(e.kernelOriginal)) {
		v := e.kernelOriginal[path]
		if _, err := e.kern().SetSysctl(path, v); err != nil {
			e.errorf("carpd: restore %s=%s: %v", path, v, err)
		}
	}
	e.kernelOriginal = map[string]string{}
	if err := saveKernelState(e.opts.StateDir, nil); err != nil {
		e.errorf("carpd: %v", err)
	}
}

// teardown stops a vhost: bow-out if MASTER, addresses and its link removed.
// reason is the logged cause of the transition to INIT; empty means the
// admin's ifconfig (carp.ReasonUser).
func (e *Engine) teardown(now time.Time, h *vhost, reason string) {
	e.handOver(now, h, reason)
	if h.made {
		if err := e.kern().DeleteLink(h.vlink); err != nil && !errors.Is(err, osif.ErrNoLink) {
			e.errorf("carpd: delete %s: %v", h.vlink, err)
		}
		h.made = false
	}
}

// deleteLinks deletes the links of hs that the engine made, together (the
// kernel deletes a batch of links much faster than one link at a time).
func (e *Engine) deleteLinks(hs []*vhost) {
	var names []string
	for _, h := range hs {
		if h.made {
			names = append(names, h.vlink)
			h.made = false
		}
	}
	for _, err := range unjoin(e.kern().DeleteLinks(names)) {
		if !errors.Is(err, osif.ErrNoLink) {
			e.errorf("carpd: %v", err)
		}
	}
}

// handOver is teardown but for the link: the vhost stops, with a bow-out
// if MASTER, and its addresses are removed.
func (e *Engine) handOver(now time.Time, h *vhost, reason string) {
	if h.suppressed {
		before := e.demotion()
		e.setSuppressed(h, false)
		e.demote(e.demotion()-before, "vhid removed")
	}
	if h.senderr {
		before := e.demotion()
		e.setSenderr(h, false)
		e.demote(e.demotion()-before, "vhid removed")
	}
	e.apply(now, h, h.m.BowOut(now, reason))
	e.removeAddrs(h)
}

// apply carries out what the state machine decided, in the order that
// loses no packet in a planned handover:
//
//   - a bow-out advert goes first, while this host still answers for the
//     addresses; they stay (drain) until the new MASTER is heard, so that
//     nothing arriving before its announcement finds them unowned;
//   - a new MASTER installs and announces its addresses (gratuitous ARP /
//     unsolicited NA moves the switch's and neighbours' idea of where the
//     virtual MAC lives) before its first advert leaves: the old MASTER
//     gives the addresses up only when it hears that advert;
//   - a MASTER that hears a better advert gives them up at once: that
//     MASTER announced them before advertising.
func (e *Engine) apply(now time.Time, h *vhost, out carp.Output) {
	if out.BowOut {
		e.send(h, carp.BowOutAdvBase, carp.BowOutAdvSkew)
	}
	if t := out.Transition; t != nil {
		if e.knob("log") >= 1 {
			e.infof("carp: %s: %s -> %s (%s)", h.name(), t.From, t.To, t.Reason)
		}
		e.emitTransition(h, t.To)
		h.obs.since = now
		h.obs.transitions++
		switch {
		case t.To == carp.Master:
			e.stats.Preempt++ // OpenBSD's "transitions to master"
			h.obs.toMaster++
			h.draining = false
			e.installAddrs(now, h)
			for _, p := range h.cfg.Addrs {
				e.announce(h, p)
			}
		case t.From == carp.Master && out.BowOut && len(h.installed) > 0:
			h.draining = true
			h.drainUntil = now.Add(drainMax(h))
		case t.From == carp.Master:
			e.removeAddrs(h)
		}
	}
	if out.Advertise {
		ab, as := h.m.AdvertParams()
		e.send(h, ab, as)
	}
	e.touch(h)
}

// drainMax bounds how long a MASTER that bowed out keeps answering for its
// addresses while no new MASTER is heard: the master-down interval, in which
// any backup has taken over (at once, for a bow-out) or never will.
func drainMax(h *vhost) time.Duration {
	if h.cfg.isVRRP() {
		return carp.VRRPMasterDown(h.cfg.vrrpPrio(), h.cfg.vrrpInterval())
	}
	return carp.MasterDown(h.cfg.AdvBase, h.cfg.AdvSkew)
}

// endDrain gives up the addresses of a vhid that bowed out, once the new
// MASTER is heard or the drain times out; a clone that is administratively
// down (`ifconfig carp0 down`) takes its Linux link down then too.
func (e *Engine) endDrain(h *vhost) {
	if !h.draining {
		return
	}
	h.draining = false
	e.removeAddrs(h)
	e.touch(h)
	if ifc := e.cfg.iface(h.iface); h.clone && ifc != nil && ifc.Down {
		e.setVlinkUp(h, false)
	}
}

// announce sends a gratuitous ARP (IPv4) or unsolicited neighbour
// advertisement (IPv6) for p from the virtual MAC.
func (e *Engine) announce(h *vhost, p netip.Prefix) {
	if e.arpBalanced(h, p.Addr()) {
		return // see arpBalanced
	}
	if err := e.kern().Announce(h.vlink, carp.VirtualMAC(h.cfg.VHID), p.Addr()); err != nil {
		e.errorf("carpd: announce %s on %s: %v", p.Addr(), h.vlink, err)
	}
}

func (e *Engine) installAddrs(now time.Time, h *vhost) {
	for _, p := range h.installed {
		if !slices.Contains(h.cfg.Addrs, p) {
			if err := e.kern().DelAddr(h.vlink, p); err != nil {
				e.errorf("carpd: remove %s from %s: %v", p, h.vlink, err)
			}
		}
	}
	h.installed = slices.Clone(h.cfg.Addrs)
	h.lifetimes = make([]osif.AddrLifetime, len(h.installed))
	e.writeAddrs(now, h)
	e.refresh.start(now)
}

// writeAddrs installs, by link name, every address of h that is not in the
// kernel as far as the engine knows (lifetimes[i].Index == 0). What fails is
// logged and tried again at the next refresh.
func (e *Engine) writeAddrs(now time.Time, h *vhost) {
	lt := addrLifetime(h.cfg.AdvBase)
	for i, p := range h.installed {
		if h.lifetimes[i].Index != 0 {
			continue
		}
		a, err := e.kern().ReplaceAddr(h.vlink, p, lt)
		if err != nil {
			e.errorf("carpd: add %s to %s: %v", p, h.vlink, err)
			continue
		}
		h.lifetimes[i] = a
	}
	h.nextRefresh = now.Add(lt / 2)
}

// refreshEvery is the period of the refresh tick: half the least address
// lifetime (addrLifetime explains why that is safe).
const refreshEvery = 500 * time.Millisecond

// refresher is the engine's one address-refresh tick: while any virtual
// address is installed, every refreshEvery it writes the fresh lifetime of
// every address due in one RefreshAddrs batch (one netlink sendmsg),
// instead of a timer and three netlink round trips per address.
type refresher struct {
	at     time.Time // the next tick; zero while none is needed
	batch  []osif.AddrLifetime
	owners []addrRef // owners[i] is where batch[i] came from
}

// addrRef names one installed address: h.installed[i].
type addrRef struct {
	h *vhost
	i int
}

// start runs the tick, if it is not running, from now.
func (r *refresher) start(now time.Time) {
	if r.at.IsZero() {
		r.at = now.Add(refreshEvery)
	}
}

// deadline returns the next tick, if any.
func (r *refresher) deadline() (time.Time, bool) {
	return r.at, !r.at.IsZero()
}

// refreshEarly is how much before its time the refresh tick runs when the
// loop is awake for vhids anyway (see advance): the tick then falls in
// with the adverts (a MASTER of one vhid at advbase 1 wakes twice a second
// instead of three times) and never comes later than refreshEvery after
// the last one, only sometimes up to refreshEarly sooner.
const refreshEarly = 50 * time.Millisecond

// refreshTick refreshes, when the tick is due within early, the addresses
// of every vhid whose next refresh would otherwise come more than half a
// lifetime after its last one; the tick stops when no address is
// installed.
func (e *Engine) refreshTick(now time.Time, early time.Duration) {
	r := &e.refresh
	if r.at.IsZero() || now.Add(early).Before(r.at) {
		return
	}
	r.batch, r.owners = r.batch[:0], r.owners[:0]
	var again []*vhost // addresses to install again by name
	running := false
	for _, h := range e.hosts {
		if len(h.installed) == 0 {
			continue
		}
		running = true
		if !now.Add(refreshEvery).After(h.nextRefresh) {
			continue // the next tick is soon enough
		}
		lt := addrLifetime(h.cfg.AdvBase)
		h.nextRefresh = now.Add(lt / 2)
		for i, a := range h.lifetimes {
			if a.Index == 0 {
				again = append(again, h)
				continue
			}
			a.Lifetime = lt
			r.batch = append(r.batch, a)
			r.owners = append(r.owners, addrRef{h, i})
		}
	}
	if !running {
		r.at = time.Time{}
		return
	}
	r.at = now.Add(refreshEvery)
	for _, err := range unjoin(e.kern().RefreshAddrs(r.batch)) {
		var ae *osif.AddrError
		if !errors.As(err, &ae) || ae.Entry < 0 || ae.Entry >= len(r.owners) {
			e.errorf("carpd: %v", err)
			continue
		}
		o := r.owners[ae.Entry]
		if errors.Is(ae.Err, osif.ErrNoLink) {
			// The macvlan was re-created (a new index): install the
			// address again on the link of that name.
			o.h.lifetimes[o.i].Index = 0
			again = append(again, o.h)
			continue
		}
		e.errorf("carpd: refresh %s on %s: %v", o.h.installed[o.i], o.h.vlink, ae.Err)
	}
	for i, h := range again {
		if !slices.Contains(again[:i], h) {
			e.writeAddrs(now, h)
		}
	}
}

// unjoin returns the errors that err joins (errors.Join), err itself when it
// joins none, or nothing for nil.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

func (e *Engine) removeAddrs(h *vhost) {
	h.draining = false
	for _, p := range h.installed {
		if err := e.kern().DelAddr(h.vlink, p); err != nil {
			e.errorf("carpd: remove %s from %s: %v", p, h.vlink, err)
		}
	}
	h.installed = nil
	h.lifetimes = nil
}

// send transmits one advertisement per address family of the vhid: CARP,
// or VRRPv3 for a carpver 3 vhid (priority 0 for the bow-out values), to
// the multicast group from the virtual MAC, or to the family's unicast
// peer out of the parent itself (FreeBSD tags only multicast adverts with
// the virtual MAC).
func (e *Engine) send(h *vhost, advbase, advskew uint8) {
	if !h.made || h.carpdev == "" {
		return
	}
	parent, ok := e.linkByLinuxName(e.linuxName(h.carpdev))
	if !ok {
		return
	}
	var payload []byte
	if !h.cfg.isVRRP() {
		payload = carp.BuildAdvert(h.cfg.VHID, advbase, advskew, h.counter.Next(e.opts.Rand), carp.Key(h.cfg.Key), h.cfg.addrs())
		h.lastSent = payload
	}
	tos := uint8(e.knob("dscp") << 2)
	v4, v6 := h.cfg.families()
	var err error
	for _, six := range [2]bool{false, true} {
		if (six && !v6) || (!six && !v4 && v6) {
			continue
		}
		dst := h.cfg.advertDst(six)
		src := advertSource(parent.Addrs, h.cfg.Addrs, !six, dst)
		out := h.vlink
		if !dst.IsMulticast() {
			out = parent.Name
		}
		pl := payload
		if h.cfg.isVRRP() {
			pl = e.vrrpAdvert(h, advbase, advskew, src, dst)
			h.lastSent = pl
		}
		if e.batching {
			e.outbox = append(e.outbox, osif.Advert{Out: out, Src: src, Dst: dst, TOS: tos, Payload: pl})
			e.outMeta = append(e.outMeta, outMeta{h: h, six: six})
			continue
		}
		ferr := e.k.SendCARP(out, src, dst, tos, pl)
		if ferr != nil {
			err = ferr
		}
		e.sent(h, six, ferr)
	}
	if e.batching {
		if n := len(e.outMeta); n > 0 && e.outMeta[n-1].h == h {
			e.outMeta[n-1].last = true
		}
		return
	}
	e.sendResult(h, err)
}

// sent counts one advert of h sent (err nil) or not.
func (e *Engine) sent(h *vhost, six bool, err error) {
	switch {
	case err != nil:
		e.countNoMem(err)
	case six:
		e.stats.OPackets6++
		h.obs.advOut++
	default:
		e.stats.OPackets++
		h.obs.advOut++
	}
}

// outMeta is whose an advert of the outbox is (see flushAdverts).
type outMeta struct {
	h    *vhost
	six  bool
	last bool // the last advert of h's send: its result is complete after it
}

// sendRes is the result of one vhid's send that went out in a batch,
// waiting for settleSends.
type sendRes struct {
	h   *vhost
	err error
}

// kern returns the kernel for any call other than an advert: the adverts
// the round has gathered go out first, so that the kernel sees every
// change in the order the engine made it.
func (e *Engine) kern() Kernel {
	e.flushAdverts()
	return e.k
}

// flushAdverts sends the adverts gathered in the outbox (send, while
// batching: the vhids a timer round advances) with one SendCARPs and
// counts each. Each vhid's sendResult waits for settleSends: a flush comes
// at any kernel call, maybe in the middle of another vhid's takeover, and
// a result may demote, which runs every vhid.
func (e *Engine) flushAdverts() {
	if len(e.outbox) == 0 {
		return
	}
	ads, meta := e.outbox, e.outMeta
	e.outbox, e.outMeta = nil, nil
	if cap(e.outErrs) < len(ads) {
		e.outErrs = make([]error, len(ads))
	}
	errs := e.outErrs[:len(ads)]
	e.k.SendCARPs(ads, errs)
	var err error
	for j, m := range meta {
		if errs[j] != nil {
			err = errs[j]
		}
		e.sent(m.h, m.six, errs[j])
		if m.last {
			e.results = append(e.results, sendRes{m.h, err})
			err = nil
		}
	}
	clear(ads)
	clear(meta)
	clear(errs)
	e.outbox, e.outMeta = ads[:0], meta[:0]
}

// settleSends gives each vhid whose adverts went out in a batch its
// sendResult, as send does for one sent alone. It runs where the round is
// between two vhids (advance), after sending what is still gathered, so a
// demotion it sets off (which runs every vhid, and may advertise at once)
// comes after everything the engine did before it, as it did when each
// send had its result at once.
func (e *Engine) settleSends() {
	if len(e.results) == 0 {
		return
	}
	e.flushAdverts()
	rs := e.results
	e.results = nil
	batching := e.batching
	e.batching = false // what the results set off goes out at once
	for _, r := range rs {
		e.sendResult(r.h, r.err)
	}
	e.batching = batching
	clear(rs)
	e.results = rs[:0]
}

// vrrpAdvert is the VRRPv3 advert of h from src to dst: priority 0 when
// advbase and advskew are the bow-out values (RFC 9568 6.4.3: a master
// that stops says so, and the backups take over after their skew).
func (e *Engine) vrrpAdvert(h *vhost, advbase, advskew uint8, src, dst netip.Addr) []byte {
	prio, interval := h.m.VRRPParams()
	if advbase == carp.BowOutAdvBase && advskew == carp.BowOutAdvSkew {
		prio = 0
	}
	return carp.AppendVRRP(nil, carp.VRRPAdvert{VRID: h.cfg.VHID, Priority: prio, Interval: interval, Addrs: h.cfg.addrs()}, src, dst)
}

// advertSource is the source address of an advert to dst: sourceAddr's
// choice, except that an IPv6 advert to a peer beyond the link does not
// leave from a link-local address.
func advertSource(parent, vips []netip.Prefix, v4 bool, dst netip.Addr) netip.Addr {
	a := sourceAddr(parent, vips, v4)
	if v4 || !a.IsLinkLocalUnicast() || dst.IsMulticast() || dst.IsLinkLocalUnicast() {
		return a
	}
	for _, p := range parent {
		if b := p.Addr(); b.Is6() && !b.IsLinkLocalUnicast() && !slices.ContainsFunc(vips, func(v netip.Prefix) bool { return v.Addr() == b }) {
			return b
		}
	}
	return a
}

// countNoMem counts a send the kernel refused for want of buffer memory
// (ENOBUFS, ENOMEM) in onomem, where FreeBSD counts a failed mbuf
// allocation for an advert. It still counts as a send error too: the
// advert did not leave, and three in a row demote as any other failure.
func (e *Engine) countNoMem(err error) {
	if errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM) {
		e.stats.ONoMem++
	}
}

// sendResult implements the send-error demotion: 3 consecutive failures add
// senderr_demotion_factor, 3 consecutive successes afterwards remove it. The
// first failure of a run is logged at the default level: a vhid that cannot
// advertise lets every backup become MASTER.
//
// The thresholds are FreeBSD's (sys/netinet/ip_carp.c, struct carp_softc):
// CARP_SENDAD_MAX_ERRORS failures in a row demote, CARP_SENDAD_MIN_SUCCESS
// successes in a row undo it.
func (e *Engine) sendResult(h *vhost, err error) {
	if err != nil {
		h.sendOKs = 0
		h.sendErrs++
		if lvl := e.knob("log"); lvl >= 2 || (lvl >= 1 && h.sendErrs == 1) {
			e.errorf("carp: %s: cannot send advertisement on %s: %v", h.name(), h.carpdev, err)
		}
		if h.sendErrs == sendErrsToDemote && !h.senderr {
			before := e.demotion()
			e.setSenderr(h, true)
			e.demote(e.demotion()-before, fmt.Sprintf("send error %d on %s", h.sendErrs, h.carpdev))
		}
		return
	}
	h.sendErrs = 0
	if h.senderr {
		h.sendOKs++
		if h.sendOKs >= sendOKsToRecover {
			before := e.demotion()
			e.setSenderr(h, false)
			h.sendOKs = 0
			e.demote(e.demotion()-before, "send ok on "+h.carpdev)
		}
	}
}

// sourceAddr chooses an advert's source address as FreeBSD's carp_best_ifa
// does: the parent's preferred address of the family (Linux lists the
// primary first; for IPv6 the link-local one, which is what ff02::12 wants),
// else, when the parent has none, one of the vhid's own addresses (on
// FreeBSD they are addresses of the parent too). A host whose em0 carries
// only the vhid's address still advertises.
func sourceAddr(parent, vips []netip.Prefix, v4 bool) netip.Addr {
	pick := func(ps []netip.Prefix, ok func(netip.Addr) bool) netip.Addr {
		for _, p := range ps {
			if a := p.Addr(); a.Is4() == v4 && ok(a) {
				return a
			}
		}
		return netip.Addr{}
	}
	virtual := func(a netip.Addr) bool {
		return slices.ContainsFunc(vips, func(v netip.Prefix) bool { return v.Addr() == a })
	}
	if !v4 {
		if a := pick(parent, func(a netip.Addr) bool { return a.IsLinkLocalUnicast() }); a.IsValid() {
			return a
		}
	}
	if a := pick(parent, func(a netip.Addr) bool { return !virtual(a) }); a.IsValid() {
		return a
	}
	return pick(vips, func(netip.Addr) bool { return true })
}

// demote follows a change of one of the facts the demotion is made of
// (see demotion): it logs the change by delta, as FreeBSD's
// carp_demote_adj() does, and lets every vhid act on the new value (a
// MASTER advertises at once). A zero delta changes nothing.
func (e *Engine) demote(delta int, reason string) {
	if delta == 0 {
		return
	}
	if e.knob("log") >= 1 {
		e.infof("carp: demoted by %d to %d (%s)", delta, e.demotion(), reason)
	}
	now := e.opts.Now()
	for _, h := range e.hosts {
		e.apply(now, h, h.m.SetConfig(now, e.machineConfig(h.cfg)))
	}
}

// input handles one received packet.
func (e *Engine) input(now time.Time, p osif.Packet) {
	if e.ownVlinkIndex(p.IfIndex) {
		return // the same frame as seen through our own macvlan
	}
	if e.isLocal(p.Src) || e.ownAdvert(p.Payload) {
		return // our own advert, looped back
	}
	dev := ""
	if l, ok := e.links[p.IfIndex]; ok {
		dev = e.bsdName(l.Name)
	}
	// The vhid the packet names (byte 1 in CARP and VRRPv3 alike) on
	// this parent for its family, looked up once for every check below.
	var target *vhost
	if len(p.Payload) >= 2 {
		target = e.hostFor(p.Payload[1], dev, p.IPv6)
	}
	if e.inputOtherVersion(now, p, dev, target) {
		return
	}
	var found *vhost
	lookup := func(uint8) ([]byte, []netip.Addr, bool) {
		if target != nil {
			found = target
			return carp.Key(target.cfg.Key), target.cfg.addrs(), true
		}
		return nil, nil, false
	}
	noCARP := e.hostIdx.devs[dev] == 0
	// The TTL must be 255 unless the vhid has a unicast peer for the
	// family (FreeBSD's carp_input_c decides by the vhid's mode, not by
	// where the packet was sent).
	multicast := target == nil || target.cfg.advertDst(p.IPv6).IsMulticast()
	hdr, drop := carp.Validate(&e.stats, carp.Received{Payload: p.Payload, IPv6: p.IPv6, TTL: p.TTL, Multicast: multicast, NoCARP: noCARP, ShortHeader: p.ShortHeader}, e.knob("allow") != 0, lookup)
	if drop == carp.DropNone && !found.counter.Fresh(p.IPv6, hdr.Counter) {
		// Authentic but already seen: a captured advert played again must
		// neither hold a BACKUP down nor make a MASTER yield.
		e.stats.Replay++
		drop = carp.DropReplay
	}
	if drop == carp.DropNone && !e.fromPeer(now, found, p, dev) {
		return
	}
	if drop == carp.DropBadAuth && found != nil {
		e.authMismatch(now, found, hdr, p.Src)
	}
	if drop != carp.DropNone {
		e.noteDrop(found, drop, dev, p)
		e.logDrop(now, drop, hdr.VHID, dev, p)
		return
	}
	found.counter.Adopt(p.IPv6, hdr.Counter)
	if found.draining && !(hdr.AdvBase == carp.BowOutAdvBase && hdr.AdvSkew == carp.BowOutAdvSkew) {
		e.endDrain(found) // the new MASTER speaks: it has announced the addresses
	}
	e.apply(now, found, found.m.Receive(now, p.IPv6, hdr.AdvBase, hdr.AdvSkew))
	found.noteHeard(now, p.Src)
}

// The send-error hysteresis of sendResult: CARP_SENDAD_MAX_ERRORS and
// CARP_SENDAD_MIN_SUCCESS of FreeBSD's sys/netinet/ip_carp.c.
const (
	sendErrsToDemote = 3
	sendOKsToRecover = 3
)

// logDrop logs a bad packet at net.inet.carp.log >= 2, at most once a second
// per kind and interface so a flood cannot fill the log.
func (e *Engine) logDrop(now time.Time, d carp.Drop, vhid uint8, dev string, p osif.Packet) {
	if d == carp.DropDisabled || e.knob("log") < 2 {
		return
	}
	k := d.String() + dev
	if t, ok := e.lastLog[k]; ok && now.Sub(t) < time.Second {
		return
	}
	e.lastLog[k] = now
	switch d {
	case carp.DropBadAuth:
		e.debugf("carp_input_c: incorrect hash for VHID %d@%s", vhid, dev)
	case carp.DropBadTTL:
		e.debugf("carp_input: received ttl %d != %d on %s", p.TTL, carp.TTL, dev)
	case carp.DropBadVHID:
		e.debugf("carp_input: packet for unknown vhid %d on %s from %s", vhid, dev, p.Src)
	case carp.DropReplay:
		e.debugf("carp_input: replayed advertisement for VHID %d@%s from %s dropped (counter already seen)", vhid, dev, p.Src)
	default:
		e.debugf("carp_input: dropped packet from %s on %s: %s", p.Src, dev, d)
	}
}

// linkChanged follows carrier and admin changes of parents and our links.
func (e *Engine) linkChanged(now time.Time, u osif.LinkUpdate) {
	// Only the vhosts this link can concern are run again: those on it as
	// parent or macvlan, those still looking for a parent, those in INIT.
	// For any other, setRun would find the same facts and do nothing (with
	// 1,020 vhids, each link event of a vhid being added ran all of them).
	// A resync, a deletion or a rename runs them all.
	name, all := u.Link.Name, u.Resync || u.Deleted
	if old, ok := e.links[u.Link.Index]; ok && old.Name != name {
		all = true
	}
	switch {
	case u.Resync:
		e.relist("after a lost link subscription")
	case u.Deleted:
		e.dropLink(u.Link.Index)
	default:
		e.putLink(u.Link)
	}
	e.syncGroups()
	resolved := false
	for _, h := range e.hosts {
		if h.carpdev == "" {
			h.carpdev = e.resolveCarpdev(h.cfg)
			resolved = resolved || h.carpdev != ""
		} else if !all && h.vlink != name && h.why == initNone && h.m.State() != carp.Init &&
			e.linuxName(h.carpdev) != name {
			continue
		}
		e.setRun(now, h, carp.ReasonIfUp)
	}
	if resolved {
		e.indexHosts()
	}
	e.emitParentLinks()
	e.syncARPBalance()
}

// syncGroups keeps the CARP multicast groups joined on exactly the parents
// in use, re-joining on a parent that was re-created (new ifindex).
func (e *Engine) syncGroups() {
	want := make(map[string]int, len(e.hostIdx.parents))
	for _, dev := range e.hostIdx.parents { // per parent, not per vhost
		name := e.linuxName(dev)
		if l, ok := e.linkByLinuxName(name); ok {
			want[name] = l.Index
		}
	}
	if maps.Equal(want, e.joined) {
		return
	}
	// In name order, so that what the kernel sees does not depend on Go's
	// map order.
	for _, name := range slices.Sorted(maps.Keys(e.joined)) {
		if want[name] != e.joined[name] {
			if want[name] == 0 {
				if err := e.kern().LeaveGroup(name); err != nil {
					e.errorf("carpd: leave CARP group on %s: %v", name, err)
				}
			}
			delete(e.joined, name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		idx := want[name]
		if _, ok := e.joined[name]; ok {
			continue
		}
		if err := e.kern().JoinGroup(name); err != nil {
			e.errorf("carpd: join CARP group on %s: %v", name, err)
			continue
		}
		e.joined[name] = idx
	}
}

// isLocal reports whether a is one of this host's own (non-virtual)
// addresses: adverts from it are our own, looped back. A virtual address is
// not: when a parent has no address of its own, both hosts send from the
// vhid's address (see sourceAddr), and the peer's adverts must be heard.
func (e *Engine) isLocal(a netip.Addr) bool {
	return e.linkIdx.local[a] > 0 && !e.isVirtual(a)
}

// isVirtual reports whether a is a configured virtual address.
func (e *Engine) isVirtual(a netip.Addr) bool {
	return len(e.hostIdx.virtual[a]) > 0
}

// ownAdvert reports whether payload is the last advert one of our vhids
// sent: with a virtual source address, our own looped-back advert cannot be
// told from the peer's by its source.
func (e *Engine) ownAdvert(payload []byte) bool {
	if len(payload) < 2 {
		return false
	}
	for _, h := range e.hostIdx.byVHID[payload[1]] {
		if bytes.Equal(h.lastSent, payload) {
			return true
		}
	}
	return false
}

// mismatchLogEvery bounds the default-level split-brain log line per vhid.
const mismatchLogEvery = 30 * time.Second

// authMismatch records an advert for one of our vhids that failed
// authentication. Its sender runs the same vhid with another key or another
// address set (the classic misconfiguration that leaves both hosts MASTER,
// with one virtual MAC on two switch ports), so it is said at the default
// log level, at most every mismatchLogEvery per vhid, and shown by
// ifconfig while the sender keeps advertising (three of its intervals).
func (e *Engine) authMismatch(now time.Time, h *vhost, hdr carp.Header, from netip.Addr) {
	// Once per period per vhid, whatever the source: forged adverts from
	// ever new source addresses must not fill the log.
	logIt := h.mismatchLogged.IsZero() || now.Sub(h.mismatchLogged) >= mismatchLogEvery
	h.mismatch = from
	h.mismatchUntil = now.Add(3 * carp.AdvInterval(max(hdr.AdvBase, 1), hdr.AdvSkew))
	if hdr.AdvBase == carp.BowOutAdvBase && hdr.AdvSkew == carp.BowOutAdvSkew {
		h.mismatchUntil = now // its last advert: the peer is leaving
	}
	if logIt && e.knob("log") >= 1 {
		h.mismatchLogged = now
		e.warnf("carp: %s: advertisements from %s fail authentication: the password or the address set of vhid %d differs on that host (both may be MASTER)",
			h.name(), from, h.cfg.VHID)
	}
}

// mismatchPeer returns the host whose adverts currently fail
// authentication for h, if any.
func (h *vhost) mismatchPeer(now time.Time) (netip.Addr, bool) {
	if !h.mismatch.IsValid() || now.After(h.mismatchUntil) {
		return netip.Addr{}, false
	}
	return h.mismatch, true
}
