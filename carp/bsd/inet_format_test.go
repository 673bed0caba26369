package bsd

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/bsdcarp/bsdcarp/carp/api"
)

// fmtLinkAddr is an address line written with fmt, as the format strings
// of af_inet.c and af_inet6.c read: the reference for the append-based
// formatLinkAddr.
func fmtLinkAddr(a linkAddr, l api.LinkStatus) string {
	ip := a.p.Addr()
	var s string
	switch {
	case ip.WithZone("").Is6() && ip.WithZone("").IsLinkLocalUnicast():
		s = fmt.Sprintf("inet6 %s%%%s prefixlen %d scopeid 0x%x", ip.WithZone(""), l.Name, a.p.Bits(), l.Index)
	case !ip.Is4():
		s = fmt.Sprintf("inet6 %s prefixlen %d", ip.WithZone(""), a.p.Bits())
	default:
		mask := prefixMask4(a.p.Bits())
		s = fmt.Sprintf("inet %s netmask 0x%08x", ip, mask)
		if l.Broadcast && a.p.Bits() != 0 {
			v := maskBits(ip) | ^mask
			s += fmt.Sprintf(" broadcast %s", netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}))
		}
	}
	if a.vhid != 0 {
		s += fmt.Sprintf(" vhid %d", a.vhid)
	}
	return s
}

func TestAddressLinesMatchFmt(t *testing.T) {
	prefixes := []netip.Prefix{{}}
	for _, s := range []string{"0.0.0.0/0", "10.0.0.1/8", "192.168.1.50/32", "192.168.1.3/24", "172.16.5.4/31", "255.255.255.255/1",
		"::/0", "::1/128", "2001:db8::1/64", "fe80::1/64", "::ffff:10.0.0.1/120", "ff02::12/128"} {
		prefixes = append(prefixes, netip.MustParsePrefix(s))
	}
	prefixes = append(prefixes, netip.PrefixFrom(netip.MustParseAddr("fe80::2%em0"), 64))
	for _, p := range prefixes {
		for _, l := range []api.LinkStatus{{Name: "em0", Index: 2, Broadcast: true}, {Name: "lo", Index: 1}, {Name: "vlan100", Index: 300, Broadcast: true}} {
			for _, vhid := range []uint8{0, 1, 255} {
				a := linkAddr{p: p, vhid: vhid}
				if got, want := formatLinkAddr(a, l), fmtLinkAddr(a, l); got != want {
					t.Errorf("%v on %s vhid %d: %q, want %q", p, l.Name, vhid, got, want)
				}
			}
		}
	}
}
