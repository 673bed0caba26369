#!/bin/sh
# Failover time after kill -9 of the master, bsdcarp vs ucarp, measured in one
# run on the same namespace lab (two hosts on a bridge, advbase 1, advskew 0):
# the time from SIGKILL to the backup holding the shared address in its
# kernel. Prints both and the ratio. Needs root and ucarp (apt-get install
# ucarp). RUNS=N sets the number of failovers per system (default 6).
set -eu
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
	echo "bench-failover: needs root (network namespaces)" >&2
	exit 1
fi
runs=${RUNS:-6}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
go test -run '^$' -bench '^BenchmarkFailoverKill9$' -benchtime "${runs}x" -count 1 ./internal/e2e/ | tee "$out"
awk '
/^BenchmarkFailoverKill9\/bsdcarp/ { for (i = 1; i <= NF; i++) { if ($(i+1) == "s/failover") ours = $i; if ($(i+1) == "s-max") oursmax = $i } }
/^BenchmarkFailoverKill9\/ucarp/   { for (i = 1; i <= NF; i++) { if ($(i+1) == "s/failover") theirs = $i; if ($(i+1) == "s-max") theirsmax = $i } }
END {
	if (ours == "" || theirs == "") { print "bench-failover: missing results" > "/dev/stderr"; exit 1 }
	printf "\nfailover after kill -9 of the master (advbase 1, mean of the runs):\n"
	printf "  bsdcarp %.3f s (max %.3f s)\n", ours, oursmax
	printf "  ucarp   %.3f s (max %.3f s)\n", theirs, theirsmax
	printf "  ratio ucarp / bsdcarp = %.2f\n", theirs / ours
}' "$out"
