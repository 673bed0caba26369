package control

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/bsdcarp/bsdcarp/carp/api"
	"github.com/bsdcarp/bsdcarp/carp/bsd"
	"github.com/bsdcarp/bsdcarp/carp/engine"
	"github.com/bsdcarp/bsdcarp/carp/osif"
	"github.com/bsdcarp/bsdcarp/internal/loglines"
	"github.com/bsdcarp/bsdcarp/kernelshim/memkernel"
)

// renderBSD is carpd's Server.Render (cmd/carpd).
func renderBSD(cmd string, args []string, root bool, st api.Status) (Rendered, bool) {
	r, ok := bsd.Render(cmd, args, root, st)
	return Rendered(r), ok
}

// liveEngine runs an engine on an in-memory kernel with em0 and em1, 255
// vhids with keys on aliases of em0, two on em1 and the clone carp0 (its
// vhid on em1); it stops when the test ends.
func liveEngine(t testing.TB) *engine.Engine {
	t.Helper()
	k := memkernel.NewMemory()
	for i, name := range []string{"em0", "em1"} {
		k.AddLink(osif.Link{Name: name, MAC: net.HardwareAddr{2, 0, 0, 0, 0, byte(i + 1)}, MTU: 1500,
			AdminUp: true, Carrier: true, Running: true, Broadcast: true, Multicast: true, Kind: "veth",
			Addrs: []netip.Prefix{netip.MustParsePrefix(fmt.Sprintf("10.9%d.0.1/16", i))}}, memkernel.NewSegment())
	}
	e, err := engine.New(engine.Options{Kernel: k, Logger: loglines.New(io.Discard, false)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	<-e.Ready()
	lines := []string{"carp0 create", "carp0 vhid 7 pass clonekey carpdev em1 advskew 100 10.91.7.1 255.255.255.0",
		"em1 vhid 1 pass em1key alias 10.91.1.1/32", "em1 vhid 2 alias 10.91.2.1/32"}
	for i := 1; i <= 255; i++ {
		lines = append(lines, fmt.Sprintf("em0 vhid %d advskew %d pass key%d alias 10.90.%d.%d/32", i, i%7, i, i/250+1, i%250+1))
	}
	for _, l := range lines {
		p, err := bsd.ParseIfconfig(strings.Fields(l))
		if err != nil || p.Request == nil {
			t.Fatalf("%s: %v", l, err)
		}
		if err := e.Ifconfig(ctx, *p.Request); err != nil {
			t.Fatalf("%s: %v", l, err)
		}
	}
	return e
}

// printed is what a status command prints: stdout, then stderr (with the
// error in its BSD words), and its exit status.
type printed struct {
	stdout, stderr string
	exit           int
}

// statusRequest is the status request the commands make for a display,
// without Text (what a client that predates Text sends).
func statusRequest(t *testing.T, cmd string, args []string) Request {
	req := Request{Op: OpStatus, NoIfaces: true}
	if cmd == bsd.TextIfconfig {
		p, err := bsd.ParseIfconfig(args)
		if err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		req = Request{Op: OpStatus, ShowKeys: p.ShowKeys}
		if !p.ListAll && !p.ListNames && p.Group == "" {
			req.Iface = p.Iface
		}
	}
	return req
}

// exchange is one request of uid through s, both messages on the wire as
// Client.Do writes and reads them.
func exchange(t *testing.T, s *Server, req Request, uid uint32) Response {
	t.Helper()
	req.Version = Version
	msg, err := appendRequest(nil, req)
	if err != nil {
		t.Fatal(err)
	}
	var got Request
	if err := readMessage(bytes.NewReader(msg), &got); err != nil {
		t.Fatal(err)
	}
	resp := s.do(got, uid)
	resp.Version = Version
	wire, err := appendResponse(nil, resp)
	if err != nil {
		t.Fatal(err)
	}
	line, err := readLine(bytes.NewReader(wire), 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	var back Response
	if err := decodeResponse(line, &back); err != nil {
		t.Fatal(err)
	}
	return back
}

// formatted is what the command prints from a status answer: the old
// path, and the path against a carpd that does not render.
func formatted(t *testing.T, cmd string, args []string, resp Response, root bool) printed {
	t.Helper()
	if err := resp.StatusErr(); err != nil {
		t.Fatalf("%s %q: %v", cmd, args, err)
	}
	var b bytes.Buffer
	switch cmd {
	case bsd.TextIfconfig:
		p, _ := bsd.ParseIfconfig(args)
		if err := bsd.FormatStatus(&b, p, *resp.Status); err != nil {
			return printed{b.String(), bsd.Text(err), 1}
		}
	case bsd.TextSysctl:
		c, _ := bsd.ParseSysctl(args)
		res := bsd.EvalSysctl(c, resp.Status.Knobs, resp.Status.Stats, root)
		return printed{res.Stdout, res.Stderr, res.Exit}
	case bsd.TextNetstat:
		if err := bsd.FormatNetstat(&b, resp.Status.Stats); err != nil {
			t.Fatal(err)
		}
	}
	return printed{b.String(), "", 0}
}

// TestRenderedTextIsWhatTheCommandPrints: for a live engine with 258
// vhids, what carpd renders (Request.Text) is byte for byte what the
// command prints from the status, for root and for another user, keys
// shown only to root; old clients still get the status.
func TestRenderedTextIsWhatTheCommandPrints(t *testing.T) {
	s := &Server{eng: liveEngine(t), Render: renderBSD}
	lines := []struct {
		cmd  string
		args []string
	}{
		{bsd.TextIfconfig, []string{"em0"}},
		{bsd.TextIfconfig, []string{"-k", "em0"}},
		{bsd.TextIfconfig, []string{"em1"}},
		{bsd.TextIfconfig, []string{"carp0"}},
		{bsd.TextIfconfig, []string{"-k", "carp0"}},
		{bsd.TextIfconfig, []string{"-a"}},
		{bsd.TextIfconfig, []string{"-a", "-k"}},
		{bsd.TextIfconfig, nil},
		{bsd.TextIfconfig, []string{"-l"}},
		{bsd.TextIfconfig, []string{"-g", "carp"}},
		{bsd.TextIfconfig, []string{"em9"}},
		{bsd.TextIfconfig, []string{"carp5"}},
		{bsd.TextSysctl, []string{"net.inet.carp"}},
		{bsd.TextSysctl, []string{"-a"}},
		{bsd.TextSysctl, []string{"-n", "net.inet.carp.allow"}},
		{bsd.TextSysctl, []string{"-d", "net.inet.carp"}},
		{bsd.TextSysctl, []string{"net.inet.carp.nosuch", "net.inet.carp.preempt"}},
		{bsd.TextNetstat, nil},
	}
	for _, uid := range []uint32{0, 1000} {
		root := uid == 0
		for _, l := range lines {
			req := statusRequest(t, l.cmd, l.args)
			old := exchange(t, s, req, uid)
			if old.Text != nil || old.Status == nil {
				t.Fatalf("uid %d %s %q without Text: answered %+v", uid, l.cmd, l.args, old)
			}
			want := formatted(t, l.cmd, l.args, old, root)
			req.Text, req.Args = l.cmd, l.args
			resp := exchange(t, s, req, uid)
			if resp.Text == nil || resp.Status != nil {
				t.Fatalf("uid %d %s %q: not rendered: %+v", uid, l.cmd, l.args, resp)
			}
			got := printed{*resp.Text, resp.Stderr, resp.Exit}
			if err := resp.Err(); err != nil {
				got.stderr += bsd.Text(err)
			}
			if got != want {
				t.Errorf("uid %d %s %q: rendered\n%+v\nformatted by the command\n%+v", uid, l.cmd, l.args, got, want)
			}
			keys := strings.Contains(got.stdout, ` key "`)
			if wantKeys := root && l.cmd == bsd.TextIfconfig && slices.Contains(l.args, "-k"); keys != wantKeys {
				t.Errorf("uid %d %s %q: keys printed %v, want %v", uid, l.cmd, l.args, keys, wantKeys)
			}
		}
	}
	// Something to compare: em0's 255 vhids, an error of the right kind.
	em0 := exchange(t, s, Request{Op: OpStatus, Iface: "em0", Text: bsd.TextIfconfig, Args: []string{"em0"}}, 0)
	if n := strings.Count(*em0.Text, "\tcarp: "); n != 255 {
		t.Errorf("ifconfig em0: %d carp lines, want 255:\n%s", n, *em0.Text)
	}
	em9 := exchange(t, s, Request{Op: OpStatus, Iface: "em9", Text: bsd.TextIfconfig, Args: []string{"em9"}}, 1000)
	if got := bsd.Text(em9.Err()); got != "interface em9 does not exist" || em9.Refusal == nil {
		t.Errorf("ifconfig em9: %q, refusal %v", got, em9.Refusal)
	}
}

// A line that is not a display (a sysctl write, sysctl -f, a change) is
// answered with the status, which the command needs for it.
func TestRenderDeclinesWhatIsNotADisplay(t *testing.T) {
	s := &Server{eng: staticEngine{narrowStatus()}, Render: renderBSD}
	for _, l := range []struct {
		cmd  string
		args []string
	}{
		{bsd.TextSysctl, []string{"net.inet.carp.preempt=1"}},
		{bsd.TextSysctl, []string{"-f", "/etc/sysctl.conf"}},
		{bsd.TextIfconfig, []string{"em0", "vhid", "1", "alias", "10.0.0.1/32"}},
		{bsd.TextIfconfig, []string{"em0", "bogus"}},
		{bsd.TextNetstat, []string{"-x"}},
		{"ps", nil},
	} {
		resp := exchange(t, s, Request{Op: OpStatus, NoIfaces: true, Text: l.cmd, Args: l.args}, 0)
		if resp.Text != nil || resp.Status == nil {
			t.Errorf("%s %q: %+v, want the status", l.cmd, l.args, resp)
		}
	}
}

// A carpd without Render (one that predates Text) answers with the
// status, and Client.Do still reads it; one with Render answers with the
// text.
func TestTextRequestToAServerWithoutRender(t *testing.T) {
	for _, render := range []Renderer{nil, renderBSD} {
		path := t.TempDir() + "/carpd.sock"
		srv, err := Listen(path, staticEngine{narrowStatus()})
		if err != nil {
			t.Fatal(err)
		}
		srv.Render = render
		go srv.Serve()
		resp, err := Client{Path: path}.Do(Request{Op: OpStatus, Iface: "em0", Text: bsd.TextIfconfig, Args: []string{"em0"}})
		srv.Close()
		switch {
		case err != nil:
			t.Fatal(err)
		case render == nil && (resp.Text != nil || resp.Status == nil || len(resp.Status.VHIDs) != 4):
			t.Errorf("without Render: %+v", resp)
		case render != nil && (resp.Text == nil || resp.Status != nil || strings.Count(*resp.Text, "\tcarp: ") != 4):
			t.Errorf("with Render: %+v", resp)
		}
	}
}
