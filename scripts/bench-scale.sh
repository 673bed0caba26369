#!/bin/sh
# Efficiency at scale (issue 9), bsdcarp vs keepalived, in one run on the
# same kind of namespace lab: for each vhid count N, a master-side and a
# backup-side host at advbase 1 (bsdcarp: one carpd per host, vhids on em
# aliases; keepalived 2.x: one VRRPv3 vrrp_instance per vhid, advert_int 1).
# Prints CPU (% of one core over the window) and RSS of each side's daemon
# with the bsdcarp/keepalived ratio, the time of one configuration line, and
# the time of bsdcarp's status commands against ip(8) in the same namespace.
# Needs root and keepalived. Knobs: SIZES="1 16 255 1020" (vhid counts, up
# to 1020 = 255 on each of em0..em3), SECS=20 (CPU window), RUNS=30 (runs
# per status command).
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
out=$(mktemp)
trap 'rm -f "$out"' EXIT
go test -run '^$' -bench '^BenchmarkScale$' -benchtime 1x -count 1 -timeout 60m ./internal/e2e/ | tee "$out"
awk -v secs="$BENCH_SCALE_SECS" '
function ratio(a, b) { return b > 0 ? sprintf("%.1fx", a / b) : (a > 0 ? "inf" : "-") }
function pct(v) { return sprintf("%.2f%%", v) }
/^BenchmarkScale\/N=[0-9]+\/(bsdcarp|keepalived)(-[0-9]+)?[ \t]/ {
	split($1, p, "/"); n = substr(p[2], 3); sys = p[3]; sub(/-[0-9]+$/, "", sys)
	if (!(n in seen)) { seen[n] = 1; order[++nn] = n }
	for (i = 3; i < NF; i++) if ($(i+1) ~ /[a-z]/) v[n, sys, $(i+1)] = $i
}
END {
	if (nn == 0) { print "bench-scale: no results" > "/dev/stderr"; exit 1 }
	printf "\nCPU over %s s (%% of one core) and RSS (MiB); ratio = bsdcarp / keepalived\n", secs
	printf "%6s | %9s %10s %7s | %9s %10s %7s | %13s %7s | %13s %7s | %s\n", "N", "MASTER bc", "keepalived", "ratio", "BACKUP bc", "keepalived", "ratio", "RSS M bc/ka", "ratio", "RSS B bc/ka", "ratio", "stable bc/ka"
	for (j = 1; j <= nn; j++) {
		n = order[j]
		if ((n, "bsdcarp", "master-cpu%") in v && (n, "keepalived", "master-cpu%") in v) {
			bm = v[n, "bsdcarp", "master-cpu%"]; km = v[n, "keepalived", "master-cpu%"]
			bb = v[n, "bsdcarp", "backup-cpu%"]; kb = v[n, "keepalived", "backup-cpu%"]
			rbm = v[n, "bsdcarp", "master-MiB"]; rkm = v[n, "keepalived", "master-MiB"]
			rbb = v[n, "bsdcarp", "backup-MiB"]; rkb = v[n, "keepalived", "backup-MiB"]
			printf "%6s | %9s %10s %7s | %9s %10s %7s | %6.1f/%6.1f %7s | %6.1f/%6.1f %7s | %d/%d\n", n,
				pct(bm), pct(km), ratio(bm, km), pct(bb), pct(kb), ratio(bb, kb),
				rbm, rkm, ratio(rbm, rkm), rbb, rkb, ratio(rbb, rkb),
				v[n, "bsdcarp", "stable"], v[n, "keepalived", "stable"]
		} else {
			printf "%6s | missing results\n", n
			bad = 1
		}
	}
	printf "\ntime until the master side holds all N (s): bsdcarp from its first configuration line, keepalived from its start\n"
	for (j = 1; j <= nn; j++) {
		n = order[j]
		printf "%6s | bsdcarp %7.2f | keepalived %7.2f\n", n, v[n, "bsdcarp", "master-up-s"], v[n, "keepalived", "master-up-s"]
	}
	printf "\nbsdcarp configuration line (ms): single `ifconfig emX vhid ... alias` median and mean; per line of a sh script of N lines\n"
	for (j = 1; j <= nn; j++) {
		n = order[j]
		printf "%6s | single median %7.2f | mean %7.2f | script %7.2f/line\n", n,
			v[n, "bsdcarp", "cfg-line-ms"], v[n, "bsdcarp", "cfg-line-mean-ms"], v[n, "bsdcarp", "cfg-script-ms/line"]
	}
	printf "\nbsdcarp status commands on the master side (median ms) against ip(8) in the same namespace\n"
	printf "%6s | %-24s %8s | %-17s %8s | %6s\n", "N", "command", "ms", "ip(8)", "ms", "ratio"
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
			m = v[n, "bsdcarp", cl[c] "-ms"]; r = v[n, "bsdcarp", base[cl[c]] "-ms"]
			printf "%6s | %-24s %8.2f | %-17s %8.2f | %6s\n", n, cmds[cl[c]], m, ipn[base[cl[c]]], r, ratio(m, r)
		}
	}
	exit bad
}' "$out"
