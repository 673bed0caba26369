package kernelshim

import (
	"net"
	"net/netip"
	"testing"
)

func TestParseARPRequest(t *testing.T) {
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 9}
	req, _, err := AnnounceFrame(mac, netip.MustParseAddr("192.0.2.9")) // a broadcast request
	if err != nil {
		t.Fatal(err)
	}
	r, ok := ParseARPRequest(req)
	if !ok || !r.Broadcast || r.SenderMAC.String() != mac.String() || r.SenderIP != netip.MustParseAddr("192.0.2.9") || r.TargetIP != r.SenderIP {
		t.Fatalf("parsed %+v, %v", r, ok)
	}
	reply, err := ARPReplyFrame(mac, netip.MustParseAddr("192.0.2.9"), net.HardwareAddr{2, 0, 0, 0, 0, 1}, netip.MustParseAddr("192.0.2.1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ParseARPRequest(reply); ok {
		t.Error("a reply parsed as a request")
	}
	if _, ok := ParseARPRequest(req[:41]); ok {
		t.Error("a short frame parsed as a request")
	}
	if _, err := ARPReplyFrame(mac, netip.MustParseAddr("2001:db8::1"), mac, netip.MustParseAddr("192.0.2.1")); err == nil {
		t.Error("an IPv6 ARP reply was built")
	}
}
