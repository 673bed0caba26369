package main

import (
	"fmt"
	"os"
	"runtime"
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
