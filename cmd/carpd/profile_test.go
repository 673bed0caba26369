package main

import (
	"runtime"
	"testing"
)

// TestLimitProcs: carpd runs its Go code on one thread unless GOMAXPROCS
// says otherwise.
func TestLimitProcs(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	runtime.GOMAXPROCS(2)
	t.Setenv("GOMAXPROCS", "")
	limitProcs()
	if n := runtime.GOMAXPROCS(0); n != defaultProcs {
		t.Errorf("GOMAXPROCS unset: %d procs, want %d", n, defaultProcs)
	}
	runtime.GOMAXPROCS(2)
	t.Setenv("GOMAXPROCS", "2")
	limitProcs()
	if n := runtime.GOMAXPROCS(0); n != 2 {
		t.Errorf("GOMAXPROCS=2: %d procs, want 2 (the environment's)", n)
	}
}
