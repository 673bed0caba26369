package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/bsdcarp/bsdcarp/carp"
	"github.com/bsdcarp/bsdcarp/carp/api"
	"github.com/bsdcarp/bsdcarp/kernelshim"
)

// Ifconfig applies one ifconfig command line. The whole line is validated
// against a copy of the configuration first: an error changes nothing.
// A refusal is an *api.Error (carp/bsd words it as ifconfig does). An *api.SaveError
// means the line took effect but could not be saved yet (see save.go).
func (e *Engine) Ifconfig(ctx context.Context, req api.IfconfigRequest) error {
	var err error
	if cerr := e.call(ctx, func() { err = e.ifconfig(req) }); cerr != nil {
		return cerr
	}
	return err
}

// plan is what an accepted ifconfig line does besides changing the
// configuration: forced states, and changes to the Linux interface itself
// (its own addresses, up/down, MTU), which are the host's settings rather
// than carpd's and are not saved.
type plan struct {
	forced  []string
	hostOps []hostOp
	// host is the interface's own address list as the line leaves it.
	host []netip.Prefix
}

type hostOp struct {
	kind   api.OpKind // api.OpAddr, api.OpDelAddr, api.OpUp, api.OpDown, api.OpMTU
	prefix netip.Prefix
	old    netip.Prefix // api.OpAddr without alias: the address it replaces
	mtu    int
}

func (e *Engine) ifconfig(req api.IfconfigRequest) error {
	if len(req.Ops) == 1 && req.Ops[0].Kind == api.OpGroupDemote {
		return e.groupDemote(req.Iface, req.Ops[0].Int)
	}
	next := e.cfg.clone()
	var pl plan
	if err := e.applyOps(next, req, &pl); err != nil {
		return err
	}
	// What a line leaves must load again after a restart: the same
	// validation as config.json's.
	if err := next.Validate(); err != nil {
		e.log.Printf("carpd: ifconfig %s refused: %v", req.Iface, err)
		return refusal(err)
	}
	// The kernel may still refuse what validation let through (an MTU
	// above the driver's maximum): the Linux side goes first and is undone
	// on a refusal, so that a failed line changes nothing at all.
	link := e.linuxName(req.Iface)
	undo, err := e.runHostOps(link, pl)
	if err != nil {
		undo()
		return err
	}
	// Committed before it is saved: a full or read-only state directory
	// must not stop a failover (persist reports and retries).
	e.cfg = next
	now := e.opts.Now()
	e.reconcile(now)
	for _, s := range pl.forced {
		st, _ := carp.ParseState(s)
		for _, h := range e.hosts {
			if h.iface == req.Iface && (h.clone || h.cfg.VHID == e.lastVHID(req)) {
				e.apply(now, h, h.m.Force(now, st))
			}
		}
	}
	return e.persist(now)
}

// runHostOps applies the plain-interface part of a line to the Linux link
// and returns how to undo what it did. A refusal by the kernel is reported
// as BSD's ifconfig words it for that ioctl.
func (e *Engine) runHostOps(link string, pl plan) (undo func(), err error) {
	var undos []func()
	undo = func() {
		for i := len(undos) - 1; i >= 0; i-- {
			undos[i]()
		}
		_ = e.resyncLinks()
	}
	if len(pl.hostOps) == 0 {
		return undo, nil
	}
	l, _ := e.linkByLinuxName(link)
	for _, op := range pl.hostOps {
		var step api.Step // the step a refusal is reported as
		switch op.kind {
		case api.OpAddr:
			step = api.StepAddAddr
			if op.old.IsValid() {
				if err = e.k.DelAddr(link, op.old); err == nil {
					old := op.old
					undos = append(undos, func() { _ = e.k.ReplaceAddr(link, old, 0) })
				}
			}
			if err == nil && !slices.Contains(l.Addrs, op.prefix) {
				if err = e.k.ReplaceAddr(link, op.prefix, 0); err == nil {
					p := op.prefix
					undos = append(undos, func() { _ = e.k.DelAddr(link, p) })
				}
			}
		case api.OpDelAddr:
			step = api.StepDelAddr
			if err = e.k.DelAddr(link, op.prefix); err == nil {
				p := op.prefix
				undos = append(undos, func() { _ = e.k.ReplaceAddr(link, p, 0) })
			}
		case api.OpUp, api.OpDown:
			step = api.StepSetUp
			if op.kind == api.OpDown {
				step = api.StepSetDown
			}
			if err = e.k.SetLinkUp(link, op.kind == api.OpUp); err == nil {
				was := l.AdminUp
				undos = append(undos, func() { _ = e.k.SetLinkUp(link, was) })
			}
		case api.OpMTU:
			step = api.StepSetMTU
			if err = e.k.SetMTU(link, op.mtu); err == nil && l.MTU > 0 {
				was := l.MTU
				undos = append(undos, func() { _ = e.k.SetMTU(link, was) })
			}
		}
		if err != nil {
			e.log.Printf("carpd: %s on %s: %v", op.kind, link, err)
			return undo, api.KernelRefusal(step, err)
		}
	}
	// Linux drops the IPv4 secondaries of a subnet with its primary
	// (promote_secondaries is off by default); BSD keeps them. After a
	// line that removed an IPv4 address, put back the IPv4 addresses it did
	// not mean to remove. (Nothing else: a link going down loses its IPv6
	// link-local address, as it should.)
	removed4 := slices.ContainsFunc(pl.hostOps, func(op hostOp) bool {
		return (op.kind == api.OpDelAddr && op.prefix.Addr().Is4()) || (op.kind == api.OpAddr && op.old.IsValid())
	})
	if err := e.resyncLinks(); err == nil && removed4 {
		now, _ := e.linkByLinuxName(link)
		for _, p := range pl.host {
			if p.Addr().Is4() && !slices.Contains(now.Addrs, p) {
				if err := e.k.ReplaceAddr(link, p, 0); err != nil {
					e.log.Printf("carpd: restore %s on %s: %v", p, link, err)
				}
			}
		}
		_ = e.resyncLinks()
	}
	return undo, nil
}

// lastVHID is the vhid a dialect C line addresses (`ifconfig em0 vhid 1 state backup`).
func (e *Engine) lastVHID(req api.IfconfigRequest) uint8 {
	var v uint8
	for _, op := range req.Ops {
		if op.Kind == api.OpVHID {
			v = uint8(op.Int)
		}
	}
	return v
}

// errInval is the kernel's refusal of a vhid's parameters.
var errInval = api.Refused(api.StepSetVHID, syscall.EINVAL)

// kernelAddrs are the Linux link's own addresses (not virtual ones).
func (e *Engine) kernelAddrs(bsd string) []netip.Prefix {
	l, _ := e.linkByLinuxName(e.linuxName(bsd))
	return l.Addrs
}

func (e *Engine) applyOps(c *Config, req api.IfconfigRequest, pl *plan) error {
	name := req.Iface
	ifc := c.iface(name)
	clone := api.IsCloneName(name)
	if len(req.Ops) > 0 && req.Ops[0].Kind == api.OpCreate {
		if len(name) > api.MaxIfNameLen {
			// FreeBSD ifconfig's check before it asks the kernel for the clone.
			return &api.Error{Reason: api.ReasonCloneNameLong, Name: name}
		}
		if !clone {
			return api.Refused(api.StepCreate, syscall.EINVAL)
		}
		if ifc != nil {
			return api.Refused(api.StepCreate, syscall.EEXIST)
		}
		if err := e.createClone(c, name); err != nil {
			return err
		}
		ifc = c.iface(name)
	}
	if ifc == nil {
		if clone && len(name) <= api.MaxIfNameLen && len(req.Ops) > 0 && req.Ops[0].Kind != api.OpDestroy {
			// OpenBSD clones on demand: ifconfig's getinfo() creates a
			// carpN that a line not starting with "destroy" configures.
			// (The line is still all or nothing: a refused one creates
			// nothing.)
			if err := e.createClone(c, name); err != nil {
				return err
			}
			ifc = c.iface(name)
		} else if clone {
			return &api.Error{Reason: api.ReasonNoInterface, Name: name}
		}
	}
	if ifc == nil {
		if _, ok := e.linkByLinuxName(e.linuxName(name)); !ok {
			return &api.Error{Reason: api.ReasonNoInterface, Name: name}
		}
		c.Ifaces = append(c.Ifaces, IfaceConfig{Name: name})
		ifc = c.iface(name)
	}
	// host are the Linux link's own addresses as this line leaves them.
	host := slices.Clone(e.kernelAddrs(name))
	defer func() { pl.host = host }()
	// cur is the vhid the following words apply to.
	var cur *VHIDConfig
	if ifc.Clone {
		if len(ifc.VHIDs) == 0 {
			ifc.VHIDs = []VHIDConfig{{AdvBase: DefaultAdvBase, AdvSkew: DefaultAdvSkew}}
		}
		cur = &ifc.VHIDs[0]
	}
	for i, op := range req.Ops {
		switch op.Kind {
		case api.OpCreate:
			if i != 0 {
				return api.Refused(api.StepCreate, syscall.EEXIST)
			}
		case api.OpDestroy:
			if !ifc.Clone {
				return api.Refused(api.StepDestroy, syscall.EINVAL)
			}
			c.removeIface(name)
			return nil
		case api.OpVHID:
			if op.Int < 1 || op.Int > 255 {
				if ifc.Clone {
					return errInval // the carp(4) clone's kernel check
				}
				return &api.Error{Reason: api.ReasonVHIDRange}
			}
			vhid := uint8(op.Int)
			if ifc.Clone {
				cur.VHID = vhid
			} else {
				idx := slices.IndexFunc(ifc.VHIDs, func(v VHIDConfig) bool { return v.VHID == vhid })
				if idx < 0 {
					ifc.VHIDs = append(ifc.VHIDs, VHIDConfig{VHID: vhid, Carpdev: name, AdvBase: DefaultAdvBase, AdvSkew: DefaultAdvSkew})
					idx = len(ifc.VHIDs) - 1
				}
				cur = &ifc.VHIDs[idx]
			}
		case api.OpPass:
			if cur == nil {
				return needsVHID(op)
			}
			cur.Key = boundKey(op.Str)
		case api.OpAdvBase:
			if cur == nil {
				return needsVHID(op)
			}
			if op.Int < 1 || op.Int > 255 {
				return errInval
			}
			cur.AdvBase = uint8(op.Int)
		case api.OpAdvSkew:
			if cur == nil {
				return needsVHID(op)
			}
			if op.Int < 0 || op.Int > 254 {
				return errInval
			}
			cur.AdvSkew = uint8(op.Int)
		case api.OpCarpdev:
			if !ifc.Clone {
				return errInval
			}
			if _, ok := e.linkByLinuxName(e.linuxName(op.Str)); !ok || api.IsCloneName(op.Str) {
				return errInval
			}
			cur.Carpdev = op.Str
		case api.OpState:
			if cur == nil {
				return needsVHID(op)
			}
			if _, ok := carp.ParseState(op.Str); !ok {
				return &api.Error{Reason: api.ReasonUnknownState}
			}
			pl.forced = append(pl.forced, op.Str)
		case api.OpUp, api.OpDown:
			if ifc.Clone {
				ifc.Down = op.Kind == api.OpDown
			} else {
				pl.hostOps = append(pl.hostOps, hostOp{kind: op.Kind})
			}
		case api.OpMTU:
			// Linux's limits for Ethernet: 68 (IPv4's minimum) to 65535.
			if ifc.Clone || op.Int < 68 || op.Int > 65535 {
				return api.Refused(api.StepSetMTU, syscall.EINVAL)
			}
			pl.hostOps = append(pl.hostOps, hostOp{kind: api.OpMTU, mtu: op.Int})
		case api.OpAddr:
			if !op.Prefix.IsValid() {
				return api.Refused(api.StepAddAddr, syscall.EINVAL)
			}
			if cur == nil {
				// A plain address of the physical interface.
				pl.hostOps = append(pl.hostOps, hostAddr(&host, op))
				continue
			}
			p := op.Prefix
			switch j := cur.hasAddr(p); {
			case j >= 0:
				cur.Addrs[j] = p
			case op.Alias || len(cur.Addrs) == 0:
				cur.Addrs = append(cur.Addrs, p)
			default:
				// Without `alias`, a new address replaces the first one of its family.
				k := slices.IndexFunc(cur.Addrs, func(a netip.Prefix) bool { return a.Addr().Is4() == p.Addr().Is4() })
				if k < 0 {
					cur.Addrs = append(cur.Addrs, p)
				} else {
					cur.Addrs[k] = p
				}
			}
		case api.OpDelAddr:
			// `-alias` without an address removes the first one, as BSD does.
			first := !op.Prefix.IsValid()
			found := false
			for j := range ifc.VHIDs {
				v := &ifc.VHIDs[j]
				k := v.hasAddr(op.Prefix)
				if first && len(v.Addrs) > 0 && ifc.Clone {
					k = 0
				}
				if k < 0 {
					continue
				}
				v.Addrs = slices.Delete(v.Addrs, k, k+1)
				found = true
				if !ifc.Clone && len(v.Addrs) == 0 {
					// A vhid of a physical interface goes away with its
					// last address (and only that vhid).
					vhid := v.VHID
					ifc.VHIDs = slices.DeleteFunc(ifc.VHIDs, func(v VHIDConfig) bool { return v.VHID == vhid })
					cur = nil
				}
				break
			}
			if !found && !ifc.Clone {
				// Not a vhid address: one of the interface's own.
				k := slices.IndexFunc(host, func(a netip.Prefix) bool {
					if first {
						return a.Addr().Is4() && !a.Addr().IsLinkLocalUnicast()
					}
					return a.Addr() == op.Prefix.Addr()
				})
				if k >= 0 {
					pl.hostOps = append(pl.hostOps, hostOp{kind: api.OpDelAddr, prefix: host[k]})
					host = slices.Delete(host, k, k+1)
					found = true
				}
			}
			if !found {
				return api.Refused(api.StepDelAddr, syscall.EADDRNOTAVAIL)
			}
		default:
			return &api.Error{Reason: api.ReasonUnsupported, Op: op.Kind}
		}
	}
	// Dialect B: a clone without carpdev runs on the interface that has an
	// address in the subnet of its own; without one, FreeBSD 9's kernel
	// refuses the address.
	if ifc.Clone && len(ifc.VHIDs) > 0 {
		v := ifc.VHIDs[0]
		if v.VHID != 0 && v.Carpdev == "" && len(v.Addrs) > 0 && e.resolveCarpdev(v) == "" {
			return api.Refused(api.StepAddAddr, syscall.EADDRNOTAVAIL)
		}
	}
	if !ifc.Clone && len(ifc.VHIDs) == 0 {
		c.removeIface(name)
		return nil
	}
	return e.checkUnique(c)
}

// createClone adds the carp clone name to c, as cloning it does on FreeBSD.
func (e *Engine) createClone(c *Config, name string) error {
	// A Linux link of that name that carpd did not make (or left behind)
	// would make the clone fail later, silently.
	if l, ok := e.linkByLinuxName(name); ok && l.Alias != kernelshim.OwnerAlias {
		return api.Refused(api.StepCreate, syscall.EEXIST)
	}
	c.Ifaces = append(c.Ifaces, IfaceConfig{Name: name, Clone: true})
	return nil
}

// MaxGroupDemote is the largest value of a group's demotion counter
// (OpenBSD's if_setgroupattribs() refuses to go beyond 0xff).
const MaxGroupDemote = 0xff

// groupDemote is OpenBSD's group attribute ioctl on the carp group: it adds delta to
// the demotion counter, which on FreeBSD (and in bsdcarp) is the global
// net.inet.carp.demotion, so every vhid advertises the new value at once.
// As OpenBSD's kernel does, it refuses to raise the counter beyond
// MaxGroupDemote or to lower it below 0. Other groups do not exist.
func (e *Engine) groupDemote(group string, delta int) error {
	if group != "carp" {
		return &api.Error{Reason: api.ReasonErrno, Step: api.StepGroupAttr, Errno: syscall.ENOENT, Name: group}
	}
	next := e.demotion() + delta
	if (delta > 0 && next > MaxGroupDemote) || (delta < 0 && next < 0) {
		return &api.Error{Reason: api.ReasonErrno, Step: api.StepGroupAttr, Errno: syscall.EINVAL, Name: group}
	}
	_, _, err := e.setSysctl(api.SysctlPrefix+"demotion", int64(delta))
	return err
}

// refusal is a configuration the validator refused as the errno BSD's
// kernel gives for such a request: an address it cannot own is
// adding an address's EINVAL, anything else setting the vhid's.
func refusal(err error) error {
	var fe *FieldError
	switch {
	case errors.As(err, &fe) && strings.Contains(fe.Field, ".addrs["):
		return api.Refused(api.StepAddAddr, syscall.EINVAL)
	}
	// A Linux link whose name BSD cannot hold (non-ASCII) cannot carry a
	// vhid either: EINVAL for the vhid, like any other refused parameter.
	return errInval
}

// boundKey keeps a password to MaxKeyBytes, cut on a character boundary so
// that the saved JSON holds exactly what was kept. The protocol uses only
// the first carp.MaxKeyLen bytes, which stay the same.
func boundKey(k string) string {
	if len(k) <= MaxKeyBytes {
		return k
	}
	cut := MaxKeyBytes
	for cut > 0 && !utf8.RuneStart(k[cut]) {
		cut--
	}
	return k[:cut]
}

// hostAddr plans a plain address on the physical interface. Without
// `alias`, BSD's ifconfig first removes the interface's first address of
// that family; re-adding an address that is already there changes nothing,
// so a boot script can run twice.
func hostAddr(host *[]netip.Prefix, op api.Op) hostOp {
	p := op.Prefix
	for _, a := range *host {
		if a == p {
			return hostOp{kind: api.OpAddr, prefix: p}
		}
	}
	h := hostOp{kind: api.OpAddr, prefix: p}
	// Only IPv4 replaces: for inet6 the delete of BSD's ifconfig finds
	// nothing (EADDRNOTAVAIL, ignored) and the address is added.
	if !op.Alias && p.Addr().Is4() {
		k := slices.IndexFunc(*host, func(a netip.Prefix) bool { return a.Addr().Is4() })
		if k >= 0 {
			h.old = (*host)[k]
			*host = slices.Delete(*host, k, k+1)
		}
	}
	*host = append(*host, p)
	return h
}

// checkUnique rejects two vhids with the same number on the same parent, as
// FreeBSD's kernel does when a vhid is set.
func (e *Engine) checkUnique(c *Config) error {
	seen := map[string]string{}
	for _, ifc := range c.Ifaces {
		for _, v := range ifc.VHIDs {
			if v.VHID == 0 {
				continue
			}
			dev := v.Carpdev
			if dev == "" {
				dev = e.resolveCarpdev(v)
			}
			if dev == "" {
				continue
			}
			k := fmt.Sprintf("%s/%d", dev, v.VHID)
			if other, ok := seen[k]; ok && other != ifc.Name {
				return api.Refused(api.StepSetVHID, syscall.EEXIST)
			}
			seen[k] = ifc.Name
		}
	}
	return nil
}

// api.Status returns a snapshot. Keys are included only when showKeys is set;
// the control server sets it only for root callers that asked (-k).
func (e *Engine) Status(ctx context.Context, showKeys bool) (api.Status, error) {
	var st api.Status
	err := e.call(ctx, func() { st = e.status(showKeys) })
	return st, err
}

func (e *Engine) status(showKeys bool) api.Status {
	now := e.opts.Now()
	st := api.Status{Knobs: e.knobs(), Links: e.linkStatus()}
	for _, n := range e.stats.Named() {
		st.Stats = append(st.Stats, api.Counter{Name: n.Name, Value: n.Value})
	}
	st.Stats = append(st.Stats, api.Counter{Name: "replay", Value: e.stats.Replay})
	for _, ifc := range e.cfg.Ifaces {
		if ifc.Clone {
			mtu := 1500
			if l, ok := e.linkByLinuxName(e.linuxName(ifc.Name)); ok && l.MTU > 0 {
				mtu = l.MTU
			}
			st.Clones = append(st.Clones, api.CloneStatus{Name: ifc.Name, Up: !ifc.Down, MTU: mtu})
		}
		for _, v := range ifc.VHIDs {
			if v.VHID == 0 && !ifc.Clone {
				continue
			}
			vs := api.VHIDStatus{Iface: ifc.Name, Carpdev: v.Carpdev, VHID: v.VHID, AdvBase: v.AdvBase, AdvSkew: v.AdvSkew, State: carp.Init.String(), Addrs: slices.Clone(v.Addrs)}
			if showKeys {
				vs.Key = v.Key
			}
			for _, h := range e.hosts {
				if h.iface == ifc.Name && h.cfg.VHID == v.VHID {
					vs.State = h.m.State().String()
					if a, ok := h.mismatchPeer(now); ok {
						vs.AuthMismatch = a.String()
					}
					if h.m.State() == carp.Init {
						vs.InitReason = h.why.String()
					}
				}
			}
			st.VHIDs = append(st.VHIDs, vs)
		}
	}
	return st
}

// SetSysctl writes one net.inet.carp leaf (full oid) and returns the value
// before and after. Writing demotion adds to it, as FreeBSD does. A
// *api.SaveError means the value took effect but could not be saved yet.
func (e *Engine) SetSysctl(ctx context.Context, oid string, v int64) (old, now int64, err error) {
	if cerr := e.call(ctx, func() { old, now, err = e.setSysctl(oid, v) }); cerr != nil {
		return 0, 0, cerr
	}
	return old, now, err
}

func (e *Engine) setSysctl(oid string, v int64) (int64, int64, error) {
	leaf, ok := strings.CutPrefix(oid, api.SysctlPrefix)
	k, known := knobByName(leaf)
	if !ok || !known {
		return 0, 0, &api.Error{Reason: api.ReasonUnknownOID, Name: oid}
	}
	if err := checkKnob(k, v); err != nil {
		return 0, 0, err
	}
	old := e.knob(leaf)
	before := e.demotion()
	next := e.cfg.clone()
	if k.additive {
		// FreeBSD's counter is a C int: saturate rather than wrap, so
		// that the saved value always loads again.
		next.Knobs[leaf] = min(max(next.Knobs[leaf]+v, math.MinInt32), math.MaxInt32)
	} else if v == k.def {
		delete(next.Knobs, leaf)
	} else {
		next.Knobs[leaf] = v
	}
	e.cfg = next
	now := e.opts.Now()
	switch leaf {
	case "demotion":
		e.demote(int(v), "sysctl") // what was written, as FreeBSD logs it
	case "ifdown_demotion_factor", "senderr_demotion_factor":
		// The demotion already counted follows the new factor.
		e.demote(e.demotion()-before, "sysctl")
	}
	for _, h := range e.hosts {
		e.apply(now, h, h.m.SetConfig(now, e.machineConfig(h.cfg)))
		e.setRun(now, h, carp.ReasonInitComplete)
	}
	e.syncARPBalance()
	return old, e.knob(leaf), e.persist(now)
}

// linkStatus lists the host's interfaces by their BSD names, in ifindex
// order, leaving out the links carpd made (clones are shown as clones).
func (e *Engine) linkStatus() []api.LinkStatus {
	idx := make([]int, 0, len(e.links))
	for i, l := range e.links {
		if l.Alias != kernelshim.OwnerAlias {
			idx = append(idx, i)
		}
	}
	slices.Sort(idx)
	out := make([]api.LinkStatus, 0, len(idx))
	for _, i := range idx {
		l := e.links[i]
		ls := api.LinkStatus{Name: e.bsdName(l.Name), Index: l.Index, MTU: l.MTU, Up: l.AdminUp, Running: l.Running,
			Carrier: l.Carrier, Broadcast: l.Broadcast, Multicast: l.Multicast, Loopback: l.Loopback,
			Promisc: l.Promisc, Kind: l.Kind, Addrs: slices.Clone(l.Addrs)}
		if len(l.MAC) > 0 {
			ls.MAC = l.MAC.String()
		}
		out = append(out, ls)
	}
	return out
}

// countHosts counts the running vhids for which f holds.
func (e *Engine) countHosts(f func(*vhost) bool) int {
	n := 0
	for _, h := range e.hosts {
		if f(h) {
			n++
		}
	}
	return n
}

// needsVHID refuses a vhid parameter given before any vhid.
func needsVHID(op api.Op) error {
	return &api.Error{Reason: api.ReasonNeedsVHID, Op: op.Kind}
}
