// Package engine is carpd's core: one event loop that owns the configuration,
// the net.inet.carp sysctl tree and a CARP state machine per vhid, and turns
// their decisions into kernel changes through the Kernel it declares
// (kernel.go).
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"time"

	"github.com/bsdcarp/bsdcarp/carp"
	"github.com/bsdcarp/bsdcarp/carp/osif"
)

// Options configure an Engine.
type Options struct {
	// Kernel is the OS adapter (kernelshim.NewLinux, or a memkernel.Memory
	// in tests).
	Kernel Kernel
	// StateDir holds config.json and kernel.json. Empty: nothing is saved.
	StateDir string
	// IfMap maps BSD interface names to Linux ones (em0 -> eth0).
	IfMap map[string]string
	// Logger receives carp(4)-style messages, each formatted in full in the
	// record's message (errors at Error, state changes at Info, bad
	// packets at Debug; which of them are logged at all is decided by
	// net.inet.carp.log, so the handler should not drop levels but
	// through LogLevel); nil discards them.
	Logger *slog.Logger
	// LogLevel, if not nil, is kept at the lowest level net.inet.carp.log
	// lets through, for a handler shared with other packages to drop
	// their lines below it: Debug at 2 and above (bad packets), Info
	// below. The engine's own lines are gated by the knob already.
	LogLevel *slog.LevelVar
	// Events, if not nil, receives every Event (see Event) in the order
	// the engine decided them. The engine never blocks on it: a send that
	// would wait drops the event instead, counts it (EventsDropped) and
	// logs at most once a second. Give it a buffer (DefaultEventQueue)
	// and a consumer that drains it promptly; whoever acts on events (a
	// devd.pipe, actions) does so off the engine goroutine. The engine
	// never closes it.
	Events chan<- Event
	// Now and Rand are injectable for tests. Now must not run faster than
	// real time: the loop leaves its timer alone for a deadline up to
	// rearmSlack later than the one it is set for.
	Now  func() time.Time
	Rand func() uint64
	// Timer, if not nil, makes the loop's wake-up timer (carpd: a timerfd,
	// kernelshim.NewLoopTimer); nil, or an error, means a Go timer.
	Timer func() (Timer, error)
}

// Timer is the engine loop's wake-up timer (Options.Timer).
type Timer interface {
	// C receives when the time the last Set named has come; rarely once
	// more, for a setting Set replaced (the loop then finds nothing due).
	C() <-chan time.Time
	// Set arms the timer to fire d from now (at once for d <= 0),
	// replacing the last setting.
	Set(d time.Duration) error
	// Stop releases the timer.
	Stop()
}

// goTimer is a Timer on a Go timer.
type goTimer struct{ t *time.Timer }

func newGoTimer() *goTimer { return &goTimer{time.NewTimer(time.Hour)} }

func (g *goTimer) C() <-chan time.Time { return g.t.C }

func (g *goTimer) Set(d time.Duration) error {
	g.t.Reset(max(d, 0)) // Go 1.23+: no stale value survives Reset
	return nil
}

func (g *goTimer) Stop() { g.t.Stop() }

// loopTimer returns Options.Timer's timer or, failing that, a Go timer.
func (e *Engine) loopTimer() Timer {
	if e.opts.Timer != nil {
		t, err := e.opts.Timer()
		if err == nil {
			return t
		}
		return e.goTimerAfter(err)
	}
	return newGoTimer()
}

// goTimerAfter logs that the loop's timer failed with err and returns the Go
// timer that takes its place.
func (e *Engine) goTimerAfter(err error) Timer {
	e.log.Warn("carpd: engine timer: using a Go timer", "err", err)
	return newGoTimer()
}

// Engine runs CARP for every configured vhid. Create it with New, start it
// with Run; every other method talks to Run's goroutine by message.
type Engine struct {
	k    Kernel
	opts Options
	log  *slog.Logger

	calls chan func()
	ready chan struct{}
	done  chan struct{}

	// Everything below is owned by the Run goroutine.
	cfg            *Config
	stats          carp.Stats
	hosts          []*vhost // in configuration order
	links          map[int]osif.Link
	linkIdx        linkIndex            // e.links by name and address (index.go)
	hostIdx        hostIndex            // e.hosts by vhid, parent and macvlan (index.go)
	sched          vhostHeap            // running vhosts by deadline (sched.go)
	dirty          []*vhost             // vhosts whose deadline may have changed (sched.go)
	nSuppressed    int                  // vhosts with suppressed set (index.go)
	nSenderr       int                  // vhosts with senderr set (index.go)
	nInit          int                  // vhosts whose why is not initNone (index.go)
	arpOn          bool                 // every made vhost has balanced == arpOn ... (arpbalance.go)
	arpStale       bool                 // ... unless one was made with another value since
	touched        []touchedHost        // reconcileIface's buffer, kept between lines
	tuned          map[string]bool      // Linux parents whose ARP settings this run has set
	downDevs       map[string]bool      // BSD carpdev names currently counted as down
	kernelOriginal map[string]string    // /proc/sys paths we changed -> original value
	lastLog        map[string]time.Time // rate limit for bad-packet logs
	joined         map[string]int       // Linux parents whose CARP group we joined -> ifindex then
	pkts           chan osif.Packet     // from the shim's reader
	pktRounds      int                  // rounds of Run's loop that took packets, for the tests
	// The adverts a timer round gathers while batching, whose they are,
	// and SendCARPs' results (see flushAdverts).
	batching      bool
	outbox        []osif.Advert
	outMeta       []outMeta
	outErrs       []error
	results       []sendRes // send results waiting for settleSends
	timerRounds   int       // rounds of Run's loop its timer woke, for the tests
	linkUpdates   chan osif.LinkUpdate
	save          saver           // config.json on disk, see save.go
	writes        writeState      // orders the writes of config.json (any goroutine)
	parentCarrier map[string]bool // BSD parent -> carrier last seen, for IFNET events (events.go)
	eventsDropped eventCounter
	shimCtx       context.Context      // the Kernel's subscriptions live until it ends
	arpReqs       chan osif.ARPRequest // from ListenARP, only with arpbalance (arpbalance.go)
	arpStop       context.CancelFunc   // stops the ARP listener; nil when none
	refresh       refresher            // the address-refresh tick (vhost.go)
	started       time.Time            // when New made the engine: the since of a vhid that never ran

	// Advert counters kept across a restart (counters.go).
	counters      map[string]carp.CounterState // loaded at start, handed to each vhid once
	countersAt    time.Time                    // next write of the counters files
	countersSaved []byte                       // last version handed to the writer
	countersOut   chan []byte                  // to counterWriter, latest wins
	countersSeq   uint64                       // number of the counters loaded at start
}

// Queues from the kernel's reader goroutines to the event loop. A reader
// blocks while its queue is full (the kernel's socket buffer then holds what
// follows), so the queues only absorb bursts while the loop is busy.
const (
	// packetQueue holds one advert of each of the 255 vhids (a one-byte
	// field, 1..255) a segment can carry, plus one.
	packetQueue = 256
	// linkQueue holds a burst of link changes, such as carpd's own macvlans
	// coming and going with their vhids.
	linkQueue = 64
	// arpQueue holds a burst of ARP requests for the balanced addresses.
	arpQueue = 64
)

// New loads the saved configuration (if any) and returns an engine that is
// not running yet.
func New(opts Options) (*Engine, error) {
	if opts.Kernel == nil {
		return nil, errors.New("engine: no kernel")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.Uint64
	}
	lg := opts.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	e := &Engine{
		k:              opts.Kernel,
		opts:           opts,
		log:            lg,
		calls:          make(chan func()),
		ready:          make(chan struct{}),
		done:           make(chan struct{}),
		links:          map[int]osif.Link{},
		tuned:          map[string]bool{},
		kernelOriginal: map[string]string{},
		lastLog:        map[string]time.Time{},
		joined:         map[string]int{},
		pkts:           make(chan osif.Packet, packetQueue),
		countersOut:    make(chan []byte, 1),
		linkUpdates:    make(chan osif.LinkUpdate, linkQueue),
		arpReqs:        make(chan osif.ARPRequest, arpQueue),
		started:        opts.Now(),
	}
	cfg, err := loadConfig(opts.StateDir)
	if err != nil {
		return nil, err
	}
	e.cfg = cfg
	e.syncLogLevel()
	e.initSave()
	e.counters, e.countersSeq = e.loadCounters()
	orig, err := loadKernelState(opts.StateDir)
	if err != nil {
		return nil, err
	}
	// Values recorded by an engine that died before restoring them are the
	// real originals: keep them rather than what is in /proc/sys now.
	for k, v := range orig {
		e.kernelOriginal[k] = v
	}
	return e, nil
}

// Ready is closed once Run has set everything up and serves requests.
func (e *Engine) Ready() <-chan struct{} { return e.ready }

// ErrStopped is returned by calls made after Run has returned.
var ErrStopped = errors.New("engine: stopped")

// call runs f on the engine goroutine and waits for it.
func (e *Engine) call(ctx context.Context, f func()) error {
	finished := make(chan struct{})
	select {
	// The log level is set before the caller hears back, after a sysctl
	// -w net.inet.carp.log as after a configuration load.
	case e.calls <- func() { f(); e.syncLogLevel(); close(finished) }:
	case <-e.done:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-finished:
		return nil
	case <-e.done:
		return ErrStopped
	}
}

// Run owns the engine until ctx ends, then hands over gracefully: a bow-out
// advert for every MASTER vhid, virtual addresses and links removed, kernel
// settings restored. A context canceled with a cause (context.WithCancelCause)
// names why in the log and in the reason of every bow-out, e.g. the cause
// errors.New("SIGTERM") logs "carpd: SIGTERM: stopping, handing over 1 MASTER
// vhid" and "MASTER -> INIT (carpd stopping (SIGTERM))".
//
// A panic on the engine goroutine is not the end of the host's duties: Run
// recovers it, removes what this run created (links, addresses, kernel
// settings) as on a stop, and returns an error.
func (e *Engine) Run(ctx context.Context) (err error) {
	defer close(e.done)
	shimCtx, stopShim := context.WithCancel(context.Background())
	defer stopShim()
	e.shimCtx = shimCtx
	stopWriter, writerDone := make(chan struct{}), make(chan struct{})
	go e.counterWriter(stopWriter, writerDone, &counterFiles{dir: e.opts.StateDir, seq: e.countersSeq})
	// Last deferred, first run: the final counters are written after the
	// hand-over (and after a panic's) before Run returns.
	defer func() { close(stopWriter); <-writerDone }()
	defer func() {
		if r := recover(); r != nil {
			e.errorf("carpd: panic in the engine: %v\n%s", r, debug.Stack())
			e.safeShutdown("panic")
			err = fmt.Errorf("engine: panic: %v", r)
		}
	}()
	if err := e.kern().WatchLinks(shimCtx, e.linkUpdates); err != nil {
		return fmt.Errorf("engine: watch links: %w", err)
	}
	if err := e.kern().OpenCARP(shimCtx, e.pkts); err != nil {
		return fmt.Errorf("engine: open carp sockets: %w", err)
	}
	if err := e.resyncLinks(); err != nil {
		return err
	}
	e.removeStrayLinks()
	e.reconcile(e.opts.Now())
	close(e.ready)

	timer := e.loopTimer()
	defer func() { timer.Stop() }()
	var armed time.Time // what the timer is set for; zero once it fired
	for {
		now := e.opts.Now()
		d, ok := e.nextDeadline()
		if !ok {
			d = now.Add(time.Hour)
		}
		// The timer is set again for an earlier deadline, once it fired,
		// or when the deadline moved later by more than rearmSlack: a
		// BACKUP of many vhids, whose next deadline moves a little later
		// with each advert it hears, does not pay a system call per
		// packet, and one of a few vhids is not woken early for nothing
		// after each advert.
		if armed.IsZero() || d.Before(armed) || d.Sub(armed) > rearmSlack {
			if err := timer.Set(d.Sub(now)); err != nil {
				timer.Stop()
				timer = e.goTimerAfter(err)
				_ = timer.Set(d.Sub(now))
			}
			armed = d
		}
		select {
		case <-ctx.Done():
			e.shutdown(stopCause(ctx))
			return nil
		case f := <-e.calls:
			f()
		case p := <-e.pkts:
			e.pktRounds++
			e.input(e.opts.Now(), p)
			e.inputQueued()
		case u := <-e.linkUpdates:
			e.linkChanged(e.opts.Now(), u)
		case r := <-e.arpReqs:
			e.arpInput(r)
		case <-timer.C():
			e.timerRounds++
			armed = time.Time{}
			e.advance(e.opts.Now())
		}
	}
}

// rearmSlack is how much later than the timer's setting the next deadline
// may be before the loop sets the timer again (see Run): an early wake-up
// finds nothing due and costs more than a setting, a setting per advert
// heard costs a system call each.
const rearmSlack = 250 * time.Millisecond

// inputBatch bounds how many queued packets the loop takes at once, after
// the one its select took, before it looks at its timer and other work.
const inputBatch = 64

// inputQueued handles the packets already queued, up to inputBatch: the
// reader hands over a burst's adverts one by one, and going round the
// whole loop for each (its timer, the scheduler, a select of six cases)
// cost a BACKUP of 1,020 vhids more than the adverts themselves.
func (e *Engine) inputQueued() {
	for range inputBatch {
		select {
		case p := <-e.pkts:
			e.input(e.opts.Now(), p)
		default:
			return
		}
	}
}

// stopCause is the text of the cause ctx was canceled with ("SIGTERM"), or
// "" for a plain cancel or deadline.
func stopCause(ctx context.Context) string {
	c := context.Cause(ctx)
	if c == nil || errors.Is(c, context.Canceled) || errors.Is(c, context.DeadlineExceeded) {
		return ""
	}
	return c.Error()
}

// shutdown is the graceful hand-over of SIGTERM: why names the cause in the
// log ("SIGTERM"; empty for none).
func (e *Engine) shutdown(why string) {
	masters := 0
	for _, h := range e.hosts {
		if h.m.State() == carp.Master {
			masters++
		}
	}
	plural := "s"
	if masters == 1 {
		plural = ""
	}
	reason := "carpd stopping"
	if why != "" {
		reason += " (" + why + ")"
		e.infof("carpd: %s: stopping, handing over %d MASTER vhid%s", why, masters, plural)
	} else {
		e.infof("carpd: stopping, handing over %d MASTER vhid%s", masters, plural)
	}
	// Every vhid is handed over before any link is deleted: deleting a
	// link waits for the kernel's RCU readers, and the links of all vhids
	// go in one batch (with 1,020 vhids the last bow-out left 25 s after
	// SIGTERM when each vhid's link was deleted after its bow-out).
	now := e.opts.Now()
	for _, h := range e.hosts {
		e.handOver(now, h, reason)
	}
	e.deleteLinks(e.hosts)
	e.saveCounters(now) // after the bow-outs, which count too
	e.hosts = nil
	e.indexHosts()
	e.restoreKernel()
	e.flushSave()
}

// safeShutdown is shutdown after a panic: each step runs even if an earlier
// one panics too, so that whatever can be removed is.
func (e *Engine) safeShutdown(why string) {
	step := func(what string, f func()) {
		defer func() {
			if r := recover(); r != nil {
				e.errorf("carpd: %s after a panic: %v", what, r)
			}
		}()
		f()
	}
	reason := "carpd stopping (" + why + ")"
	now := e.opts.Now()
	for _, h := range e.hosts {
		step("tear down "+h.name(), func() { e.handOver(now, h, reason) })
	}
	step("delete links", func() { e.deleteLinks(e.hosts) })
	step("save advert counters", func() { e.saveCounters(now) })
	e.hosts = nil
	e.indexHosts()
	step("restore kernel settings", e.restoreKernel)
	step("save the configuration", e.flushSave)
}

// linuxName maps a BSD interface name to the Linux one.
func (e *Engine) linuxName(bsd string) string { return e.hostView().linuxName(bsd) }

// bsdName maps a Linux interface name back to the admin's name.
func (e *Engine) bsdName(linux string) string { return e.hostView().bsdName(linux) }

func (e *Engine) resyncLinks() error {
	ls, err := e.kern().Links()
	if err != nil {
		return fmt.Errorf("engine: list links: %w", err)
	}
	e.setLinks(ls)
	return nil
}

// relist is resyncLinks where a failure leaves the previous list in use:
// it is logged, not returned (the next link event or resync tries again).
func (e *Engine) relist(when string) {
	if err := e.resyncLinks(); err != nil {
		e.errorf("carpd: relist links %s: %v", when, err)
	}
}

// removeStrayLinks deletes the links a crashed engine left (alias
// osif.OwnerAlias), all together: nothing is left behind, and those the
// saved configuration still has are made again by the reconcile that
// follows, as CreateMACVLAN would delete and re-create each. One batch
// waits once for the kernel's RCU readers instead of once per link: 1,020
// leftovers took 25 s one by one before the engine served its socket.
func (e *Engine) removeStrayLinks() {
	var names []string
	for _, l := range e.links {
		if l.Alias == osif.OwnerAlias {
			names = append(names, l.Name)
		}
	}
	if len(names) == 0 {
		return
	}
	slices.Sort(names) // what the kernel is asked does not depend on map order
	for _, err := range unjoin(e.kern().DeleteLinks(names)) {
		if !errors.Is(err, osif.ErrNoLink) {
			e.errorf("carpd: remove stale link: %v", err)
		}
	}
	e.relist("after removing stale links")
}

// syncLogLevel sets Options.LogLevel from net.inet.carp.log.
func (e *Engine) syncLogLevel() {
	if e.opts.LogLevel == nil {
		return
	}
	l := slog.LevelInfo
	if e.knob("log") >= 2 {
		l = slog.LevelDebug
	}
	e.opts.LogLevel.Set(l)
}

// errorf, warnf, infof and debugf log one message, worded in full as
// carp(4) and carpd word it, at their level.
func (e *Engine) errorf(format string, args ...any) { e.logAt(slog.LevelError, format, args) }
func (e *Engine) warnf(format string, args ...any)  { e.logAt(slog.LevelWarn, format, args) }
func (e *Engine) infof(format string, args ...any)  { e.logAt(slog.LevelInfo, format, args) }
func (e *Engine) debugf(format string, args ...any) { e.logAt(slog.LevelDebug, format, args) }

func (e *Engine) logAt(level slog.Level, format string, args []any) {
	e.log.Log(context.Background(), level, fmt.Sprintf(format, args...))
}
