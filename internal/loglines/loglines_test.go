package loglines

import (
	"bytes"
	"errors"
	"log/slog"
	"testing"
	"time"
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
