#!/bin/sh
# Takeover under a replay of captured adverts, bsdcarp vs ucarp, measured in one run on
# the same namespace lab: hosts a (master, advskew 0) and b (backup,
# advskew 100) on a bridge, and c, which captures three of a's adverts; a is
# killed with SIGKILL and c replays the capture twice a second for 20 s. The
# figure is the time from the kill to b holding the shared address in its
# kernel (the protocol's own bound is 3 s + 100/256 s). Needs root and ucarp.
# RUNS=N sets the number of rounds per system (default 2).
set -eu
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
	echo "bench-replay: needs root (network namespaces)" >&2
	exit 1
fi
runs=${RUNS:-2}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
go test -run '^$' -bench '^BenchmarkReplayHoldDown$' -benchtime "${runs}x" -count 1 -timeout 20m ./internal/e2e/ | tee "$out"
awk '
/^BenchmarkReplayHoldDown\/bsdcarp/ { for (i = 1; i <= NF; i++) { if ($(i+1) == "s/takeover") ours = $i; if ($(i+1) == "s-max") oursmax = $i } }
/^BenchmarkReplayHoldDown\/ucarp/   { for (i = 1; i <= NF; i++) { if ($(i+1) == "s/takeover") theirs = $i; if ($(i+1) == "s-max") theirsmax = $i } }
END {
	if (ours == "" || theirs == "") { print "bench-replay: missing results" > "/dev/stderr"; exit 1 }
	printf "\ntakeover after kill -9 of the master while its captured adverts are replayed (2/s for 20 s):\n"
	printf "  bsdcarp %.3f s (max %.3f s)\n", ours, oursmax
	printf "  ucarp   %.3f s (max %.3f s)\n", theirs, theirsmax
	printf "  ratio ucarp / bsdcarp = %.2f\n", theirs / ours
}' "$out"
