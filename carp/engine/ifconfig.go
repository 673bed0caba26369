package engine

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/bsdcarp/bsdcarp/carp"
	"github.com/bsdcarp/bsdcarp/carp/api"
	"github.com/bsdcarp/bsdcarp/carp/osif"
)

// Ifconfig applies one ifconfig command line. The whole line is validated
// against a copy of the configuration first: an error changes nothing.
// A refusal is an *api.Error (carp/bsd words it as ifconfig does). An *api.SaveError
// means the line took effect but could not be saved yet (see save.go).
func (e *Engine) Ifconfig(ctx context.Context, req api.IfconfigRequest) error {
	var err error
	var job *saveJob
	if cerr := e.call(ctx, func() { job, err = e.ifconfig(req) }); cerr != nil {
		return cerr
	}
	if err != nil {
		return err
	}
	return e.saveOffLoop(ctx, job)
}

// ifconfig applies req on the event loop and returns the save of the
// configuration it leaves, for the caller to write off the loop (or the
// *api.SaveError of encoding it).
func (e *Engine) ifconfig(req api.IfconfigRequest) (*saveJob, error) {
	if len(req.Ops) == 1 && req.Ops[0].Kind == api.OpGroupDemote {
		return e.groupDemote(req.Iface, req.Ops[0].Int)
	}
	pl, err := plan(e.cfg, e.hostView(), req)
	var inv *invalidLine
	if errors.As(err, &inv) {
		e.warnf("carpd: ifconfig %s refused: %v", req.Iface, inv.cause)
		return nil, inv.refusal
	}
	if err != nil {
		return nil, err
	}
	// The Linux side goes first and is undone on a refusal.
	if err := e.execute(pl.steps, pl.keep); err != nil {
		return nil, err
	}
	// Committed before it is saved: a full or read-only state directory
	// must not stop a failover (persist reports and retries).
	e.cfg = pl.next
	now := e.opts.Now()
	if len(pl.steps) == 0 {
		// Only req.Iface's configuration changed, no Linux link.
		e.reconcileOnly(now, req.Iface)
	} else {
		e.reconcile(now)
	}
	for _, st := range pl.forced {
		for _, h := range e.hosts {
			if h.iface == req.Iface && (h.clone || h.cfg.VHID == pl.forceVHID) {
				e.apply(now, h, h.m.Force(now, st))
			}
		}
	}
	return e.queueSave(now)
}

// hostView is the engine's current view of the host's links, for plan.
func (e *Engine) hostView() hostView {
	return hostView{links: e.links, byName: e.linkIdx.byName, ifmap: e.opts.IfMap}
}

// MaxGroupDemote is the largest value of a group's demotion counter
// (OpenBSD's if_setgroupattribs() refuses to go beyond 0xff).
const MaxGroupDemote = 0xff

// groupDemote is OpenBSD's group attribute ioctl on the carp group: it adds delta to
// the demotion counter, which on FreeBSD (and in bsdcarp) is the global
// net.inet.carp.demotion, so every vhid advertises the new value at once.
// As OpenBSD's kernel does, it refuses to raise the counter beyond
// MaxGroupDemote or to lower it below 0. Other groups do not exist.
func (e *Engine) groupDemote(group string, delta int) (*saveJob, error) {
	if group != "carp" {
		return nil, &api.Error{Reason: api.ReasonErrno, Step: api.StepGroupAttr, Errno: syscall.ENOENT, Name: group}
	}
	next := e.demotion() + delta
	if (delta > 0 && next > MaxGroupDemote) || (delta < 0 && next < 0) {
		return nil, &api.Error{Reason: api.ReasonErrno, Step: api.StepGroupAttr, Errno: syscall.EINVAL, Name: group}
	}
	_, _, job, err := e.setSysctl(api.SysctlPrefix+"demotion", int64(delta))
	return job, err
}

// refusal is a configuration the validator refused as the errno BSD's
// kernel gives for such a request: an address it cannot own is
// adding an address's EINVAL, anything else setting the vhid's.
func refusal(err error) *api.Error {
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

// Status returns a snapshot. Keys are included only when showKeys is set;
// the control server sets it only for root callers that asked (-k).
func (e *Engine) Status(ctx context.Context, q api.StatusQuery) (api.Status, error) {
	var st api.Status
	err := e.call(ctx, func() { st = e.status(q) })
	return st, err
}

func (e *Engine) status(q api.StatusQuery) api.Status {
	now := e.opts.Now()
	st := api.Status{Knobs: e.knobs(), Links: e.linkStatus(q)}
	for _, n := range e.stats.Named() {
		st.Stats = append(st.Stats, api.Counter{Name: n.Name, Value: n.Value})
	}
	st.Stats = append(st.Stats, api.Counter{Name: api.StatReplay, Value: e.stats.Replay})
	if q.Detail {
		st.Demotion = e.demotionStatus()
	}
	n := 0
	for _, ifc := range e.cfg.Ifaces {
		if q.Wants(ifc.Name) {
			n += len(ifc.VHIDs)
		}
	}
	st.VHIDs = make([]api.VHIDStatus, 0, n) // one allocation on the loop, not a doubling series
	for _, ifc := range e.cfg.Ifaces {
		if !q.Wants(ifc.Name) {
			continue
		}
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
			vrrpStatus(&v, &vs)
			if q.ShowKeys && !v.isVRRP() {
				vs.Key = v.Key
			}
			if h, ok := e.runningHost(ifc.Name, v.VHID); ok {
				vs.State = h.m.State().String()
				if a, ok := h.mismatchPeer(now); ok {
					vs.AuthMismatch = a.String()
				}
				if h.m.State() == carp.Init {
					vs.InitReason = h.why.String()
				}
				if q.Detail {
					vs.Detail = h.detail()
				}
			} else if q.Detail {
				vs.Detail = e.idleDetail()
			}
			st.VHIDs = append(st.VHIDs, vs)
		}
	}
	return st
}

// runningHost is the running vhid of a configured one: the last in e.hosts
// with its interface and vhid (as a scan of e.hosts finds it), looked up
// in the host index, which keeps e.hosts' order, rather than in a map
// built for every status.
func (e *Engine) runningHost(iface string, vhid uint8) (*vhost, bool) {
	hs := e.hostIdx.byVHID[vhid]
	for i := len(hs) - 1; i >= 0; i-- {
		if hs[i].iface == iface {
			return hs[i], true
		}
	}
	return nil, false
}

// SetSysctl writes one net.inet.carp leaf (full oid) and returns the value
// before and after. Writing demotion adds to it, as FreeBSD does. A
// *api.SaveError means the value took effect but could not be saved yet.
func (e *Engine) SetSysctl(ctx context.Context, oid string, v int64) (old, now int64, err error) {
	var job *saveJob
	if cerr := e.call(ctx, func() { old, now, job, err = e.setSysctl(oid, v) }); cerr != nil {
		return 0, 0, cerr
	}
	if err == nil {
		err = e.saveOffLoop(ctx, job)
	}
	return old, now, err
}

// setSysctl writes one knob on the event loop and returns the save of the
// configuration it leaves, for the caller to write off the loop.
func (e *Engine) setSysctl(oid string, v int64) (int64, int64, *saveJob, error) {
	leaf, ok := strings.CutPrefix(oid, api.SysctlPrefix)
	k, known := knobByName(leaf)
	if !ok || !known {
		return 0, 0, nil, &api.Error{Reason: api.ReasonUnknownOID, Name: oid}
	}
	if err := checkKnob(k, v); err != nil {
		return 0, 0, nil, err
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
	job, err := e.queueSave(now)
	return old, e.knob(leaf), job, err
}

// linkStatus lists the host's interfaces by their BSD names, in ifindex
// order, leaving out the links carpd made (clones are shown as clones).
func (e *Engine) linkStatus(q api.StatusQuery) []api.LinkStatus {
	var idx []int
	switch {
	case q.NoIfaces:
	case q.Iface != "":
		if l, ok := e.linkByLinuxName(e.linuxName(q.Iface)); ok && l.Alias != osif.OwnerAlias {
			idx = append(idx, l.Index)
		}
	default:
		idx = make([]int, 0, len(e.links))
		for i, l := range e.links {
			if l.Alias != osif.OwnerAlias {
				idx = append(idx, i)
			}
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
