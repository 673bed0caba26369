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
// ext4). Each version ends with its number again: a write cut short
// (carpd killed in the middle of a large one, or a full disk) leaves the
// new beginning before the old end, which the loader refuses, and the
// other file still holds the version before; the loader takes the valid
// file with the higher number, and a failed write is retried in the same
// file, never the other.
const (
	countersFile  = "counters.json"
	countersFileB = "counters.b.json"
	// countersEvery is how often changed counters are written: a crash
	// loses at most this much of what was seen, and a replay of an advert
	// from that last stretch is taken once after the restart.
	countersEvery = 10 * time.Second
)

// countersSlots are the files written in turn: write n goes to
// countersSlots[n%2]. A counters.json of the map alone (written by
// snapshots of 0.1.0 before the two files) is write 0, so the first write
// after it goes to the other file.
var countersSlots = [2]string{countersFile, countersFileB}

// countersSlot is the index into countersSlots of write seq.
func countersSlot(seq uint64) int { return int(seq % 2) }

// countersDoc is the content of a counters file, followed by any number
// of spaces (what is left of a longer earlier version). End repeats Seq:
// it is written last.
type countersDoc struct {
	Seq      uint64                       `json:"seq"`
	Counters map[string]carp.CounterState `json:"counters"`
	End      uint64                       `json:"end"`
}

// errCountersMixed is a counters file whose end is not its beginning's.
var errCountersMixed = errors.New("cut short: its end is of another version")

// decodeCounters reads a counters file. A file written before the counters
// were numbered holds only the map: it counts as write 0.
func decodeCounters(b []byte) (uint64, map[string]carp.CounterState, error) {
	var doc countersDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return 0, nil, err
	}
	if doc.Counters != nil {
		if doc.End != doc.Seq {
			return 0, nil, errCountersMixed
		}
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
// restore, at debug level when the other file is used. An empty file (a
// carpd killed between making it and writing it) counts as missing.
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
		if errors.Is(err, fs.ErrNotExist) || err == nil && len(b) == 0 {
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
// they changed since the last time. The files are written off the engine
// goroutine (see counterWriter) and without fsync: they are a cache, and a
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
// then writes what is still pending. A failure is logged once per file and
// run of failures.
func (e *Engine) counterWriter(stop <-chan struct{}, done chan<- struct{}, files *counterFiles) {
	defer close(done)
	var failed [2]bool
	write := func(b []byte) {
		i, err := files.write(b)
		if err != nil {
			if !failed[i] {
				e.errorf("carpd: %v", fmt.Errorf("save advert counters: %w", err))
			}
			failed[i] = true
			return
		}
		failed[i] = false
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
	seq uint64 // number of the last write, or of the file loaded at start
	buf []byte
}

// shrinkSlack is how much longer than its content a counters file may stay
// (spaces left of a longer version) before it is cut to the content.
const shrinkSlack = 64 << 10

// write writes b (the JSON of the counters map) as the next numbered
// version, and returns the slot it went to. The new content is padded with
// spaces to the file's length, so one write replaces the whole file; it
// ends with its number, so a write cut short is refused by the loader. A
// file that could not be opened is skipped (the next version goes to the
// other); one a write failed in is written again next time (the other
// keeps the last version that is whole). Only a regular file of carpd's
// user with one link is written, never through a symlink, never blocking.
func (w *counterFiles) write(b []byte) (int, error) {
	next := w.seq + 1
	i := countersSlot(next)
	name := countersSlots[i]
	fail := func(err error) (int, error) { return i, fmt.Errorf("engine: save %s: %w", name, err) }
	f, err := os.OpenFile(filepath.Join(w.dir, name), os.O_WRONLY|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0o600)
	if err != nil {
		w.seq = next
		return fail(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err == nil {
		err = counterFileUsable(fi)
	}
	if err != nil {
		w.seq = next
		return fail(err)
	}
	if fi.Mode().Perm() != 0o600 {
		if err := f.Chmod(0o600); err != nil {
			w.seq = next
			return fail(err)
		}
	}
	seq := strconv.AppendUint(nil, next, 10)
	w.buf = append(append(append(w.buf[:0], `{"seq":`...), seq...), `,"counters":`...)
	w.buf = append(append(append(append(w.buf, b...), `,"end":`...), seq...), '}')
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
	w.seq = next
	return i, nil
}

// counterFileUsable refuses what is not a regular file of carpd's user
// with one link: a FIFO, device or directory in a counters file's place,
// or a hard link to some other file.
func counterFileUsable(fi os.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return errors.New("not a regular file")
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("owned by uid %d, not %d", st.Uid, os.Geteuid())
	}
	if st.Nlink != 1 {
		return fmt.Errorf("%d links to it", st.Nlink)
	}
	return nil
}
