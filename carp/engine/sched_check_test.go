package engine

// Every test of the package runs with the scheduler checked against a scan
// of all vhosts at each wake-up (sched.go).
func init() { checkSchedule = true }
