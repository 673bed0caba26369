package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
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

func writeCounters(t testing.TB, w *counterFiles, m map[string]carp.CounterState) {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.write(b); err != nil {
		t.Fatal(err)
	}
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

// Writes go to counters.json and counters.b.json in turn, each numbered,
// and the loader takes the one written last.
func TestCounterFilesTakeTurns(t *testing.T) {
	dir := t.TempDir()
	w := &counterFiles{dir: dir}
	m1, m2, m3 := someCounters(3, 100), someCounters(3, 200), someCounters(2, 300)
	writeCounters(t, w, m1)
	if _, err := os.Stat(filepath.Join(dir, countersFileB)); !os.IsNotExist(err) {
		t.Fatalf("first write made %s (err %v); want only %s", countersFileB, err, countersFile)
	}
	writeCounters(t, w, m2)
	writeCounters(t, w, m3) // shorter than m1: padded to counters.json's length
	seq, m := readSlot(t, dir, countersFile)
	if seq != 3 {
		t.Errorf("%s holds write %d, want 3", countersFile, seq)
	}
	sameCounters(t, countersFile, m, m3)
	seq, m = readSlot(t, dir, countersFileB)
	if seq != 2 {
		t.Errorf("%s holds write %d, want 2", countersFileB, seq)
	}
	sameCounters(t, countersFileB, m, m2)
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

// A write cut short damages only its own file: the loader takes the other,
// one version older, logging the damaged one at debug level only, and the
// writer, going on from that version, rewrites the damaged file next.
func TestCountersLoadSurvivesATornWrite(t *testing.T) {
	dir := t.TempDir()
	w := &counterFiles{dir: dir}
	m1, m2 := someCounters(40, 1000), someCounters(40, 2000)
	writeCounters(t, w, m1)
	writeCounters(t, w, m2)
	torn := filepath.Join(dir, countersFileB) // write 2
	fi, err := os.Stat(torn)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(torn, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	e := countersEngine(dir, &logs)
	got, seq := e.loadCounters()
	if seq != 1 {
		t.Fatalf("loaded write %d, want 1 (the intact file)", seq)
	}
	sameCounters(t, "loaded", got, m1)
	if !strings.Contains(logs.String(), "level=DEBUG") || strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("want the damaged file logged at debug level only:\n%s", logs.String())
	}
	w2 := &counterFiles{dir: dir, seq: seq}
	m3 := someCounters(40, 3000)
	writeCounters(t, w2, m3)
	if seq, m := readSlot(t, dir, countersFileB); seq != 2 {
		t.Errorf("next write went elsewhere: %s holds write %d", countersFileB, seq)
	} else {
		sameCounters(t, countersFileB, m, m3)
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
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
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
	writeCounters(t, w, someCounters(1, 5)) // write 1 replaces it in place
	if seq, m := readSlot(t, dir, countersFile); seq != 1 || len(m) != 1 {
		t.Errorf("%s holds write %d of %d vhids, want write 1 of 1", countersFile, seq, len(m))
	}
}

// A file that shrank keeps trailing spaces up to shrinkSlack, and is cut
// to its content beyond that; it reads back whole either way.
func TestCounterFilesShrink(t *testing.T) {
	dir := t.TempDir()
	w := &counterFiles{dir: dir}
	path := filepath.Join(dir, countersFile)
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
	if _, m := readSlot(t, dir, countersFile); len(m) != 1000 {
		t.Errorf("padded file reads %d vhids, want 1000", len(m))
	}
	writeCounters(t, w, big)                // write 4
	writeCounters(t, w, someCounters(1, 1)) // write 5: far shorter, cut
	if got := fileSize(t, path); got > 200 {
		t.Errorf("after a large shrink the file is %d bytes, want it cut to its content", got)
	}
	if seq, m := readSlot(t, dir, countersFile); seq != 5 || len(m) != 1 {
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
	path := filepath.Join(dir, countersFile)
	writeCounters(t, w, someCounters(2, 1)) // write 1
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	writeCounters(t, w, someCounters(2, 2)) // write 2
	writeCounters(t, w, someCounters(2, 3)) // write 3: counters.json again
	if seq, _ := readSlot(t, dir, countersFile); seq != 3 {
		t.Errorf("%s holds write %d after its removal, want 3", countersFile, seq)
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
	b, err := json.Marshal(someCounters(2, 5))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.write(b); err == nil { // write 5: through the symlink
		t.Error("write through a symlink succeeded")
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep" {
		t.Errorf("symlink target changed to %q", b)
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
		buf, err := json.Marshal(countersDoc{Seq: 1, Counters: m})
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
