package main

import (
	"context"
	"log"

	"github.com/bsdcarp/bsdcarp/carp/engine"
	"github.com/bsdcarp/bsdcarp/carp/events"
)

// eventPlumbing carries the engine's devd events to the devd.pipe (and,
// later, to the devd.conf actions: add their Runner to runners).
type eventPlumbing struct {
	ch   chan engine.Event // engine.Options.Events
	pipe *events.PipeServer
	stop context.CancelFunc
	done chan struct{}
}

// startEvents opens the devd.pipe at path ("" or "off": none) and starts
// the dispatcher. A pipe that cannot be opened is logged, not fatal: the
// failover duties come first.
func startEvents(path string, lg *log.Logger) *eventPlumbing {
	p := &eventPlumbing{ch: make(chan engine.Event, engine.DefaultEventQueue), done: make(chan struct{})}
	var runners []events.Runner
	if path != "" && path != "off" {
		s, err := events.ListenPipe(path, events.PipeOptions{Log: lg})
		if err != nil {
			lg.Printf("carpd: %v: no devd pipe", err)
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
}
