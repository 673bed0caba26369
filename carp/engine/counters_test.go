package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/bsdcarp/bsdcarp/carp"
)

// countersEngine is an engine with only what loadCounters uses, logging at
// debug level into logs.
func countersEngine(dir string, logs *bytes.Buffer) *Engine {
	h := slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})
	return &Engine{opts: Options{StateDir: dir}, log: slog.New(h)}
}

// someCounters is a counters map of n vhids whose values start at base.
func someCounters(n int, base uint64) map[string]carp.CounterState {
	m := map[string]carp.CounterState{}
	for i := range n {
		m[counterKey(fmt.Sprintf("em%d", i/255), uint8(i%255+1))] = carp.CounterState{
			Value: base + uint64(i), Set: true, IPv4: []uint64{base + uint64(i)}}
	}
	return m
}

// countersJSON is m as saveCounters hands it to the writer.
func countersJSON(t testing.TB, m map[string]carp.CounterState) []byte {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeCounters(t testing.TB, w *counterFiles, m map[string]carp.CounterState) int {
	t.Helper()
	i, err := w.write(countersJSON(t, m))
	if err != nil {
		t.Fatal(err)
	}
	return i
}

// readSlot decodes one counters file as the loader does.
func readSlot(t *testing.T, dir, name string) (uint64, map[string]carp.CounterState) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	seq, m, err := decodeCounters(b)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return seq, m
}

func sameCounters(t *testing.T, what string, got, want map[string]carp.CounterState) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if !bytes.Equal(g, w) {
		t.Errorf("%s: got %d vhids %.80s..., want %d vhids %.80s...", what, len(got), g, len(want), w)
	}
}

// Writes go to counters.b.json and counters.json in turn, each numbered,
// and the loader takes the one written last.
func TestCounterFilesTakeTurns(t *testing.T) {
	dir := t.TempDir()
	w := &counterFiles{dir: dir}
	m1, m2, m3 := someCounters(3, 100), someCounters(3, 200), someCounters(2, 300)
	if i := writeCounters(t, w, m1); i != 1 {
		t.Errorf("write 1 went to slot %d, want 1 (%s)", i, countersFileB)
	}
	if _, err := os.Stat(filepath.Join(dir, countersFile)); !os.IsNotExist(err) {
		t.Fatalf("first write made %s (err %v); want only %s", countersFile, err, countersFileB)
	}
	size1 := fileSize(t, filepath.Join(dir, countersFileB))
	writeCounters(t, w, m2)
	writeCounters(t, w, m3) // shorter than m1: padded to counters.b.json's length
	if got := fileSize(t, filepath.Join(dir, countersFileB)); got != size1 {
		t.Errorf("%s is %d bytes after a shorter version, want %d (padded)", countersFileB, got, size1)
	}
	seq, m := readSlot(t, dir, countersFileB)
	if seq != 3 {
		t.Errorf("%s holds write %d, want 3", countersFileB, seq)
	}
	sameCounters(t, countersFileB, m, m3)
	seq, m = readSlot(t, dir, countersFile)
	if seq != 2 {
		t.Errorf("%s holds write %d, want 2", countersFile, seq)
	}
	sameCounters(t, countersFile, m, m2)
	for _, name := range countersSlots {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
	var logs bytes.Buffer
	got, seq := countersEngine(dir, &logs).loadCounters()
	if seq != 3 {
		t.Errorf("loaded write %d, want 3", seq)
	}
	sameCounters(t, "loaded", got, m3)
	if logs.Len() != 0 {
		t.Errorf("log lines for two good files:\n%s", logs.String())
	}
}

// A write cut short leaves the new beginning before the old end: even
// when that reads as JSON (same vhids, numbers of the same width), the
// loader refuses it and takes the other file, one version older, logging
// the damaged one at debug level only; the writer, going on from that
// version, writes the damaged file again next.
func TestCountersLoadSurvivesATornWrite(t *testing.T) {
	dir := t.TempDir()
	w := &counterFiles{dir: dir}
	m1, m2, m3 := someCounters(40, 1000), someCounters(40, 2000), someCounters(40, 3000)
	writeCounters(t, w, m1) // counters.b.json
	writeCounters(t, w, m2) // counters.json
	// Write 3, to counters.b.json, cut short half way.
	scratch := t.TempDir()
	writeCounters(t, &counterFiles{dir: scratch, seq: 2}, m3)
	whole, err := os.ReadFile(filepath.Join(scratch, countersFileB))
	if err != nil {
		t.Fatal(err)
	}
	torn := filepath.Join(dir, countersFileB)
	f, err := os.OpenFile(torn, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(whole[:len(whole)/2], 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	mixed, err := os.ReadFile(torn)
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(mixed) {
		t.Fatalf("the cut write does not read as JSON; the test wants one that does:\n%s", mixed)
	}
	var logs bytes.Buffer
	e := countersEngine(dir, &logs)
	got, seq := e.loadCounters()
	if seq != 2 {
		t.Fatalf("loaded write %d, want 2 (the intact file)", seq)
	}
	sameCounters(t, "loaded", got, m2)
	if !strings.Contains(logs.String(), "level=DEBUG") || strings.Contains(logs.String(), "level=WARN") ||
		!strings.Contains(logs.String(), errCountersMixed.Error()) {
		t.Errorf("want the mixed file logged at debug level only:\n%s", logs.String())
	}
	w2 := &counterFiles{dir: dir, seq: seq}
	if i := writeCounters(t, w2, m3); i != countersSlot(3) {
		t.Errorf("next write went to slot %d, want %d", i, countersSlot(3))
	}
	if seq, m := readSlot(t, dir, countersFileB); seq != 3 {
		t.Errorf("%s holds write %d, want 3", countersFileB, seq)
	} else {
		sameCounters(t, countersFileB, m, m3)
	}
	// An empty file (carpd killed right after making it) is no damage.
	if err := os.WriteFile(filepath.Join(dir, countersFileB), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	logs.Reset()
	if _, seq := e.loadCounters(); seq != 2 || logs.Len() != 0 {
		t.Errorf("with an empty %s: loaded write %d (want 2), logs:\n%s", countersFileB, seq, logs.String())
	}
	// Both damaged: nothing to restore, said at warning level, as before.
	for _, name := range countersSlots {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(`{"seq":9,"coun`), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	logs.Reset()
	got, seq = e.loadCounters()
	if len(got) != 0 || seq != 0 {
		t.Errorf("two damaged files gave %d vhids, write %d", len(got), seq)
	}
	if n := strings.Count(logs.String(), "ignored (replay protection starts afresh)"); n != 2 ||
		!strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("want both files named at warning level:\n%s", logs.String())
	}
}

// A file written before the counters were numbered holds the map alone.
func TestCountersLoadsUnnumberedFile(t *testing.T) {
	dir := t.TempDir()
	m := someCounters(5, 77)
	b := countersJSON(t, m)
	if err := os.WriteFile(filepath.Join(dir, countersFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	got, seq := countersEngine(dir, &logs).loadCounters()
	if seq != 0 {
		t.Errorf("write %d, want 0", seq)
	}
	sameCounters(t, "loaded", got, m)
	w := &counterFiles{dir: dir, seq: seq}
	writeCounters(t, w, someCounters(1, 5)) // write 1, beside it
	if seq, m := readSlot(t, dir, countersFileB); seq != 1 || len(m) != 1 {
		t.Errorf("%s holds write %d of %d vhids, want write 1 of 1", countersFileB, seq, len(m))
	}
	if _, m := readSlot(t, dir, countersFile); len(m) != 5 {
		t.Errorf("the first write changed %s: %d vhids, want the 5 it held", countersFile, len(m))
	}
}

// A file that shrank keeps trailing spaces up to shrinkSlack, and is cut
// to its content beyond that; it reads back whole either way.
func TestCounterFilesShrink(t *testing.T) {
	dir := t.TempDir()
	w := &counterFiles{dir: dir}
	path := filepath.Join(dir, countersFileB)
	big := someCounters(1020, 1<<40)
	writeCounters(t, w, big) // write 1
	bigSize := fileSize(t, path)
	if bigSize <= shrinkSlack {
		t.Fatalf("1,020 vhids are %d bytes: not enough to test the cut", bigSize)
	}
	writeCounters(t, w, big)                       // write 2, other file
	writeCounters(t, w, someCounters(1000, 1<<40)) // write 3: a little shorter, padded
	if got := fileSize(t, path); got != bigSize {
		t.Errorf("after a small shrink the file is %d bytes, want %d (padded)", got, bigSize)
	}
	if _, m := readSlot(t, dir, countersFileB); len(m) != 1000 {
		t.Errorf("padded file reads %d vhids, want 1000", len(m))
	}
	writeCounters(t, w, big)                // write 4
	writeCounters(t, w, someCounters(1, 1)) // write 5: far shorter, cut
	if got := fileSize(t, path); got > 200 {
		t.Errorf("after a large shrink the file is %d bytes, want it cut to its content", got)
	}
	if seq, m := readSlot(t, dir, countersFileB); seq != 5 || len(m) != 1 {
		t.Errorf("cut file reads write %d of %d vhids, want write 5 of 1", seq, len(m))
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// A file removed while carpd runs is made again at its next turn; a
// symlink put in its place is refused, and what it points to left alone.
func TestCounterFilesRemovedOrReplaced(t *testing.T) {
	dir := t.TempDir()
	w := &counterFiles{dir: dir}
	path := filepath.Join(dir, countersFileB)
	writeCounters(t, w, someCounters(2, 1)) // write 1
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	writeCounters(t, w, someCounters(2, 2)) // write 2
	writeCounters(t, w, someCounters(2, 3)) // write 3: counters.b.json again
	if seq, _ := readSlot(t, dir, countersFileB); seq != 3 {
		t.Errorf("%s holds write %d after its removal, want 3", countersFileB, seq)
	}
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, path); err != nil {
		t.Fatal(err)
	}
	writeCounters(t, w, someCounters(2, 4)) // write 4, the other file
	b := countersJSON(t, someCounters(2, 5))
	if _, err := w.write(b); err == nil { // write 5: through the symlink
		t.Error("write through a symlink succeeded")
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep" {
		t.Errorf("symlink target changed to %q", b)
	}
}

// Only a regular file of carpd's user with one link is written: a FIFO in
// a file's place neither blocks the writer nor is written, a hard link to
// another file is refused, a file of another user too; a file of carpd's
// with another mode is made 0600. A file that cannot be written is skipped:
// the next version goes to the other file.
func TestCounterFilesRefuseOddFiles(t *testing.T) {
	dir := t.TempDir()
	pathB := filepath.Join(dir, countersFileB)
	if err := syscall.Mkfifo(pathB, 0o600); err != nil {
		t.Fatal(err)
	}
	w := &counterFiles{dir: dir}
	b := countersJSON(t, someCounters(2, 1))
	if i, err := w.write(b); err == nil || i != 1 { // write 1, the FIFO
		t.Errorf("write into a FIFO: slot %d, err %v; want slot 1 and an error", i, err)
	}
	if i := writeCounters(t, w, someCounters(2, 2)); i != 0 { // skipped to write 2
		t.Errorf("after the FIFO the write went to slot %d, want 0", i)
	}
	if seq, _ := readSlot(t, dir, countersFile); seq != 2 {
		t.Errorf("%s holds write %d, want 2", countersFile, seq)
	}
	if err := os.Remove(pathB); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other")
	if err := os.WriteFile(other, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(other, pathB); err != nil {
		t.Fatal(err)
	}
	if _, err := w.write(b); err == nil || !strings.Contains(err.Error(), "2 links") { // write 3
		t.Errorf("write into a hard link: err %v, want one about its 2 links", err)
	}
	if b, _ := os.ReadFile(other); string(b) != "keep" {
		t.Errorf("hard-linked file changed to %q", b)
	}
	if err := os.Remove(pathB); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pathB, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(pathB, 0o644); err != nil {
		t.Fatal(err)
	}
	writeCounters(t, w, someCounters(2, 4)) // write 4, counters.json
	writeCounters(t, w, someCounters(2, 5)) // write 5, counters.b.json
	if fi, err := os.Stat(pathB); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s after a write: %v, %v; want mode 0600", countersFileB, fi.Mode().Perm(), err)
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(pathB, 12345, 12345); err != nil {
			t.Fatal(err)
		}
		writeCounters(t, w, someCounters(2, 6)) // write 6, counters.json
		if _, err := w.write(b); err == nil || !strings.Contains(err.Error(), "owned by uid 12345") {
			t.Errorf("write into another user's file: err %v", err)
		}
	}
}

// A file that cannot be written is logged once, not at every turn.
func TestCounterWriterLogsAFailingFileOnce(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, countersFileB), 0o700); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	e := countersEngine(dir, &logs)
	e.countersOut = make(chan []byte, 1)
	stop, done := make(chan struct{}), make(chan struct{})
	go e.counterWriter(stop, done, &counterFiles{dir: dir})
	for v := range uint64(6) {
		b := countersJSON(t, someCounters(1, v))
		e.countersOut <- b
	}
	close(stop)
	<-done
	if n := strings.Count(logs.String(), "save advert counters"); n != 1 {
		t.Errorf("the failing file was logged %d times, want once:\n%s", n, logs.String())
	}
	if seq, _ := readSlot(t, dir, countersFile); seq < 4 {
		t.Errorf("%s holds write %d; the good file should have gone on (write 4 or 6)", countersFile, seq)
	}
}

// On a full file system a write that fails part way is tried again in the
// same file at the next turn, never in the other, which keeps the last
// whole version; with space again the write goes through.
func TestCountersFullDiskKeepsTheOtherFile(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs (CI runs as root)")
	}
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size=256k,mode=0700"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	defer func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("umount %s: %v", dir, err)
		}
	}()
	w := &counterFiles{dir: dir}
	small := someCounters(2, 1000)
	writeCounters(t, w, small) // write 1, counters.b.json
	writeCounters(t, w, small) // write 2, counters.json
	filler := filepath.Join(dir, "filler")
	f, err := os.OpenFile(filler, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	f.Close()
	big := countersJSON(t, someCounters(1020, 1<<40))
	for range 2 {
		i, err := w.write(big) // write 3, counters.b.json, twice
		if err == nil || i != 1 {
			t.Fatalf("a write of %d bytes on a full file system: slot %d, err %v; want slot 1 and an error", len(big), i, err)
		}
	}
	var logs bytes.Buffer
	got, seq := countersEngine(dir, &logs).loadCounters()
	if seq != 2 {
		t.Errorf("after the failed writes the loader takes write %d, want 2 (counters.json)", seq)
	}
	sameCounters(t, "loaded", got, small)
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if i, err := w.write(big); err != nil || i != 1 {
		t.Fatalf("with space again: slot %d, err %v", i, err)
	}
	if seq, m := readSlot(t, dir, countersFileB); seq != 3 || len(m) != 1020 {
		t.Errorf("%s holds write %d of %d vhids, want write 3 of 1020", countersFileB, seq, len(m))
	}
}

// BenchmarkCountersWrite is one write of the counters of 16 vhids in place;
// BenchmarkCountersWriteRenamed writes the same the way carpd did before
// (a new file, renamed over the old) for comparison.
func BenchmarkCountersWrite(b *testing.B) {
	w := &counterFiles{dir: b.TempDir()}
	m := someCounters(16, 1<<40)
	b.ReportAllocs()
	for b.Loop() {
		writeCounters(b, w, m)
	}
}

func BenchmarkCountersWriteRenamed(b *testing.B) {
	dir := b.TempDir()
	m := someCounters(16, 1<<40)
	b.ReportAllocs()
	for b.Loop() {
		buf, err := json.Marshal(countersDoc{Seq: 1, Counters: m, End: 1})
		if err != nil {
			b.Fatal(err)
		}
		f, err := os.CreateTemp(dir, ".counters.*")
		if err != nil {
			b.Fatal(err)
		}
		if err := f.Chmod(0o600); err != nil {
			b.Fatal(err)
		}
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
		if err := os.Rename(f.Name(), filepath.Join(dir, countersFile)); err != nil {
			b.Fatal(err)
		}
	}
}
