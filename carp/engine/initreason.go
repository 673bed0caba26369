package engine

import "github.com/bsdcarp/bsdcarp/carp/api"

// initReason says why a vhid cannot leave INIT: the condition of FreeBSD's
// carp_setrun() (sys/netinet/ip_carp.c) that does not hold. initNone means
// the vhid may run.
type initReason uint8

const (
	initNone         initReason = iota // runnable
	initCarpDisabled                   // net.inet.carp.allow is 0
	initNoAddress                      // no virtual address configured
	initNoParent                       // carpdev unknown, or its link not found
	initAdminDown                      // ifconfig carpN down
	initParentDown                     // the parent is administratively down
	initNoCarrier                      // the parent has no carrier
	initNoVlink                        // the macvlan could not be created (known only after trying)
)

// String is the reason's stable word, as VHIDStatus.InitReason shows it.
func (r initReason) String() string {
	switch r {
	case initCarpDisabled:
		return api.InitCarpDisabled
	case initNoAddress:
		return api.InitNoAddress
	case initNoParent:
		return api.InitNoParent
	case initAdminDown:
		return api.InitAdminDown
	case initParentDown:
		return api.InitParentDown
	case initNoCarrier:
		return api.InitNoCarrier
	case initNoVlink:
		return api.InitNoVlink
	}
	return ""
}

// describe is the reason in words for the log.
func (r initReason) describe() string {
	switch r {
	case initCarpDisabled:
		return "net.inet.carp.allow is 0"
	case initNoAddress:
		return "no address configured"
	case initNoParent:
		return "parent interface unknown or not found"
	case initAdminDown:
		return "interface down by the admin"
	case initParentDown:
		return "parent interface is down"
	case initNoCarrier:
		return "parent interface has no carrier"
	case initNoVlink:
		return "virtual link could not be created"
	}
	return "runnable"
}

// runFacts are what FreeBSD's setrun() condition looks at for one vhid.
type runFacts struct {
	allow       bool // net.inet.carp.allow != 0
	addrs       int  // virtual addresses configured
	parentKnown bool // carpdev configured, or found by subnet (dialect B)
	adminDown   bool // the interface the vhid is on is down by the admin
	parentFound bool // the parent's link exists
	parentUp    bool // ... is administratively up
	carrier     bool // ... and has carrier
}

// reason is the first condition that keeps the vhid in INIT, in the order
// carpd has always checked them, or initNone.
func (f runFacts) reason() initReason {
	switch {
	case !f.allow:
		return initCarpDisabled
	case f.addrs == 0:
		return initNoAddress
	case !f.parentKnown:
		return initNoParent
	case f.adminDown:
		return initAdminDown
	case !f.parentFound:
		return initNoParent
	case !f.parentUp:
		return initParentDown
	case !f.carrier:
		return initNoCarrier
	}
	return initNone
}

// parentDown reports whether the vhid cannot run because its parent is down
// (or missing) or net.inet.carp.allow is 0: the cases in which FreeBSD adds
// the interface-down demotion (sc_suppress). A parent not known yet is not
// down. Whenever it holds, reason() is not initNone.
func (f runFacts) parentDown() bool {
	if !f.allow {
		return true
	}
	return f.parentKnown && (!f.parentFound || !f.parentUp || !f.carrier)
}

// runFacts gathers the facts of h; it changes nothing.
func (e *Engine) runFacts(h *vhost) runFacts {
	f := runFacts{allow: e.knob("allow") != 0, addrs: len(h.cfg.Addrs), parentKnown: h.carpdev != ""}
	if ifc := e.cfg.iface(h.iface); ifc != nil && ifc.Down {
		f.adminDown = true
	}
	if f.parentKnown {
		l, ok := e.linkByLinuxName(e.linuxName(h.carpdev))
		f.parentFound, f.parentUp, f.carrier = ok, ok && l.AdminUp, ok && l.Carrier
	}
	return f
}

// noteInit records why h is (or stays) in INIT and logs it once per reason,
// at net.inet.carp.log >= 1 like the transitions: again only when the
// reason changes, or after the vhid could run in between.
func (e *Engine) noteInit(h *vhost, why initReason) {
	if why == h.why {
		return
	}
	if h.why == initNone {
		e.nInit++
	} else if why == initNone {
		e.nInit--
	}
	h.why = why
	if why != initNone && e.knob("log") >= 1 {
		e.infof("carp: %s: in INIT: %s (%s)", h.name(), why.describe(), why)
	}
}
