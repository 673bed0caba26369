# bsdcarp: FreeBSD's CARP on Linux.
PREFIX  ?= /usr/local
DESTDIR ?=
GO      ?= go
export CGO_ENABLED = 0

CMDS = carpd ifconfig-carp carpctl-sysctl carpctl-compat

.PHONY: all build test sim demo bench bench-replay bench-handover bench-scale fuzz vet clean install install-rcd

all: build

## build: bin/carpd, bin/ifconfig-carp, bin/carpctl-sysctl, bin/carpctl-compat and the bin/bsd links
# -s -w drop the symbol table and DWARF (a third of each binary): every
# status command is exec'd afresh, and panics and profiles still name
# functions (Go's own tables); debug with a plain `go build`.
build:
	@mkdir -p bin/bsd
	$(GO) build -trimpath -ldflags='-s -w' -o bin/ ./cmd/carpd ./cmd/ifconfig-carp ./cmd/carpctl-sysctl ./cmd/carpctl-compat
	ln -sf ../ifconfig-carp bin/bsd/ifconfig
	ln -sf ../carpctl-sysctl bin/bsd/sysctl
	for c in kldload kldstat service; do ln -sf ../carpctl-compat bin/bsd/$$c || exit 1; done

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
