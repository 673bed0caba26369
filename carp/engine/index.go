package engine

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"github.com/bsdcarp/bsdcarp/carp/osif"
)

// This file keeps the engine's lookups O(1) per packet and per event: the
// links by name, the addresses of the host's own links, and the running
// vhids by vhid, parent and macvlan. The indexes follow e.links (setLinks,
// putLink, dropLink: the only writers of e.links) and e.hosts (indexHosts,
// called wherever the vhosts or their vhid, parent, macvlan or addresses
// change).

// linkIndex is what e.links is looked up by besides the ifindex.
type linkIndex struct {
	byName map[string]int     // Linux name -> ifindex
	local  map[netip.Addr]int // addresses of links carpd did not make -> how many such links hold it
}

// hostIndex is what e.hosts is looked up by.
type hostIndex struct {
	byVHID  map[uint8][]*vhost      // vhid -> its vhosts, in configuration order
	devs    map[string]int          // BSD parent -> how many vhosts run on it
	vlinks  map[string][]*vhost     // Linux macvlan name -> the vhosts using it, in configuration order
	virtual map[netip.Addr][]*vhost // configured virtual address -> the vhosts that have it, likewise
	parents []string                // BSD parents of the vhosts (devs without ""), in the order of their first vhost
	ifaces  map[string]hostSpan     // interface -> where its vhosts are in e.hosts
	guests  map[string][]*vhost     // BSD parent -> the vhosts of other interfaces on it (clones), in configuration order
}

// hostSpan is where the vhosts of one interface are in e.hosts: n of them
// from lo on (they come together, in configuration order); n < 0 when
// they do not.
type hostSpan struct{ lo, n int }

// setLinks replaces the link list (a full dump).
func (e *Engine) setLinks(ls []osif.Link) {
	e.links = make(map[int]osif.Link, len(ls))
	e.linkIdx = linkIndex{byName: make(map[string]int, len(ls)), local: map[netip.Addr]int{}}
	for _, l := range ls {
		e.putLink(l)
	}
}

// putLink adds or updates one link.
func (e *Engine) putLink(l osif.Link) {
	if old, ok := e.links[l.Index]; ok {
		e.unindexLink(old)
	}
	e.links[l.Index] = l
	if e.linkIdx.byName == nil {
		e.linkIdx = linkIndex{byName: map[string]int{}, local: map[netip.Addr]int{}}
	}
	e.linkIdx.byName[l.Name] = l.Index
	if l.Alias != osif.OwnerAlias {
		for _, p := range l.Addrs {
			e.linkIdx.local[p.Addr()]++
		}
	}
}

// dropLink removes the link with ifindex index.
func (e *Engine) dropLink(index int) {
	if old, ok := e.links[index]; ok {
		delete(e.links, index)
		e.unindexLink(old)
	}
}

// unindexLink takes l (no longer, or no longer so, in e.links) out of the
// indexes. Should another listed link bear its name (a stale entry whose
// deletion was not seen), the name leads to that one.
func (e *Engine) unindexLink(l osif.Link) {
	if e.linkIdx.byName[l.Name] == l.Index {
		delete(e.linkIdx.byName, l.Name)
		for _, o := range e.links {
			if o.Name == l.Name && o.Index != l.Index {
				e.linkIdx.byName[o.Name] = o.Index
				break
			}
		}
	}
	if l.Alias != osif.OwnerAlias {
		for _, p := range l.Addrs {
			if e.linkIdx.local[p.Addr()]--; e.linkIdx.local[p.Addr()] <= 0 {
				delete(e.linkIdx.local, p.Addr())
			}
		}
	}
}

// linkByLinuxName is the link named name.
func (e *Engine) linkByLinuxName(name string) (osif.Link, bool) {
	return e.hostView().linkByLinux(name)
}

// indexHosts rebuilds the host index from e.hosts.
//
// It runs for every line that adds or removes a vhid, so it allocates by
// the list, not by the vhost: the lists of byVHID are cut from one array
// (counted first), and a vlink's or an address's first vhost gets a list
// of one cut from another (a second vhost, rare, makes its own). Every cut
// has its capacity at its length, so an append to one list (reindexAddrs)
// never writes into the next. With 1,020 vhids: 276 -> 191 µs alone and
// 2,840 -> 25 allocations; in a line that adds a vhid, of which it was
// most of the engine's own work, about half as much with the garbage
// collector's share.
func (e *Engine) indexHosts() {
	n, nAddrs := len(e.hosts), 0
	var perVHID [256]int
	vhids := 0
	for _, h := range e.hosts {
		if perVHID[h.cfg.VHID] == 0 {
			vhids++
		}
		perVHID[h.cfg.VHID]++
		nAddrs += len(h.cfg.Addrs)
	}
	x := hostIndex{
		byVHID:  make(map[uint8][]*vhost, vhids),
		devs:    make(map[string]int),
		vlinks:  make(map[string][]*vhost, n),
		virtual: make(map[netip.Addr][]*vhost, nAddrs),
		ifaces:  make(map[string]hostSpan),
		guests:  make(map[string][]*vhost),
	}
	// byVHID's lists, one after the other in vhid order; next[v] is where
	// vhid v's next vhost goes.
	var next [256]int
	for v, off := 0, 0; v < len(perVHID); v++ {
		next[v] = off
		off += perVHID[v]
	}
	lists := make([]*vhost, 2*n+nAddrs)
	byVHID, singles, addrs := lists[:n], lists[n:2*n], lists[2*n:]
	nInit := 0
	var span hostSpan
	last := ""
	// devs counted in a slice beside parents (a handful), by the last
	// parent seen (the vhosts of a parent come together): no string hashed
	// per vhost.
	var perDev []int
	noDev, dev := 0, -1
	for i, h := range e.hosts {
		h.pos = i
		byVHID[next[h.cfg.VHID]] = h
		next[h.cfg.VHID]++
		switch {
		case h.carpdev == "":
			noDev++
		case dev >= 0 && x.parents[dev] == h.carpdev:
			perDev[dev]++
		default:
			if dev = slices.Index(x.parents, h.carpdev); dev < 0 {
				dev = len(x.parents)
				x.parents = append(x.parents, h.carpdev)
				perDev = append(perDev, 0)
			}
			perDev[dev]++
		}
		if h.carpdev != "" && h.carpdev != h.iface {
			x.guests[h.carpdev] = append(x.guests[h.carpdev], h)
		}
		if h.why != initNone {
			nInit++
		}
		// The name is hashed once per interface, not once per vhost.
		if i == 0 || h.iface != last {
			if i > 0 {
				x.ifaces[last] = span
			}
			last = h.iface
			span = hostSpan{lo: i}
			if _, again := x.ifaces[last]; again {
				span.n = -1 - len(e.hosts) // not together: stays negative
			}
		}
		span.n++
		if hs, ok := x.vlinks[h.vlink]; ok {
			x.vlinks[h.vlink] = append(hs, h)
		} else {
			singles[i] = h
			x.vlinks[h.vlink] = singles[i : i+1 : i+1]
		}
		for _, p := range h.cfg.Addrs {
			a := p.Addr()
			switch hs := x.virtual[a]; {
			case len(hs) == 0:
				addrs[0] = h
				x.virtual[a] = addrs[0:1:1]
				addrs = addrs[1:]
			case hs[len(hs)-1] != h:
				x.virtual[a] = append(hs, h)
			}
		}
	}
	for d, p := range x.parents {
		x.devs[p] = perDev[d]
	}
	if noDev > 0 {
		x.devs[""] = noDev
	}
	for v, end := range next {
		if k := perVHID[v]; k > 0 {
			x.byVHID[uint8(v)] = byVHID[end-k : end : end]
		}
	}
	if len(e.hosts) > 0 {
		x.ifaces[last] = span
	}
	e.hostIdx = x
	e.nInit = nInit
}

// reindexAddrs moves h in hostIdx.virtual from its addresses old to its
// addresses now, as indexHosts would place it (the vhosts of an address
// in configuration order, each once), and reports whether it could: h
// must be indexed at h.pos.
func (e *Engine) reindexAddrs(h *vhost, old []netip.Prefix) bool {
	if h.pos >= len(e.hosts) || e.hosts[h.pos] != h {
		return false
	}
	has := func(ps []netip.Prefix, a netip.Addr) bool {
		return slices.ContainsFunc(ps, func(p netip.Prefix) bool { return p.Addr() == a })
	}
	for _, p := range old {
		a := p.Addr()
		if has(h.cfg.Addrs, a) {
			continue
		}
		hs := slices.DeleteFunc(e.hostIdx.virtual[a], func(o *vhost) bool { return o == h })
		if len(hs) == 0 {
			delete(e.hostIdx.virtual, a)
		} else {
			e.hostIdx.virtual[a] = hs
		}
	}
	for _, p := range h.cfg.Addrs {
		a := p.Addr()
		hs := e.hostIdx.virtual[a]
		if has(old, a) || slices.Contains(hs, h) {
			continue
		}
		i, _ := slices.BinarySearchFunc(hs, h.pos, func(o *vhost, pos int) int { return o.pos - pos })
		e.hostIdx.virtual[a] = slices.Insert(hs, i, h)
	}
	return true
}

// ownVlinkIndex reports whether ifindex is the macvlan of one of our vhids
// (the link its name leads to).
func (e *Engine) ownVlinkIndex(ifindex int) bool {
	l, ok := e.links[ifindex]
	return ok && len(e.hostIdx.vlinks[l.Name]) > 0 && e.linkIdx.byName[l.Name] == ifindex
}

// setSuppressed and setSenderr change a vhost's part of the demotion and
// keep the engine's counts of them (demotion's facts) in step. A vhost is
// only ever taken out of e.hosts after teardown has cleared both.
func (e *Engine) setSuppressed(h *vhost, on bool) {
	if h.suppressed != on {
		h.suppressed = on
		e.nSuppressed += countDelta(on)
	}
}

func (e *Engine) setSenderr(h *vhost, on bool) {
	if h.senderr != on {
		h.senderr = on
		e.nSenderr += countDelta(on)
	}
}

func countDelta(on bool) int {
	if on {
		return 1
	}
	return -1
}

// checkIndexes compares the indexes with a rebuild from e.links and
// e.hosts (tests only, see checkSchedule) and panics on a difference.
func (e *Engine) checkIndexes() {
	for i, h := range e.hosts {
		if h.pos != i {
			panic(fmt.Sprintf("engine: host index: %s at %d has position %d", h.name(), i, h.pos))
		}
	}
	hosts, nInit := e.hostIdx, e.nInit
	e.indexHosts()
	if !maps.EqualFunc(hosts.byVHID, e.hostIdx.byVHID, slices.Equal) || !maps.Equal(hosts.devs, e.hostIdx.devs) ||
		!maps.EqualFunc(hosts.vlinks, e.hostIdx.vlinks, slices.Equal) || !maps.EqualFunc(hosts.virtual, e.hostIdx.virtual, slices.Equal) ||
		!slices.Equal(hosts.parents, e.hostIdx.parents) || !maps.Equal(hosts.ifaces, e.hostIdx.ifaces) ||
		!maps.EqualFunc(hosts.guests, e.hostIdx.guests, slices.Equal) {
		panic(fmt.Sprintf("engine: host index out of step: %+v, rebuilt %+v", hosts, e.hostIdx))
	}
	if nInit != e.nInit {
		panic(fmt.Sprintf("engine: %d vhosts counted in INIT, rebuilt %d", nInit, e.nInit))
	}
	for _, h := range e.hosts {
		if h.made && h.balanced != e.arpOn && !e.arpStale {
			panic(fmt.Sprintf("engine: %s: arp_ignore balanced=%v, every macvlan's is %v", h.name(), h.balanced, e.arpOn))
		}
	}
	local := map[netip.Addr]int{}
	for i, l := range e.links {
		if j, ok := e.linkIdx.byName[l.Name]; !ok || e.links[j].Name != l.Name {
			panic(fmt.Sprintf("engine: link index: %s (%d) leads to %d", l.Name, i, j))
		}
		if l.Alias != osif.OwnerAlias {
			for _, p := range l.Addrs {
				local[p.Addr()]++
			}
		}
	}
	for name, i := range e.linkIdx.byName {
		if e.links[i].Name != name {
			panic(fmt.Sprintf("engine: link index: %s leads to %d, named %q", name, i, e.links[i].Name))
		}
	}
	if !maps.Equal(local, e.linkIdx.local) {
		panic(fmt.Sprintf("engine: local addresses out of step: %v, rebuilt %v", e.linkIdx.local, local))
	}
}

// byIfaceVHID maps an interface name and a vhid to a T. The vhids of one
// interface come together (in the configuration, in e.hosts), so the name
// is hashed once per interface rather than once per vhid: with 1,020 vhids,
// maps keyed by name and vhid were most of a configuration line's work.
type byIfaceVHID[T any] struct {
	m    map[string]*[256]T
	last string
	tab  *[256]T // last's table, nil when it has none
}

// table is iface's table; with create, made when missing.
func (b *byIfaceVHID[T]) table(iface string, create bool) *[256]T {
	if b.tab != nil && iface == b.last {
		return b.tab
	}
	t := b.m[iface]
	if t == nil && create {
		if b.m == nil {
			b.m = make(map[string]*[256]T)
		}
		t = new([256]T)
		b.m[iface] = t
	}
	b.last, b.tab = iface, t
	return t
}

func (b *byIfaceVHID[T]) set(iface string, vhid uint8, v T) { b.table(iface, true)[vhid] = v }

// get is what set stored for iface and vhid, or T's zero value.
func (b *byIfaceVHID[T]) get(iface string, vhid uint8) T {
	var v T
	if t := b.table(iface, false); t != nil {
		v = t[vhid]
	}
	return v
}
