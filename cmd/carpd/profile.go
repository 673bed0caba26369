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
