package engine

import (
	"fmt"
	"slices"
	"time"
)

// This file is the engine's one scheduler: a min-heap of the running vhosts
// by their next deadline (vhost.deadline), so that finding the next wake-up
// and the vhids due at it costs O(log N), not a scan of every vhid per
// event. A vhost whose deadline may have changed is marked (touch) and
// re-placed in the heap before the loop next looks at it (reschedule):
// marking is cheap and may be done more often than needed, so every event
// that can move a deadline marks the vhosts it acted on (apply marks every
// vhost whose state machine was asked anything).

// deadline is the earliest time h needs the loop: its state machine's next
// timer, the end of its drain. (Address refreshes are the engine-wide tick
// of vhost.go's refresher, not a deadline per vhost.)
func (h *vhost) deadline() (time.Time, bool) {
	at, ok := h.m.NextDeadline()
	consider := func(t time.Time) {
		if !ok || t.Before(at) {
			at, ok = t, true
		}
	}
	if h.draining {
		consider(h.drainUntil)
	}
	return at, ok
}

// vhostHeap orders vhosts by deadline; vhost.slot is the position + 1 (0:
// not in the heap). Each entry holds its deadline beside the vhost, so that
// ordering compares within the heap's own array instead of following a
// pointer per comparison (with 1,020 vhids a BACKUP re-places one vhost per
// advert it hears); the functions are container/heap's, without its
// interface calls.
type vhostHeap []schedEntry

// schedEntry is one vhost in the heap and its deadline (vhost.at).
type schedEntry struct {
	at time.Time
	h  *vhost
}

func (q vhostHeap) less(i, j int) bool { return q[i].at.Before(q[j].at) }

func (q vhostHeap) swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].h.slot, q[j].h.slot = i+1, j+1
}

func (q vhostHeap) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !q.less(j, i) {
			break
		}
		q.swap(i, j)
		j = i
	}
}

func (q vhostHeap) down(i0, n int) bool {
	i := i0
	for {
		j := 2*i + 1
		if j >= n {
			break
		}
		if j2 := j + 1; j2 < n && q.less(j2, j) {
			j = j2
		}
		if !q.less(j, i) {
			break
		}
		q.swap(i, j)
		i = j
	}
	return i > i0
}

// push adds h at its deadline h.at.
func (q *vhostHeap) push(h *vhost) {
	h.slot = len(*q) + 1
	*q = append(*q, schedEntry{h.at, h})
	q.up(len(*q) - 1)
}

// pop takes out the vhost of the earliest deadline.
func (q *vhostHeap) pop() *vhost {
	n := len(*q) - 1
	q.swap(0, n)
	q.down(0, n)
	return q.cut()
}

// remove takes out the vhost at position i.
func (q *vhostHeap) remove(i int) {
	n := len(*q) - 1
	if n != i {
		q.swap(i, n)
		if !q.down(i, n) {
			q.up(i)
		}
	}
	q.cut()
}

// cut drops the last entry and returns its vhost, out of the heap.
func (q *vhostHeap) cut() *vhost {
	n := len(*q) - 1
	h := (*q)[n].h
	(*q)[n] = schedEntry{}
	*q = (*q)[:n]
	h.slot = 0
	return h
}

// fix re-places the entry at position i after its deadline changed.
func (q vhostHeap) fix(i int) {
	if !q.down(i, len(q)) {
		q.up(i)
	}
}

// touch marks h for rescheduling: its deadline may have changed.
func (e *Engine) touch(h *vhost) {
	if !h.dirty {
		h.dirty = true
		e.dirty = append(e.dirty, h)
	}
}

// running reports whether h is one of e.hosts (h.pos is kept by indexHosts).
func (e *Engine) running(h *vhost) bool {
	return h.pos < len(e.hosts) && e.hosts[h.pos] == h
}

// reschedule re-places every marked vhost in the heap, or takes it out
// when it has no deadline or no longer runs. A vhost waiting in advance's
// list of due ones stays out of the heap until advance has run it.
func (e *Engine) reschedule() {
	for _, h := range e.dirty {
		h.dirty = false
		if h.due {
			continue
		}
		at, ok := h.deadline()
		if !ok || !e.running(h) {
			if h.slot > 0 {
				e.sched.remove(h.slot - 1)
			}
			continue
		}
		h.at = at
		if h.slot > 0 {
			if i := h.slot - 1; !e.sched[i].at.Equal(at) {
				e.sched[i].at = at
				e.sched.fix(i)
			}
		} else {
			e.sched.push(h)
		}
	}
	clear(e.dirty)
	e.dirty = e.dirty[:0]
}

// advertEarly is how much before its time a MASTER's advert may leave
// (carp.Machine.AdvanceEarly) when the loop is awake anyway: the adverts of
// vhids due within it go out together, so that after one round the
// MASTERs of one advbase form at most 1 s / advertEarly groups, and the
// loop wakes that often instead of once per vhid (each wake-up of a Go
// program costs more than the advert it sends), and so does every BACKUP
// of them (fewer, larger bursts to read). Only MASTER adverts move: a
// BACKUP's master-down timer never fires early or late. At 250 ms (4
// groups a second at advbase 1; the machine caps it at a quarter of the
// interval) a MASTER of 1,020 vhids and its BACKUP cost 30% less CPU than
// at 50 ms; a backup only resets its master-down timer sooner.
const advertEarly = 250 * time.Millisecond

// popEarly adds to into the vhosts whose MASTER advert is due within
// advertEarly of now and whose interval is one of groups (the intervals of
// the adverts due now), out of the heap and marked due; the others it looks
// at go back. Only the group mates of an advert due now move: a wake-up
// for anything else (a timer of another interval, the refresh tick) moving
// adverts early every time would shorten their period for good (to 0.75 s
// at advbase 1 next to a 10 ms VRRPv3 vhid), instead of once, when a vhid
// joins a group.
func (e *Engine) popEarly(now time.Time, into []*vhost, groups []time.Duration) []*vhost {
	if len(groups) == 0 {
		return into
	}
	by := now.Add(advertEarly)
	var back []*vhost
	for len(e.sched) > 0 && !e.sched[0].at.After(by) {
		h := e.sched.pop()
		if h.m.AdvertDueWithin(now, advertEarly) && slices.Contains(groups, h.m.AdvertInterval()) {
			h.due = true
			into = append(into, h)
		} else {
			back = append(back, h)
		}
	}
	for _, h := range back {
		e.sched.push(h)
	}
	return into
}

// popDue takes every vhost due at now out of the heap, marked due.
func (e *Engine) popDue(now time.Time, into []*vhost) []*vhost {
	for len(e.sched) > 0 && !e.sched[0].at.After(now) {
		h := e.sched.pop()
		h.due = true
		into = append(into, h)
	}
	return into
}

func (e *Engine) nextDeadline() (time.Time, bool) {
	e.reschedule()
	var best time.Time
	found := false
	consider := func(t time.Time) {
		if !found || t.Before(best) {
			best, found = t, true
		}
	}
	if len(e.sched) > 0 {
		consider(e.sched[0].at)
	}
	if t, ok := e.refresh.deadline(); ok { // the address-refresh tick (vhost.go)
		consider(t)
	}
	if t, ok := e.saveDeadline(); ok {
		consider(t)
	}
	if len(e.hosts) > 0 {
		consider(e.countersAt)
	}
	if checkSchedule {
		e.checkIndexes()
		e.checkSchedule()
	}
	return best, found
}

// advance runs what is due at now: the vhosts due, in configuration order
// (as one pass over e.hosts would), then the engine's own deadlines. A
// vhost that an earlier one's action makes due (a demotion) is run in the
// same pass when it comes later in the configuration, else in the next.
func (e *Engine) advance(now time.Time) {
	// The adverts of the round are gathered and go out together (see
	// flushAdverts), before any other kernel call and at the latest when
	// the vhids due are done.
	e.batching = true
	done := false
	defer func() {
		if !done {
			// A panic: what was gathered is dropped, nothing of the
			// engine's runs on the state it left (Run's recover hands
			// over).
			e.batching = false
			clear(e.outbox)
			clear(e.outMeta)
			clear(e.results)
			e.outbox, e.outMeta, e.results = e.outbox[:0], e.outMeta[:0], e.results[:0]
		}
	}()
	e.reschedule()
	due := e.popDue(now, nil)
	var groups []time.Duration
	for _, h := range due {
		if iv := h.m.AdvertInterval(); h.m.AdvertDue(now) && !slices.Contains(groups, iv) {
			groups = append(groups, iv)
		}
	}
	due = e.popEarly(now, due, groups)
	byPos := func(a, b *vhost) int { return a.pos - b.pos }
	slices.SortFunc(due, byPos)
	var later []*vhost
	for i := 0; i < len(due); i++ {
		h := due[i]
		h.due = false
		e.apply(now, h, h.m.AdvanceEarly(now, advertEarly))
		e.settleSends() // results of adverts a kernel call in apply sent
		if h.draining && !now.Before(h.drainUntil) {
			e.endDrain(h)
		}
		e.touch(h)
		e.reschedule()
		later = e.popDue(now, later[:0])
		for _, x := range later {
			if x.pos > h.pos {
				j, _ := slices.BinarySearchFunc(due[i+1:], x, byPos)
				due = slices.Insert(due, i+1+j, x)
			} else {
				x.due = false
				e.touch(x)
			}
		}
	}
	e.batching = false
	e.flushAdverts()
	e.settleSends()
	done = true
	e.reschedule()
	early := time.Duration(0)
	if len(due) > 0 {
		early = refreshEarly // awake for vhids: the tick may join them
	}
	e.refreshTick(now, early) // the address-refresh tick (vhost.go)
	e.retrySave(now)
	if !now.Before(e.countersAt) {
		e.saveCounters(now)
	}
}

// checkSchedule is set by the package's tests: nextDeadline then compares
// the heap (and the demotion counts of index.go) with a scan of every
// vhost and panics on a difference.
var checkSchedule bool

func (e *Engine) checkSchedule() {
	n := 0
	for _, h := range e.hosts {
		at, ok := h.deadline()
		if !ok {
			if h.slot > 0 {
				panic(fmt.Sprintf("engine: scheduler: %s has no deadline but is scheduled", h.name()))
			}
			continue
		}
		n++
		if h.slot == 0 || e.sched[h.slot-1].h != h || !h.at.Equal(at) || !e.sched[h.slot-1].at.Equal(at) {
			panic(fmt.Sprintf("engine: scheduler: %s due %v, scheduled %v (slot %d)", h.name(), at, h.at, h.slot))
		}
	}
	if s, f := e.countHosts(func(h *vhost) bool { return h.suppressed }), e.countHosts(func(h *vhost) bool { return h.senderr }); s != e.nSuppressed || f != e.nSenderr {
		panic(fmt.Sprintf("engine: demotion counts: %d suppressed, %d senderr; counted %d, %d", s, f, e.nSuppressed, e.nSenderr))
	}
	if n != len(e.sched) {
		panic(fmt.Sprintf("engine: scheduler: %d vhosts with a deadline, %d scheduled", n, len(e.sched)))
	}
	for i := 1; i < len(e.sched); i++ {
		if e.sched.less(i, (i-1)/2) {
			panic(fmt.Sprintf("engine: scheduler: %s (%v) before its parent %s (%v)", e.sched[i].h.name(), e.sched[i].at, e.sched[(i-1)/2].h.name(), e.sched[(i-1)/2].at))
		}
	}
}
