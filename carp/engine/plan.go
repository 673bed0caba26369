package engine

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"syscall"

	"github.com/bsdcarp/bsdcarp/carp"
	"github.com/bsdcarp/bsdcarp/carp/api"
	"github.com/bsdcarp/bsdcarp/carp/osif"
)

// This file turns one ifconfig line into what it does, without doing it:
// plan reads a configuration and a view of the host's links and returns
// the next configuration, the changes to the Linux link itself and the
// states the line forces. It has no Engine receiver and no side effects;
// exec.go runs the kernel steps.

// hostView is the read-only part of the host a plan needs: the links by
// ifindex as the engine last listed them, their index by name (nil: look
// them up by scanning) and the BSD->Linux interface map. The engine's own
// name lookups go through it too (Engine.hostView).
type hostView struct {
	links  map[int]osif.Link
	byName map[string]int
	ifmap  map[string]string
}

// linuxName maps an admin's (BSD) interface name to the Linux one.
func (h hostView) linuxName(bsd string) string {
	if l, ok := h.ifmap[bsd]; ok {
		return l
	}
	return bsd
}

// bsdName maps a Linux interface name back to the admin's name.
func (h hostView) bsdName(linux string) string {
	for b, l := range h.ifmap {
		if l == linux {
			return b
		}
	}
	return linux
}

// linkByLinux is the link named linux.
func (h hostView) linkByLinux(linux string) (osif.Link, bool) {
	if h.byName != nil {
		i, ok := h.byName[linux]
		if !ok {
			return osif.Link{}, false
		}
		l, ok := h.links[i]
		return l, ok
	}
	for _, l := range h.links {
		if l.Name == linux {
			return l, true
		}
	}
	return osif.Link{}, false
}

// link is the Linux link of the BSD interface bsd.
func (h hostView) link(bsd string) (osif.Link, bool) {
	return h.linkByLinux(h.linuxName(bsd))
}

// resolveCarpdev is a vhid's parent: its carpdev, or (dialect B) the
// host's interface with an address in the subnet of one of its virtual
// addresses; "" when there is none.
func (h hostView) resolveCarpdev(v VHIDConfig) string {
	if v.Carpdev != "" {
		return v.Carpdev
	}
	for _, vip := range v.Addrs {
		for _, l := range h.links {
			if l.Alias != osif.OwnerAlias && inSubnetOf(l.Addrs, vip.Addr()) {
				return h.bsdName(l.Name)
			}
		}
	}
	return ""
}

// inSubnetOf reports whether a is in the subnet of one of addrs without
// being that address.
func inSubnetOf(addrs []netip.Prefix, a netip.Addr) bool {
	return slices.ContainsFunc(addrs, func(p netip.Prefix) bool { return p.Contains(a) && p.Addr() != a })
}

// stepKind is what one kernel step does to a Linux link.
type stepKind uint8

const (
	stepAddAddr stepKind = iota // add (or replace) prefix
	stepDelAddr                 // remove prefix
	stepSetUp                   // set the link up (up) or down
	stepSetMTU                  // set the link's MTU to mtu
)

// kernelStep is one change of an accepted line to the Linux interface
// itself (its own addresses, up/down, MTU): the host's settings rather
// than carpd's, which are not saved.
type kernelStep struct {
	kind stepKind
	op   api.OpKind // the word it comes from, for carpd's log
	step api.Step   // what a refusal of it is reported as
	link string     // Linux name

	prefix netip.Prefix // stepAddAddr, stepDelAddr
	up     bool         // stepSetUp: the new state
	wasUp  bool         // stepSetUp: the state before the line
	mtu    int          // stepSetMTU: the new MTU
	wasMTU int          // stepSetMTU: the MTU before the line (0: unknown)
}

// linePlan is what an accepted ifconfig line does.
type linePlan struct {
	next  *Config      // the configuration as the line leaves it
	steps []kernelStep // changes to the Linux link, in order
	// forced are the states given with `state`, in order; they apply to
	// the clone, or to vhid forceVHID of a physical interface.
	forced    []carp.State
	forceVHID uint8
	// keep is the link's own address list as the line leaves it.
	keep []netip.Prefix
}

// invalidLine is a line whose result the configuration's validation
// refused: refusal is how the kernel would refuse it, cause the
// validator's reason (for carpd's log).
type invalidLine struct {
	refusal *api.Error
	cause   error
}

func (e *invalidLine) Error() string { return fmt.Sprintf("%v (%v)", e.refusal, e.cause) }
func (e *invalidLine) Unwrap() error { return e.refusal }

// errInval is the kernel's refusal of a vhid's parameters.
var errInval = api.Refused(api.StepSetVHID, syscall.EINVAL)

// planner holds one line's planning as it goes through the words.
type planner struct {
	host hostView
	prev *Config // the configuration before the line
	c    *Config
	name string
	ifc  *IfaceConfig
	cur  *VHIDConfig // the vhid the following words apply to
	// curNew: cur did not exist before the line (its version may be set).
	curNew bool
	link   osif.Link // the Linux link before the line
	plan   linePlan
	done   bool // the line destroyed the interface
}

// plan applies req to a copy of cfg. An error (an *api.Error, or an
// *invalidLine wrapping one) means the line is refused and changes nothing.
func plan(cfg *Config, host hostView, req api.IfconfigRequest) (linePlan, error) {
	// Only req.Iface changes: the others are shared with cfg.
	p := &planner{host: host, prev: cfg, c: cfg.cloneFor(req.Iface), name: req.Iface}
	if err := p.target(req.Ops); err != nil {
		return linePlan{}, err
	}
	p.link, _ = host.link(p.name)
	p.plan.keep = slices.Clone(p.link.Addrs)
	if p.ifc.Clone {
		if len(p.ifc.VHIDs) == 0 {
			p.ifc.VHIDs = []VHIDConfig{{AdvBase: DefaultAdvBase, AdvSkew: DefaultAdvSkew}}
		}
		p.cur = &p.ifc.VHIDs[0]
		p.curNew = p.cur.VHID == 0
	}
	for i, op := range req.Ops {
		if err := p.word(i, op); err != nil {
			return linePlan{}, err
		}
		if p.done {
			break
		}
	}
	if !p.done {
		if err := p.finish(); err != nil {
			return linePlan{}, err
		}
	}
	// What a line leaves must load again after a restart: the same
	// validation as config.json's (of what the line changed, when the
	// configuration it started from passed it).
	if !p.c.validAfter(cfg, p.name) {
		if err := p.c.Validate(); err != nil {
			return linePlan{}, &invalidLine{refusal: refusal(err), cause: err}
		}
	}
	p.c.valid = true
	p.plan.next = p.c
	p.plan.forceVHID = lastVHID(req)
	return p.plan, nil
}

// lastVHID is the vhid a dialect C line addresses (`ifconfig em0 vhid 1 state backup`).
func lastVHID(req api.IfconfigRequest) uint8 {
	var v uint8
	for _, op := range req.Ops {
		if op.Kind == api.OpVHID {
			v = uint8(op.Int)
		}
	}
	return v
}

// target finds the interface the line configures, creating a clone
// (`create`, or OpenBSD's on demand) or a physical interface's entry.
func (p *planner) target(ops []api.Op) error {
	var first api.OpKind
	if len(ops) > 0 {
		first = ops[0].Kind
	}
	p.ifc = p.c.iface(p.name)
	clone := api.IsCloneName(p.name)
	switch {
	case first == api.OpCreate:
		if err := p.create(); err != nil {
			return err
		}
	case p.ifc != nil:
	case clone && len(p.name) <= api.MaxIfNameLen && first != "" && first != api.OpDestroy:
		// OpenBSD clones on demand: ifconfig's getinfo() creates a carpN
		// that a line not starting with "destroy" configures. (The line
		// is still all or nothing: a refused one creates nothing.)
		if err := p.addClone(); err != nil {
			return err
		}
	case clone:
		return &api.Error{Reason: api.ReasonNoInterface, Name: p.name}
	default:
		if _, ok := p.host.link(p.name); !ok {
			return &api.Error{Reason: api.ReasonNoInterface, Name: p.name}
		}
		p.c.Ifaces = append(p.c.Ifaces, IfaceConfig{Name: p.name})
	}
	p.ifc = p.c.iface(p.name)
	return nil
}

// create is `ifconfig carpN create`.
func (p *planner) create() error {
	if len(p.name) > api.MaxIfNameLen {
		// FreeBSD ifconfig's check before it asks the kernel for the clone.
		return &api.Error{Reason: api.ReasonCloneNameLong, Name: p.name}
	}
	if !api.IsCloneName(p.name) {
		return api.Refused(api.StepCreate, syscall.EINVAL)
	}
	if p.ifc != nil {
		return api.Refused(api.StepCreate, syscall.EEXIST)
	}
	return p.addClone()
}

// addClone adds the carp clone to the configuration, as cloning it does on
// FreeBSD. A Linux link of that name that carpd did not make (or left
// behind) would make the clone fail later, silently: it is refused now.
func (p *planner) addClone() error {
	if l, ok := p.host.linkByLinux(p.name); ok && l.Alias != osif.OwnerAlias {
		return api.Refused(api.StepCreate, syscall.EEXIST)
	}
	p.c.Ifaces = append(p.c.Ifaces, IfaceConfig{Name: p.name, Clone: true})
	return nil
}

// word plans the i-th word of the line.
func (p *planner) word(i int, op api.Op) error {
	switch op.Kind {
	case api.OpCreate:
		if i != 0 {
			return api.Refused(api.StepCreate, syscall.EEXIST)
		}
		return nil
	case api.OpDestroy:
		if !p.ifc.Clone {
			return api.Refused(api.StepDestroy, syscall.EINVAL)
		}
		p.c.removeIface(p.name)
		p.done = true
		return nil
	case api.OpVHID:
		return p.vhid(op.Int)
	case api.OpPass, api.OpAdvBase, api.OpAdvSkew, api.OpState:
		return p.vhidParam(op)
	case api.OpVersion, api.OpVRRPPrio, api.OpVRRPInterval, api.OpPeer, api.OpPeer6:
		return p.vrrpParam(op)
	case api.OpCarpdev:
		return p.carpdev(op.Str)
	case api.OpUp, api.OpDown, api.OpMTU:
		return p.hostWord(op)
	case api.OpAddr:
		return p.addr(op)
	case api.OpDelAddr:
		return p.delAddr(op)
	}
	return &api.Error{Reason: api.ReasonUnsupported, Op: op.Kind}
}

// vhid is the `vhid N` word: the clone's number, or (dialect C) the vhid
// of the physical interface the following words apply to.
func (p *planner) vhid(n int) error {
	if n < 1 || n > carp.MaxVHID {
		if p.ifc.Clone {
			return errInval // the carp(4) clone's kernel check
		}
		return &api.Error{Reason: api.ReasonVHIDRange}
	}
	vhid := uint8(n)
	if p.ifc.Clone {
		p.curNew = p.cur.VHID != vhid
		p.cur.VHID = vhid
		return nil
	}
	idx := slices.IndexFunc(p.ifc.VHIDs, func(v VHIDConfig) bool { return v.VHID == vhid })
	p.curNew = idx < 0
	if idx < 0 {
		p.ifc.VHIDs = append(p.ifc.VHIDs, VHIDConfig{VHID: vhid, Carpdev: p.name, AdvBase: DefaultAdvBase, AdvSkew: DefaultAdvSkew})
		idx = len(p.ifc.VHIDs) - 1
	}
	p.cur = &p.ifc.VHIDs[idx]
	return nil
}

// vhidParam is one of pass, advbase, advskew and state.
func (p *planner) vhidParam(op api.Op) error {
	if p.cur == nil {
		return needsVHID(op)
	}
	switch op.Kind {
	case api.OpPass:
		p.cur.Key = boundKey(op.Str)
	case api.OpAdvBase:
		if op.Int < 1 || op.Int > math.MaxUint8 {
			return errInval
		}
		p.cur.AdvBase = uint8(op.Int)
	case api.OpAdvSkew:
		if op.Int < 0 || op.Int > carp.MaxAdvSkew {
			return errInval
		}
		p.cur.AdvSkew = uint8(op.Int)
	case api.OpState:
		st, ok := carp.ParseState(op.Str)
		if !ok {
			return &api.Error{Reason: api.ReasonUnknownState}
		}
		p.plan.forced = append(p.plan.forced, st)
	}
	return nil
}

// vrrpParam is one of FreeBSD 14's carpver, vrrpprio, vrrpinterval, peer
// and peer6. The kernel (carp_ioctl_set) refuses with EINVAL a version
// other than 2 or 3, and any change of an existing vhid's version: a vhid
// changes protocol by being removed and made again.
func (p *planner) vrrpParam(op api.Op) error {
	if p.cur == nil {
		return nil // ifconfig sends these only with a vhid
	}
	switch op.Kind {
	case api.OpVersion:
		if op.Int != carp.Version && op.Int != carp.VRRPVersion {
			return errInval
		}
		v := uint8(op.Int)
		old := p.cur.Version
		if old == 0 {
			old = carp.Version
		}
		if !p.curNew && v != old {
			return errInval
		}
		p.cur.Version = v
	case api.OpVRRPPrio:
		if op.Int < 1 || op.Int > carp.VRRPMaxPriority {
			return errInval
		}
		p.cur.Prio = uint8(op.Int)
	case api.OpVRRPInterval:
		if op.Int < 1 || op.Int > carp.VRRPMaxInterval {
			return errInval
		}
		p.cur.Interval = uint16(op.Int)
	case api.OpPeer, api.OpPeer6:
		return p.peer(op)
	}
	return nil
}

// peer is peer / peer6 (mcast / mcast6 send the group): a unicast address
// of the word's family, or the group, which means multicast again.
func (p *planner) peer(op api.Op) error {
	a, err := netip.ParseAddr(op.Str)
	six := op.Kind == api.OpPeer6
	if err != nil || a.Is6() != six || a.Is4In6() {
		return errInval
	}
	switch {
	case a.IsUnspecified():
		// FreeBSD's ifconfig sends 0.0.0.0 / :: for "no change"
		// (carp_ioctl_set copies only a set peer).
	case !six && a == carp.GroupV4:
		p.cur.Peer = netip.Addr{}
	case six && a == carp.GroupV6:
		p.cur.Peer6 = netip.Addr{}
	case !usablePeer(a):
		return errInval
	case six:
		p.cur.Peer6 = a
	default:
		p.cur.Peer = a
	}
	return nil
}

// carpdev is a clone's parent: a host interface, not a clone.
func (p *planner) carpdev(dev string) error {
	if !p.ifc.Clone {
		return errInval
	}
	if _, ok := p.host.link(dev); !ok || api.IsCloneName(dev) {
		return errInval
	}
	p.cur.Carpdev = dev
	return nil
}

// hostWord is up, down or mtu: a clone's own state, or a step on the
// physical interface.
func (p *planner) hostWord(op api.Op) error {
	s := kernelStep{op: op.Kind, link: p.host.linuxName(p.name)}
	switch op.Kind {
	case api.OpUp, api.OpDown:
		if p.ifc.Clone {
			p.ifc.Down = op.Kind == api.OpDown
			return nil
		}
		s.kind, s.step, s.up, s.wasUp = stepSetUp, api.StepSetUp, op.Kind == api.OpUp, p.link.AdminUp
		if !s.up {
			s.step = api.StepSetDown
		}
	case api.OpMTU:
		// Linux's limits for Ethernet: 68 (IPv4's minimum) to 65535.
		if p.ifc.Clone || op.Int < 68 || op.Int > 65535 {
			return api.Refused(api.StepSetMTU, syscall.EINVAL)
		}
		s.kind, s.step, s.mtu, s.wasMTU = stepSetMTU, api.StepSetMTU, op.Int, p.link.MTU
	}
	p.plan.steps = append(p.plan.steps, s)
	return nil
}

// addr is an address word: a virtual address of the current vhid, or
// without one a plain address of the physical interface.
func (p *planner) addr(op api.Op) error {
	if !op.Prefix.IsValid() {
		return api.Refused(api.StepAddAddr, syscall.EINVAL)
	}
	if p.cur == nil {
		p.hostAddr(op)
		return nil
	}
	v, pfx := p.cur, op.Prefix
	switch j := v.hasAddr(pfx); {
	case j >= 0:
		v.ownAddrs()
		v.Addrs[j] = pfx
	case op.Alias || len(v.Addrs) == 0:
		v.Addrs = append(v.Addrs, pfx)
	default:
		// Without `alias`, a new address replaces the first one of its family.
		k := slices.IndexFunc(v.Addrs, func(a netip.Prefix) bool { return a.Addr().Is4() == pfx.Addr().Is4() })
		if k < 0 {
			v.Addrs = append(v.Addrs, pfx)
		} else {
			v.ownAddrs()
			v.Addrs[k] = pfx
		}
	}
	return nil
}

// hostAddr plans a plain address on the physical interface. Without
// `alias`, BSD's ifconfig first removes the interface's first address of
// that family; re-adding an address that is already there changes nothing,
// so a boot script can run twice.
func (p *planner) hostAddr(op api.Op) {
	pfx := op.Prefix
	s := kernelStep{op: api.OpAddr, step: api.StepAddAddr, link: p.host.linuxName(p.name)}
	keep := p.plan.keep
	// Only IPv4 replaces: for inet6 the delete of BSD's ifconfig finds
	// nothing (EADDRNOTAVAIL, ignored) and the address is added.
	if !slices.Contains(keep, pfx) && !op.Alias && pfx.Addr().Is4() {
		if k := slices.IndexFunc(keep, func(a netip.Prefix) bool { return a.Addr().Is4() }); k >= 0 {
			s.kind, s.prefix = stepDelAddr, keep[k]
			p.plan.steps = append(p.plan.steps, s)
			keep = slices.Delete(keep, k, k+1)
		}
	}
	if !slices.Contains(keep, pfx) {
		keep = append(keep, pfx)
	}
	p.plan.keep = keep
	// The kernel call is left out when the link had the address before
	// the line.
	if !slices.Contains(p.link.Addrs, pfx) {
		s.kind, s.prefix = stepAddAddr, pfx
		p.plan.steps = append(p.plan.steps, s)
	}
}

// delAddr is `-alias [address]`: a vhid's address, else one of the
// interface's own. Without an address it removes the first one, as BSD
// does.
func (p *planner) delAddr(op api.Op) error {
	first := !op.Prefix.IsValid()
	if p.delVHIDAddr(op.Prefix, first) {
		return nil
	}
	if !p.ifc.Clone && p.delHostAddr(op.Prefix, first) {
		return nil
	}
	return api.Refused(api.StepDelAddr, syscall.EADDRNOTAVAIL)
}

// delVHIDAddr removes a virtual address from the first vhid that has it.
func (p *planner) delVHIDAddr(pfx netip.Prefix, first bool) bool {
	for j := range p.ifc.VHIDs {
		v := &p.ifc.VHIDs[j]
		k := v.hasAddr(pfx)
		if first && len(v.Addrs) > 0 && p.ifc.Clone {
			k = 0
		}
		if k < 0 {
			continue
		}
		v.ownAddrs()
		v.Addrs = slices.Delete(v.Addrs, k, k+1)
		if !p.ifc.Clone && len(v.Addrs) == 0 {
			// A vhid of a physical interface goes away with its last
			// address (and only that vhid).
			vhid := v.VHID
			p.ifc.VHIDs = slices.DeleteFunc(p.ifc.VHIDs, func(v VHIDConfig) bool { return v.VHID == vhid })
			p.cur = nil
		}
		return true
	}
	return false
}

// delHostAddr plans the removal of one of the physical interface's own
// addresses (without an address: its first IPv4 one that is not
// link-local).
func (p *planner) delHostAddr(pfx netip.Prefix, first bool) bool {
	keep := p.plan.keep
	k := slices.IndexFunc(keep, func(a netip.Prefix) bool {
		if first {
			return a.Addr().Is4() && !a.Addr().IsLinkLocalUnicast()
		}
		return a.Addr() == pfx.Addr()
	})
	if k < 0 {
		return false
	}
	p.plan.steps = append(p.plan.steps, kernelStep{kind: stepDelAddr, op: api.OpDelAddr, step: api.StepDelAddr,
		link: p.host.linuxName(p.name), prefix: keep[k]})
	p.plan.keep = slices.Delete(keep, k, k+1)
	return true
}

// finish checks the interface as the line leaves it.
func (p *planner) finish() error {
	// Dialect B: a clone without carpdev runs on the interface that has an
	// address in the subnet of its own; without one, FreeBSD 9's kernel
	// refuses the address.
	if p.ifc.Clone && len(p.ifc.VHIDs) > 0 {
		v := p.ifc.VHIDs[0]
		if v.VHID != 0 && v.Carpdev == "" && len(v.Addrs) > 0 && p.host.resolveCarpdev(v) == "" {
			return api.Refused(api.StepAddAddr, syscall.EADDRNOTAVAIL)
		}
	}
	if !p.ifc.Clone && len(p.ifc.VHIDs) == 0 {
		p.c.removeIface(p.name)
		return nil
	}
	if uniqueAfter(p.c, p.prev, p.host, p.name) {
		return nil
	}
	return checkUnique(p.c, p.host)
}

// uniqueAfter reports whether checkUnique(c, host) finds nothing, for c a
// line's result on interface name of prev (see validAfter), by checking
// the vhids of name against the interfaces that can hold the same
// parent, without a pass over every vhid. False means "not shown":
// checkUnique decides. Pairs of other vhids found by subnet (dialect B)
// may have met since prev was checked (links change): with any of those,
// it cannot tell.
func uniqueAfter(c, prev *Config, host hostView, name string) bool {
	if !prev.valid {
		return false
	}
	i, ok := c.sameBut(prev, name)
	if !ok {
		return false
	}
	// The parent of name's vhids (one: a clone has one vhid, a physical
	// interface's run on it), and their numbers.
	var has [256]bool
	dev := ""
	if i >= 0 {
		for _, v := range c.Ifaces[i].VHIDs {
			if v.VHID == 0 {
				continue
			}
			d := host.resolveCarpdev(v)
			if d == "" {
				continue
			}
			if dev != "" && d != dev {
				return false
			}
			dev = d
			has[v.VHID] = true
		}
	}
	for k, o := range c.Ifaces {
		if k == i {
			continue
		}
		// Valid in prev: a clone has at most one vhid, a physical
		// interface's run on it.
		if o.Clone {
			if len(o.VHIDs) == 0 || o.VHIDs[0].VHID == 0 {
				continue
			}
			v := o.VHIDs[0]
			if v.Carpdev == "" || (v.Carpdev == dev && has[v.VHID]) {
				return false
			}
			continue
		}
		if o.Name == dev {
			for _, v := range o.VHIDs {
				if has[v.VHID] {
					return false
				}
			}
		}
	}
	return true
}

// checkUnique rejects two vhids with the same number on the same parent, as
// FreeBSD's kernel does when a vhid is set.
func checkUnique(c *Config, host hostView) error {
	var seen byIfaceVHID[string] // parent, vhid -> the interface that has it
	for _, ifc := range c.Ifaces {
		for _, v := range ifc.VHIDs {
			if v.VHID == 0 {
				continue
			}
			dev := host.resolveCarpdev(v)
			if dev == "" {
				continue
			}
			if other := seen.get(dev, v.VHID); other != "" && other != ifc.Name {
				return api.Refused(api.StepSetVHID, syscall.EEXIST)
			}
			seen.set(dev, v.VHID, ifc.Name)
		}
	}
	return nil
}
