// Package events carries carpd's devd(8) events (engine.Event) from the
// engine to whoever acts on them: a Dispatcher drains the engine's Events
// channel in order and hands every event to its Runners; PipeServer is the
// devd.pipe socket of programs that follow events; Shell runs already
// expanded action commands through /bin/sh, one at a time, in order.
//
// Nothing here may ever block the engine: the engine drops what its
// channel cannot hold, and every Runner must return promptly (each of ours
// only queues, bounded, and drops and counts on overflow).
package events

import (
	"context"

	"github.com/bsdcarp/bsdcarp/carp/engine"
)

// Runner is a consumer of events: a devd.conf rule set, the devd.pipe.
//
// Run is called on the dispatcher's goroutine, once per event, in the
// engine's order. It must not block: long work (a shell command, a slow
// socket) belongs on the runner's own bounded queue.
type Runner interface {
	Run(ev engine.Event)
}

// RunnerFunc adapts a function to Runner.
type RunnerFunc func(ev engine.Event)

// Run calls f(ev).
func (f RunnerFunc) Run(ev engine.Event) { f(ev) }

// Dispatcher fans the engine's events out to its runners, in order.
type Dispatcher struct {
	in      <-chan engine.Event
	runners []Runner
}

// NewDispatcher returns a dispatcher of the events of in (the channel given
// to engine.Options.Events) to runners, each event to every runner in the
// order given.
func NewDispatcher(in <-chan engine.Event, runners ...Runner) *Dispatcher {
	return &Dispatcher{in: in, runners: runners}
}

// Run dispatches until ctx ends or in is closed. Events still queued when
// ctx ends are delivered first (without waiting for more), so that the
// INIT events of a stop reach the runners when the engine has already
// returned.
func (d *Dispatcher) Run(ctx context.Context) {
	for {
		select {
		case ev, ok := <-d.in:
			if !ok {
				return
			}
			d.deliver(ev)
		case <-ctx.Done():
			for {
				select {
				case ev, ok := <-d.in:
					if !ok {
						return
					}
					d.deliver(ev)
				default:
					return
				}
			}
		}
	}
}

func (d *Dispatcher) deliver(ev engine.Event) {
	for _, r := range d.runners {
		r.Run(ev)
	}
}
