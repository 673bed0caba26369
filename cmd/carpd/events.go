package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/bsdcarp/bsdcarp/carp/devd"
	"github.com/bsdcarp/bsdcarp/carp/engine"
	"github.com/bsdcarp/bsdcarp/carp/events"
)

// DefaultDevdConf is where devd(8)'s configuration lives on FreeBSD.
const DefaultDevdConf = "/etc/devd.conf"

// shutdownActions is how long the actions of carpd's own hand-over (its
// vhids going to INIT: stop the DHCP server...) may still run at a stop.
const shutdownActions = 5 * time.Second

// eventPlumbing carries the engine's devd events, in order, to the
// devd.pipe and to the actions of the devd.conf rules they match.
type eventPlumbing struct {
	ch      chan engine.Event // engine.Options.Events
	pipe    *events.PipeServer
	shell   *events.Shell
	rules   atomic.Pointer[devd.Config] // nil: no rules; swapped whole by SIGHUP
	rulesAt string                      // the devd.conf file ("" : none)
	lg      *slog.Logger
	stop    context.CancelFunc
	done    chan struct{}
}

// loadRules reads the devd.conf rules. A missing file means no rules; a bad
// one is refused with its file and line and the rules in force stay (at
// start: none), for a typo in an action script's rule must not stop
// failover.
func (p *eventPlumbing) loadRules(why string) {
	if p.rulesAt == "" {
		return
	}
	cfg, err := devd.Load(p.rulesAt)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// The usual case on Linux, said only when asked to re-read.
		p.rules.Store(nil)
		if why != "" {
			p.lg.Info(fmt.Sprintf("carpd: %s%s not found: no event actions", why, p.rulesAt))
		}
	case err != nil:
		p.lg.Error(fmt.Sprintf("carpd: %s%v; the event actions in force stay", why, err))
	default:
		for _, w := range cfg.Warnings {
			p.lg.Warn(fmt.Sprintf("carpd: %s", w))
		}
		p.rules.Store(cfg)
		p.lg.Info(fmt.Sprintf("carpd: %sevent actions from %s (%d files)", why, p.rulesAt, len(cfg.Files)))
	}
}

// actions are the commands of the notify rules ev matches, in priority
// order, run by the shell one at a time in event order.
func (p *eventPlumbing) actions(ev engine.Event) []events.Command {
	cfg := p.rules.Load()
	if cfg == nil {
		return nil
	}
	var out []events.Command
	for _, a := range cfg.Match(devd.NotifyEvent(ev.String())) {
		out = append(out, events.Command{Cmd: a.Command, What: ev.String()})
	}
	return out
}

// startEvents opens the devd.pipe at path ("" or "off": none), reads the
// devd.conf rules at conf ("" or "off": none) and starts the dispatcher. A
// pipe that cannot be opened is logged, not fatal: the failover duties come
// first.
func startEvents(path, conf string, lg *slog.Logger) *eventPlumbing {
	p := &eventPlumbing{ch: make(chan engine.Event, engine.DefaultEventQueue), done: make(chan struct{}), lg: lg}
	// The events package writes through a *log.Logger: its lines are
	// warnings (drops, refusals) on the same handler.
	warnings := slog.NewLogLogger(lg.Handler(), slog.LevelWarn)
	var runners []events.Runner
	if conf != "" && conf != "off" {
		p.rulesAt = conf
		p.loadRules("")
		p.shell = events.NewShell(events.ShellOptions{Log: warnings})
		runners = append(runners, p.shell.Actions(p.actions))
	}
	if path != "" && path != "off" {
		s, err := events.ListenPipe(path, events.PipeOptions{Log: warnings})
		if err != nil {
			lg.Error(fmt.Sprintf("carpd: %v: no devd pipe", err))
		} else {
			p.pipe = s
			runners = append(runners, s)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.stop = cancel
	d := events.NewDispatcher(p.ch, runners...)
	go func() {
		defer close(p.done)
		d.Run(ctx)
	}()
	return p
}

// close delivers what the engine queued (its last INIT events) and closes
// the pipe. Call it after the engine's Run has returned.
func (p *eventPlumbing) close() {
	p.stop()
	<-p.done
	if p.pipe != nil {
		_ = p.pipe.Close()
	}
	if p.shell != nil {
		p.shell.CloseAfter(shutdownActions)
	}
}
