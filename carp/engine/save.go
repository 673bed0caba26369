package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bsdcarp/bsdcarp/carp/api"
)

// A change an admin makes during an incident (a vhid down, state backup, a
// demotion) must never wait for the disk: the engine commits it first and
// only then writes config.json. When that write fails (the state directory
// is full, read-only or gone), the change stays in effect, the caller gets a
// *api.SaveError as a warning, the failure is logged (rate-limited) and the
// engine writes the file again every saveRetry from its own loop until it
// succeeds. writeAtomic never leaves a partial file: the last good
// config.json stays as it was until a complete new one replaces it.

// saveRetry is how often a failed save of config.json is tried again.
const saveRetry = 5 * time.Second

// saveLogEvery bounds how often a persisting save failure is logged again.
const saveLogEvery = 5 * time.Minute

// causeText is the operating system's part of a failure to save file
// ("write /run/carpd/config.json: no space left on device"), without the
// engine's wrapping, and naming file rather than the temporary file that
// writeAtomic writes first, so the text is the same at every attempt.
func causeText(file string, err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		p := pe.Path
		if filepath.Dir(p) == filepath.Dir(file) && strings.HasPrefix(filepath.Base(p), "."+filepath.Base(file)+".") {
			p = file
		}
		return pe.Op + " " + p + ": " + pe.Err.Error()
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Op + " " + file + ": " + le.Err.Error()
	}
	return err.Error()
}

// saver tracks config.json on disk. Owned by the Run goroutine, except
// that the writes themselves run off it (see saveJob).
type saver struct {
	saved    []byte    // what config.json holds, when known
	savedSeq uint64    // the job that wrote saved
	queued   []byte    // the content of the last job handed out
	seq      uint64    // the last job's number
	pending  bool      // the configuration in effect is not saved yet
	retrying bool      // a retry's write is under way off the loop
	retryAt  time.Time // next attempt while pending
	loggedAt time.Time // last failure logged, while pending
	// write replaces writeAtomic in tests that make saving fail.
	write func(dir, name string, b []byte) error
	// enc is each interface's JSON as last encoded, with the configuration
	// it encodes (see encode).
	enc map[string]encodedIface
}

// encodedIface is one interface's part of config.json: head is the JSON
// of the interface without its vhids, with its closing brace, vhids[j]
// that of cfg.VHIDs[j].
type encodedIface struct {
	// cfg shares its vhids with the configuration encoded, which no one
	// changes in place (a change is a new Config, see cloneFor): the same
	// array is the same vhids.
	cfg   IfaceConfig
	head  []byte
	vhids [][]byte
}

// encode is encodeConfig(c), byte for byte, re-encoding only what changed
// since the last call: a line changes one interface, and of that often
// one vhid; encoding 1,020 vhids, or the 255 of one interface, at every
// line cost more than the rest of the line.
func (s *saver) encode(c *Config) ([]byte, error) {
	enc := make(map[string]encodedIface, len(c.Ifaces))
	b := append(make([]byte, 0, len(s.saved)+64), `{"version":`...)
	b = strconv.AppendInt(b, int64(c.Version), 10)
	if len(c.Knobs) > 0 {
		k, err := json.Marshal(c.Knobs)
		if err != nil {
			return nil, fmt.Errorf("engine: encode configuration: %w", err)
		}
		b = append(append(b, `,"knobs":`...), k...)
	}
	for i, ifc := range c.Ifaces {
		// Taken out first: encodeIface may change its buffers (and were
		// an interface listed twice, the second must not reuse them).
		old := s.enc[ifc.Name]
		delete(s.enc, ifc.Name)
		e, err := encodeIface(old, ifc)
		if err != nil {
			return nil, err
		}
		enc[ifc.Name] = e
		if i == 0 {
			b = append(b, `,"ifaces":[`...)
		} else {
			b = append(b, ',')
		}
		// json.Marshal's IfaceConfig: the fields, then (omitempty) the vhids.
		b = append(b, e.head[:len(e.head)-1]...)
		for j, vb := range e.vhids {
			if j == 0 {
				b = append(b, `,"vhids":[`...)
			} else {
				b = append(b, ',')
			}
			b = append(b, vb...)
		}
		if len(e.vhids) > 0 {
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	if len(c.Ifaces) > 0 {
		b = append(b, ']')
	}
	s.enc = enc
	return append(b, '}'), nil
}

// encodeIface is the encoding of ifc, reusing what old (the last encoding
// of an interface of that name, if any) has of it. old's buffers may be
// reused: old is not used again.
func encodeIface(old encodedIface, ifc IfaceConfig) (encodedIface, error) {
	fail := func(err error) (encodedIface, error) {
		return encodedIface{}, fmt.Errorf("engine: encode configuration: %w", err)
	}
	sameHead := old.head != nil && old.cfg.Name == ifc.Name && old.cfg.Clone == ifc.Clone && old.cfg.Down == ifc.Down
	if sameHead && len(old.cfg.VHIDs) == len(ifc.VHIDs) && (len(ifc.VHIDs) == 0 || &old.cfg.VHIDs[0] == &ifc.VHIDs[0]) {
		return old, nil // the same vhids
	}
	n := encodedIface{cfg: ifc, head: old.head}
	if !sameHead {
		h, err := json.Marshal(IfaceConfig{Name: ifc.Name, Clone: ifc.Clone, Down: ifc.Down})
		if err != nil {
			return fail(err)
		}
		n.head = h
	}
	if len(old.vhids) == len(ifc.VHIDs) {
		n.vhids = old.vhids // replaced in place: position j is read before it is written
	} else {
		n.vhids = make([][]byte, len(ifc.VHIDs))
	}
	var at *[256]int // old's vhids by number, + 1; made when positions differ
	for j, v := range ifc.VHIDs {
		k := -1
		switch {
		case j < len(old.cfg.VHIDs) && old.cfg.VHIDs[j].VHID == v.VHID:
			k = j
		case len(old.cfg.VHIDs) > 0:
			if at == nil {
				at = new([256]int)
				for i, o := range old.cfg.VHIDs {
					at[o.VHID] = i + 1
				}
			}
			k = at[v.VHID] - 1
		}
		if k >= 0 && (k == j || &n.vhids[0] != &old.vhids[0]) && sameVHID(old.cfg.VHIDs[k], v) {
			n.vhids[j] = old.vhids[k]
			continue
		}
		vb, err := json.Marshal(v)
		if err != nil {
			return fail(err)
		}
		n.vhids[j] = vb
	}
	return n, nil
}

func (s *saver) writer() func(dir, name string, b []byte) error {
	if s.write == nil {
		return writeAtomic
	}
	return s.write
}

// initSave records what New loaded: a configuration read from config.json
// is already saved, so a command that does not change it needs no write.
func (e *Engine) initSave() {
	if e.opts.StateDir == "" {
		return
	}
	if _, err := os.Stat(filepath.Join(e.opts.StateDir, configFile)); err == nil {
		e.save.saved, _ = encodeConfig(e.cfg)
	}
}

// encodeConfig is config.json's content: compact JSON, one line (it is
// written at every configuration line, and indenting a thousand vhids
// cost more than the rest of the write; `jq . config.json` shows it
// indented).
func encodeConfig(c *Config) ([]byte, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("engine: encode configuration: %w", err)
	}
	return b, nil
}

// A saveJob is one content of config.json to write. The event loop makes
// it (queueSave) and records the outcome (saveDone); the write itself, two
// fsyncs on a disk that may be slow, runs on the caller's goroutine
// (writeSave), so that the adverts of a vhid at a 10 ms interval never
// wait for the disk. Jobs are numbered: a job that finds a later one
// already written writes nothing, since every job is the whole
// configuration.
type saveJob struct {
	seq   uint64
	b     []byte
	write func(dir, name string, b []byte) error
}

// writeState orders the writes of config.json (see saveJob).
type writeState struct {
	mu      sync.Mutex
	written uint64 // the last job written
}

// queueSave encodes the configuration in effect after a committed change
// and returns the job that saves it, or nil when there is nothing to write
// (no state directory, or the content of the last job). An encoding
// failure is a *api.SaveError at once.
func (e *Engine) queueSave(now time.Time) (*saveJob, error) {
	if e.opts.StateDir == "" {
		return nil, nil
	}
	b, err := e.save.encode(e.cfg)
	if err != nil {
		return nil, e.saveFailed(now, err)
	}
	last := e.save.queued
	if e.save.seq == 0 {
		last = e.save.saved
	}
	if !e.save.pending && bytes.Equal(b, last) {
		return nil, nil
	}
	e.save.seq++
	e.save.queued = b
	return &saveJob{seq: e.save.seq, b: b, write: e.save.writer()}, nil
}

// writeSave writes j unless a later job is on disk already. Safe to call
// from any goroutine.
func (e *Engine) writeSave(j *saveJob) error {
	e.writes.mu.Lock()
	defer e.writes.mu.Unlock()
	if j.seq <= e.writes.written {
		return nil
	}
	if err := j.write(e.opts.StateDir, configFile, j.b); err != nil {
		return err
	}
	e.writes.written = j.seq
	return nil
}

// saveDone records the outcome of job j on the event loop: nil, or a
// *api.SaveError after a failure (logged, rate-limited, and retried every
// saveRetry).
func (e *Engine) saveDone(now time.Time, j *saveJob, err error) error {
	if err != nil && j.seq <= e.save.savedSeq {
		return nil // a later job, which holds this one's change, is on disk
	}
	if err != nil {
		return e.saveFailed(now, err)
	}
	if j.seq >= e.save.savedSeq {
		e.save.saved, e.save.savedSeq = j.b, j.seq
	}
	if e.save.pending && j.seq == e.save.seq {
		e.infof("carpd: configuration saved to %s", filepath.Join(e.opts.StateDir, configFile))
		e.save.pending = false
	}
	return nil
}

// saveFailed notes a failed save: the change stays in effect, the caller
// gets a *api.SaveError, and the loop tries again every saveRetry.
func (e *Engine) saveFailed(now time.Time, err error) error {
	file := filepath.Join(e.opts.StateDir, configFile)
	se := &api.SaveError{File: file, Cause: causeText(file, err), Err: err}
	if !e.save.pending || now.Sub(e.save.loggedAt) >= saveLogEvery {
		e.errorf("carpd: configuration not saved, in effect all the same; retrying every %v: %s", saveRetry, causeText(se.File, err))
		e.save.loggedAt = now
	}
	e.save.pending = true
	e.save.retryAt = now.Add(saveRetry)
	return se
}

// saveOffLoop writes j (when not nil) on the calling goroutine and records
// the outcome on the event loop: what Ifconfig and SetSysctl return after
// their change took effect.
func (e *Engine) saveOffLoop(ctx context.Context, j *saveJob) error {
	if j == nil {
		return nil
	}
	werr := e.writeSave(j)
	var err error
	// Not ctx: the outcome must reach the loop (a failure is retried from
	// there) even when the caller stopped waiting during a slow write.
	if cerr := e.call(context.Background(), func() { err = e.saveDone(e.opts.Now(), j, werr) }); cerr != nil {
		if werr != nil {
			file := filepath.Join(e.opts.StateDir, configFile)
			return &api.SaveError{File: file, Cause: causeText(file, werr), Err: werr}
		}
		return nil // written; the engine stopped before it could note it
	}
	return err
}

// retrySave is the event loop's timer for a pending save.
// The retry writes off the loop too (a disk that failed may be slow as
// well); saveDone, back on the loop, logs a failure (rate-limited) and
// sets the next attempt.
func (e *Engine) retrySave(now time.Time) {
	if !e.save.pending || e.save.retrying || now.Before(e.save.retryAt) {
		return
	}
	j, err := e.queueSave(now)
	if j == nil || err != nil {
		return // nothing to write, or an encoding failure noted for the next attempt
	}
	e.save.retrying = true
	go func() {
		werr := e.writeSave(j)
		_ = e.call(context.Background(), func() {
			e.save.retrying = false
			_ = e.saveDone(e.opts.Now(), j, werr)
		})
	}()
}

// saveDeadline is when the next save attempt is due, if one is pending.
func (e *Engine) saveDeadline() (time.Time, bool) {
	return e.save.retryAt, e.save.pending && !e.save.retrying
}

// flushSave makes a last attempt when the engine stops; what cannot be
// saved is said in the log, since the next start brings back the last saved
// configuration.
func (e *Engine) flushSave() {
	// Also when a job was handed out whose write is not known to be done
	// (its caller may be stopped with carpd before it writes).
	if !e.save.pending && e.save.seq <= e.save.savedSeq {
		return
	}
	file := filepath.Join(e.opts.StateDir, configFile)
	b, err := encodeConfig(e.cfg)
	if err == nil {
		// Through writeSave: a caller's write still under way must not
		// replace this one with an older configuration.
		e.save.seq++
		err = e.writeSave(&saveJob{seq: e.save.seq, b: b, write: e.save.writer()})
	}
	if err != nil {
		e.errorf("carpd: configuration not saved at stop, the next start uses the last saved one: %s", causeText(file, err))
		return
	}
	e.save.saved, e.save.savedSeq, e.save.pending = b, e.save.seq, false
	e.infof("carpd: configuration saved to %s", file)
}
