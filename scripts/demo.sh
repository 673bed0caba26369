#!/bin/sh
# The demo: the FreeBSD Handbook's two-firewall CARP lab (28.5) in network
# namespaces, a live failover, and everything removed afterwards. Needs root.
set -eu
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
	echo "demo: needs root (network namespaces)" >&2
	exit 1
fi
[ -x bin/carpd ] || make build
exec go run ./internal/demo -bin bin -runbooks testdata/runbooks
