// Command carpd is the bsdcarp engine: it speaks CARP on the wire, owns the
// configuration that ifconfig-carp and carpctl-sysctl change through its
// control socket, and moves virtual addresses between hosts.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kong"
	"golang.org/x/sys/unix"

	"github.com/bsdcarp/bsdcarp/carp/control"
	"github.com/bsdcarp/bsdcarp/carp/engine"
	"github.com/bsdcarp/bsdcarp/carp/events"
	"github.com/bsdcarp/bsdcarp/internal/loglines"
	"github.com/bsdcarp/bsdcarp/internal/sdnotify"
	"github.com/bsdcarp/bsdcarp/internal/version"
	"github.com/bsdcarp/bsdcarp/kernelshim"
)

// DefaultStateDir is where the runtime state lives when neither --state-dir
// nor CARPD_STATE_DIR is given: under /run, so that a restarted carpd picks
// up where the last one left off within a boot, while after a reboot rc.conf
// alone decides, as on FreeBSD.
const DefaultStateDir = "/run/carpd/state"

type cli struct {
	Socket    string           `help:"Control socket path." env:"CARPD_SOCKET" default:"${socket}"`
	StateDir  string           `help:"Directory of the runtime state (configuration, kernel settings to restore); under /run so that a reboot clears it." env:"CARPD_STATE_DIR" default:"${statedir}"`
	Ifmap     []string         `help:"BSD-to-Linux interface names, e.g. em0=eth0,em1=eth1." sep:","`
	IfmapFile string           `help:"File of BSD=Linux name lines (# comments); missing is fine." default:"/etc/carpd/ifmap"`
	DevdPipe  string           `help:"devd(8)-style event socket (one line per event, as devd.pipe); \"\" or off: none." env:"CARPD_DEVD_PIPE" default:"${devdpipe}"`
	Version   kong.VersionFlag `help:"Print the version and exit."`
	DevdConf  string           `help:"devd.conf(5) rules whose actions run on CARP and IFNET events (and the files of its options directories); re-read on SIGHUP; off: none." env:"CARPD_DEVD_CONF" default:"${devdconf}"`

	// Metrics (metrics.go), off by default.
	MetricsListen      string        `help:"Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9542); loopback only unless --metrics-allow-remote." placeholder:"ADDR"`
	MetricsAllowRemote bool          `help:"Let --metrics-listen take a non-loopback address."`
	MetricsTextfile    string        `help:"Write the metrics to this file (node_exporter textfile collector: name it *.prom) every --metrics-interval, atomically." placeholder:"PATH"`
	MetricsInterval    time.Duration `help:"How often --metrics-textfile is written." default:"15s"`
}

func main() {
	var c cli
	kong.Parse(&c,
		kong.Name("carpd"),
		kong.Description("CARP engine: FreeBSD's carp(4) on Linux."),
		kong.Vars{"socket": control.DefaultSocket, "statedir": DefaultStateDir, "devdpipe": events.DefaultPipe, "devdconf": DefaultDevdConf, "version": version.String("carpd")},
	)
	// One logger for carpd, the engine and the kernel adapter: lines on
	// stderr as log.LstdFlags|log.Lmicroseconds wrote them or, when stderr
	// is journald's, with syslog priorities and no time of their own. The
	// level follows net.inet.carp.log (the engine keeps it).
	journal := loglines.JournalStream(os.Stderr)
	level := new(slog.LevelVar)
	lg := slog.New(loglines.NewHandlerOptions(os.Stderr, loglines.Options{Stamp: !journal, Journal: journal, Level: level}))
	limitMemory()
	limitProcs()
	stopProfiles, err := startProfiles()
	if err != nil {
		lg.Error(fmt.Sprintf("carpd: %v", err))
		os.Exit(1)
	}
	err = run(c, lg, level, sdnotify.FromEnv())
	stopProfiles()
	if err != nil {
		lg.Error(fmt.Sprintf("carpd: %v", err))
		os.Exit(1)
	}
}

// signalQueue is the buffer of carpd's signal channel: signal.Notify drops
// a signal that finds it full, so it has room for several arriving while
// run is still starting.
const signalQueue = 8

// run is carpd from its locks to its stop. notify tells systemd
// (Type=notify) when carpd is ready, reloading and stopping; see
// handleSignals.
func run(c cli, lg *slog.Logger, level *slog.LevelVar, notify *sdnotify.Notifier) error {
	// Before anything else: SIGHUP's default action would end the process
	// without a hand-over, and a SIGTERM during start-up must still lead
	// to one.
	sigs := make(chan os.Signal, signalQueue)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)

	ifmap, err := loadIfmap(c.IfmapFile, c.Ifmap)
	if err != nil {
		return err
	}
	sock := control.SocketPath(c.Socket)
	// One engine per state directory, socket and network namespace: the
	// locks come before anything that could touch a link, an address or a
	// sysctl, so a second carpd leaves the first one's kernel alone.
	ns, err := currentNetns(NetnsLockDir)
	if err != nil {
		return err
	}
	lk, err := takeLocks(c.StateDir, sock, ns)
	if err != nil {
		return err
	}
	defer lk.release()
	for _, w := range lk.Warnings {
		lg.Warn(fmt.Sprintf("carpd: %s", w))
	}
	mets, err := openMetrics(c)
	if err != nil {
		return err
	}
	defer mets.close()
	// kernel.json names values to restore only for the boot it was
	// written in (a --state-dir on disk outlives a reboot).
	if id, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
		dropped, err := engine.ForgetEarlierBoot(c.StateDir, string(id))
		if err != nil {
			lg.Error(fmt.Sprintf("carpd: %v", err))
		}
		if dropped {
			lg.Info(fmt.Sprintf("carpd: %s: kernel.json was written before a reboot: its values are not restored", c.StateDir))
		}
	}
	k, err := kernelshim.NewLinux(lg)
	if err != nil {
		return err
	}
	defer k.Close()
	evs := startEvents(c.DevdPipe, c.DevdConf, lg) // after the locks: a second carpd leaves the pipe alone
	defer evs.close()
	eng, err := engine.New(engine.Options{Kernel: k, StateDir: c.StateDir, IfMap: ifmap, Logger: lg, LogLevel: level, Events: evs.ch,
		Timer: func() (engine.Timer, error) { return kernelshim.NewLoopTimer() }})
	if err != nil {
		return err
	}
	ctx, stop := context.WithCancelCause(context.Background())
	defer stop(nil)
	serving := make(chan struct{})
	go handleSignals(ctx, sigs, stop, c, eng, evs, lg, notify, serving)
	runErr := make(chan error, 1)
	go func() { runErr <- eng.Run(ctx) }()
	select {
	case <-eng.Ready():
	case err := <-runErr:
		return err
	}
	// Ready means the socket accepts connections: listen only once the
	// engine serves requests.
	srv, err := control.Listen(sock, eng)
	if err != nil {
		// What the engine set up is removed before the exit status says
		// that carpd failed.
		stop(errors.New("no control socket"))
		if rerr := <-runErr; rerr != nil {
			lg.Error(fmt.Sprintf("carpd: %v", rerr))
		}
		return err
	}
	srv.Logf = slog.NewLogLogger(lg.Handler(), slog.LevelWarn).Printf
	srv.Render = renderText
	go func() {
		if err := srv.Serve(); err != nil {
			lg.Error(fmt.Sprintf("carpd: %v", err))
		}
	}()
	lg.Info(fmt.Sprintf("carpd: ready on %s", sock))
	mets.start(eng, lg)
	// READY=1 only now: the saved state is applied (the engine's Ready)
	// and the socket serves, so carp-rc.service, ordered after carpd,
	// finds it answering.
	if err := notify.Ready("serving on " + sock); err != nil {
		lg.Warn(fmt.Sprintf("carpd: %v", err))
	}
	close(serving)
	err = <-runErr
	srv.Close()
	if err == nil {
		lg.Info("carpd: stopped")
	}
	return err
}

// handleSignals turns SIGTERM and SIGINT into a graceful stop named after
// the signal and SIGHUP into a reload, until ctx ends. systemd hears of each
// (sd_notify): STOPPING=1 as the stop starts, RELOADING=1 and then READY=1
// around a reload. A SIGHUP before serving is closed waits for it, so that
// no READY=1 comes before carpd's first.
func handleSignals(ctx context.Context, sigs <-chan os.Signal, stop context.CancelCauseFunc, c cli, eng *engine.Engine, evs *eventPlumbing, lg *slog.Logger, notify *sdnotify.Notifier, serving <-chan struct{}) {
	tell := func(err error) {
		if err != nil {
			lg.Warn(fmt.Sprintf("carpd: %v", err))
		}
	}
	// A reload runs on its own goroutine, one at a time, so that reading
	// the map can never delay a SIGTERM; HUPs that come meanwhile fold
	// into one more reload.
	hup := make(chan struct{}, 1)
	go func() {
		select {
		case <-ctx.Done():
			return
		case <-serving:
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				tell(notify.Reloading())
				reload(ctx, c, eng, lg)
				evs.loadRules("SIGHUP: ")
				if ctx.Err() == nil { // no READY=1 after STOPPING=1
					tell(notify.Ready("reloaded"))
				}
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				select {
				case hup <- struct{}{}:
				default:
				}
				continue
			}
			name := unix.SignalName(sig.(syscall.Signal))
			tell(notify.Stopping(name + ": handing over"))
			stop(errors.New(name))
		}
	}
}

// reload is SIGHUP: the interface map is read again from --ifmap-file and
// --ifmap and handed to the engine, which refuses a change for a name a vhid
// uses; handleSignals then re-reads the devd.conf rules. No vhid changes
// state.
func reload(ctx context.Context, c cli, eng *engine.Engine, lg *slog.Logger) {
	var srcs []string
	if c.IfmapFile != "" {
		srcs = append(srcs, c.IfmapFile)
	}
	if len(c.Ifmap) > 0 {
		srcs = append(srcs, "--ifmap")
	}
	from := strings.Join(srcs, " and ")
	if from == "" {
		from = "no file and no --ifmap"
	}
	m, err := loadIfmap(c.IfmapFile, c.Ifmap)
	if err == nil {
		var summary string
		summary, err = eng.Reload(ctx, m)
		if err == nil {
			lg.Info(fmt.Sprintf("carpd: SIGHUP: reloaded the interface map from %s: %s", from, summary))
			return
		}
	}
	if errors.Is(err, engine.ErrStopped) || errors.Is(err, context.Canceled) {
		return
	}
	lg.Error(fmt.Sprintf("carpd: SIGHUP: interface map not reloaded, the old one stays: %v", err))
}

// loadIfmap reads the name map from the file (if present) and the flag; the
// flag wins. The parser is engine.LoadIfmap: strict, errors name file:line.
func loadIfmap(file string, pairs []string) (map[string]string, error) {
	return engine.LoadIfmap(file, pairs)
}
