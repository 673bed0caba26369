package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/bsdcarp/bsdcarp/carp"
	"github.com/bsdcarp/bsdcarp/kernelshim"
)

// Ifconfig applies one ifconfig command line. The whole line is validated
// against a copy of the configuration first: an error changes nothing.
// Errors that the BSD command prints verbatim are *CLIError. A *SaveError
// means the line took effect but could not be saved yet (see save.go).
func (e *Engine) Ifconfig(ctx context.Context, req IfconfigRequest) error {
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
	kind   OpKind // OpAddr, OpDelAddr, OpUp, OpDown, OpMTU
	prefix netip.Prefix
	old    netip.Prefix // OpAddr without alias: the address it replaces
	mtu    int
}

func (e *Engine) ifconfig(req IfconfigRequest) error {
	if len(req.Ops) == 1 && req.Ops[0].Kind == OpGroupDemote {
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
		e.warnf("carpd: ifconfig %s refused: %v", req.Iface, err)
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
		var what string // BSD's name for the failing step
		switch op.kind {
		case OpAddr:
			what = "ioctl (SIOCAIFADDR)"
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
		case OpDelAddr:
			what = "ioctl (SIOCDIFADDR)"
			if err = e.k.DelAddr(link, op.prefix); err == nil {
				p := op.prefix
				undos = append(undos, func() { _ = e.k.ReplaceAddr(link, p, 0) })
			}
		case OpUp, OpDown:
			what = "up" // setifflags(): Perror(vname)
			if op.kind == OpDown {
				what = "down"
			}
			if err = e.k.SetLinkUp(link, op.kind == OpUp); err == nil {
				was := l.AdminUp
				undos = append(undos, func() { _ = e.k.SetLinkUp(link, was) })
			}
		case OpMTU:
			what = "ioctl SIOCSIFMTU (set mtu)"
			if err = e.k.SetMTU(link, op.mtu); err == nil && l.MTU > 0 {
				was := l.MTU
				undos = append(undos, func() { _ = e.k.SetMTU(link, was) })
			}
		}
		if err != nil {
			e.errorf("carpd: %s on %s: %v", op.kind, link, err)
			// ifconfig reports the flags and address ioctls through
			// Perror(), the MTU through err(3).
			return undo, cliErr(what + ": " + errnoText(err, op.kind != OpMTU))
		}
	}
	// Linux drops the IPv4 secondaries of a subnet with its primary
	// (promote_secondaries is off by default); BSD keeps them. After a
	// line that removed an IPv4 address, put back the IPv4 addresses it did
	// not mean to remove. (Nothing else: a link going down loses its IPv6
	// link-local address, as it should.)
	removed4 := slices.ContainsFunc(pl.hostOps, func(op hostOp) bool {
		return (op.kind == OpDelAddr && op.prefix.Addr().Is4()) || (op.kind == OpAddr && op.old.IsValid())
	})
	if err := e.resyncLinks(); err == nil && removed4 {
		now, _ := e.linkByLinuxName(link)
		for _, p := range pl.host {
			if p.Addr().Is4() && !slices.Contains(now.Addrs, p) {
				if err := e.k.ReplaceAddr(link, p, 0); err != nil {
					e.errorf("carpd: restore %s on %s: %v", p, link, err)
				}
			}
		}
		_ = e.resyncLinks()
	}
	return undo, nil
}

// errnoText is the strerror(3) text of a kernel error, as BSD prints it;
// with perror, as FreeBSD ifconfig's Perror() words EPERM and ENXIO.
func errnoText(err error, perror bool) string {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return "Invalid argument"
	}
	switch {
	case perror && errno == syscall.EPERM:
		return "permission denied"
	case perror && errno == syscall.ENXIO:
		return "no such interface"
	}
	s := errno.Error()
	if s == "" {
		return "Invalid argument"
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// lastVHID is the vhid a dialect C line addresses (`ifconfig em0 vhid 1 state backup`).
func (e *Engine) lastVHID(req IfconfigRequest) uint8 {
	var v uint8
	for _, op := range req.Ops {
		if op.Kind == OpVHID {
			v = uint8(op.Int)
		}
	}
	return v
}

var errInval = cliErr("SIOCSVH: Invalid argument")

// kernelAddrs are the Linux link's own addresses (not virtual ones).
func (e *Engine) kernelAddrs(bsd string) []netip.Prefix {
	l, _ := e.linkByLinuxName(e.linuxName(bsd))
	return l.Addrs
}

func (e *Engine) applyOps(c *Config, req IfconfigRequest, pl *plan) error {
	name := req.Iface
	ifc := c.iface(name)
	clone := IsCloneName(name)
	if len(req.Ops) > 0 && req.Ops[0].Kind == OpCreate {
		if len(name) > MaxIfNameLen {
			// FreeBSD ifconfig's check before SIOCIFCREATE2.
			return cliErr(name + ": cloning name too long")
		}
		if !clone {
			return cliErr("SIOCIFCREATE2: Invalid argument")
		}
		if ifc != nil {
			return cliErr("SIOCIFCREATE2: File exists")
		}
		if err := e.createClone(c, name); err != nil {
			return err
		}
		ifc = c.iface(name)
	}
	if ifc == nil {
		if clone && len(name) <= MaxIfNameLen && len(req.Ops) > 0 && req.Ops[0].Kind != OpDestroy {
			// OpenBSD clones on demand: ifconfig's getinfo() creates a
			// carpN that a line not starting with "destroy" configures.
			// (The line is still all or nothing: a refused one creates
			// nothing.)
			if err := e.createClone(c, name); err != nil {
				return err
			}
			ifc = c.iface(name)
		} else if clone {
			return cliErr("interface " + name + " does not exist")
		}
	}
	if ifc == nil {
		if _, ok := e.linkByLinuxName(e.linuxName(name)); !ok {
			return cliErr("interface " + name + " does not exist")
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
		case OpCreate:
			if i != 0 {
				return cliErr("SIOCIFCREATE2: File exists")
			}
		case OpDestroy:
			if !ifc.Clone {
				return cliErr("SIOCIFDESTROY: Invalid argument")
			}
			c.removeIface(name)
			return nil
		case OpVHID:
			if op.Int < 1 || op.Int > 255 {
				if ifc.Clone {
					return errInval // the carp(4) clone's kernel check
				}
				return cliErr("vhid must be greater than 0 and less than 255")
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
		case OpPass:
			if cur == nil {
				return cliErr("passwd requires vhid")
			}
			cur.Key = boundKey(op.Str)
		case OpAdvBase:
			if cur == nil {
				return cliErr("advbase requires vhid")
			}
			if op.Int < 1 || op.Int > 255 {
				return errInval
			}
			cur.AdvBase = uint8(op.Int)
		case OpAdvSkew:
			if cur == nil {
				return cliErr("advskew requires vhid")
			}
			if op.Int < 0 || op.Int > 254 {
				return errInval
			}
			cur.AdvSkew = uint8(op.Int)
		case OpCarpdev:
			if !ifc.Clone {
				return errInval
			}
			if _, ok := e.linkByLinuxName(e.linuxName(op.Str)); !ok || IsCloneName(op.Str) {
				return errInval
			}
			cur.Carpdev = op.Str
		case OpState:
			if cur == nil {
				return cliErr("state requires vhid")
			}
			if _, ok := carp.ParseState(op.Str); !ok {
				return cliErr("unknown state")
			}
			pl.forced = append(pl.forced, op.Str)
		case OpUp, OpDown:
			if ifc.Clone {
				ifc.Down = op.Kind == OpDown
			} else {
				pl.hostOps = append(pl.hostOps, hostOp{kind: op.Kind})
			}
		case OpMTU:
			// Linux's limits for Ethernet: 68 (IPv4's minimum) to 65535.
			if ifc.Clone || op.Int < 68 || op.Int > 65535 {
				return cliErr("ioctl SIOCSIFMTU (set mtu): Invalid argument")
			}
			pl.hostOps = append(pl.hostOps, hostOp{kind: OpMTU, mtu: op.Int})
		case OpAddr:
			if !op.Prefix.IsValid() {
				return cliErr("ioctl (SIOCAIFADDR): Invalid argument")
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
		case OpDelAddr:
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
					pl.hostOps = append(pl.hostOps, hostOp{kind: OpDelAddr, prefix: host[k]})
					host = slices.Delete(host, k, k+1)
					found = true
				}
			}
			if !found {
				return cliErr("ioctl (SIOCDIFADDR): Can't assign requested address")
			}
		default:
			return cliErr("unsupported operation " + strconv.Quote(string(op.Kind)))
		}
	}
	// Dialect B: a clone without carpdev runs on the interface that has an
	// address in the subnet of its own; without one, FreeBSD 9's kernel
	// refuses the address.
	if ifc.Clone && len(ifc.VHIDs) > 0 {
		v := ifc.VHIDs[0]
		if v.VHID != 0 && v.Carpdev == "" && len(v.Addrs) > 0 && e.resolveCarpdev(v) == "" {
			return cliErr("ioctl (SIOCAIFADDR): Can't assign requested address")
		}
	}
	if !ifc.Clone && len(ifc.VHIDs) == 0 {
		c.removeIface(name)
		return nil
	}
	return e.checkUnique(c)
}

// createClone adds the carp clone name to c, as SIOCIFCREATE2 does.
func (e *Engine) createClone(c *Config, name string) error {
	// A Linux link of that name that carpd did not make (or left behind)
	// would make the clone fail later, silently.
	if l, ok := e.linkByLinuxName(name); ok && l.Alias != kernelshim.OwnerAlias {
		return cliErr("SIOCIFCREATE2: File exists")
	}
	c.Ifaces = append(c.Ifaces, IfaceConfig{Name: name, Clone: true})
	return nil
}

// MaxGroupDemote is the largest value of a group's demotion counter
// (OpenBSD's if_setgroupattribs() refuses to go beyond 0xff).
const MaxGroupDemote = 0xff

// groupDemote is OpenBSD's SIOCSIFGATTR on the carp group: it adds delta to
// the demotion counter, which on FreeBSD (and in bsdcarp) is the global
// net.inet.carp.demotion, so every vhid advertises the new value at once.
// As OpenBSD's kernel does, it refuses to raise the counter beyond
// MaxGroupDemote or to lower it below 0. Other groups do not exist.
func (e *Engine) groupDemote(group string, delta int) error {
	if group != "carp" {
		return cliErr(group + ": SIOCSIFGATTR: No such file or directory")
	}
	next := e.demotion + delta
	if (delta > 0 && next > MaxGroupDemote) || (delta < 0 && next < 0) {
		return cliErr(group + ": SIOCSIFGATTR: Invalid argument")
	}
	_, _, err := e.setSysctl(SysctlPrefix+"demotion", int64(delta))
	return err
}

// refusal words a configuration the validator refused in the errno BSD's
// kernel gives for such a request: an address it cannot own is
// SIOCAIFADDR's EINVAL, anything else SIOCSVH's.
func refusal(err error) error {
	var fe *FieldError
	switch {
	case errors.As(err, &fe) && strings.Contains(fe.Field, ".addrs["):
		return cliErr("ioctl (SIOCAIFADDR): Invalid argument")
	}
	// A Linux link whose name BSD cannot hold (non-ASCII) cannot carry a
	// vhid either: SIOCSVH's EINVAL, like any other refused parameter.
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
func hostAddr(host *[]netip.Prefix, op Op) hostOp {
	p := op.Prefix
	for _, a := range *host {
		if a == p {
			return hostOp{kind: OpAddr, prefix: p}
		}
	}
	h := hostOp{kind: OpAddr, prefix: p}
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
// the kernel's SIOCSVH does.
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
				return cliErr("SIOCSVH: File exists")
			}
			seen[k] = ifc.Name
		}
	}
	return nil
}

// Status returns a snapshot. Keys are included only when showKeys is set;
// the control server sets it only for root callers that asked (-k).
func (e *Engine) Status(ctx context.Context, showKeys bool) (Status, error) {
	var st Status
	err := e.call(ctx, func() { st = e.status(showKeys) })
	return st, err
}

func (e *Engine) status(showKeys bool) Status {
	now := e.opts.Now()
	st := Status{Knobs: e.knobs(), Links: e.linkStatus()}
	for _, n := range e.stats.Named() {
		st.Stats = append(st.Stats, Counter{Name: n.Name, Value: n.Value})
	}
	st.Stats = append(st.Stats, Counter{Name: "replay", Value: e.stats.Replay})
	for _, ifc := range e.cfg.Ifaces {
		if ifc.Clone {
			mtu := 1500
			if l, ok := e.linkByLinuxName(e.linuxName(ifc.Name)); ok && l.MTU > 0 {
				mtu = l.MTU
			}
			st.Clones = append(st.Clones, CloneStatus{Name: ifc.Name, Up: !ifc.Down, MTU: mtu})
		}
		for _, v := range ifc.VHIDs {
			if v.VHID == 0 && !ifc.Clone {
				continue
			}
			vs := VHIDStatus{Iface: ifc.Name, Carpdev: v.Carpdev, VHID: v.VHID, AdvBase: v.AdvBase, AdvSkew: v.AdvSkew, State: carp.Init.String(), Addrs: slices.Clone(v.Addrs)}
			if showKeys {
				vs.Key = v.Key
			}
			for _, h := range e.hosts {
				if h.iface == ifc.Name && h.cfg.VHID == v.VHID {
					vs.State = h.m.State().String()
					if a, ok := h.mismatchPeer(now); ok {
						vs.AuthMismatch = a.String()
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
// *SaveError means the value took effect but could not be saved yet.
func (e *Engine) SetSysctl(ctx context.Context, oid string, v int64) (old, now int64, err error) {
	if cerr := e.call(ctx, func() { old, now, err = e.setSysctl(oid, v) }); cerr != nil {
		return 0, 0, cerr
	}
	return old, now, err
}

func (e *Engine) setSysctl(oid string, v int64) (int64, int64, error) {
	leaf, ok := strings.CutPrefix(oid, SysctlPrefix)
	k, known := knobByName(leaf)
	if !ok || !known {
		return 0, 0, cliErr("unknown oid '" + oid + "'")
	}
	if err := checkKnob(k, v); err != nil {
		return 0, 0, err
	}
	old := e.knob(leaf)
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
		e.demote(int(v), "sysctl", nil)
	case "ifdown_demotion_factor":
		// The demotion already counted follows the new factor.
		e.demote(e.countHosts(func(h *vhost) bool { return h.suppressed })*int(v-old), "sysctl", &e.demoteIfdown)
	case "senderr_demotion_factor":
		e.demote(e.countHosts(func(h *vhost) bool { return h.senderr })*int(v-old), "sysctl", &e.demoteSenderr)
	}
	e.recomputeDemotion()
	for _, h := range e.hosts {
		e.apply(now, h, h.m.SetConfig(now, e.machineConfig(h.cfg)))
		e.setRun(now, h, carp.ReasonInitComplete)
	}
	e.syncARPBalance()
	return old, e.knob(leaf), e.persist(now)
}

// linkStatus lists the host's interfaces by their BSD names, in ifindex
// order, leaving out the links carpd made (clones are shown as clones).
func (e *Engine) linkStatus() []LinkStatus {
	idx := make([]int, 0, len(e.links))
	for i, l := range e.links {
		if l.Alias != kernelshim.OwnerAlias {
			idx = append(idx, i)
		}
	}
	slices.Sort(idx)
	out := make([]LinkStatus, 0, len(idx))
	for _, i := range idx {
		l := e.links[i]
		ls := LinkStatus{Name: e.bsdName(l.Name), Index: l.Index, MTU: l.MTU, Up: l.AdminUp, Running: l.Running,
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
