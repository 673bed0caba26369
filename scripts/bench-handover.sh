#!/bin/sh
# Planned handover, bsdcarp vs ucarp, measured in one run on the
# same namespace lab: hosts a and b share 172.16.0.100 (advbase 1), host c
# pings it every millisecond while the master hands over, alternately from
# each host: bsdcarp with `ifconfig carp0 vhid 1 state backup`, ucarp with
# SIGUSR2 (its demote-to-backup). Prints the replies lost and the time per
# handover. Needs root and ucarp. RUNS=N sets the handovers per system
# (default 10).
set -eu
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
	echo "bench-handover: needs root (network namespaces)" >&2
	exit 1
fi
runs=${RUNS:-10}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
go test -run '^$' -bench '^BenchmarkPlannedHandover$' -benchtime "${runs}x" -count 1 -timeout 20m ./internal/e2e/ | tee "$out"
awk '
function get(name, unit,   i) { for (i = 1; i <= NF; i++) if ($(i+1) == unit) return $i; return "" }
/^BenchmarkPlannedHandover\/bsdcarp/ { ol = get("", "lost"); op = get("", "pings"); ot = get("", "s/handover") }
/^BenchmarkPlannedHandover\/ucarp/   { tl = get("", "lost"); tp = get("", "pings"); tt = get("", "s/handover") }
END {
	if (ol == "" || tl == "") { print "bench-handover: missing results" > "/dev/stderr"; exit 1 }
	printf "\nplanned handover, client pinging every 1 ms:\n"
	printf "  bsdcarp %d lost of %d pings, %.3f s per handover\n", ol, op, ot
	printf "  ucarp   %d lost of %d pings, %.3f s per handover\n", tl, tp, tt
}' "$out"
