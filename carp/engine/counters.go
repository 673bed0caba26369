package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/bsdcarp/bsdcarp/carp"
)

// The advert counters of every vhid (carp.Counter: the value and the chains
// seen, which make a replayed advert stale) are kept in the runtime state
// directory, so that an engine restarted within one boot still knows every
// advert it has seen: a capture replayed right after a restart is dropped
// too. Like the rest of the runtime state they do not outlive a reboot.
// The counters are a cache, not configuration: a damaged file is logged and
// ignored, never a reason not to start.
//
// They are written in place, into two files in turn (countersSlots), each
// write numbered: a file created and renamed every 10 seconds was more than
// a fifth of the CPU of a BACKUP of one vhid (an inode made and dropped,
// and ext4 writing the data out at the rename: about 160 µs a write); an
// existing file opened, written over and closed is about 13 µs
// (BenchmarkCountersWrite and BenchmarkCountersWriteRenamed, 16 vhids, on
// ext4). A write cut short (carpd killed in the middle of a large one)
// damages only the file being written; the other still holds the previous
// version, and the loader takes the valid file with the higher number.
const (
	countersFile  = "counters.json"
	countersFileB = "counters.b.json"
	// countersEvery is how often changed counters are written: a crash
	// loses at most this much of what was seen, and a replay of an advert
	// from that last stretch is taken once after the restart.
	countersEvery = 10 * time.Second
)

// countersSlots are the files written in turn: write n (from 1) goes to
// countersSlots[(n-1)%2], so the first one is counters.json.
var countersSlots = [2]string{countersFile, countersFileB}

// countersSlot is the index into countersSlots of write seq.
func countersSlot(seq uint64) int { return int((seq + 1) % 2) }

// countersDoc is the content of a counters file, followed by any number
// of spaces (what is left of a longer earlier version).
type countersDoc struct {
	Seq      uint64                       `json:"seq"`
	Counters map[string]carp.CounterState `json:"counters"`
}

// decodeCounters reads a counters file. A file written before the counters
// were numbered (snapshots of 0.1.0 before the two files) holds only the
// map: it counts as write 0.
func decodeCounters(b []byte) (uint64, map[string]carp.CounterState, error) {
	var doc countersDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return 0, nil, err
	}
	if doc.Counters != nil {
		return doc.Seq, doc.Counters, nil
	}
	m := map[string]carp.CounterState{}
	if err := json.Unmarshal(b, &m); err != nil {
		return 0, nil, err
	}
	return 0, m, nil
}

// counterKey names a vhid in counters.json: "carp0/1", "em0/3".
func counterKey(iface string, vhid uint8) string {
	return iface + "/" + strconv.Itoa(int(vhid))
}

// loadCounters reads both counters files and returns the counters of the
// valid one written last (none: an empty map), and that write's number. A
// damaged file is logged: at warning level when it leaves nothing to
// restore, at debug level when the other file is used.
func (e *Engine) loadCounters() (map[string]carp.CounterState, uint64) {
	m, seq := map[string]carp.CounterState{}, uint64(0)
	if e.opts.StateDir == "" {
		return m, 0
	}
	found := false
	var bad []string
	for _, name := range countersSlots {
		path := filepath.Join(e.opts.StateDir, name)
		b, err := readBounded(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		var s uint64
		var c map[string]carp.CounterState
		if err == nil {
			s, c, err = decodeCounters(b)
		}
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s ignored (replay protection starts afresh): %v", path, err))
			continue
		}
		if !found || s > seq {
			m, seq, found = c, s, true
		}
	}
	for _, msg := range bad {
		if found {
			e.debugf("carpd: %s", msg)
		} else {
			e.warnf("carpd: %s", msg)
		}
	}
	return m, seq
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
func (e *Engine) counterWriter(stop <-chan struct{}, done chan<- struct{}, files *counterFiles) {
	defer close(done)
	failed := false
	write := func(b []byte) {
		if err := files.write(b); err != nil {
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

// counterFiles writes numbered versions of the counters into the two
// files of countersSlots in turn, in place. It is used by one goroutine.
// No file stays open between writes: the state directory's file system
// can still be remounted read-only or unmounted.
type counterFiles struct {
	dir string
	seq uint64 // number of the last write
	buf []byte
}

// shrinkSlack is how much longer than its content a counters file may stay
// (spaces left of a longer version) before it is cut to the content.
const shrinkSlack = 64 << 10

// write writes b (the JSON of the counters map) as the next numbered
// version. The new content is padded with spaces to the file's length, so
// one write replaces the whole file and a process killed at any point
// leaves the old or the new version, or, for a write cut short, a damaged
// file beside the intact other one. A symlink in a file's place is
// refused.
func (w *counterFiles) write(b []byte) error {
	w.seq++
	name := countersSlots[countersSlot(w.seq)]
	fail := func(err error) error { return fmt.Errorf("engine: save %s: %w", name, err) }
	f, err := os.OpenFile(filepath.Join(w.dir, name), os.O_WRONLY|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return fail(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	if !fi.Mode().IsRegular() {
		return fail(errors.New("not a regular file"))
	}
	w.buf = append(strconv.AppendUint(append(w.buf[:0], `{"seq":`...), w.seq, 10), `,"counters":`...)
	w.buf = append(append(w.buf, b...), '}')
	n := int64(len(w.buf))
	for int64(len(w.buf)) < fi.Size() {
		w.buf = append(w.buf, ' ')
	}
	if _, err := f.WriteAt(w.buf, 0); err != nil {
		return fail(err)
	}
	if fi.Size() > n+shrinkSlack {
		// The file is whole before the cut, and whole after it.
		if err := f.Truncate(n); err != nil {
			return fail(err)
		}
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	return nil
}
