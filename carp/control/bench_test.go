package control

import (
	"bytes"
	"context"
	"io"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/bsdcarp/bsdcarp/carp/api"
)

// benchStatus is a host with lo and em0 and n vhids: n-1 on aliases of em0
// (dialect C) and one on the clone carp0 (dialect A).
func benchStatus(n int) api.Status {
	st := api.Status{
		Links: []api.LinkStatus{
			{Name: "lo", Index: 1, MTU: 65536, Up: true, Running: true, Loopback: true, Multicast: true,
				Addrs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8"), netip.MustParsePrefix("::1/128")}},
			{Name: "em0", Index: 2, MAC: "76:5c:4b:11:e5:2a", MTU: 1500, Up: true, Running: true, Carrier: true,
				Broadcast: true, Multicast: true, Kind: "veth",
				Addrs: []netip.Prefix{netip.MustParsePrefix("10.99.0.1/16"), netip.MustParsePrefix("fe80::745c:4bff:fe11:e52a/64")}},
		},
		Clones: []api.CloneStatus{{Name: "carp0", Up: true, MTU: 1500}},
	}
	for i := 1; i < n; i++ {
		st.VHIDs = append(st.VHIDs, api.VHIDStatus{Iface: "em0", Carpdev: "em0", VHID: uint8(i), AdvBase: 1, State: api.StateMaster,
			Addrs: []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 99, byte(i/250 + 1), byte(i%250 + 1)}), 32)}})
	}
	st.VHIDs = append(st.VHIDs, api.VHIDStatus{Iface: "carp0", Carpdev: "em0", VHID: uint8(n), AdvBase: 1, State: api.StateBackup,
		Addrs: []netip.Prefix{netip.MustParsePrefix("10.99.200.1/24")}})
	for _, k := range []string{"ifdown_demotion_factor", "senderr_demotion_factor", "demotion", "log", "preempt", "dscp", "allow", "arpbalance", "suppress_preempt"} {
		st.Knobs = append(st.Knobs, api.Knob{Name: api.SysctlPrefix + k, Value: 1, Description: "a description of " + k})
	}
	for _, c := range api.CarpstatsNames {
		st.Stats = append(st.Stats, api.Counter{Name: c, Value: 12345})
	}
	st.Stats = append(st.Stats, api.Counter{Name: api.StatReplay})
	return st
}

func BenchmarkStatusEncode255(b *testing.B) {
	st := benchStatus(255)
	b.ReportAllocs()
	for b.Loop() {
		if err := writeMessage(io.Discard, Response{Version: Version, Status: &st}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStatusDecode255(b *testing.B) {
	st := benchStatus(255)
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
	srv, err := Listen(path, staticEngine{benchStatus(n)})
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
