package engine

import (
	"context"
	"log/slog"
	"testing"

	"github.com/bsdcarp/bsdcarp/kernelshim/memkernel"
)

// Options.LogLevel follows net.inet.carp.log, from the saved configuration
// on and at every write, so that lines of other packages sharing the
// handler (kernelshim's debug lines) stay below log=2 as bad packets do.
func TestLogLevelFollowsTheLogKnob(t *testing.T) {
	dir := t.TempDir()
	lv := new(slog.LevelVar)
	lv.Set(slog.LevelError) // whatever it was, the engine sets it
	n := startNodeWith(t, Options{Kernel: memkernel.NewMemory(), StateDir: dir, LogLevel: lv})
	if got := lv.Level(); got != slog.LevelInfo {
		t.Fatalf("default log=1: level %v, want INFO", got)
	}
	for _, c := range []struct {
		log  int64
		want slog.Level
	}{{2, slog.LevelDebug}, {0, slog.LevelInfo}, {1, slog.LevelInfo}, {3, slog.LevelDebug}} {
		if _, _, err := n.e.SetSysctl(context.Background(), "net.inet.carp.log", c.log); err != nil {
			t.Fatal(err)
		}
		if got := lv.Level(); got != c.want {
			t.Errorf("log=%d: level %v, want %v", c.log, got, c.want)
		}
	}
	n.stop(t)
	// log=3 was saved: the next engine starts at Debug.
	lv2 := new(slog.LevelVar)
	n2 := startNodeWith(t, Options{Kernel: memkernel.NewMemory(), StateDir: dir, LogLevel: lv2})
	defer n2.stop(t)
	if got := lv2.Level(); got != slog.LevelDebug {
		t.Errorf("saved log=3: level %v, want DEBUG", got)
	}
}
