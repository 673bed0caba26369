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
# -race: the engine's event loop, the control server and the kernel adapter
# run goroutines; the race detector needs cgo, so it is on for the test
# binaries only. The commands internal/e2e builds stay CGO_ENABLED=0 without
# -race (see internal/e2e/main_test.go): they are what ships, and their
# failover timings must not carry the detector's slowdown.
# -p 1: the namespace tests measure failover times; keep the two cores for them.
CGO_ENABLED=1 exec go test -race -count=1 -p 1 -timeout 12m ./... "$@"
