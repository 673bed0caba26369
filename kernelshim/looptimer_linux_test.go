package kernelshim

import (
	"fmt"
	"testing"
	"time"
)

func awaitFire(t *testing.T, lt *LoopTimer, what string) {
	t.Helper()
	select {
	case <-lt.C():
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: the timer did not fire", what)
	}
}

// TestLoopTimer: the timerfd timer fires after Set, a later Set replaces an
// earlier one, and Set drops an expiry not yet received.
func TestLoopTimer(t *testing.T) {
	lt, err := NewLoopTimer()
	if err != nil {
		t.Fatal(err)
	}
	defer lt.Stop()
	if err := lt.Set(time.Millisecond); err != nil {
		t.Fatal(err)
	}
	awaitFire(t, lt, "Set(1ms)")
	if err := lt.Set(0); err != nil { // at once, not disarmed
		t.Fatal(err)
	}
	awaitFire(t, lt, "Set(0)")
	if err := lt.Set(time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := lt.Set(time.Millisecond); err != nil {
		t.Fatal(err)
	}
	awaitFire(t, lt, "Set(1h) then Set(1ms)")
	// An expiry waiting in C is dropped by the next Set.
	if err := lt.Set(0); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(lt.C()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("Set(0): no expiry")
		}
		time.Sleep(time.Millisecond)
	}
	if err := lt.Set(time.Hour); err != nil {
		t.Fatal(err)
	}
	if n := len(lt.C()); n != 0 {
		t.Errorf("%d expiries left after Set(1h), want 0", n)
	}
	lt.Stop()
	if err := lt.Set(time.Millisecond); err == nil {
		t.Error("Set after Stop: no error")
	}
}

// TestLoopTimerNeverLosesAFiring: a setting that expires at once fires,
// however soon after Set its expiry is read (Set drops an old expiry
// before it sets the timer, never the new one's).
func TestLoopTimerNeverLosesAFiring(t *testing.T) {
	lt, err := NewLoopTimer()
	if err != nil {
		t.Fatal(err)
	}
	defer lt.Stop()
	for i := range 2000 {
		if err := lt.Set(0); err != nil {
			t.Fatal(err)
		}
		awaitFire(t, lt, fmt.Sprintf("Set(0) #%d", i))
	}
}

// TestLoopTimerFailureIsReported: a timer whose expiries can no longer be
// read wakes its reader once and makes Set fail from then on, so that the
// engine falls back to a Go timer instead of never waking again.
func TestLoopTimerFailureIsReported(t *testing.T) {
	lt, err := NewLoopTimer()
	if err != nil {
		t.Fatal(err)
	}
	// Close the file behind the timer's back (not Stop): the wait fails.
	lt.f.Close()
	awaitFire(t, lt, "after the timerfd failed")
	if err := lt.Set(time.Millisecond); err == nil {
		t.Error("Set after a failure: no error")
	}
	lt.Stop()
}
