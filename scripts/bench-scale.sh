#!/bin/sh
# Efficiency at scale (issue 9), bsdcarp vs keepalived, in one run on the
# same kind of namespace lab: for each vhid count N, a master-side and a
# backup-side host at advbase 1 (bsdcarp: one carpd per host, vhids on em
# aliases; keepalived 2.x: one VRRPv3 vrrp_instance per vhid, advert_int 1).
# Prints CPU (% of one core over the window) and RSS of each side's daemon
# with the bsdcarp/keepalived ratio, the time of one configuration line, the
# time of bsdcarp's status commands against ip(8) in the same namespace, and
# a crash: the master side's daemon killed, the time until the backup side
# holds all N addresses and the CPU its daemon spends on the takeover; and
# the lab's floor: what a least CARP master in Go (the adverts alone) costs.
# Needs root and keepalived; with ethtool(8) it also measures both daemons
# with the lab's links receiving as NICs do (see nicReceive). Knobs: SIZES="1 16 255 1020" (vhid counts, up
# to 1020 = 255 on each of em0..em3), SECS=20 (CPU window), RUNS=30 (runs
# per status command), FROM=file (print the tables of a saved run's output).
set -eu
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
	echo "bench-scale: needs root (network namespaces)" >&2
	exit 1
fi
BENCH_SCALE_SIZES=${SIZES:-1 16 255 1020}
BENCH_SCALE_SECS=${SECS:-20}
BENCH_SCALE_RUNS=${RUNS:-30}
export BENCH_SCALE_SIZES BENCH_SCALE_SECS BENCH_SCALE_RUNS
if [ -n "${FROM:-}" ]; then
	out=$FROM # the tables again from a saved run's output
else
	out=$(mktemp)
	trap 'rm -f "$out"' EXIT
	go test -run '^$' -bench '^BenchmarkScale$' -benchtime 1x -count 1 -timeout 60m ./internal/e2e/ | tee "$out"
fi
awk -v secs="$BENCH_SCALE_SECS" '
function has(n, sys, k) { return (n, sys, k) in v }
function num(n, sys, k, fmt) { return has(n, sys, k) ? sprintf(fmt, v[n, sys, k]) : "FAIL" }
function cpu(n, sys, k) { return num(n, sys, k, has(n, sys, k) && v[n, sys, k] < 0.1 ? "%.3f%%" : "%.2f%%") }
function above(n, sys, d) {
	if (!has(n, sys, "master-cpu%") || !has(n, "bsdcarp", "floor-cpu%")) return "-"
	d = v[n, sys, "master-cpu%"] - v[n, "bsdcarp", "floor-cpu%"]
	return sprintf(d < 0.1 && d > -0.1 ? "%+.3f%%" : "%+.2f%%", d)
}
function ratio(n, k, b, a) {
	if (!has(n, "bsdcarp", k) || !has(n, b, a)) return "-"
	a = v[n, b, a]; k = v[n, "bsdcarp", k]
	return a > 0 ? sprintf("%.1fx", k / a) : (k > 0 ? "inf" : "-")
}
/^BenchmarkScale\/N=[0-9]+\/(bsdcarp|keepalived)(-[0-9]+)?[ \t]/ {
	split($1, p, "/"); n = substr(p[2], 3); sys = p[3]; sub(/-[0-9]+$/, "", sys)
	for (i = 3; i < NF; i++) if ($(i+1) ~ /[a-z]/) v[n, sys, $(i+1)] = $i
}
/^(--- FAIL: )?BenchmarkScale\/N=[0-9]+\// {
	s = $0; sub(/^--- FAIL: /, "", s); split(s, p, "/"); n = substr(p[2], 3)
	if (!(n in seen)) { seen[n] = 1; order[++nn] = n }
	if ($0 ~ /^--- FAIL/) bad = 1
}
END {
	if (nn == 0) { print "bench-scale: no results" > "/dev/stderr"; exit 1 }
	printf "\nCPU over %s s (%% of one core) and RSS (MiB) of each side'"'"'s daemon (keepalived: all its processes); ratio = bsdcarp / keepalived; FAIL: see the log above\n", secs
	printf "%6s | %9s %10s %7s | %9s %10s %7s | %8s %10s %7s | %8s %10s %7s | %s\n", "N", "MASTER bc", "keepalived", "ratio", "BACKUP bc", "keepalived", "ratio", "RSS M bc", "keepalived", "ratio", "RSS B bc", "keepalived", "ratio", "stable bc/ka"
	for (j = 1; j <= nn; j++) {
		n = order[j]
		printf "%6s | %9s %10s %7s | %9s %10s %7s | %8s %10s %7s | %8s %10s %7s | %s/%s\n", n,
			cpu(n, "bsdcarp", "master-cpu%"), cpu(n, "keepalived", "master-cpu%"), ratio(n, "master-cpu%", "keepalived", "master-cpu%"),
			cpu(n, "bsdcarp", "backup-cpu%"), cpu(n, "keepalived", "backup-cpu%"), ratio(n, "backup-cpu%", "keepalived", "backup-cpu%"),
			num(n, "bsdcarp", "master-MiB", "%.1f"), num(n, "keepalived", "master-MiB", "%.1f"), ratio(n, "master-MiB", "keepalived", "master-MiB"),
			num(n, "bsdcarp", "backup-MiB", "%.1f"), num(n, "keepalived", "backup-MiB", "%.1f"), ratio(n, "backup-MiB", "keepalived", "backup-MiB"),
			num(n, "bsdcarp", "stable", "%d"), num(n, "keepalived", "stable", "%d")
	}
	if (has(order[1], "bsdcarp", "floor-cpu%")) {
		printf "\nthe floor: a least CARP master of N vhids in Go (carpreplay floor, one thread: once a second each advert built, signed and sent, all with sendmmsg; no state machine, no addresses, nothing received), on the same lab, over a %s s window after the takeover; at many vhids the cost of the adverts on this lab'"'"'s wire, at a few that of one wake-up a second of a Go program; what each MASTER spends beyond it\n", secs
		printf "%6s | %9s | %12s %12s\n", "N", "floor", "bsdcarp +", "keepalived +"
		for (j = 1; j <= nn; j++) {
			n = order[j]
			printf "%6s | %9s | %12s %12s\n", n, cpu(n, "bsdcarp", "floor-cpu%"), above(n, "bsdcarp"), above(n, "keepalived")
		}
	}
	if (has(order[1], "bsdcarp", "master-cpu-nic%") || has(order[1], "keepalived", "master-cpu-nic%")) {
		printf "\nthe same daemons over a second %s s window, the lab'"'"'s links receiving as NICs do (threaded NAPI: the switch'"'"'s and the receiving host'"'"'s work runs in kernel threads, not in the sender'"'"'s system call); lab rx = those threads, all hosts\n", secs
		printf "%6s | %9s %10s %7s | %9s %10s %7s | %9s %10s\n", "N", "MASTER bc", "keepalived", "ratio", "BACKUP bc", "keepalived", "ratio", "lab rx bc", "keepalived"
		for (j = 1; j <= nn; j++) {
			n = order[j]
			printf "%6s | %9s %10s %7s | %9s %10s %7s | %9s %10s\n", n,
				cpu(n, "bsdcarp", "master-cpu-nic%"), cpu(n, "keepalived", "master-cpu-nic%"), ratio(n, "master-cpu-nic%", "keepalived", "master-cpu-nic%"),
				cpu(n, "bsdcarp", "backup-cpu-nic%"), cpu(n, "keepalived", "backup-cpu-nic%"), ratio(n, "backup-cpu-nic%", "keepalived", "backup-cpu-nic%"),
				cpu(n, "bsdcarp", "lab-rx-cpu-nic%"), cpu(n, "keepalived", "lab-rx-cpu-nic%")
		}
	}
	printf "\ntime until the master side holds all N (s): bsdcarp from its first configuration line, keepalived from its start\n"
	for (j = 1; j <= nn; j++) {
		n = order[j]
		printf "%6s | bsdcarp %7s | keepalived %7s\n", n, num(n, "bsdcarp", "master-up-s", "%.2f"), num(n, "keepalived", "master-up-s", "%.2f")
	}
	printf "\ntakeover: the master side'"'"'s daemon killed (SIGKILL), time until the backup side holds all N addresses (s; the kill falls at any phase of the 1 s advert interval) and the CPU its daemon used meanwhile beyond its idle rate of the window above, i.e. what the takeover cost (ms)\n"
	printf "%6s | %10s %10s | %12s %10s %7s\n", "N", "bsdcarp s", "keepalived", "bsdcarp CPU", "keepalived", "ratio"
	for (j = 1; j <= nn; j++) {
		n = order[j]
		printf "%6s | %10s %10s | %12s %10s %7s\n", n, num(n, "bsdcarp", "takeover-s", "%.2f"), num(n, "keepalived", "takeover-s", "%.2f"),
			num(n, "bsdcarp", "takeover-cpu-ms", "%.1f"), num(n, "keepalived", "takeover-cpu-ms", "%.1f"), ratio(n, "takeover-cpu-ms", "keepalived", "takeover-cpu-ms")
	}
	printf "\nbsdcarp configuration line (ms): single `ifconfig emX vhid ... alias` adding a vhid (last min(N,20) of the master side, while the others take over) median and mean; per line of the backup side'"'"'s sh script of N lines; `ifconfig em0 vhid 1 advskew 1|0` on the settled master side, median; state directories on tmpfs, as the default /run/carpd/state\n"
	for (j = 1; j <= nn; j++) {
		n = order[j]
		printf "%6s | single median %7s | mean %7s | script %7s/line | settled %7s\n", n,
			num(n, "bsdcarp", "cfg-line-ms", "%.2f"), num(n, "bsdcarp", "cfg-line-mean-ms", "%.2f"), num(n, "bsdcarp", "cfg-script-ms/line", "%.2f"),
			num(n, "bsdcarp", "cfg-settled-ms", "%.2f")
	}
	printf "\nbsdcarp status commands on the master side, with carp0 added (median ms), against ip(8) in the same namespace\n"
	printf "%6s | %-24s %8s | %-19s %8s | %6s\n", "N", "command", "ms", "ip(8)", "ms", "ratio"
	cmds["ifconfig-em0"] = "ifconfig em0";          base["ifconfig-em0"] = "ip-em0"
	cmds["ifconfig-a"] = "ifconfig -a";             base["ifconfig-a"] = "ip-all"
	cmds["ifconfig-carp0"] = "ifconfig carp0";      base["ifconfig-carp0"] = "ip-carp0"
	cmds["sysctl-carp"] = "sysctl net.inet.carp";   base["sysctl-carp"] = "ip-em0"
	cmds["stats"] = "carpctl-sysctl --stats";       base["stats"] = "ip-em0"
	ipn["ip-em0"] = "ip addr show em0"; ipn["ip-all"] = "ip addr show"; ipn["ip-carp0"] = "ip addr show carp0"
	split("ifconfig-em0 ifconfig-a ifconfig-carp0 sysctl-carp stats", cl, " ")
	for (j = 1; j <= nn; j++) {
		n = order[j]
		for (c = 1; c <= 5; c++) {
			printf "%6s | %-24s %8s | %-19s %8s | %6s\n", n, cmds[cl[c]], num(n, "bsdcarp", cl[c] "-ms", "%.2f"),
				ipn[base[cl[c]]], num(n, "bsdcarp", base[cl[c]] "-ms", "%.2f"), ratio(n, cl[c] "-ms", "bsdcarp", base[cl[c]] "-ms")
		}
	}
	exit bad
}' "$out"
