# bsdcarp: FreeBSD's CARP on Linux.
PREFIX  ?= /usr/local
DESTDIR ?=
GO      ?= go
export CGO_ENABLED = 0

CMDS = carpd ifconfig-carp carpctl-sysctl carpctl-compat

# --version (internal/version): the version of the tree (scripts/pkgversion:
# the VERSION file, a ~git snapshot suffix off a release tag; make VERSION=...
# overrides it), else the module version Go records; with the VCS revision
# when git can read the checkout (-buildvcs), else without it (a tarball,
# or a checkout git refuses to read, builds all the same).
VERSION  ?= $(shell scripts/pkgversion 2>/dev/null)
BUILDVCS ?= $(shell git status --porcelain >/dev/null 2>&1 && echo true || echo false)
GOLDFLAGS = -s -w$(if $(VERSION), -X github.com/bsdcarp/bsdcarp/internal/version.Version=$(VERSION))

.PHONY: all build test sim demo bench bench-replay bench-handover bench-scale bench-vrrp fuzz vet clean install install-rcd uninstall deb

all: build

## build: bin/carpd, bin/ifconfig-carp, bin/carpctl-sysctl, bin/carpctl-compat and the bin/bsd links
# -s -w drop the symbol table and DWARF (a third of each binary): every
# status command is exec'd afresh, and panics and profiles still name
# functions (Go's own tables); debug with a plain `go build`.
build:
	@mkdir -p bin/bsd
	$(GO) build -trimpath -buildvcs=$(BUILDVCS) -ldflags='$(GOLDFLAGS)' -o bin/ ./cmd/carpd ./cmd/ifconfig-carp ./cmd/carpctl-sysctl ./cmd/carpctl-compat
	ln -sf ../ifconfig-carp bin/bsd/ifconfig
	ln -sf ../carpctl-sysctl bin/bsd/sysctl
	for c in kldload kldstat service; do ln -sf ../carpctl-compat bin/bsd/$$c || exit 1; done

## test: the whole suite (unit, golden, simulation, namespaces, ucarp interop); needs root
test: build
	scripts/test.sh

## sim: the simulation at full strength, 10,000 seeded runs (SIM_RUNS=N to change); prints a summary
sim:
	scripts/sim.sh

## demo: the handbook's two-firewall lab in namespaces; pings lost across a crash and a planned failover; needs root
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

## bench-vrrp: VRRPv3 crash and planned failover, lost pings and a soak, bsdcarp vs keepalived; needs root
## (RUNS=5 SOAK=60 for a short run)
bench-vrrp: build
	scripts/bench-vrrp.sh

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
	install -m 0755 bin/carpd bin/ifconfig-carp bin/carpctl-sysctl bin/carpctl-compat $(DESTDIR)$(PREFIX)/sbin/
	install -m 0755 scripts/rc.carp $(DESTDIR)$(PREFIX)/sbin/rc.carp
	ln -sf ../../../sbin/ifconfig-carp $(DESTDIR)$(PREFIX)/libexec/bsdcarp/bsd/ifconfig
	ln -sf ../../../sbin/carpctl-sysctl $(DESTDIR)$(PREFIX)/libexec/bsdcarp/bsd/sysctl
	for c in kldload kldstat service; do ln -sf ../../../sbin/carpctl-compat $(DESTDIR)$(PREFIX)/libexec/bsdcarp/bsd/$$c || exit 1; done
	install -m 0644 man/*.8 $(DESTDIR)$(PREFIX)/share/man/man8/
	for u in dist/systemd/*.service; do \
		sed 's|@PREFIX@|$(PREFIX)|g' $$u >$(DESTDIR)$(or $(SYSTEMDUNITDIR),$(PREFIX)/lib/systemd/system)/$${u##*/} && \
		chmod 0644 $(DESTDIR)$(or $(SYSTEMDUNITDIR),$(PREFIX)/lib/systemd/system)/$${u##*/} || exit 1; \
	done

## uninstall: removes what install puts under $(DESTDIR)$(PREFIX), given the
## same PREFIX (and SYSTEMDUNITDIR): the list is what install installs now,
## into a scratch directory; emptied directories named bsdcarp go too.
uninstall:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(MAKE) --no-print-directory install DESTDIR="$$tmp" PREFIX='$(PREFIX)' SYSTEMDUNITDIR='$(SYSTEMDUNITDIR)' >/dev/null && \
	cd "$$tmp" && \
	find . ! -type d | sort | while read -r f; do \
		if [ -e '$(DESTDIR)'"$${f#.}" ] || [ -L '$(DESTDIR)'"$${f#.}" ]; then \
			echo "rm $(DESTDIR)$${f#.}" && rm -f '$(DESTDIR)'"$${f#.}" || exit 1; \
		fi; \
	done && \
	find . -depth -type d -name bsdcarp | while read -r d; do \
		find '$(DESTDIR)'"$${d#.}" -depth -type d -empty -delete 2>/dev/null || true; \
	done

## deb: bin/bsdcarp_VERSION_ARCH.deb (DEB=FILE for another name), from what
## install installs with PREFIX=/usr, plus /etc/default/carpd, /etc/carpd/ifmap
## and the maintainer scripts of dist/deb (scripts/mkdeb.sh); the version
## comes from VERSION (scripts/pkgversion, CHANGELOG.md)
DEBVERSION = $(shell scripts/pkgversion)
DEBARCH    = $(shell $(GO) env GOARCH | sed 's/^386$$/i386/; s/^arm$$/armhf/')
DEB       ?= bin/bsdcarp_$(DEBVERSION)_$(DEBARCH).deb
deb:
	@test -n '$(DEBVERSION)' || { echo 'make deb: no version (scripts/pkgversion)' >&2; exit 1; }
	rm -rf '$(abspath $(DEB)).root'
	$(MAKE) --no-print-directory install DESTDIR='$(abspath $(DEB)).root' PREFIX=/usr SYSTEMDUNITDIR=/usr/lib/systemd/system
	GO='$(GO)' scripts/mkdeb.sh '$(abspath $(DEB)).root' '$(DEBVERSION)' '$(DEBARCH)' '$(abspath $(DEB))'
	rm -rf '$(abspath $(DEB)).root'

## install-rcd: /etc/rc.d/netif -> $(PREFIX)/sbin/carpctl-compat, so that the
## handbook's "/etc/rc.d/netif restart" pastes unchanged; only when
## /etc/rc.d/netif does not exist (never replaces a file of the host)
install-rcd:
	install -d $(DESTDIR)/etc/rc.d
	@if [ -e $(DESTDIR)/etc/rc.d/netif ] || [ -L $(DESTDIR)/etc/rc.d/netif ]; then \
		echo "$(DESTDIR)/etc/rc.d/netif exists: left alone (run 'service netif restart' instead)"; \
	else \
		ln -s $(PREFIX)/sbin/carpctl-compat $(DESTDIR)/etc/rc.d/netif && \
		echo "$(DESTDIR)/etc/rc.d/netif -> $(PREFIX)/sbin/carpctl-compat"; \
	fi
