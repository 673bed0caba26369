package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
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
	served   chan struct{} // closed when serve has returned
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
		m.served = make(chan struct{})
		go m.serve(eng, lg)
		lg.Info(fmt.Sprintf("carpd: metrics on http://%s/metrics", m.ln.Addr()))
	}
	if m.textfile != "" {
		m.stop, m.done = make(chan struct{}), make(chan struct{})
		go m.writeLoop(eng, lg)
	}
}

// Bounds of the metrics endpoint: requests are a line and a few headers,
// a scrape takes milliseconds, and Prometheus scrapes one at a time.
const (
	metricsMaxHead  = 8 << 10 // request line and headers
	metricsMaxConns = 8       // connections served at once; more are closed
)

// serve accepts connections until the listener is closed, each answered
// by answer on its own goroutine, at most metricsMaxConns at once.
func (m *metricsOut) serve(eng *engine.Engine, lg *slog.Logger) {
	defer close(m.served)
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, metricsMaxConns)
	for {
		c, err := m.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				lg.Error(fmt.Sprintf("carpd: metrics: %v", err))
			}
			return
		}
		select {
		case slots <- struct{}{}:
		default:
			c.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			answer(c, eng)
		}()
	}
}

// answer reads one HTTP/1.x request from c and writes one response, then
// closes c. This is all of HTTP the endpoint needs: GET (or HEAD) of
// /metrics, answered with Content-Length and Connection: close. carpd
// links no HTTP server for it: net/http would add 3.7 MB to the binary.
func answer(c net.Conn, eng *engine.Engine) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(metricsWait))
	r := bufio.NewReader(io.LimitReader(c, metricsMaxHead))
	line, err := r.ReadString('\n')
	if err != nil {
		return
	}
	method, target, proto := "", "", ""
	if f := strings.Fields(line); len(f) == 3 {
		method, target, proto = f[0], f[1], f[2]
	}
	for { // the headers: read and ignored, up to the blank line
		h, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if strings.TrimRight(h, "\r\n") == "" {
			break
		}
	}
	path, _, _ := strings.Cut(target, "?")
	status, ctype, body := "200 OK", metrics.ContentType, []byte(nil)
	switch {
	case !strings.HasPrefix(proto, "HTTP/1."):
		status, ctype, body = "400 Bad Request", "text/plain", []byte("bad request\n")
	case path != "/metrics":
		status, ctype, body = "404 Not Found", "text/plain", []byte("carpd serves /metrics only\n")
	case method != "GET" && method != "HEAD":
		status, ctype, body = "405 Method Not Allowed", "text/plain", []byte("GET or HEAD\n")
	default:
		if body, err = collect(context.Background(), eng); err != nil {
			status, ctype, body = "503 Service Unavailable", "text/plain", []byte("carpd: "+err.Error()+"\n")
		}
	}
	w := bufio.NewWriter(c)
	fmt.Fprintf(w, "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n", status, ctype, len(body))
	if strings.HasPrefix(status, "405") {
		w.WriteString("Allow: GET, HEAD\r\n")
	}
	w.WriteString("\r\n")
	if method != "HEAD" {
		w.Write(body)
	}
	_ = w.Flush()
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
	if m.ln != nil {
		m.ln.Close()
		if m.served != nil {
			<-m.served // connections in flight end within metricsWait
		}
	}
	if m.stop != nil {
		close(m.stop)
		<-m.done
		os.Remove(m.textfile)
	}
}
