package engine

import (
	"net/netip"
	"slices"

	"github.com/bsdcarp/bsdcarp/carp/api"
)

// execute runs a line's kernel steps in order. The kernel may still refuse
// what the plan let through (an MTU above the driver's maximum): then the
// steps done are undone in reverse, so that a failed line changes nothing
// at all, and the refusal is reported as BSD's ifconfig reports that step.
func (e *Engine) execute(steps []kernelStep, keep []netip.Prefix) error {
	if len(steps) == 0 {
		return nil
	}
	var undo []kernelStep
	for _, s := range steps {
		if err := e.runStep(s); err != nil {
			e.errorf("carpd: %s on %s: %v", s.op, s.link, err)
			e.rollback(undo)
			return api.KernelRefusal(s.step, err)
		}
		if u, ok := s.inverse(); ok {
			undo = append(undo, u)
		}
	}
	e.restoreV4(steps, keep)
	return nil
}

// runStep makes one kernel call.
func (e *Engine) runStep(s kernelStep) error {
	switch s.kind {
	case stepAddAddr:
		_, err := e.kern().ReplaceAddr(s.link, s.prefix, 0)
		return err
	case stepDelAddr:
		return e.kern().DelAddr(s.link, s.prefix)
	case stepSetUp:
		return e.kern().SetLinkUp(s.link, s.up)
	case stepSetMTU:
		return e.kern().SetMTU(s.link, s.mtu)
	}
	return nil
}

// inverse is the step that undoes s, if there is one: the MTU a link had
// is not known for a link that was not listed.
func (s kernelStep) inverse() (kernelStep, bool) {
	u := s
	u.op = "undo " + s.op
	switch s.kind {
	case stepAddAddr:
		u.kind = stepDelAddr
	case stepDelAddr:
		u.kind = stepAddAddr
	case stepSetUp:
		u.up = s.wasUp
	case stepSetMTU:
		u.mtu = s.wasMTU
		return u, s.wasMTU > 0
	}
	return u, true
}

// rollback runs the undo steps in reverse and lists the links again. A
// failed undo is logged: the line is refused either way.
func (e *Engine) rollback(undo []kernelStep) {
	for i := len(undo) - 1; i >= 0; i-- {
		if err := e.runStep(undo[i]); err != nil {
			e.errorf("carpd: %s on %s: %v", undo[i].op, undo[i].link, err)
		}
	}
	if err := e.resyncLinks(); err != nil {
		e.errorf("carpd: relist links after a refusal: %v", err)
	}
}

// restoreV4 lists the links again after a line's steps. Linux drops the
// IPv4 secondaries of a subnet with its primary (promote_secondaries is off
// by default); BSD keeps them. After a line that removed an IPv4 address,
// put back the IPv4 addresses it did not mean to remove. (Nothing else: a
// link going down loses its IPv6 link-local address, as it should.)
func (e *Engine) restoreV4(steps []kernelStep, keep []netip.Prefix) {
	if err := e.resyncLinks(); err != nil {
		e.errorf("carpd: relist links: %v", err)
		return
	}
	removed4 := slices.ContainsFunc(steps, func(s kernelStep) bool {
		return s.kind == stepDelAddr && s.prefix.Addr().Is4()
	})
	if !removed4 {
		return
	}
	link := steps[0].link
	now, _ := e.linkByLinuxName(link)
	for _, p := range keep {
		if p.Addr().Is4() && !slices.Contains(now.Addrs, p) {
			if _, err := e.kern().ReplaceAddr(link, p, 0); err != nil {
				e.errorf("carpd: restore %s on %s: %v", p, link, err)
			}
		}
	}
	if err := e.resyncLinks(); err != nil {
		e.errorf("carpd: relist links: %v", err)
	}
}
