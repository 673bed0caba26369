package control

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"testing"

	"github.com/bsdcarp/bsdcarp/carp/api"
	"github.com/bsdcarp/bsdcarp/carp/api/apitest"
)

func BenchmarkStatusEncode255(b *testing.B) {
	st := apitest.Status(255)
	b.ReportAllocs()
	for b.Loop() {
		if err := writeMessage(io.Discard, Response{Version: Version, Status: &st}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStatusDecode255(b *testing.B) {
	st := apitest.Status(255)
	var msg bytes.Buffer
	if err := writeMessage(&msg, Response{Version: Version, Status: &st}); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(msg.Len()), "msg-bytes")
	b.ReportAllocs()
	for b.Loop() {
		var resp Response
		if err := readMessage(bytes.NewReader(msg.Bytes()), &resp); err != nil {
			b.Fatal(err)
		}
	}
}

// staticEngine answers every status request with the same status.
type staticEngine struct{ st api.Status }

func (s staticEngine) Status(_ context.Context, q api.StatusQuery) (api.Status, error) {
	return q.Narrow(s.st), nil
}
func (s staticEngine) Ifconfig(context.Context, api.IfconfigRequest) error {
	return nil
}
func (s staticEngine) SetSysctl(_ context.Context, _ string, v int64) (int64, int64, error) {
	return 0, v, nil
}

// benchRoundTrip is one status request over the socket, as a command
// makes it: both the client's and the server's share.
func benchRoundTrip(b *testing.B, n int) {
	path := filepath.Join(b.TempDir(), "carpd.sock")
	srv, err := Listen(path, staticEngine{apitest.Status(n)})
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve()
	defer srv.Close()
	c := Client{Path: path}
	b.ReportAllocs()
	for b.Loop() {
		resp, err := c.Do(Request{Op: OpStatus})
		if err != nil || resp.Status == nil {
			b.Fatal(err, resp)
		}
	}
}

func BenchmarkRoundTrip1(b *testing.B)   { benchRoundTrip(b, 1) }
func BenchmarkRoundTrip255(b *testing.B) { benchRoundTrip(b, 255) }
