package engine

import (
	"sync/atomic"
	"time"

	"github.com/bsdcarp/bsdcarp/carp"
)

// Event is one notification as FreeBSD's kernel hands it to devd(8) through
// devctl_notify: a system, a subsystem and a type. carpd reports
//
//	!system=CARP subsystem=<vhid>@<carpdev> type=MASTER|BACKUP|INIT
//
// on every state change of a vhid (FreeBSD 10 and later),
//
//	!system=IFNET subsystem=carpN type=LINK_UP|LINK_DOWN
//
// for a cloned carpN whose vhid becomes MASTER (LINK_UP) or leaves or
// misses MASTER (LINK_DOWN), as FreeBSD 9's carp set the link state of
// carpN, and
//
//	!system=IFNET subsystem=em0 type=LINK_UP|LINK_DOWN
//
// when the carrier of a parent interface changes. Names are the admin's
// BSD names (after the interface map).
type Event struct {
	System    string // "CARP" or "IFNET"
	Subsystem string // "1@em0", "carp0", "em0"
	Type      string // "MASTER", "BACKUP", "INIT", "LINK_UP", "LINK_DOWN"
}

// The systems and types carpd reports.
const (
	SystemCARP  = "CARP"
	SystemIFNET = "IFNET"
	TypeLinkUp  = "LINK_UP"
	TypeLinkDn  = "LINK_DOWN"
)

// String is the event as devctl_notify formats it, without the newline:
// "!system=CARP subsystem=1@em0 type=MASTER".
func (ev Event) String() string {
	return "!system=" + ev.System + " subsystem=" + ev.Subsystem + " type=" + ev.Type
}

// Line is the event as devd(8) writes it to its devd.pipe clients: the
// devctl text followed by a newline.
func (ev Event) Line() []byte {
	return []byte(ev.String() + "\n")
}

// DefaultEventQueue is a reasonable capacity for the Options.Events
// channel: far more than the state changes of every vhid of a large
// configuration at once.
const DefaultEventQueue = 1024

// emit hands ev to Options.Events without ever waiting: a full channel
// drops the event, counts it and logs (at most once a second) how many
// were lost. The protocol never waits on consumers.
func (e *Engine) emit(ev Event) {
	if e.opts.Events == nil {
		return
	}
	select {
	case e.opts.Events <- ev:
	default:
		n := e.eventsDropped.Add(1)
		now := e.opts.Now()
		if t, ok := e.lastLog["events"]; ok && now.Sub(t) < time.Second {
			return
		}
		e.lastLog["events"] = now
		e.warnf("carpd: event queue full: %q dropped (%d events dropped so far)", ev.String(), n)
	}
}

// EventsDropped is the number of events dropped because the Events channel
// was full. It may be called from any goroutine.
func (e *Engine) EventsDropped() uint64 { return e.eventsDropped.Load() }

// eventCounter is the drop counter, readable off the engine goroutine.
type eventCounter = atomic.Uint64

// emitTransition reports a state change of a vhid: the CARP event and, for
// a cloned carpN, the FreeBSD <= 9 link event when its link state changes.
func (e *Engine) emitTransition(h *vhost, to carp.State) {
	e.emit(Event{System: SystemCARP, Subsystem: h.name(), Type: to.String()})
	if !h.clone {
		return
	}
	up := to == carp.Master
	if h.linkKnown && h.linkUp == up {
		return
	}
	h.linkKnown, h.linkUp = true, up
	typ := TypeLinkDn
	if up {
		typ = TypeLinkUp
	}
	e.emit(Event{System: SystemIFNET, Subsystem: h.iface, Type: typ})
}

// emitParentLinks reports a carrier change of every parent in use. A parent
// seen for the first time is recorded, not reported: that is no change.
func (e *Engine) emitParentLinks() {
	if e.parentCarrier == nil {
		e.parentCarrier = map[string]bool{}
	}
	for _, dev := range e.hostIdx.parents { // in the order of their first vhost
		l, ok := e.linkByLinuxName(e.linuxName(dev))
		up := ok && l.Carrier
		was, known := e.parentCarrier[dev]
		e.parentCarrier[dev] = up
		if !known || was == up {
			continue
		}
		typ := TypeLinkDn
		if up {
			typ = TypeLinkUp
		}
		e.emit(Event{System: SystemIFNET, Subsystem: dev, Type: typ})
	}
	for dev := range e.parentCarrier {
		if e.hostIdx.devs[dev] == 0 {
			delete(e.parentCarrier, dev)
		}
	}
}
