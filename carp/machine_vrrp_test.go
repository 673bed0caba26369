package carp

import (
	"testing"
	"time"
)

var v0 = time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)

func vrrpMachine(t *testing.T, prio uint8, interval uint16, preempt bool) *Machine {
	t.Helper()
	m := NewMachine(Config{VRRP: true, Priority: prio, Interval: interval, Preempt: preempt, IPv4: true})
	out := m.SetRunnable(v0, true, "")
	if m.State() != Backup || out.Transition == nil {
		t.Fatalf("SetRunnable: state %v, out %+v", m.State(), out)
	}
	return m
}

func deadline(t *testing.T, m *Machine) time.Time {
	t.Helper()
	d, ok := m.NextDeadline()
	if !ok {
		t.Fatal("no timer armed")
	}
	return d
}

// TestVRRPBackupTimesOut: a backup waits RFC 9568's Master_Down_Interval of
// its own interval, then becomes MASTER and advertises every interval
// (no skew in the advert timer).
func TestVRRPBackupTimesOut(t *testing.T) {
	m := vrrpMachine(t, 100, 100, false)
	want := v0.Add(3*time.Second + 609375*time.Microsecond)
	if d := deadline(t, m); !d.Equal(want) {
		t.Fatalf("master-down at %v, want %v", d.Sub(v0), want.Sub(v0))
	}
	if out := m.Advance(want.Add(-time.Microsecond)); out.Transition != nil || m.State() != Backup {
		t.Fatalf("fired early: %+v", out)
	}
	out := m.Advance(want)
	if m.State() != Master || !out.Advertise || out.Transition.Reason != ReasonMasterTimedOut {
		t.Fatalf("at master-down: state %v out %+v", m.State(), out)
	}
	if d := deadline(t, m); !d.Equal(want.Add(time.Second)) {
		t.Errorf("next advert at %v, want +1s", d.Sub(want))
	}
	if p, i := m.VRRPParams(); p != 100 || i != 100 {
		t.Errorf("VRRPParams %d %d", p, i)
	}
}

// TestVRRPBackupLearnsInterval: a backup's master-down interval follows
// the interval the master advertises (10 ms here), with its own priority's
// skew.
func TestVRRPBackupLearnsInterval(t *testing.T) {
	m := vrrpMachine(t, 100, 100, false)
	now := v0.Add(time.Second)
	if out := m.ReceiveVRRP(now, false, 200, 1, true); out.Transition != nil {
		t.Fatalf("receive: %+v", out)
	}
	if m.MasterInterval() != 1 {
		t.Errorf("MasterInterval %d, want 1", m.MasterInterval())
	}
	if d := deadline(t, m); !d.Equal(now.Add(30*time.Millisecond + 6093*time.Microsecond)) {
		t.Errorf("master-down in %v, want 36.093ms", d.Sub(now))
	}
}

// TestVRRPBackupRules: preemption (net.inet.carp.preempt) of a lower
// priority, none without it or against an equal or higher one, and the
// skew-time takeover after a priority-0 advert.
func TestVRRPBackupRules(t *testing.T) {
	for _, c := range []struct {
		name        string
		preempt     bool
		prio        uint8
		wantMaster  bool
		wantTimerIn time.Duration
	}{
		{"preempt lower", true, 50, true, 0},
		{"preempt equal", true, 100, false, 3*time.Second + 609375*time.Microsecond},
		{"preempt higher", true, 150, false, 3*time.Second + 609375*time.Microsecond},
		{"no preempt lower", false, 50, false, 3*time.Second + 609375*time.Microsecond},
		{"priority 0", false, 0, false, 609375 * time.Microsecond},
		{"priority 0 with preempt", true, 0, false, 609375 * time.Microsecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := vrrpMachine(t, 100, 100, c.preempt)
			now := v0.Add(time.Second)
			out := m.ReceiveVRRP(now, false, c.prio, 100, false)
			if c.wantMaster {
				if m.State() != Master || !out.Advertise || out.Transition.Reason != ReasonPreempt {
					t.Fatalf("state %v out %+v, want MASTER by preemption", m.State(), out)
				}
				return
			}
			if m.State() != Backup || out.Transition != nil {
				t.Fatalf("state %v out %+v, want BACKUP", m.State(), out)
			}
			if d := deadline(t, m); d.Sub(now) != c.wantTimerIn {
				t.Errorf("master-down in %v, want %v", d.Sub(now), c.wantTimerIn)
			}
		})
	}
}

// TestVRRPMasterRules: a master yields to a higher priority, and to an
// equal one only when the sender's address wins; a priority-0 advert makes
// it advertise at once.
func TestVRRPMasterRules(t *testing.T) {
	for _, c := range []struct {
		name       string
		prio       uint8
		wins       bool
		wantBackup bool
		wantAdv    bool
	}{
		{"higher", 101, false, true, false},
		{"equal, sender wins", 100, true, true, false},
		{"equal, we win", 100, false, false, false},
		{"lower", 99, true, false, false},
		{"priority 0", 0, true, false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := vrrpMachine(t, 100, 100, false)
			m.Force(v0, Master)
			now := v0.Add(300 * time.Millisecond)
			out := m.ReceiveVRRP(now, false, c.prio, 50, c.wins)
			if c.wantBackup {
				if m.State() != Backup || out.Transition.Reason != ReasonMoreFrequent {
					t.Fatalf("state %v out %+v, want BACKUP", m.State(), out)
				}
				// The interval of the advert that won is the one to wait for.
				if d := deadline(t, m); d.Sub(now) != 1500*time.Millisecond+304687*time.Microsecond {
					t.Errorf("master-down in %v, want 1.804687s", d.Sub(now))
				}
				return
			}
			if m.State() != Master || out.Advertise != c.wantAdv {
				t.Fatalf("state %v out %+v, want MASTER advertise=%v", m.State(), out, c.wantAdv)
			}
		})
	}
}

// TestVRRPConfigChange: a MASTER whose priority or interval changes
// advertises at once; a BACKUP's timer follows a new priority; leaving the
// master bows out (priority-0 advert by the caller).
func TestVRRPConfigChange(t *testing.T) {
	m := vrrpMachine(t, 100, 100, false)
	m.Force(v0, Master)
	cfg := m.Config()
	cfg.Priority = 120
	if out := m.SetConfig(v0.Add(time.Millisecond), cfg); !out.Advertise {
		t.Errorf("priority change as MASTER: %+v, want an advert", out)
	}
	cfg.Interval = 10
	now := v0.Add(2 * time.Millisecond)
	if out := m.SetConfig(now, cfg); !out.Advertise {
		t.Errorf("interval change as MASTER: %+v, want an advert", out)
	}
	if d := deadline(t, m); d.Sub(now) != 100*time.Millisecond {
		t.Errorf("next advert in %v, want 100ms", d.Sub(now))
	}
	if out := m.BowOut(now, ""); !out.BowOut || m.State() != Init {
		t.Errorf("BowOut: %+v state %v", out, m.State())
	}
	b := vrrpMachine(t, 100, 100, false)
	cfg = b.Config()
	cfg.Priority = 254
	now = v0.Add(time.Second)
	b.SetConfig(now, cfg)
	if d := deadline(t, b); d.Sub(now) != 3*time.Second+7812*time.Microsecond {
		t.Errorf("BACKUP after priority 254: master-down in %v", d.Sub(now))
	}
}

// TestLateWakeUpsDoNotStretchTheInterval: a loop that always wakes 0.8 ms
// after the advert's time (the poller sleeps in whole milliseconds) still
// advertises every 10 ms on average; one that wakes more than an interval
// late does not send a burst to catch up.
func TestLateWakeUpsDoNotStretchTheInterval(t *testing.T) {
	m := vrrpMachine(t, 100, 1, false)
	m.Force(v0, Master)
	late := 800 * time.Microsecond
	var last time.Time
	for range 100 {
		d := deadline(t, m)
		last = d.Add(late)
		if out := m.Advance(last); !out.Advertise {
			t.Fatalf("no advert at %v", last.Sub(v0))
		}
	}
	if got := last.Sub(v0); got != 100*10*time.Millisecond+late {
		t.Errorf("100 adverts took %v, want 1.0008s", got)
	}
	// 25 ms late: the next one is an interval after now, not at once.
	d := deadline(t, m)
	now := d.Add(25 * time.Millisecond)
	m.Advance(now)
	if next := deadline(t, m); next.Sub(now) != 10*time.Millisecond {
		t.Errorf("after a 25 ms stall the next advert is in %v, want 10ms", next.Sub(now))
	}
}
