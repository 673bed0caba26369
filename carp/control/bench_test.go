package control

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"testing"

	"github.com/bsdcarp/bsdcarp/carp/api"
	"github.com/bsdcarp/bsdcarp/carp/api/apitest"
	"github.com/bsdcarp/bsdcarp/carp/bsd"
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

// benchServe is the server's share of one status command against a live
// engine of 258 vhids (its loop's round trip, the answer built and
// written): with Text, carpd renders what the command prints; without,
// it sends the status.
func benchServe(b *testing.B, text bool, args ...string) {
	s := &Server{eng: liveEngine(b), Render: renderBSD}
	req := Request{Version: Version, Op: OpStatus, Iface: args[0]}
	if text {
		req.Text, req.Args = bsd.TextIfconfig, args
	}
	var msg []byte
	b.ReportAllocs()
	for b.Loop() {
		resp := s.do(req, 0)
		resp.Version = Version
		var err error
		if msg, err = appendResponse(msg[:0], resp); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(msg)), "msg-bytes")
}

func BenchmarkServeEm0JSON255(b *testing.B) { benchServe(b, false, "em0") }
func BenchmarkServeEm0Text255(b *testing.B) { benchServe(b, true, "em0") }
func BenchmarkServeCarp0JSON(b *testing.B)  { benchServe(b, false, "carp0") }
func BenchmarkServeCarp0Text(b *testing.B)  { benchServe(b, true, "carp0") }

// benchClient is the command's share of "ifconfig em0" after the answer
// arrived: with Text, read the text; without, decode the status and
// format it.
func benchClient(b *testing.B, text bool) {
	st := apitest.Status(255)
	p, err := bsd.ParseIfconfig([]string{"em0"})
	if err != nil {
		b.Fatal(err)
	}
	r, _ := bsd.Render(bsd.TextIfconfig, []string{"em0"}, true, st)
	resp := Response{Version: Version, Status: &st}
	if text {
		resp = Response{Version: Version, Text: &r.Stdout}
	}
	msg, err := appendResponse(nil, resp)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(len(msg)), "msg-bytes")
	b.ReportAllocs()
	for b.Loop() {
		line, err := readLine(bytes.NewReader(msg), 64<<10)
		if err != nil {
			b.Fatal(err)
		}
		var got Response
		if err := decodeResponse(line, &got); err != nil {
			b.Fatal(err)
		}
		if got.Text != nil {
			io.WriteString(io.Discard, *got.Text)
		} else if err := bsd.FormatStatus(io.Discard, p, *got.Status); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkClientEm0JSON255(b *testing.B) { benchClient(b, false) }
func BenchmarkClientEm0Text255(b *testing.B) { benchClient(b, true) }

// benchRoundTripText is benchRoundTrip for "ifconfig em0" answered with
// its text.
func benchRoundTripText(b *testing.B, n int) {
	path := filepath.Join(b.TempDir(), "carpd.sock")
	srv, err := Listen(path, staticEngine{apitest.Status(n)})
	if err != nil {
		b.Fatal(err)
	}
	srv.Render = renderBSD
	go srv.Serve()
	defer srv.Close()
	c := Client{Path: path}
	b.ReportAllocs()
	for b.Loop() {
		resp, err := c.Do(Request{Op: OpStatus, Iface: "em0", Text: bsd.TextIfconfig, Args: []string{"em0"}})
		if err != nil || resp.Text == nil {
			b.Fatal(err, resp)
		}
	}
}

func BenchmarkRoundTripText1(b *testing.B)   { benchRoundTripText(b, 1) }
func BenchmarkRoundTripText255(b *testing.B) { benchRoundTripText(b, 255) }
