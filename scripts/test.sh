#!/bin/sh
# Runs the whole test suite: vet, unit and golden tests, simulation, fuzz
# seeds, network-namespace tests and real-peer (ucarp) interop tests.
# Needs root for the namespace tests; in CI (CI=true) they must not skip.
set -eu
cd "$(dirname "$0")/.."
unformatted=$(gofmt -l . || true)
if [ -n "$unformatted" ]; then
	echo "gofmt needed on: $unformatted" >&2
	exit 1
fi
go vet ./...
# -p 1: the namespace tests measure failover times; keep the two cores for them.
exec go test -count=1 -p 1 -timeout 12m ./... "$@"
