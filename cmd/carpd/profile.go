package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
)

// Profiling for developers (README, "Profiling carpd"): with
// CARPD_CPUPROFILE=FILE carpd writes a CPU profile of its whole run to
// FILE, and with CARPD_MEMPROFILE=FILE an allocation profile when it
// stops. Both files are created mode 0600 by the root-run daemon.
const (
	envCPUProfile = "CARPD_CPUPROFILE"
	envMemProfile = "CARPD_MEMPROFILE"
)

// defaultMemoryLimit is carpd's soft memory limit (runtime/debug
// SetMemoryLimit) unless GOMEMLIMIT says otherwise: with the default GC
// target alone a carpd of 1,020 vhids kept 32 MiB resident, most of it
// garbage not yet collected; with this limit, 28 MiB and no more CPU
// (make bench-scale). A configuration whose live heap nears the limit
// (several thousand vhids) should raise it: GOMEMLIMIT=64MiB, or off.
const defaultMemoryLimit = 18 << 20

// limitMemory applies defaultMemoryLimit when GOMEMLIMIT is not set.
func limitMemory() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
}

// defaultProcs is how many threads run carpd's Go code at once unless
// GOMAXPROCS says otherwise. carpd's work has one owner (the engine loop),
// and each wake-up with a second P idle made the runtime wake a second
// thread to look for work (a futex and a context switch or two each time):
// an idle BACKUP of one vhid made 4 context switches a second instead of
// 1 and used twice the CPU (0.02 vs 0.01% of a core), a MASTER 11 vs 7.
// The price: a status answer carpd renders for many vhids (a millisecond or
// two) may delay the engine that long. Blocking system calls still get a
// thread of their own, except the netlink send of a small address refresh
// (see rawSend in kernelshim).
const defaultProcs = 1

// limitProcs applies defaultProcs when GOMAXPROCS is not set.
func limitProcs() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(defaultProcs)
	}
}

// startProfiles starts what the environment asks for and returns the
// function that finishes it at exit.
func startProfiles() (stop func(), err error) {
	var cpu *os.File
	if path := os.Getenv(envCPUProfile); path != "" {
		if cpu, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600); err != nil {
			return nil, fmt.Errorf("%s: %w", envCPUProfile, err)
		}
		if err := pprof.StartCPUProfile(cpu); err != nil {
			cpu.Close()
			return nil, fmt.Errorf("%s: %w", envCPUProfile, err)
		}
	}
	mem := os.Getenv(envMemProfile)
	return func() {
		if cpu != nil {
			pprof.StopCPUProfile()
			cpu.Close()
		}
		if mem != "" {
			f, err := os.OpenFile(mem, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
			if err != nil {
				fmt.Fprintf(os.Stderr, "carpd: %s: %v\n", envMemProfile, err)
				return
			}
			runtime.GC()
			if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
				fmt.Fprintf(os.Stderr, "carpd: %s: %v\n", envMemProfile, err)
			}
			f.Close()
		}
	}, nil
}
