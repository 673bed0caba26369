package carp

import (
	"reflect"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

const us = time.Microsecond

func tr(from, to State, reason string) *Transition {
	return &Transition{From: from, To: to, Reason: reason}
}

func checkOut(t *testing.T, what string, got, want Output) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: output = %s, want %s", what, fmtOut(got), fmtOut(want))
	}
}

func fmtOut(o Output) string {
	s := "{"
	if o.Advertise {
		s += "advertise "
	}
	if o.BowOut {
		s += "bow-out "
	}
	if o.Transition != nil {
		s += o.Transition.From.String() + " -> " + o.Transition.To.String() + " (" + o.Transition.Reason + ")"
	}
	return s + "}"
}

func checkDeadline(t *testing.T, m *Machine, want time.Time) {
	t.Helper()
	got, ok := m.NextDeadline()
	if !ok || !got.Equal(want) {
		t.Errorf("next deadline = %v (armed %v), want %v", got.Sub(t0), ok, want.Sub(t0))
	}
}

func checkNoDeadline(t *testing.T, m *Machine) {
	t.Helper()
	if got, ok := m.NextDeadline(); ok {
		t.Errorf("timer still armed at %v", got.Sub(t0))
	}
}

// backup returns a machine that went INIT -> BACKUP at t0.
func backup(t *testing.T, cfg Config) *Machine {
	t.Helper()
	m := NewMachine(cfg)
	checkOut(t, "start", m.SetRunnable(t0, true, ReasonInitComplete),
		Output{Transition: tr(Init, Backup, ReasonInitComplete)})
	return m
}

// master returns a machine that became MASTER at t0 (forced).
func master(t *testing.T, cfg Config) *Machine {
	t.Helper()
	m := backup(t, cfg)
	checkOut(t, "force master", m.Force(t0, Master), Output{Advertise: true, Transition: tr(Backup, Master, ReasonUser)})
	return m
}

func TestStateNames(t *testing.T) {
	tests := []struct {
		s     State
		name  string
		parse []string
	}{
		{Init, "INIT", []string{"init", "INIT", "Init"}},
		{Backup, "BACKUP", []string{"backup", "BACKUP", "Backup"}},
		{Master, "MASTER", []string{"master", "MASTER", "mAsTeR"}},
	}
	for _, tt := range tests {
		if tt.s.String() != tt.name {
			t.Errorf("%d.String() = %q, want %q", tt.s, tt.s.String(), tt.name)
		}
		for _, in := range tt.parse {
			if got, ok := ParseState(in); !ok || got != tt.s {
				t.Errorf("ParseState(%q) = %v %v", in, got, ok)
			}
		}
	}
	for _, bad := range []string{"", "slave", "masters"} {
		if _, ok := ParseState(bad); ok {
			t.Errorf("ParseState(%q) accepted", bad)
		}
	}
}

func TestNewMachineIsIdleInInit(t *testing.T) {
	m := NewMachine(Config{AdvBase: 1})
	if m.State() != Init {
		t.Errorf("state %v", m.State())
	}
	checkNoDeadline(t, m)
	checkOut(t, "advance in INIT", m.Advance(t0.Add(time.Hour)), Output{})
	checkOut(t, "advert in INIT is ignored", m.Receive(t0, false, 1, 0), Output{})
	checkOut(t, "state keyword in INIT is ignored", m.Force(t0, Master), Output{})
	checkOut(t, "setrun false in INIT", m.SetRunnable(t0, false, ReasonIfDown), Output{})
}

func TestInitToBackup(t *testing.T) {
	cfg := Config{AdvBase: 1, AdvSkew: 100}
	md := t0.Add(3*time.Second + 390625*us)
	tests := []struct {
		name, reason, want string
	}{
		{"initialization complete", ReasonInitComplete, ReasonInitComplete},
		{"hardware interface up is logged as given", ReasonIfUp, ReasonIfUp},
		{"empty reason means initialization complete", "", ReasonInitComplete},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMachine(cfg)
			checkOut(t, "setrun", m.SetRunnable(t0, true, tt.reason), Output{Transition: tr(Init, Backup, tt.want)})
			checkDeadline(t, m, md)
			checkOut(t, "setrun again is a no-op", m.SetRunnable(t0.Add(time.Second), true, tt.reason), Output{})
			checkDeadline(t, m, md)
		})
	}
}

func TestLoneBackupBecomesMasterExactlyAtMasterDown(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		md   time.Duration
	}{
		{"advbase 1 advskew 0", Config{AdvBase: 1}, 3 * time.Second},
		{"advbase 1 advskew 100: skew not tripled", Config{AdvBase: 1, AdvSkew: 100}, 3*time.Second + 390625*us},
		{"demotion does not apply to master down", Config{AdvBase: 1, AdvSkew: 100, Demotion: 100}, 3*time.Second + 390625*us},
		{"advbase 255 advskew 254", Config{AdvBase: 255, AdvSkew: 254}, 765*time.Second + 992187*us},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := backup(t, tt.cfg)
			at := t0.Add(tt.md)
			checkDeadline(t, m, at)
			checkOut(t, "a microsecond early", m.Advance(at.Add(-us)), Output{})
			if m.State() != Backup {
				t.Fatalf("MASTER a microsecond early")
			}
			checkOut(t, "at master down", m.Advance(at), Output{Advertise: true, Transition: tr(Backup, Master, ReasonMasterTimedOut)})
			checkDeadline(t, m, at.Add(AdvInterval(m.AdvertParams())))
		})
	}
}

func TestMasterAdvertisesEveryAdvbasePlusEffectiveSkew(t *testing.T) {
	tests := []struct {
		name     string
		cfg      Config
		interval time.Duration
	}{
		{"advbase 1 advskew 0", Config{AdvBase: 1}, time.Second},
		{"advbase 2 advskew 100", Config{AdvBase: 2, AdvSkew: 100}, 2*time.Second + 390625*us},
		{"demotion is added", Config{AdvBase: 2, AdvSkew: 100, Demotion: 20}, 2*time.Second + 468750*us},
		{"advskew 250 advertises 240", Config{AdvBase: 1, AdvSkew: 250}, time.Second + 937500*us},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := master(t, tt.cfg)
			next := t0.Add(tt.interval)
			for i := range 5 {
				checkDeadline(t, m, next)
				checkOut(t, "a microsecond early", m.Advance(next.Add(-us)), Output{})
				checkOut(t, "advert "+string(rune('1'+i)), m.Advance(next), Output{Advertise: true})
				next = next.Add(tt.interval)
			}
		})
	}
}

func TestLateAdvanceDoesNotBurst(t *testing.T) {
	m := master(t, Config{AdvBase: 1})
	late := t0.Add(10 * time.Second)
	checkOut(t, "late advance", m.Advance(late), Output{Advertise: true})
	checkDeadline(t, m, late.Add(time.Second))
}

func TestMasterReceivesAdvert(t *testing.T) {
	tests := []struct {
		name             string
		cfg              Config
		advbase, advskew uint8
		yields           bool
	}{
		{"lower advskew is more frequent: yield", Config{AdvBase: 1, AdvSkew: 100}, 1, 50, true},
		{"lower advbase is more frequent: yield", Config{AdvBase: 2, AdvSkew: 0}, 1, 254, true},
		{"equal advert: MASTER yields", Config{AdvBase: 1, AdvSkew: 100}, 1, 100, true},
		{"slower advskew: stay", Config{AdvBase: 1, AdvSkew: 100}, 1, 101, false},
		{"slower advbase: stay", Config{AdvBase: 1, AdvSkew: 254}, 2, 0, false},
		{"advskew 250 compared as 240: equal, yield", Config{AdvBase: 1, AdvSkew: 250}, 1, 240, true},
		{"advskew 241 compared as 240 against a raw 241: stay", Config{AdvBase: 1, AdvSkew: 241}, 1, 241, false},
		{"demotion makes us slower: yield", Config{AdvBase: 1, AdvSkew: 100, Demotion: 50}, 1, 120, true},
		{"bow-out from another master: stay", Config{AdvBase: 1, AdvSkew: 0}, BowOutAdvBase, BowOutAdvSkew, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := master(t, tt.cfg)
			at := t0.Add(500 * time.Millisecond)
			out := m.Receive(at, false, tt.advbase, tt.advskew)
			if !tt.yields {
				checkOut(t, "receive", out, Output{})
				checkDeadline(t, m, t0.Add(AdvInterval(m.AdvertParams())))
				return
			}
			checkOut(t, "receive", out, Output{Transition: tr(Master, Backup, ReasonMoreFrequent)})
			// Back in BACKUP the master-down timer runs from now and the
			// advertisement timer is gone.
			checkDeadline(t, m, at.Add(MasterDown(tt.cfg.AdvBase, tt.cfg.AdvSkew)))
		})
	}
}

func TestBackupReceivesAdvert(t *testing.T) {
	tests := []struct {
		name             string
		cfg              Config
		advbase, advskew uint8
		reason           string // "" keeps waiting
	}{
		{"slower master without preempt: keep waiting", Config{AdvBase: 1, AdvSkew: 100}, 1, 200, ""},
		{"slower master with preempt: preempt", Config{AdvBase: 1, AdvSkew: 100, Preempt: true}, 1, 200, ReasonPreempt},
		{"equal master with preempt: keep waiting", Config{AdvBase: 1, AdvSkew: 100, Preempt: true}, 1, 100, ""},
		{"faster master with preempt: keep waiting", Config{AdvBase: 1, AdvSkew: 100, Preempt: true}, 1, 50, ""},
		{"demoted below the master: no preempt", Config{AdvBase: 1, AdvSkew: 100, Preempt: true, Demotion: 120}, 1, 200, ""},
		{"advskew 250 is 240 against 245: preempt", Config{AdvBase: 1, AdvSkew: 250, Preempt: true}, 1, 245, ReasonPreempt},
		{"master advbase beyond 3x ours: master will time out", Config{AdvBase: 1, AdvSkew: 100}, 4, 0, ReasonWillTimeOut},
		{"will time out compares 3*advbase + effective skew: takes over", Config{AdvBase: 1, AdvSkew: 100}, 3, 101, ReasonWillTimeOut},
		{"will time out: equal time value keeps waiting", Config{AdvBase: 1, AdvSkew: 100}, 3, 100, ""},
		{"will time out uses the demoted skew", Config{AdvBase: 1, AdvSkew: 100, Demotion: 10}, 3, 105, ""},
		{"bow-out without preempt: master will time out", Config{AdvBase: 1, AdvSkew: 100}, BowOutAdvBase, BowOutAdvSkew, ReasonWillTimeOut},
		{"bow-out with preempt: preempting", Config{AdvBase: 1, AdvSkew: 100, Preempt: true}, BowOutAdvBase, BowOutAdvSkew, ReasonPreempt},
		{"bow-out with advbase 85 still takes over", Config{AdvBase: 85, AdvSkew: 240}, BowOutAdvBase, BowOutAdvSkew, ReasonWillTimeOut},
		{"bow-out with advbase 86 is outlasted: keep waiting", Config{AdvBase: 86}, BowOutAdvBase, BowOutAdvSkew, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := backup(t, tt.cfg)
			at := t0.Add(2 * time.Second)
			out := m.Receive(at, false, tt.advbase, tt.advskew)
			if tt.reason == "" {
				checkOut(t, "receive", out, Output{})
				// The master-down timer restarts from the advert.
				md := at.Add(MasterDown(tt.cfg.AdvBase, tt.cfg.AdvSkew))
				checkDeadline(t, m, md)
				checkOut(t, "old deadline passes", m.Advance(t0.Add(MasterDown(tt.cfg.AdvBase, tt.cfg.AdvSkew))), Output{})
				return
			}
			checkOut(t, "receive", out, Output{Advertise: true, Transition: tr(Backup, Master, tt.reason)})
			checkDeadline(t, m, at.Add(AdvInterval(m.AdvertParams())))
		})
	}
}

func TestForceState(t *testing.T) {
	cfg := Config{AdvBase: 1, AdvSkew: 100, IPv4: true, IPv6: true}
	t.Run("backup forced to master advertises at once", func(t *testing.T) {
		m := backup(t, cfg)
		at := t0.Add(time.Second)
		checkOut(t, "force", m.Force(at, Master), Output{Advertise: true, Transition: tr(Backup, Master, ReasonUser)})
		checkDeadline(t, m, at.Add(AdvInterval(1, 100)))
	})
	t.Run("master forced to backup bows out, stops advertising and waits", func(t *testing.T) {
		m := master(t, cfg)
		at := t0.Add(time.Second)
		checkOut(t, "force", m.Force(at, Backup), Output{BowOut: true, Transition: tr(Master, Backup, ReasonUser)})
		checkDeadline(t, m, at.Add(MasterDown(1, 100)))
		checkOut(t, "then times out", m.Advance(at.Add(MasterDown(1, 100))),
			Output{Advertise: true, Transition: tr(Backup, Master, ReasonMasterTimedOut)})
	})
	t.Run("forcing the current state does nothing", func(t *testing.T) {
		m := master(t, cfg)
		checkOut(t, "force", m.Force(t0.Add(time.Second), Master), Output{})
		checkDeadline(t, m, t0.Add(AdvInterval(1, 100)))
	})
	t.Run("forcing INIT does nothing", func(t *testing.T) {
		m := master(t, cfg)
		checkOut(t, "force", m.Force(t0, Init), Output{})
		if m.State() != Master {
			t.Errorf("state %v", m.State())
		}
	})
}

func TestDemotionChange(t *testing.T) {
	cfg := Config{AdvBase: 1, AdvSkew: 0, IPv4: true}
	t.Run("MASTER advertises the new skew at once", func(t *testing.T) {
		m := master(t, cfg)
		at := t0.Add(300 * time.Millisecond)
		demoted := cfg
		demoted.Demotion = 240
		checkOut(t, "demote", m.SetConfig(at, demoted), Output{Advertise: true})
		if b, s := m.AdvertParams(); b != 1 || s != 240 {
			t.Errorf("advert params %d/%d, want 1/240", b, s)
		}
		checkDeadline(t, m, at.Add(time.Second+937500*us))
	})
	t.Run("MASTER with unchanged advert params keeps its rhythm", func(t *testing.T) {
		m := master(t, cfg)
		c := cfg
		c.Preempt = true
		c.IPv6 = true
		checkOut(t, "preempt on", m.SetConfig(t0.Add(300*time.Millisecond), c), Output{})
		checkDeadline(t, m, t0.Add(time.Second))
	})
	t.Run("demotion clamped to the same skew is no change", func(t *testing.T) {
		c := cfg
		c.AdvSkew = 250
		m := master(t, c)
		c.Demotion = 5
		checkOut(t, "demote", m.SetConfig(t0.Add(300*time.Millisecond), c), Output{})
	})
	t.Run("BACKUP does not advertise and its master down is unchanged", func(t *testing.T) {
		m := backup(t, cfg)
		demoted := cfg
		demoted.Demotion = 240
		checkOut(t, "demote", m.SetConfig(t0.Add(time.Second), demoted), Output{})
		checkDeadline(t, m, t0.Add(3*time.Second))
	})
}

func TestSetConfigRearmsBackupTimers(t *testing.T) {
	cfg := Config{AdvBase: 1, AdvSkew: 0, IPv4: true}
	at := t0.Add(time.Second)
	t.Run("new advbase re-arms master down from now", func(t *testing.T) {
		m := backup(t, cfg)
		c := cfg
		c.AdvBase = 2
		checkOut(t, "advbase 2", m.SetConfig(at, c), Output{})
		checkDeadline(t, m, at.Add(6*time.Second))
	})
	t.Run("a family gaining addresses gets its own timer", func(t *testing.T) {
		m := backup(t, cfg)
		c := cfg
		c.IPv6 = true
		m.SetConfig(at, c)
		checkDeadline(t, m, t0.Add(3*time.Second)) // IPv4 untouched
		m.Receive(t0.Add(2*time.Second), false, 1, 0)
		checkDeadline(t, m, at.Add(3*time.Second)) // now the IPv6 one
	})
	t.Run("a family losing its addresses loses its timer", func(t *testing.T) {
		m := backup(t, Config{AdvBase: 1, IPv4: true, IPv6: true})
		m.SetConfig(at, cfg)
		m.Receive(t0.Add(2*time.Second), false, 1, 0)
		checkDeadline(t, m, t0.Add(5*time.Second))
	})
}

func TestNotRunnableStopsEverything(t *testing.T) {
	for _, start := range []State{Backup, Master} {
		t.Run(start.String()+" goes to INIT with timers stopped", func(t *testing.T) {
			m := backup(t, Config{AdvBase: 1, IPv4: true, IPv6: true})
			if start == Master {
				m.Force(t0, Master)
			}
			at := t0.Add(time.Second)
			checkOut(t, "link down", m.SetRunnable(at, false, ReasonIfDown), Output{Transition: tr(start, Init, ReasonIfDown)})
			checkNoDeadline(t, m)
			checkOut(t, "nothing fires", m.Advance(at.Add(time.Hour)), Output{})
			checkOut(t, "adverts ignored", m.Receive(at, false, 255, 255), Output{})
			checkOut(t, "link up", m.SetRunnable(at.Add(time.Hour), true, ReasonIfUp),
				Output{Transition: tr(Init, Backup, ReasonIfUp)})
			checkDeadline(t, m, at.Add(time.Hour+3*time.Second))
		})
	}
	t.Run("empty reason means hardware interface down", func(t *testing.T) {
		m := backup(t, Config{AdvBase: 1})
		checkOut(t, "down", m.SetRunnable(t0, false, ""), Output{Transition: tr(Backup, Init, ReasonIfDown)})
	})
}

func TestFamiliesHaveIndependentMasterDownTimers(t *testing.T) {
	both := Config{AdvBase: 1, IPv4: true, IPv6: true}
	t.Run("IPv4 adverts alone do not hold off the IPv6 timer", func(t *testing.T) {
		m := backup(t, both)
		m.Receive(t0.Add(time.Second), false, 1, 0)
		m.Receive(t0.Add(2*time.Second), false, 1, 0)
		checkOut(t, "IPv6 master down", m.Advance(t0.Add(3*time.Second)),
			Output{Advertise: true, Transition: tr(Backup, Master, ReasonMasterTimedOut)})
	})
	t.Run("IPv6 adverts alone do not hold off the IPv4 timer", func(t *testing.T) {
		m := backup(t, both)
		m.Receive(t0.Add(2*time.Second), true, 1, 0)
		checkOut(t, "IPv4 master down", m.Advance(t0.Add(3*time.Second)),
			Output{Advertise: true, Transition: tr(Backup, Master, ReasonMasterTimedOut)})
	})
	t.Run("adverts of both families keep BACKUP", func(t *testing.T) {
		m := backup(t, both)
		for i := 1; i <= 10; i++ {
			at := t0.Add(time.Duration(i) * time.Second)
			checkOut(t, "advance", m.Advance(at), Output{})
			m.Receive(at, false, 1, 0)
			m.Receive(at, true, 1, 0)
		}
		checkDeadline(t, m, t0.Add(13*time.Second))
	})
	t.Run("an IPv4 advert does not arm a timer for IPv6-only vhids", func(t *testing.T) {
		m := backup(t, Config{AdvBase: 1, IPv6: true})
		m.Receive(t0.Add(2*time.Second), true, 1, 0)
		m.Receive(t0.Add(2*time.Second), false, 1, 0)
		checkDeadline(t, m, t0.Add(5*time.Second))
	})
	t.Run("no family configured behaves as IPv4", func(t *testing.T) {
		m := backup(t, Config{AdvBase: 1})
		m.Receive(t0.Add(2*time.Second), true, 1, 0) // no IPv6 timer to reset
		checkDeadline(t, m, t0.Add(3*time.Second))
		m.Receive(t0.Add(2*time.Second), false, 1, 0)
		checkDeadline(t, m, t0.Add(5*time.Second))
	})
	t.Run("a yielding MASTER arms both families", func(t *testing.T) {
		m := master(t, both)
		m.Receive(t0.Add(time.Second), false, 1, 0)
		m.Receive(t0.Add(2*time.Second), true, 1, 0)
		checkDeadline(t, m, t0.Add(4*time.Second)) // IPv4 from the yield at 1s
	})
}

func TestBowOut(t *testing.T) {
	t.Run("MASTER bows out and goes to INIT", func(t *testing.T) {
		m := master(t, Config{AdvBase: 1})
		checkOut(t, "down", m.BowOut(t0.Add(time.Second), ""), Output{BowOut: true, Transition: tr(Master, Init, ReasonUser)})
		checkNoDeadline(t, m)
	})
	t.Run("BACKUP goes to INIT silently", func(t *testing.T) {
		m := backup(t, Config{AdvBase: 1})
		checkOut(t, "down", m.BowOut(t0.Add(time.Second), ""), Output{Transition: tr(Backup, Init, ReasonUser)})
		checkNoDeadline(t, m)
	})
	t.Run("INIT does nothing", func(t *testing.T) {
		checkOut(t, "down", NewMachine(Config{AdvBase: 1}).BowOut(t0, ""), Output{})
	})
	t.Run("an orderly stop logs its own reason", func(t *testing.T) {
		m := master(t, Config{AdvBase: 1})
		checkOut(t, "stop", m.BowOut(t0.Add(time.Second), "carpd stopping (SIGTERM)"),
			Output{BowOut: true, Transition: tr(Master, Init, "carpd stopping (SIGTERM)")})
	})
}

// lan runs machines on an ideal segment: every advert reaches every other
// machine at the instant it is sent.
type lan struct {
	t     *testing.T
	nodes []*Machine
	log   []string
}

func (l *lan) apply(now time.Time, from int, out Output) {
	l.t.Helper()
	if tr := out.Transition; tr != nil {
		l.log = append(l.log, string(rune('A'+from))+": "+tr.From.String()+" -> "+tr.To.String()+" ("+tr.Reason+")")
		if tr.To == Master && !out.Advertise {
			l.t.Errorf("node %d became MASTER without advertising", from)
		}
	}
	switch {
	case out.BowOut:
		l.send(now, from, BowOutAdvBase, BowOutAdvSkew)
	case out.Advertise:
		b, s := l.nodes[from].AdvertParams()
		l.send(now, from, b, s)
	}
}

func (l *lan) send(now time.Time, from int, advbase, advskew uint8) {
	for i, m := range l.nodes {
		if i != from {
			l.apply(now, i, m.Receive(now, false, advbase, advskew))
		}
	}
}

// run advances time from deadline to deadline until until.
func (l *lan) run(until time.Time) {
	for range 100000 {
		idx, next := -1, time.Time{}
		for i, m := range l.nodes {
			if d, ok := m.NextDeadline(); ok && (idx < 0 || d.Before(next)) {
				idx, next = i, d
			}
		}
		if idx < 0 || next.After(until) {
			return
		}
		l.apply(next, idx, l.nodes[idx].Advance(next))
	}
	l.t.Fatal("simulation does not settle")
}

func (l *lan) states() []State {
	var s []State
	for _, m := range l.nodes {
		s = append(s, m.State())
	}
	return s
}

func TestTwoHostsElectAndFailOver(t *testing.T) {
	tests := []struct {
		name    string
		a, b    Config
		bStart  time.Duration // B comes up this long after A
		want    []State
		reason  string  // B's reason for becoming MASTER, if it does before the bow-out
		bowOutA []State // after A bows out
	}{
		{"lower advskew wins", Config{AdvBase: 1, AdvSkew: 0}, Config{AdvBase: 1, AdvSkew: 100}, 0,
			[]State{Master, Backup}, "", []State{Init, Master}},
		{"equal configs still elect one master", Config{AdvBase: 1}, Config{AdvBase: 1}, 0,
			[]State{Master, Backup}, "", []State{Init, Master}},
		{"late faster host without preempt stays BACKUP", Config{AdvBase: 1, AdvSkew: 200}, Config{AdvBase: 1}, 10 * time.Second,
			[]State{Master, Backup}, "", []State{Init, Master}},
		{"late faster host with preempt takes over", Config{AdvBase: 1, AdvSkew: 200}, Config{AdvBase: 1, Preempt: true}, 10 * time.Second,
			[]State{Backup, Master}, ReasonPreempt, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &lan{t: t, nodes: []*Machine{NewMachine(tt.a), NewMachine(tt.b)}}
			l.apply(t0, 0, l.nodes[0].SetRunnable(t0, true, ReasonInitComplete))
			l.run(t0.Add(tt.bStart))
			l.apply(t0.Add(tt.bStart), 1, l.nodes[1].SetRunnable(t0.Add(tt.bStart), true, ReasonInitComplete))
			l.run(t0.Add(30 * time.Second))
			if got := l.states(); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("after 30s: %v, want %v\n%v", got, tt.want, l.log)
			}
			if tt.reason != "" && !slices.Contains(l.log, "B: BACKUP -> MASTER ("+tt.reason+")") {
				t.Errorf("B did not become MASTER by %q:\n%v", tt.reason, l.log)
			}
			if tt.bowOutA == nil {
				return
			}
			at := t0.Add(30*time.Second + 123*us)
			l.apply(at, 0, l.nodes[0].BowOut(at, ""))
			// B must be MASTER at the instant of the bow-out, not later.
			if got := l.states(); !reflect.DeepEqual(got, tt.bowOutA) {
				t.Errorf("after bow-out: %v, want %v\n%v", got, tt.bowOutA, l.log)
			}
			if !slices.Contains(l.log, "B: BACKUP -> MASTER ("+ReasonWillTimeOut+")") {
				t.Errorf("B did not take over by %q:\n%v", ReasonWillTimeOut, l.log)
			}
		})
	}
}

// TestAdvanceEarly: a MASTER's advert goes out up to early before its time
// and the next is armed from the send; a BACKUP's master-down timer never
// fires early.
func TestAdvanceEarly(t *testing.T) {
	t0 := time.Unix(1000, 0)
	m := NewMachine(Config{AdvBase: 1, IPv4: true})
	m.SetRunnable(t0, true, ReasonInitComplete)
	down, _ := m.NextDeadline()
	if out := m.AdvanceEarly(down.Add(-time.Millisecond), 50*time.Millisecond); out.Transition != nil {
		t.Fatalf("BACKUP taken over early: %+v", out)
	}
	if out := m.Advance(down); m.State() != Master {
		t.Fatalf("not MASTER at master-down: %+v", out)
	}
	next, _ := m.NextDeadline()
	if m.AdvertDue(next.Add(-time.Millisecond)) || !m.AdvertDue(next) {
		t.Fatal("AdvertDue does not follow the advert timer")
	}
	early := next.Add(-40 * time.Millisecond)
	if out := m.AdvanceEarly(early, 50*time.Millisecond); !out.Advertise {
		t.Fatalf("advert due in 40ms not sent with early 50ms: %+v", out)
	}
	if again, _ := m.NextDeadline(); !again.Equal(early.Add(time.Second)) {
		t.Fatalf("next advert armed at %v, want %v (one interval after the early send)", again, early.Add(time.Second))
	}
	if out := m.AdvanceEarly(early.Add(900*time.Millisecond), 50*time.Millisecond); out.Advertise {
		t.Fatal("advert 100ms before its time sent with early 50ms")
	}
}
