package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/bsdcarp/bsdcarp/carp/api"
	"github.com/bsdcarp/bsdcarp/carp/engine"
	"github.com/bsdcarp/bsdcarp/carp/metrics"
)

// metricsWait bounds one collection of the metrics (the engine answers
// between two turns of its loop: milliseconds).
const metricsWait = 5 * time.Second

// metricsOut is carpd's opt-in metrics: an HTTP listener for
// --metrics-listen and a node_exporter textfile for --metrics-textfile.
type metricsOut struct {
	ln       net.Listener
	srv      *http.Server
	textfile string
	every    time.Duration
	stop     chan struct{}
	done     chan struct{}
}

// checkMetricsListen refuses an address that is not a loopback IP and
// port unless allowRemote: the metrics name the host's addresses, vhids
// and states, and the endpoint has no authentication, so reaching it from
// the network is the admin's explicit choice (--metrics-allow-remote).
func checkMetricsListen(addr string, allowRemote bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--metrics-listen %s: %w", addr, err)
	}
	if allowRemote {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if host == "localhost" || (err == nil && ip.IsLoopback()) {
		return nil
	}
	return fmt.Errorf("--metrics-listen %s: not a loopback address (127.0.0.1, [::1]); add --metrics-allow-remote to serve the network", addr)
}

// openMetrics validates the metrics flags and opens the listener (before
// the engine starts, so that a taken port makes carpd fail with nothing
// set up). Nothing is served until start.
func openMetrics(c cli) (*metricsOut, error) {
	m := &metricsOut{textfile: c.MetricsTextfile, every: c.MetricsInterval}
	if c.MetricsListen != "" {
		if err := checkMetricsListen(c.MetricsListen, c.MetricsAllowRemote); err != nil {
			return nil, err
		}
		ln, err := net.Listen("tcp", c.MetricsListen)
		if err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
		m.ln = ln
	}
	if m.textfile != "" && m.every <= 0 {
		return nil, fmt.Errorf("--metrics-interval %v: must be positive", m.every)
	}
	return m, nil
}

// collect renders the metrics of eng now.
func collect(ctx context.Context, eng *engine.Engine) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, metricsWait)
	defer cancel()
	st, err := eng.Status(ctx, api.StatusQuery{Detail: true})
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := metrics.Write(&b, st); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// start serves /metrics on the listener and writes the textfile every
// interval, until close.
func (m *metricsOut) start(eng *engine.Engine, lg *slog.Logger) {
	if m.ln != nil {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
			b, err := collect(r.Context(), eng)
			if err != nil {
				http.Error(w, "carpd: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
			w.Header().Set("Content-Type", metrics.ContentType)
			_, _ = w.Write(b)
		})
		m.srv = &http.Server{Handler: mux, ReadHeaderTimeout: metricsWait, WriteTimeout: 2 * metricsWait,
			ErrorLog: slog.NewLogLogger(lg.Handler(), slog.LevelWarn)}
		go func() {
			if err := m.srv.Serve(m.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				lg.Error(fmt.Sprintf("carpd: metrics: %v", err))
			}
		}()
		lg.Info(fmt.Sprintf("carpd: metrics on http://%s/metrics", m.ln.Addr()))
	}
	if m.textfile != "" {
		m.stop, m.done = make(chan struct{}), make(chan struct{})
		go m.writeLoop(eng, lg)
	}
}

// writeLoop writes the textfile at once and then every interval.
func (m *metricsOut) writeLoop(eng *engine.Engine, lg *slog.Logger) {
	defer close(m.done)
	t := time.NewTicker(m.every)
	defer t.Stop()
	failed := false
	for {
		err := m.writeTextfile(eng)
		if err != nil && !failed {
			lg.Error(fmt.Sprintf("carpd: metrics: %v", err)) // once per run of failures
		}
		failed = err != nil
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
	}
}

// writeTextfile replaces the textfile atomically: a temporary file in the
// same directory, renamed over it, so node_exporter never reads half.
func (m *metricsOut) writeTextfile(eng *engine.Engine) error {
	b, err := collect(context.Background(), eng)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(m.textfile), "."+filepath.Base(m.textfile)+".tmp-*")
	if err != nil {
		return fmt.Errorf("textfile: %w", err)
	}
	_, err = f.Write(b)
	if cerr := f.Chmod(0o644); err == nil {
		err = cerr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), m.textfile)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("textfile %s: %w", m.textfile, err)
	}
	return nil
}

// close stops serving and writing; the textfile is removed, so that a
// stopped carpd leaves no states behind that look current.
func (m *metricsOut) close() {
	if m.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = m.srv.Shutdown(ctx)
		cancel()
	} else if m.ln != nil {
		m.ln.Close()
	}
	if m.stop != nil {
		close(m.stop)
		<-m.done
		os.Remove(m.textfile)
	}
}
