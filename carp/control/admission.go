package control

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Limits is the admission policy of the control socket. It decides, right
// after accept and before anything is read, whether a connection is served,
// by the user id the kernel reports for its peer: root has slots of its own
// that no other user can take, every other user shares a smaller pool with a
// per-user cap and rate and must send its request quickly. A refused
// connection is closed at once, and what the socket suffers is summed up in
// the log at most once per LogEvery, so no local user can lock root out,
// fill the log or make carpd spend more than a few system calls per
// connection.
type Limits struct {
	RootConns    int           // connections of uid 0 served at once, from slots reserved for it
	UserConns    int           // connections of one other uid served at once
	AllUserConns int           // connections of all other uids together
	UserRate     int           // connections of one other uid served per second (and in a burst); 0: no limit
	RootIdle     time.Duration // how long root has to send its request
	UserIdle     time.Duration // how long any other user has
	UserReply    time.Duration // how long any other user has to take its answer
	LogEvery     time.Duration // socket problems are logged at most once per period, summed up (must be > 0)
	AcceptRate   int           // connections taken per second on the shared socket, all users together; 0: no cap
}

// DefaultLimits returns the limits carpd uses (carpd(8), "Control socket
// limits").
func DefaultLimits() Limits {
	return Limits{
		RootConns:    16,
		UserConns:    4,
		AllUserConns: 32,
		UserRate:     20,
		RootIdle:     2 * time.Second,
		UserIdle:     500 * time.Millisecond,
		UserReply:    time.Second,
		LogEvery:     10 * time.Second,
		AcceptRate:   1000,
	}
}

// verdict is the admission decision for one connection.
type verdict uint8

const (
	admitted  verdict = iota
	rootFull          // root's reserved slots are all in use
	uidFull           // this (non-root) uid has UserConns open
	usersFull         // all non-root users together have AllUserConns open
	rateFull          // this (non-root) uid used up its UserRate
)

// userSlots is what admission knows of one non-root uid.
type userSlots struct {
	open   int       // connections being served
	tokens float64   // connections it may open before its rate applies
	at     time.Time // when tokens was brought up to date
}

// admission counts the connections being served, by peer uid.
type admission struct {
	lim    Limits
	mu     sync.Mutex
	root   int
	users  int
	perUID map[uint32]userSlots // non-root uids seen lately (at most maxUIDs)
}

// maxUIDs bounds the non-root uids admission remembers: those with a
// connection open (at most AllUserConns) and those whose rate has not
// recovered yet.
func (a *admission) maxUIDs() int { return 4*a.lim.AllUserConns + 16 }

func newAdmission(lim Limits) *admission {
	return &admission{lim: lim, perUID: map[uint32]userSlots{}}
}

// admit takes a slot for a connection from uid at time now, or says why
// there is none. It allocates nothing for a refusal, except to remember a
// uid seen for the first time.
func (a *admission) admit(uid uint32, now time.Time) verdict {
	a.mu.Lock()
	defer a.mu.Unlock()
	if uid == 0 {
		if a.root >= a.lim.RootConns {
			return rootFull
		}
		a.root++
		return admitted
	}
	burst := float64(a.lim.UserRate)
	u, known := a.perUID[uid]
	if !known {
		if len(a.perUID) >= a.maxUIDs() {
			a.forget(now)
			if len(a.perUID) >= a.maxUIDs() {
				return usersFull
			}
		}
		u = userSlots{tokens: burst, at: now}
	} else if d := now.Sub(u.at); d > 0 {
		u.tokens = min(burst, u.tokens+d.Seconds()*burst)
		u.at = now
	}
	v := admitted
	switch {
	case u.open >= a.lim.UserConns:
		v = uidFull
	case a.users >= a.lim.AllUserConns:
		v = usersFull
	case a.lim.UserRate > 0 && u.tokens < 1:
		v = rateFull
	default:
		u.tokens--
		u.open++
		a.users++
	}
	a.perUID[uid] = u
	return v
}

// forget drops the uids with nothing open whose rate has fully recovered by
// now: they are as good as new. a.mu is held.
func (a *admission) forget(now time.Time) {
	for uid, u := range a.perUID {
		if u.open == 0 && (a.lim.UserRate == 0 || u.tokens+now.Sub(u.at).Seconds()*float64(a.lim.UserRate) >= float64(a.lim.UserRate)) {
			delete(a.perUID, uid)
		}
	}
}

// release gives back the slot an admitted connection of uid held.
func (a *admission) release(uid uint32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if uid == 0 {
		a.root--
		return
	}
	a.users--
	u := a.perUID[uid]
	u.open--
	a.perUID[uid] = u
}

// open returns the connections being served: root's and everyone else's.
func (a *admission) open() (root, users int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.root, a.users
}

// eventKind is a kind of socket problem worth a log line.
type eventKind uint8

const (
	evRefused  eventKind = iota // connection refused at admission (verdict says why)
	evIdle                      // admitted, but no request before the idle deadline
	evBadCreds                  // the kernel gave no peer credentials
	evReply                     // the answer could not be written
	evAccept                    // accept(2) failed (descriptors or memory short)
	evOther                     // more distinct problems than a summary line lists
)

// event is one key of the counts of a window: comparable, so counting an
// event that was already seen allocates nothing.
type event struct {
	kind eventKind
	why  verdict
	uid  uint32
}

// maxEventKeys bounds the distinct events counted per window (so the map and
// the summary line stay small whatever the number of uids); the rest are
// counted as evOther.
const maxEventKeys = 8

// reporter rate-limits every log line about the socket: the first problem
// after a quiet period is logged at once, every later one is only counted,
// and one summary line per window reports the counts; a window without
// problems ends the noisy period without a line.
type reporter struct {
	lim  Limits
	logf func(format string, args ...any)

	mu      sync.Mutex
	noisy   bool // a window is running: problems are counted, not logged
	counts  map[event]int
	order   []event // first-seen order, for a stable summary
	lastErr [evOther + 1]error
	timer   *time.Timer
	closed  bool
	seen    atomic.Int64 // problems noted since the start (read without mu)
}

func newReporter(lim Limits, logf func(string, ...any)) *reporter {
	if lim.LogEvery <= 0 {
		lim.LogEvery = DefaultLimits().LogEvery
	}
	return &reporter{lim: lim, logf: logf, counts: make(map[event]int, maxEventKeys+1)}
}

// note records one problem; err (may be nil) is kept as the last of its
// kind. It is called by the accepting goroutine, so it never writes the log
// itself: a line that opens a noisy period is written by a goroutine of its
// own, and a stuck log (a full pipe to the journal) cannot stop carpd from
// accepting root's connections.
func (r *reporter) note(ev event, err error) {
	r.seen.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.lastErr[ev.kind] = err
	}
	if r.closed {
		return
	}
	if !r.noisy {
		r.noisy = true
		line := fmt.Sprintf("control: %s; further control socket problems are summed up every %v",
			r.describe(ev, 1), r.lim.LogEvery)
		go r.emit(line)
		r.arm()
		return
	}
	if _, seen := r.counts[ev]; !seen && len(r.counts) >= maxEventKeys {
		ev = event{kind: evOther}
	}
	if _, seen := r.counts[ev]; !seen {
		r.order = append(r.order, ev)
	}
	r.counts[ev]++
}

// arm starts the next window; r.mu is held.
func (r *reporter) arm() {
	if r.timer == nil {
		r.timer = time.AfterFunc(r.lim.LogEvery, r.tick)
	} else {
		r.timer.Reset(r.lim.LogEvery)
	}
}

// tick ends a window: its counts make one line, or, when there were none,
// the noisy period is over. The next window starts once the line is
// written.
func (r *reporter) tick() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	line := r.summary()
	if line == "" {
		r.noisy = false
		r.mu.Unlock()
		return
	}
	r.mu.Unlock()
	r.emit(line)
	r.mu.Lock()
	if !r.closed {
		r.arm()
	}
	r.mu.Unlock()
}

// summary returns the counts of the current window as one line ("" when
// there were none) and resets them. r.mu is held.
func (r *reporter) summary() string {
	if len(r.order) == 0 {
		return ""
	}
	parts := make([]string, 0, len(r.order))
	for _, ev := range r.order {
		parts = append(parts, r.describe(ev, r.counts[ev]))
	}
	clear(r.counts)
	r.order = r.order[:0]
	return fmt.Sprintf("control: in the last %v: %s", r.lim.LogEvery, strings.Join(parts, "; "))
}

// close logs what the current window counted and stops the reporter.
func (r *reporter) close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	if r.timer != nil {
		r.timer.Stop()
	}
	line := r.summary()
	r.mu.Unlock()
	if line != "" {
		r.emit(line)
	}
}

func (r *reporter) emit(line string) {
	if r.logf != nil {
		r.logf("%s", line)
	}
}

// describe words n occurrences of ev. r.mu is held.
func (r *reporter) describe(ev event, n int) string {
	conns := plural(n, "connection")
	last := func() string {
		if e := r.lastErr[ev.kind]; e != nil {
			return fmt.Sprintf(" (last: %v)", e)
		}
		return ""
	}
	switch ev.kind {
	case evRefused:
		var why string
		switch ev.why {
		case rootFull:
			why = fmt.Sprintf("all %d reserved for root in use", r.lim.RootConns)
		case uidFull:
			why = fmt.Sprintf("limit %d per uid", r.lim.UserConns)
		case rateFull:
			why = fmt.Sprintf("limit %d per second per uid", r.lim.UserRate)
		default:
			why = fmt.Sprintf("limit %d for all users but root", r.lim.AllUserConns)
		}
		return fmt.Sprintf("refused %s from uid %d (%s)", conns, ev.uid, why)
	case evIdle:
		idle := r.lim.UserIdle
		if ev.uid == 0 {
			idle = r.lim.RootIdle
		}
		return fmt.Sprintf("dropped %s from uid %d that sent no request within %v", conns, ev.uid, idle)
	case evBadCreds:
		return fmt.Sprintf("refused %s without peer credentials%s", conns, last())
	case evReply:
		return fmt.Sprintf("could not answer %s from uid %d%s", conns, ev.uid, last())
	case evAccept:
		return fmt.Sprintf("accept failed %s%s", plural(n, "time"), last())
	default:
		return plural(n, "other socket problem")
	}
}

// plural returns "1 connection" or "n connections".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
