package carp

import (
	"strconv"
	"strings"
	"time"
)

// State is the state of a vhid.
type State uint8

// The three CARP states.
const (
	// Init: not running (no address, carpdev down or allow = 0).
	Init State = iota
	// Backup: listening; takes over when the master falls silent.
	Backup
	// Master: owns the virtual addresses and advertises.
	Master
)

// String returns "INIT", "BACKUP" or "MASTER", as ifconfig and the logs
// print them.
func (s State) String() string {
	switch s {
	case Init:
		return "INIT"
	case Backup:
		return "BACKUP"
	case Master:
		return "MASTER"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// ParseState parses init, backup or master, in any case, as the ifconfig
// `state` keyword takes them.
func ParseState(s string) (State, bool) {
	switch strings.ToLower(s) {
	case "init":
		return Init, true
	case "backup":
		return Backup, true
	case "master":
		return Master, true
	}
	return Init, false
}

// The reasons FreeBSD 14 logs with a state change, verbatim
// ("carp: 1@em0: BACKUP -> MASTER (master timed out)").
const (
	ReasonInitComplete   = "initialization complete"
	ReasonMasterTimedOut = "master timed out"
	ReasonPreempt        = "preempting a slower master"
	ReasonWillTimeOut    = "master will time out"
	ReasonMoreFrequent   = "more frequent advertisement received"
	ReasonUser           = "user requested via ifconfig"
	ReasonIfDown         = "hardware interface down"
	ReasonIfUp           = "hardware interface up"
)

// Transition is one state change and its logged reason.
type Transition struct {
	From, To State
	Reason   string
}

// Output tells the caller what to do after a call into Machine, in this
// order: send the bow-out advert (BowOut), log the transition, and for a new
// MASTER install the virtual addresses and announce them (gratuitous ARP /
// unsolicited NA), and only then send the advert (Advertise). A packet for
// the virtual addresses thus always finds a host that owns them: the old
// MASTER gives them up when it hears the advert, after the announcement.
type Output struct {
	// Advertise: send one advert now with AdvertParams().
	Advertise bool
	// BowOut: send one last advert with advbase BowOutAdvBase and advskew
	// BowOutAdvSkew, then stop advertising.
	BowOut bool
	// Transition is non-nil when the state changed.
	Transition *Transition
}

// Config is what the state machine needs of a vhid's configuration.
type Config struct {
	// AdvBase (1..255 s) and AdvSkew (0..254) as configured.
	AdvBase, AdvSkew uint8
	// Preempt is net.inet.carp.preempt: a BACKUP takes over from a slower
	// master.
	Preempt bool
	// Demotion is the global net.inet.carp.demotion, added to AdvSkew for
	// what is advertised and compared (see EffectiveSkew).
	Demotion int
	// IPv4 and IPv6 tell which families have addresses. Each has its own
	// master-down timer and either firing makes the vhid MASTER. With
	// neither set the machine behaves as IPv4 only.
	IPv4, IPv6 bool
	// VRRP selects VRRPv3 (RFC 9568, FreeBSD's `carpver 3`): Priority and
	// Interval replace AdvBase, AdvSkew and Demotion, and the adverts are
	// handled by ReceiveVRRP.
	VRRP bool
	// Priority (1..254) and Interval (centiseconds, 1..4095) of a VRRPv3
	// vhid.
	Priority uint8
	Interval uint16
}

type family int

const (
	fam4 family = iota
	fam6
)

func (c Config) has(f family) bool {
	if !c.IPv4 && !c.IPv6 {
		return f == fam4
	}
	if f == fam6 {
		return c.IPv6
	}
	return c.IPv4
}

type timer struct {
	at time.Time
	on bool
}

func (t *timer) arm(at time.Time) { t.at, t.on = at, true }
func (t *timer) stop()            { *t = timer{} }
func (t *timer) due(now time.Time) bool {
	return t.on && !t.at.After(now)
}

// Machine is the CARP state machine of one vhid (sys/netinet/ip_carp.c:
// carp_setrun(), carp_master_down(), carp_input_c(), carp_set_state()), with
// FreeBSD's timers held as deadlines: the advertisement timer (MASTER) and
// one master-down timer per address family (BACKUP). It never reads a
// clock: every call takes the current time, the caller sleeps until
// NextDeadline and then calls Advance. Calls that receive adverts do not
// fire due timers themselves. A Machine is not safe for concurrent use; one
// goroutine owns it.
type Machine struct {
	cfg   Config
	state State
	adv   timer
	md    [2]timer // indexed by family
	// masterInterval is VRRPv3's Master_Adver_Interval: the interval the
	// master advertises, learnt from its adverts (our own until one is
	// heard); the master-down interval is computed from it.
	masterInterval uint16
}

// NewMachine returns a machine in INIT with no timer armed.
func NewMachine(cfg Config) *Machine {
	return &Machine{cfg: cfg}
}

// State returns the current state.
func (m *Machine) State() State { return m.state }

// Config returns the configuration as last given.
func (m *Machine) Config() Config { return m.cfg }

// AdvertParams returns the advbase and advskew to put in the adverts this
// machine sends: the configured advbase and the effective skew
// (advskew + demotion, clamped to 0..240).
func (m *Machine) AdvertParams() (advbase, advskew uint8) {
	return m.cfg.AdvBase, EffectiveSkew(m.cfg.AdvSkew, m.cfg.Demotion)
}

// VRRPParams returns the priority and interval to put in the VRRPv3
// adverts this machine sends (demotion does not apply to VRRPv3, as in
// FreeBSD).
func (m *Machine) VRRPParams() (prio uint8, interval uint16) {
	return m.cfg.Priority, m.cfg.Interval
}

// MasterInterval returns the advertisement interval in centiseconds a
// VRRPv3 backup has learnt from its master (its own before it heard one).
func (m *Machine) MasterInterval() uint16 { return m.masterInterval }

// ours is the interval at which this machine advertises as MASTER: for
// CARP also the time value FreeBSD compares with a received advert.
func (m *Machine) ours() time.Duration {
	if m.cfg.VRRP {
		return IntervalDuration(m.cfg.Interval)
	}
	return AdvInterval(m.AdvertParams())
}

// masterDown is how long a BACKUP waits for the master's next advert.
func (m *Machine) masterDown() time.Duration {
	if m.cfg.VRRP {
		return VRRPMasterDown(m.cfg.Priority, m.masterInterval)
	}
	return MasterDown(m.cfg.AdvBase, m.cfg.AdvSkew)
}

// SetConfig applies new parameters. A MASTER whose advertised parameters
// changed advertises at once and re-arms its timer (FreeBSD: every change
// of demotion makes every MASTER advertise, carp_send_ad_all). A BACKUP
// re-arms its master-down timers when their interval changed, arms the
// timer of a family that gained addresses and stops that of a family that
// lost them. The state never changes here.
func (m *Machine) SetConfig(now time.Time, cfg Config) Output {
	old := m.cfg
	oldBase, oldSkew := m.AdvertParams()
	oldPrio, oldInterval := m.VRRPParams()
	oldDown := m.masterDown()
	m.cfg = cfg
	if cfg.VRRP && (!old.VRRP || m.state != Backup) {
		m.masterInterval = cfg.Interval
	}
	var out Output
	switch m.state {
	case Master:
		b, s := m.AdvertParams()
		p, i := m.VRRPParams()
		if b != oldBase || s != oldSkew || p != oldPrio || i != oldInterval || cfg.VRRP != old.VRRP {
			out.Advertise = true
			m.adv.arm(now.Add(m.ours()))
		}
	case Backup:
		changed := oldDown != m.masterDown()
		for f := fam4; f <= fam6; f++ {
			switch {
			case !cfg.has(f):
				m.md[f].stop()
			case !old.has(f) || !m.md[f].on || changed:
				m.md[f].arm(now.Add(m.masterDown()))
			}
		}
	}
	return out
}

// SetRunnable tells the machine whether it may run (FreeBSD's setrun
// conditions: carpdev up with carrier, at least one address, allow = 1).
// run=true in INIT goes to BACKUP with reason (ReasonInitComplete, or
// ReasonIfUp after a link came back; empty means ReasonInitComplete) and
// arms the master-down timers. run=false outside INIT stops every timer
// and goes to INIT with reason (empty means ReasonIfDown). Otherwise
// nothing changes.
func (m *Machine) SetRunnable(now time.Time, run bool, reason string) Output {
	switch {
	case run && m.state == Init:
		if reason == "" {
			reason = ReasonInitComplete
		}
		return m.toBackup(now, reason)
	case !run && m.state != Init:
		if reason == "" {
			reason = ReasonIfDown
		}
		return m.toInit(reason)
	}
	return Output{}
}

// Receive applies a valid advert (one Validate accepted) with the sender's
// advbase and advskew, received over IPv6 or IPv4. FreeBSD compares time
// values, ours = AdvInterval(AdvertParams()) and theirs =
// AdvInterval(advbase, advskew):
//
//	MASTER: ours >= theirs -> BACKUP (more frequent advertisement received);
//	        ties yield, so two masters never stay masters.
//	BACKUP: Preempt and ours < theirs -> MASTER (preempting a slower master)
//	        3*advbase s + Skew(effective skew) < theirs -> MASTER (master will
//	        time out): a bow-out (255/255) lands here for advbase <= 85
//	        otherwise re-arm this family's master-down timer.
//	INIT:   ignored.
//
// The rules are applied in this order, so with Preempt a bow-out is taken
// over as "preempting a slower master".
func (m *Machine) Receive(now time.Time, ipv6 bool, advbase, advskew uint8) Output {
	theirs := AdvInterval(advbase, advskew)
	switch m.state {
	case Master:
		if m.ours() >= theirs {
			return m.toBackup(now, ReasonMoreFrequent)
		}
	case Backup:
		if m.cfg.Preempt && m.ours() < theirs {
			return m.toMaster(now, ReasonPreempt)
		}
		_, eff := m.AdvertParams()
		if 3*time.Duration(m.cfg.AdvBase)*time.Second+Skew(int(eff)) < theirs {
			return m.toMaster(now, ReasonWillTimeOut)
		}
		f := fam4
		if ipv6 {
			f = fam6
		}
		// A family without addresses has no timer to reset: arming one
		// would fire and make us MASTER while the other family's
		// master is alive. (FreeBSD never gets here: such an advert is
		// dropped as badvhid.)
		if m.cfg.has(f) {
			m.md[f].arm(now.Add(m.masterDown()))
		}
	}
	return Output{}
}

// ReceiveVRRP applies a valid VRRPv3 advert (RFC 9568 section 6.4) with the
// sender's priority and interval (centiseconds), received over IPv6 or
// IPv4; senderWins tells whether the sender's address is higher than the
// local source address of that family (the RFC's tie-break):
//
//	MASTER: priority 0 -> advertise at once (the old master left);
//	        priority above ours, or equal and senderWins -> BACKUP
//	        (FreeBSD's reason "more frequent advertisement received"),
//	        learning the sender's interval.
//	BACKUP: learns the sender's interval (Master_Adver_Interval);
//	        priority 0 -> master-down in Skew_Time (the old master left:
//	        the best backup takes over first);
//	        Preempt and priority below ours -> MASTER at once
//	        ("preempting a slower master", as FreeBSD does; the RFC
//	        would wait for the master-down timer);
//	        otherwise re-arm this family's master-down timer.
//	INIT:   ignored.
//
// Unlike FreeBSD, an equal priority is decided by the address, so two
// masters of equal priority cannot both stay MASTER, and the interval
// takes no part in who wins (mixed intervals could otherwise flap).
func (m *Machine) ReceiveVRRP(now time.Time, ipv6 bool, prio uint8, interval uint16, senderWins bool) Output {
	f := fam4
	if ipv6 {
		f = fam6
	}
	if interval == 0 {
		interval = 1 // not a valid interval: never let it zero a timer
	}
	switch m.state {
	case Master:
		switch {
		case prio == 0:
			m.adv.arm(now.Add(m.ours()))
			return Output{Advertise: true}
		case prio > m.cfg.Priority || prio == m.cfg.Priority && senderWins:
			m.masterInterval = interval
			return m.toBackup(now, ReasonMoreFrequent)
		}
	case Backup:
		m.masterInterval = interval
		switch {
		case prio == 0:
			if m.cfg.has(f) {
				m.md[f].arm(now.Add(VRRPSkew(m.cfg.Priority, m.masterInterval)))
			}
		case m.cfg.Preempt && prio < m.cfg.Priority:
			return m.toMaster(now, ReasonPreempt)
		case m.cfg.has(f):
			m.md[f].arm(now.Add(m.masterDown()))
		}
	}
	return Output{}
}

// Advance fires every timer due at or before now. A MASTER's advertisement
// timer asks for an advert and re-arms one interval on (see rearm: from the
// old deadline when a little late, from now otherwise, so a late call does
// not burst). A BACKUP's
// master-down timer (either family) makes it MASTER ("master timed out"),
// which advertises at once.
func (m *Machine) Advance(now time.Time) Output {
	switch m.state {
	case Master:
		if m.adv.due(now) {
			m.rearm(now)
			return Output{Advertise: true}
		}
	case Backup:
		if m.md[fam4].due(now) || m.md[fam6].due(now) {
			return m.toMaster(now, ReasonMasterTimedOut)
		}
	}
	return Output{}
}

// rearm sets the advertisement timer after an advert sent at now for the
// deadline m.adv.at: one interval after that deadline when the advert left
// late, so that a loop that always wakes a little late (the poller sleeps
// in whole milliseconds) does not stretch every interval; one interval
// after now when it left early (AdvanceEarly: adverts of many vhids fall
// into step) or more than an interval late (no burst to catch up).
func (m *Machine) rearm(now time.Time) {
	next := m.adv.at.Add(m.ours())
	if m.adv.at.After(now) || !next.After(now) {
		next = now.Add(m.ours())
	}
	m.adv.arm(next)
}

// AdvanceEarly is Advance, except that a MASTER whose next advertisement is
// due by now+early (see AdvertDueWithin) sends it now and is re-armed from now. An advertisement
// is never late and at most early before its time, so that an engine can
// send the adverts of many vhids in one wake-up: a peer's master-down
// timer (3 x advbase) only runs longer for an early one. Timers of other
// states are never advanced early.
func (m *Machine) AdvanceEarly(now time.Time, early time.Duration) Output {
	if m.AdvertDueWithin(now, early) {
		m.rearm(now)
		return Output{Advertise: true}
	}
	return m.Advance(now)
}

// AdvertInterval is the interval at which the machine advertises as
// MASTER (CARP: advbase + advskew/256 s; VRRPv3: its vrrpinterval).
func (m *Machine) AdvertInterval() time.Duration { return m.ours() }

// AdvertDue reports whether the machine is MASTER with its next
// advertisement due by t.
func (m *Machine) AdvertDue(t time.Time) bool {
	return m.state == Master && m.adv.due(t)
}

// AdvertDueWithin reports whether the machine is MASTER with its next
// advertisement due by now+early, early being at most a quarter of its
// interval (250 ms at 1 s, 2.5 ms at VRRPv3's 10 ms): an advert is never
// moved by more than 25% of its interval, and only earlier.
func (m *Machine) AdvertDueWithin(now time.Time, early time.Duration) bool {
	return m.AdvertDue(now.Add(min(early, m.ours()/4)))
}

// NextDeadline returns the earliest armed timer, and false when none is
// armed (INIT).
func (m *Machine) NextDeadline() (time.Time, bool) {
	var next time.Time
	found := false
	for _, t := range []timer{m.adv, m.md[fam4], m.md[fam6]} {
		if t.on && (!found || t.at.Before(next)) {
			next, found = t.at, true
		}
	}
	return next, found
}

// Force implements the ifconfig `state` keyword (FreeBSD 10+). It acts only
// outside INIT and only when s differs from the current state: Backup stops
// advertising, goes to BACKUP and arms the master-down timers; Master
// becomes MASTER and advertises at once. Both log ReasonUser. Forcing Init
// does nothing, like FreeBSD.
//
// A MASTER forced to Backup also bows out (Output.BowOut: one advert with
// advbase and advskew 255), so that a backup takes over at once. FreeBSD 14
// only stops advertising there (carp_ioctl_set), which leaves the addresses
// unowned until the peer's master-down timer fires; the bow-out makes a
// planned `state backup` handover immediate, as `ifconfig carpN down`
// already is.
func (m *Machine) Force(now time.Time, s State) Output {
	if m.state == Init || s == m.state {
		return Output{}
	}
	switch s {
	case Backup:
		wasMaster := m.state == Master
		out := m.toBackup(now, ReasonUser)
		out.BowOut = wasMaster
		return out
	case Master:
		return m.toMaster(now, ReasonUser)
	}
	return Output{}
}

// BowOut takes the vhid administratively down (ifconfig carpN down, or an
// orderly shutdown): a MASTER first sends one advert with advbase and
// advskew 255 so the backups take over at once (FreeBSD <= 9 and OpenBSD;
// kept because it makes graceful failover instant). Every state then goes
// to INIT with its timers stopped, logging reason: ReasonUser (FreeBSD's
// words for ifconfig carpN down) when reason is empty, or the engine's own
// words for an orderly stop ("carpd stopping (SIGTERM)").
func (m *Machine) BowOut(now time.Time, reason string) Output {
	if m.state == Init {
		return Output{}
	}
	if reason == "" {
		reason = ReasonUser
	}
	wasMaster := m.state == Master
	out := m.toInit(reason)
	out.BowOut = wasMaster
	return out
}

func (m *Machine) transition(to State, reason string) *Transition {
	t := &Transition{From: m.state, To: to, Reason: reason}
	m.state = to
	return t
}

func (m *Machine) stopAll() {
	m.adv.stop()
	m.md[fam4].stop()
	m.md[fam6].stop()
}

func (m *Machine) toInit(reason string) Output {
	m.stopAll()
	return Output{Transition: m.transition(Init, reason)}
}

// toBackup is FreeBSD's set_state(BACKUP) + setrun(sc, 0): advertising
// stops and every configured family's master-down timer is armed.
func (m *Machine) toBackup(now time.Time, reason string) Output {
	m.stopAll()
	if m.cfg.VRRP && m.state != Master {
		// RFC 9568 6.4.1: a backup starts from its own interval; one
		// that was MASTER keeps the interval of the advert that made it
		// yield (set by ReceiveVRRP).
		m.masterInterval = m.cfg.Interval
	}
	d := m.masterDown()
	for f := fam4; f <= fam6; f++ {
		if m.cfg.has(f) {
			m.md[f].arm(now.Add(d))
		}
	}
	return Output{Transition: m.transition(Backup, reason)}
}

// toMaster is FreeBSD's carp_master_down_locked: become MASTER and send an
// advert at once, then advertise every AdvInterval. The master-down timers
// are stopped (FreeBSD leaves them running but ignores them in MASTER).
func (m *Machine) toMaster(now time.Time, reason string) Output {
	m.stopAll()
	m.adv.arm(now.Add(m.ours()))
	return Output{Advertise: true, Transition: m.transition(Master, reason)}
}
