# bsdcarp: FreeBSD's CARP on Linux.
PREFIX  ?= /usr/local
DESTDIR ?=
GO      ?= go
export CGO_ENABLED = 0

CMDS = carpd ifconfig-carp carpctl-sysctl

# --version (internal/version): the release number when VERSION is set (make
# VERSION=0.3.0), else the module version Go records; with the VCS revision
# when git can read the checkout (-buildvcs), else without it (a tarball,
# or a checkout git refuses to read, builds all the same).
VERSION  ?=
BUILDVCS ?= $(shell git status --porcelain >/dev/null 2>&1 && echo true || echo false)
GOLDFLAGS = -s -w$(if $(VERSION), -X github.com/bsdcarp/bsdcarp/internal/version.Version=$(VERSION))

.PHONY: all build test sim demo bench bench-replay bench-handover bench-scale fuzz vet clean install

all: build

## build: bin/carpd, bin/ifconfig-carp, bin/carpctl-sysctl and the bin/bsd links
# -s -w drop the symbol table and DWARF (a third of each binary): every
# status command is exec'd afresh, and panics and profiles still name
# functions (Go's own tables); debug with a plain `go build`.
build:
	@mkdir -p bin/bsd
	$(GO) build -trimpath -buildvcs=$(BUILDVCS) -ldflags='$(GOLDFLAGS)' -o bin/ ./cmd/carpd ./cmd/ifconfig-carp ./cmd/carpctl-sysctl
	ln -sf ../ifconfig-carp bin/bsd/ifconfig
	ln -sf ../carpctl-sysctl bin/bsd/sysctl

## test: the whole suite (unit, golden, simulation, namespaces, ucarp interop); needs root
test: build
	scripts/test.sh

## sim: the simulation at full strength, 10,000 seeded runs (SIM_RUNS=N to change); prints a summary
sim:
	scripts/sim.sh

## demo: the handbook's two-firewall lab in namespaces, with a live failover; needs root
demo: build
	scripts/demo.sh

## bench: failover time after kill -9, bsdcarp vs ucarp, same advbase; needs root
bench: build
	scripts/bench-failover.sh

## bench-replay: takeover while a third host replays the dead master's adverts, bsdcarp vs ucarp; needs root
bench-replay: build
	scripts/bench-replay.sh

## bench-handover: replies lost by a 1 ms ping across planned handovers, bsdcarp vs ucarp; needs root
bench-handover: build
	scripts/bench-handover.sh

## bench-scale: CPU, RSS and status latency at 1, 16, 255, 1020 vhids, bsdcarp vs keepalived; needs root
## (SIZES="1 16" SECS=5 RUNS=10 for a short run)
bench-scale: build
	scripts/bench-scale.sh

vet:
	@test -z "$$(gofmt -l .)" || { gofmt -l .; exit 1; }
	$(GO) vet ./...

clean:
	rm -rf bin

## install: binaries, bsd links, man pages, rc.carp and the systemd units under
## $(DESTDIR)$(PREFIX); units go to $(PREFIX)/lib/systemd/system (on systemd's
## search path for /usr and /usr/local) unless SYSTEMDUNITDIR says otherwise.
install: build
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/libexec/bsdcarp/bsd \
		$(DESTDIR)$(PREFIX)/share/man/man8 $(DESTDIR)$(or $(SYSTEMDUNITDIR),$(PREFIX)/lib/systemd/system)
	install -m 0755 bin/carpd bin/ifconfig-carp bin/carpctl-sysctl $(DESTDIR)$(PREFIX)/sbin/
	install -m 0755 scripts/rc.carp $(DESTDIR)$(PREFIX)/sbin/rc.carp
	ln -sf ../../../sbin/ifconfig-carp $(DESTDIR)$(PREFIX)/libexec/bsdcarp/bsd/ifconfig
	ln -sf ../../../sbin/carpctl-sysctl $(DESTDIR)$(PREFIX)/libexec/bsdcarp/bsd/sysctl
	install -m 0644 man/*.8 $(DESTDIR)$(PREFIX)/share/man/man8/
	for u in dist/systemd/*.service; do \
		sed 's|@PREFIX@|$(PREFIX)|g' $$u >$(DESTDIR)$(or $(SYSTEMDUNITDIR),$(PREFIX)/lib/systemd/system)/$${u##*/} && \
		chmod 0644 $(DESTDIR)$(or $(SYSTEMDUNITDIR),$(PREFIX)/lib/systemd/system)/$${u##*/} || exit 1; \
	done
