package memkernel

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/bsdcarp/bsdcarp/carp/osif"
)

func TestMemoryARP(t *testing.T) {
	m := memHost(nil, "192.0.2.1/24")
	req := osif.ARPRequest{Broadcast: true, SenderMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, SenderIP: netip.MustParseAddr("192.0.2.2"),
		TargetIP: netip.MustParseAddr("192.0.2.100")}
	if m.InjectARP("em0", req) || m.ARPListening() {
		t.Fatal("a request was taken with no listener")
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan osif.ARPRequest, 1)
	if err := m.ListenARP(ctx, ch); err != nil {
		t.Fatal(err)
	}
	if err := m.ListenARP(ctx, ch); err == nil {
		t.Error("a second listener while the first runs")
	}
	if !m.InjectARP("em0", req) {
		t.Fatal("request not taken")
	}
	if got := <-ch; got.IfIndex != 1 || got.TargetIP != req.TargetIP {
		t.Errorf("delivered %+v", got)
	}
	cancel()
	if m.ARPListening() || m.InjectARP("em0", req) {
		t.Error("still listening after the context ended")
	}
	if err := m.ReplyARP("em0", net.HardwareAddr{0, 0, 0x5e, 0, 1, 1}, req.TargetIP, req.SenderMAC, req.SenderIP); err != nil {
		t.Fatal(err)
	}
	want := "arp reply 192.0.2.100 is-at 00:00:5e:00:01:01 to 192.0.2.2 (02:00:00:00:00:02) dev em0"
	if !slices.Contains(m.Transcript(), want) {
		t.Errorf("transcript %q lacks %q", m.Transcript(), want)
	}
	if err := m.ReplyARP("nope0", net.HardwareAddr{0, 0, 0x5e, 0, 1, 1}, req.TargetIP, req.SenderMAC, req.SenderIP); err == nil {
		t.Error("reply on a missing link: no error")
	}
}
