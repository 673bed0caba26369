// Package loglines is the slog handler behind carpd's stderr: one line per
// record holding the message, then the record's attributes as key=value,
// optionally preceded by the time as the log package writes it with
// log.LstdFlags|log.Lmicroseconds ("2006/01/02 15:04:05.000000"). The level
// is not written as a word: the engine's messages are worded as carp(4) and
// carpd word them. Which of them appear is decided by net.inet.carp.log: the
// engine gates its own lines, and Options.Level drops other packages' below
// the level it keeps.
//
// When stderr is journald's (JournalStream), each line starts instead with
// its syslog priority, "<3>" for an error, "<4>" a warning, "<6>" info (a
// carp(4) state change), "<7>" debug (a bad packet), and no time: journald
// stamps and filters (journalctl -p) by these.
package loglines

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// stampLayout is the time as log.LstdFlags|log.Lmicroseconds writes it.
const stampLayout = "2006/01/02 15:04:05.000000"

// Handler writes records as lines; see the package comment. Create it with
// NewHandler; it is safe for concurrent use.
type Handler struct {
	mu     *sync.Mutex
	w      io.Writer
	stamp  bool
	prio   bool         // "<N>" syslog priority prefixes (journald)
	level  slog.Leveler // nil: every level
	attrs  string       // pre-rendered " k=v" of WithAttrs
	prefix string       // group prefix for keys, "g." per WithGroup
}

// NewHandler returns a Handler writing to w, each line preceded by the
// record's time when stamp is set.
func NewHandler(w io.Writer, stamp bool) *Handler {
	return NewHandlerOptions(w, Options{Stamp: stamp})
}

// Options are the choices of NewHandlerOptions.
type Options struct {
	// Stamp precedes each line with the record's time.
	Stamp bool
	// Journal precedes each line with its syslog priority, "<N>", as
	// journald's stream protocol reads it (see Priority), and drops the
	// time whatever Stamp says: journald stamps every line itself.
	Journal bool
	// Level is the lowest level written; nil writes every level.
	Level slog.Leveler
}

// NewHandlerOptions returns a Handler writing to w as o says.
func NewHandlerOptions(w io.Writer, o Options) *Handler {
	return &Handler{mu: &sync.Mutex{}, w: w, stamp: o.Stamp && !o.Journal, prio: o.Journal, level: o.Level}
}

// Priority is the syslog priority of a level: LOG_ERR (3) for errors,
// LOG_WARNING (4) for warnings, LOG_INFO (6) for information, LOG_DEBUG
// (7) below.
func Priority(l slog.Level) int {
	switch {
	case l >= slog.LevelError:
		return 3
	case l >= slog.LevelWarn:
		return 4
	case l >= slog.LevelInfo:
		return 6
	}
	return 7
}

// JournalStream reports whether f (stderr) is connected to journald: the
// service manager sets $JOURNAL_STREAM to the "device:inode" of the stream
// it gave the service, which a redirection would replace.
func JournalStream(f *os.File) bool {
	dev, ino, ok := strings.Cut(os.Getenv("JOURNAL_STREAM"), ":")
	if !ok {
		return false
	}
	d, err1 := strconv.ParseUint(dev, 10, 64)
	i, err2 := strconv.ParseUint(ino, 10, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return uint64(st.Dev) == d && uint64(st.Ino) == i
}

// New returns a logger writing through NewHandler(w, stamp).
func New(w io.Writer, stamp bool) *slog.Logger { return slog.New(NewHandler(w, stamp)) }

// Enabled reports whether l is at or above Options.Level (every level
// without one).
func (h *Handler) Enabled(_ context.Context, l slog.Level) bool {
	return h.level == nil || l >= h.level.Level()
}

// Handle writes one line.
func (h *Handler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	if h.stamp && !r.Time.IsZero() {
		b.WriteString(r.Time.Format(stampLayout))
		b.WriteByte(' ')
	}
	b.WriteString(r.Message)
	b.WriteString(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		writeAttr(&b, h.prefix, a)
		return true
	})
	line := b.String()
	if h.prio {
		// Every line of a multi-line message (a panic's stack) at the
		// record's priority: journald reads one entry per line.
		p := "<" + strconv.Itoa(Priority(r.Level)) + ">"
		line = p + strings.ReplaceAll(line, "\n", "\n"+p)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, line+"\n")
	return err
}

// WithAttrs returns a handler that adds attrs to every line.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	var b strings.Builder
	for _, a := range attrs {
		writeAttr(&b, h.prefix, a)
	}
	c.attrs += b.String()
	return &c
}

// WithGroup returns a handler that qualifies later keys with name.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.prefix += name + "."
	return &c
}

func writeAttr(b *strings.Builder, prefix string, a slog.Attr) {
	v := a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if v.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range v.Group() {
			writeAttr(b, p, g)
		}
		return
	}
	s := fmt.Sprint(v.Any())
	if s == "" || strings.ContainsAny(s, " =\"\n\t") {
		s = strconv.Quote(s)
	}
	fmt.Fprintf(b, " %s%s=%s", prefix, a.Key, s)
}
