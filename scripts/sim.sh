#!/bin/sh
# Runs the engine simulation (carp/engine/sim_test.go) at full strength: TestSimulation with
# 10,000 seeded runs (SIM_RUNS and SIM_FIRST change the count and the first
# seed), then prints its summary line. Failing seeds are printed with the
# command that reproduces each. Needs no root.
set -eu
cd "$(dirname "$0")/.."
runs=${SIM_RUNS:-10000}
first=${SIM_FIRST:-0}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
start=$(date +%s)
CGO_ENABLED=0 go test ./carp/engine -run '^TestSimulation$' -count=1 -timeout 0 -v \
	-sim.runs "$runs" -sim.first "$first" >"$out" 2>&1 || status=$?
end=$(date +%s)
if [ "$status" -ne 0 ]; then
	# Everything but the passing subtests: the failures and how to reproduce them.
	grep -v -e '^=== RUN' -e '^=== NAME' -e '--- PASS' -e 'simulation: ' "$out" >&2 || true
fi
summary=$(sed -n 's/^ *sim_test.go:[0-9]*: \(simulation: .*\)/\1/p' "$out")
if [ -z "$summary" ]; then
	echo "sim.sh: no summary line (the test did not finish)" >&2
	cat "$out" >&2
	exit 1
fi
echo "$summary"
echo "simulation: $((end - start)) s wall clock"
exit "$status"
