package kernelshim

import (
	"errors"
	"net/netip"
	"testing"
	"unsafe"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// cmsg builds one control message as the kernel lays it out.
func cmsg(level, typ int32, data []byte) []byte {
	b := make([]byte, unix.CmsgSpace(len(data)))
	h := (*unix.Cmsghdr)(unsafePointer(&b[0]))
	h.Level, h.Type = level, typ
	h.SetLen(unix.CmsgLen(len(data)))
	copy(b[unix.CmsgLen(0):], data)
	return b
}

func TestParseCmsgs(t *testing.T) {
	ttl := []byte{64, 0, 0, 0}
	pkt4 := make([]byte, unix.SizeofInet4Pktinfo)
	pkt4[0] = 7                             // ifindex 7 (little-endian host)
	copy(pkt4[8:12], []byte{224, 0, 0, 18}) // header destination
	v4 := append(cmsg(unix.IPPROTO_IP, unix.IP_TTL, ttl), cmsg(unix.IPPROTO_IP, unix.IP_PKTINFO, pkt4)...)
	pi, err := parseCmsgs(v4)
	if err != nil || pi != (pktInfo{ifIndex: 7, ttl: 64, dst: netip.MustParseAddr("224.0.0.18")}) {
		t.Errorf("IPv4: %+v, %v", pi, err)
	}
	if n := len(ipv4.NewControlMessage(ipv4.FlagTTL | ipv4.FlagInterface | ipv4.FlagDst)); n < len(v4) {
		t.Errorf("read4's control area of %d bytes is smaller than the %d the kernel writes", n, len(v4))
	}

	pkt6 := make([]byte, unix.SizeofInet6Pktinfo)
	g := netip.MustParseAddr("ff02::12").As16()
	copy(pkt6, g[:])
	pkt6[16] = 9
	v6 := append(cmsg(unix.IPPROTO_IPV6, unix.IPV6_HOPLIMIT, []byte{255, 0, 0, 0}), cmsg(unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, pkt6)...)
	pi, err = parseCmsgs(v6)
	if err != nil || pi != (pktInfo{ifIndex: 9, ttl: 255, dst: netip.MustParseAddr("ff02::12")}) {
		t.Errorf("IPv6: %+v, %v", pi, err)
	}
	if n := len(ipv6.NewControlMessage(ipv6.FlagHopLimit | ipv6.FlagInterface | ipv6.FlagDst)); n < len(v6) {
		t.Errorf("read6's control area of %d bytes is smaller than the %d the kernel writes", n, len(v6))
	}

	if pi, err := parseCmsgs(nil); err != nil || pi != (pktInfo{}) {
		t.Errorf("no control messages: %+v, %v", pi, err)
	}
	// Unknown messages are skipped.
	if pi, err := parseCmsgs(append(cmsg(unix.SOL_SOCKET, unix.SCM_TIMESTAMP, make([]byte, 16)), v4...)); err != nil || pi.ifIndex != 7 {
		t.Errorf("after an unknown message: %+v, %v", pi, err)
	}
	// Malformed areas are errors, never a panic.
	bad := cmsg(unix.IPPROTO_IP, unix.IP_TTL, ttl)
	(*unix.Cmsghdr)(unsafePointer(&bad[0])).SetLen(len(bad) + 8)
	for name, b := range map[string][]byte{"length beyond the area": bad, "short header": v4[:5], "cut message": v4[:len(v4)-8]} {
		if _, err := parseCmsgs(b); !errors.Is(err, errCmsg) {
			t.Errorf("%s: err %v, want errCmsg", name, err)
		}
	}
	if a := testing.AllocsPerRun(100, func() { _, _ = parseCmsgs(v6) }); a != 0 {
		t.Errorf("parseCmsgs allocates %v times", a)
	}
}

func unsafePointer(b *byte) unsafe.Pointer { return unsafe.Pointer(b) }
