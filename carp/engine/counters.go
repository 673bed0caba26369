package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"time"

	"github.com/bsdcarp/bsdcarp/carp"
)

// The advert counters of every vhid (carp.Counter: the value and the chains
// seen, which make a replayed advert stale) are kept in the runtime state
// directory, so that an engine restarted within one boot still knows every
// advert it has seen: a capture replayed right after a restart is dropped
// too. Like the rest of the runtime state they do not outlive a reboot.
// counters.json is a cache, not configuration: a damaged one is logged and
// ignored, never a reason not to start.
const (
	countersFile = "counters.json"
	// countersEvery is how often changed counters are written: a crash
	// loses at most this much of what was seen, and a replay of an advert
	// from that last stretch is taken once after the restart.
	countersEvery = 10 * time.Second
)

// counterKey names a vhid in counters.json: "carp0/1", "em0/3".
func counterKey(iface string, vhid uint8) string {
	return iface + "/" + strconv.Itoa(int(vhid))
}

// loadCounters reads counters.json; a missing file is an empty map, a bad
// one is logged and ignored.
func (e *Engine) loadCounters() map[string]carp.CounterState {
	m := map[string]carp.CounterState{}
	if e.opts.StateDir == "" {
		return m
	}
	path := filepath.Join(e.opts.StateDir, countersFile)
	b, err := readBounded(path)
	if errors.Is(err, fs.ErrNotExist) {
		return m
	}
	if err == nil {
		err = json.Unmarshal(b, &m)
	}
	if err != nil {
		e.warnf("carpd: %s ignored (replay protection starts afresh): %v", path, err)
		return map[string]carp.CounterState{}
	}
	return m
}

// saveCounters hands the counters of the running vhids to the writer when
// they changed since the last time. The file is written off the engine
// goroutine (see counterWriter) and without fsync: it is a cache, and a
// slow or hung disk must never delay an advert.
func (e *Engine) saveCounters(now time.Time) {
	e.countersAt = now.Add(countersEvery)
	if e.opts.StateDir == "" {
		return
	}
	b, err := e.encodeCounters()
	if err != nil || bytes.Equal(b, e.countersSaved) {
		return
	}
	e.countersSaved = b
	select {
	case <-e.countersOut: // an older version not written yet: this one replaces it
	default:
	}
	e.countersOut <- b
}

func (e *Engine) encodeCounters() ([]byte, error) {
	m := make(map[string]carp.CounterState, len(e.hosts))
	for _, h := range e.hosts {
		if _, ok := h.counter.Value(); ok {
			m[counterKey(h.iface, h.cfg.VHID)] = h.counter.State()
		}
	}
	return json.Marshal(m)
}

// counterWriter writes what saveCounters hands it until stop is closed,
// then writes what is still pending. Failures are logged once per run of
// failures.
func (e *Engine) counterWriter(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	failed := false
	write := func(b []byte) {
		if err := writeCache(e.opts.StateDir, countersFile, b); err != nil {
			if !failed {
				e.errorf("carpd: %v", fmt.Errorf("save advert counters: %w", err))
			}
			failed = true
			return
		}
		failed = false
	}
	for {
		select {
		case b := <-e.countersOut:
			write(b)
		case <-stop:
			select {
			case b := <-e.countersOut:
				write(b)
			default:
			}
			return
		}
	}
}
