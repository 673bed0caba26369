package loglines

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestLinesAsTheLogPackageWroteThem(t *testing.T) {
	var got bytes.Buffer
	lg := New(&got, true)
	at := time.Date(2026, 11, 29, 20, 1, 2, 345678000, time.Local)
	r := slog.NewRecord(at, slog.LevelDebug, "carp: 1@em0: MASTER -> INIT (carpd stopping (SIGTERM))", 0)
	if err := lg.Handler().Handle(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	// As log.New(w, "", log.LstdFlags|log.Lmicroseconds) wrote it, in
	// local time, with no level.
	want := "2026/11/29 20:01:02.345678 carp: 1@em0: MASTER -> INIT (carpd stopping (SIGTERM))\n"
	if got.String() != want {
		t.Errorf("got %q, want %q", got.String(), want)
	}
}

func TestAttributesAndGroups(t *testing.T) {
	var got bytes.Buffer
	lg := New(&got, false).With("component", "kernelshim").WithGroup("rx")
	lg.Warn("CARP IPv4 receive", "err", errors.New("no buffer space"), "n", 3)
	lg.Info("plain", slog.Group("g", "empty", ""))
	want := "CARP IPv4 receive component=kernelshim rx.err=\"no buffer space\" rx.n=3\n" +
		"plain component=kernelshim rx.g.empty=\"\"\n"
	if got.String() != want {
		t.Errorf("got %q, want %q", got.String(), want)
	}
}

func TestJournalPriorities(t *testing.T) {
	var got bytes.Buffer
	lg := slog.New(NewHandlerOptions(&got, Options{Stamp: true, Journal: true}))
	lg.Error("carpd: add 10.0.0.1/24 to carp0: permission denied")
	lg.Warn("carpd: ifconfig carp0 refused: no such interface")
	lg.Info("carp: 1@em0: BACKUP -> MASTER (master timed out)")
	lg.Debug("carp_input: received ttl 64 != 255 on em0")
	lg.Error("carpd: panic in the engine: boom\ngoroutine 1 [running]:")
	// No time (journald stamps each line), the syslog priority first.
	want := "<3>carpd: add 10.0.0.1/24 to carp0: permission denied\n" +
		"<4>carpd: ifconfig carp0 refused: no such interface\n" +
		"<6>carp: 1@em0: BACKUP -> MASTER (master timed out)\n" +
		"<7>carp_input: received ttl 64 != 255 on em0\n" +
		"<3>carpd: panic in the engine: boom\n<3>goroutine 1 [running]:\n"
	if got.String() != want {
		t.Errorf("got %q, want %q", got.String(), want)
	}
}

func TestLevel(t *testing.T) {
	var got bytes.Buffer
	lv := new(slog.LevelVar) // Info
	lg := slog.New(NewHandlerOptions(&got, Options{Level: lv}))
	lg.Debug("hidden")
	lg.Info("shown")
	lv.Set(slog.LevelDebug)
	lg.Debug("now shown")
	if want := "shown\nnow shown\n"; got.String() != want {
		t.Errorf("got %q, want %q", got.String(), want)
	}
}

func TestJournalStream(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(w.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino))
	if !JournalStream(w) {
		t.Error("the stream JOURNAL_STREAM names is not recognised")
	}
	other, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if JournalStream(other) {
		t.Error("a redirected stderr taken for journald")
	}
	for _, v := range []string{"", "garbage", "1:x"} {
		t.Setenv("JOURNAL_STREAM", v)
		if JournalStream(w) {
			t.Errorf("JOURNAL_STREAM=%q taken for journald", v)
		}
	}
}
