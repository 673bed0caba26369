package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bsdcarp/bsdcarp/carp/api"
	"github.com/bsdcarp/bsdcarp/carp/engine"
	"github.com/bsdcarp/bsdcarp/carp/metrics"
	"github.com/bsdcarp/bsdcarp/carp/osif"
	"github.com/bsdcarp/bsdcarp/kernelshim/memkernel"
)

func TestMetricsListenIsLoopbackUnlessAllowed(t *testing.T) {
	for _, a := range []string{"127.0.0.1:9542", "[::1]:9542", "localhost:9542", "127.0.0.53:1"} {
		if err := checkMetricsListen(a, false); err != nil {
			t.Errorf("%s refused: %v", a, err)
		}
	}
	for _, a := range []string{":9542", "0.0.0.0:9542", "[::]:9542", "10.0.0.1:9542", "example.org:9542"} {
		if err := checkMetricsListen(a, false); err == nil || !strings.Contains(err.Error(), "--metrics-allow-remote") {
			t.Errorf("%s: err %v, want a refusal naming --metrics-allow-remote", a, err)
		}
		if err := checkMetricsListen(a, true); err != nil {
			t.Errorf("%s refused with --metrics-allow-remote: %v", a, err)
		}
	}
	if err := checkMetricsListen("9542", true); err == nil {
		t.Error("an address without a port was taken")
	}
}

// TestMetricsEndpointAndTextfile: a running engine's metrics are served
// on /metrics and written to the textfile, both in the text format; the
// textfile goes away when carpd stops.
func TestMetricsEndpointAndTextfile(t *testing.T) {
	k := memkernel.NewMemory()
	k.AddLink(osif.Link{Name: "em0", MTU: 1500, AdminUp: true, Carrier: true, Running: true, Multicast: true,
		Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}}, memkernel.NewSegment())
	eng, err := engine.New(engine.Options{Kernel: k})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-eng.Ready()
	if err := eng.Ifconfig(ctx, api.IfconfigRequest{Iface: "em0", Ops: []api.Op{{Kind: api.OpVHID, Int: 5}, {Kind: api.OpAdvSkew, Int: 7},
		{Kind: api.OpAddr, Prefix: netip.MustParsePrefix("10.0.0.1/32"), Alias: true}}}); err != nil {
		t.Fatal(err)
	}
	text := filepath.Join(t.TempDir(), "carpd.prom")
	m, err := openMetrics(cli{MetricsListen: "127.0.0.1:0", MetricsTextfile: text, MetricsInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	lg := slog.New(slog.DiscardHandler)
	m.start(eng, lg)
	closed := false
	defer func() {
		if !closed {
			m.close()
		}
	}()
	base := "http://" + m.ln.Addr().(*net.TCPAddr).String()
	for _, c := range []struct {
		method, path string
		status       int
	}{{"GET", "/", 404}, {"POST", "/metrics", 405}, {"HEAD", "/metrics", 200}} {
		req, _ := http.NewRequest(c.method, base+c.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", c.method, c.path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || (c.method == "HEAD" && len(b) != 0) {
			t.Errorf("%s %s: %s, %d bytes", c.method, c.path, resp.Status, len(b))
		}
	}
	if c, err := net.Dial("tcp", m.ln.Addr().String()); err != nil {
		t.Fatal(err)
	} else {
		_, _ = c.Write([]byte("hello\r\n\r\n"))
		b, _ := io.ReadAll(c)
		c.Close()
		if !strings.HasPrefix(string(b), "HTTP/1.1 400 ") {
			t.Errorf("garbage answered %q", b)
		}
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != metrics.ContentType {
		t.Fatalf("GET /metrics: %v %s %q", err, resp.Status, resp.Header.Get("Content-Type"))
	}
	for _, b := range [][]byte{body, waitFile(t, text)} {
		samples, err := metrics.Parse(string(b))
		if err != nil {
			t.Fatalf("%v\n%s", err, b)
		}
		if v, ok := metrics.Find(samples, "carp_vhid_state", "iface", "em0", "vhid", "5", "carpdev", "em0", "state", "BACKUP"); !ok || v != 1 {
			t.Errorf("no BACKUP state for em0 vhid 5 (%v %v):\n%s", v, ok, b)
		}
		if _, ok := metrics.Find(samples, "carp_stats_total", "name", "badauth"); !ok {
			t.Errorf("no badauth counter:\n%s", b)
		}
	}
	m.close()
	closed = true
	if _, err := os.Stat(text); !os.IsNotExist(err) {
		t.Errorf("textfile left after close: %v", err)
	}
}

// waitFile returns the content of path once it exists (written by the
// textfile loop's first turn), failing after 10 s.
func waitFile(t *testing.T, path string) []byte {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err == nil {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not written: %v", path, err)
		}
		time.Sleep(10 * time.Millisecond) // polling for the file, bounded by the deadline
	}
}
