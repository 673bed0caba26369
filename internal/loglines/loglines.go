// Package loglines is the slog handler behind carpd's stderr: one line per
// record holding the message, then the record's attributes as key=value,
// optionally preceded by the time as the log package writes it with
// log.LstdFlags|log.Lmicroseconds ("2006/01/02 15:04:05.000000"). The level
// is not written: the engine's messages are worded as carp(4) and carpd
// word them, and which of them appear is decided by net.inet.carp.log, so
// the handler lets every level through.
package loglines

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
)

// stampLayout is the time as log.LstdFlags|log.Lmicroseconds writes it.
const stampLayout = "2006/01/02 15:04:05.000000"

// Handler writes records as lines; see the package comment. Create it with
// NewHandler; it is safe for concurrent use.
type Handler struct {
	mu     *sync.Mutex
	w      io.Writer
	stamp  bool
	attrs  string // pre-rendered " k=v" of WithAttrs
	prefix string // group prefix for keys, "g." per WithGroup
}

// NewHandler returns a Handler writing to w, each line preceded by the
// record's time when stamp is set.
func NewHandler(w io.Writer, stamp bool) *Handler {
	return &Handler{mu: &sync.Mutex{}, w: w, stamp: stamp}
}

// New returns a logger writing through NewHandler(w, stamp).
func New(w io.Writer, stamp bool) *slog.Logger { return slog.New(NewHandler(w, stamp)) }

// Enabled reports true for every level.
func (h *Handler) Enabled(context.Context, slog.Level) bool { return true }

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
	b.WriteByte('\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, b.String())
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
