#!/bin/sh
# The demo: the FreeBSD Handbook's two-firewall CARP lab (28.5) in network
# namespaces, a client pinging the shared address every 10 ms across a crash
# failover and a planned one, carpd's log lines as they come, and everything
# removed afterwards (also on failure or Ctrl-C). Needs root and ping(8)
# (iputils-ping). Exits 0 only if every step worked.
# DEMO_BIN names the directory of the built commands (default bin, built
# by `make build` if carpd is missing there).
set -eu
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
	echo "demo: needs root (network namespaces)" >&2
	exit 1
fi
bin=${DEMO_BIN:-bin}
[ -x "$bin/carpd" ] || make build
CGO_ENABLED=0 go build -o "$bin/demo" ./internal/demo
exec "$bin/demo" -bin "$bin" -runbooks testdata/runbooks
