package bsd

import (
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/bsdcarp/bsdcarp/carp/api"
)

// FreeBSD's interface flag bits (net/if.h) that a Linux link can show.
const (
	iffUp        = 0x1
	iffBroadcast = 0x2
	iffLoopback  = 0x8
	iffRunning   = 0x40
	iffPromisc   = 0x100
	iffSimplex   = 0x800
	iffMulticast = 0x8000
	iffLowerUp   = 0x1000000
)

// iffNames is the part of sbin/ifconfig's IFFBITS table for these bits, in
// bit order: printb() lists the names of the set bits in that order.
var iffNames = []struct {
	bit  uint32
	name string
}{
	{iffUp, "UP"}, {iffBroadcast, "BROADCAST"}, {iffLoopback, "LOOPBACK"},
	{iffRunning, "RUNNING"}, {iffPromisc, "PROMISC"}, {iffSimplex, "SIMPLEX"},
	{iffMulticast, "MULTICAST"}, {iffLowerUp, "LOWER_UP"},
}

// formatFlags is printb("flags", flags, IFFBITS): "flags=8843<UP,...>".
func formatFlags(flags uint32) string {
	var names []string
	for _, f := range iffNames {
		if flags&f.bit != 0 {
			names = append(names, f.name)
		}
	}
	return fmt.Sprintf("flags=%x<%s>", flags, strings.Join(names, ","))
}

// linkFlags maps a Linux link to FreeBSD's flag word. Two flags are what
// FreeBSD always sets for the kind of interface rather than Linux state:
// SIMPLEX on every broadcast (Ethernet) interface (ether_ifattach), and
// MULTICAST on the loopback (if_loop.c sets IFF_MULTICAST; Linux lo has no
// IFF_MULTICAST). LOWER_UP is FreeBSD 14's name for link state up.
func linkFlags(l api.LinkStatus) uint32 {
	var f uint32
	set := func(cond bool, bit uint32) {
		if cond {
			f |= bit
		}
	}
	set(l.Up, iffUp)
	set(l.Broadcast, iffBroadcast)
	set(l.Loopback, iffLoopback)
	set(l.Running, iffRunning)
	set(l.Promisc, iffPromisc)
	set(l.Broadcast && !l.Loopback, iffSimplex)
	set(l.Multicast || l.Loopback, iffMulticast)
	set(l.Carrier, iffLowerUp)
	return f
}

// prefixMask4 is the IPv4 netmask of a prefix length as a number.
func prefixMask4(bits int) uint32 {
	if bits <= 0 {
		return 0
	}
	if bits >= 32 {
		return ^uint32(0)
	}
	return ^uint32(0) << (32 - bits)
}

// linkAddr is one address line of a physical interface; vhid 0 is a kernel
// address of the link.
type linkAddr struct {
	p    netip.Prefix
	vhid uint8
}

// FormatLink prints a host interface in FreeBSD 14's format (freebsd-cli.md
// section 1.C), after sbin/ifconfig/ifconfig_netlink.c status_nl():
//
//	em0: flags=1008943<UP,BROADCAST,RUNNING,PROMISC,SIMPLEX,MULTICAST,LOWER_UP> metric 0 mtu 1500
//		ether 00:0c:29:aa:bb:cc
//		inet 192.168.1.3 netmask 0xffffff00 broadcast 192.168.1.255
//		inet 192.168.1.50 netmask 0xffffffff broadcast 192.168.1.50 vhid 1
//		inet6 fe80::20c:29ff:feaa:bbcc%em0 prefixlen 64 scopeid 0x2
//		carp: MASTER vhid 1 advbase 1 advskew 100
//		      peer 224.0.0.18 peer6 ff02::12
//		status: active
//
// Line by line:
//
//   - The flags line: see linkFlags; "metric 0" (Linux has no metric).
//   - "ether" (af_link.c) when the link has a MAC; never for a loopback.
//   - The addresses: the link's kernel addresses, then the addresses of the
//     vhids configured on it (st.VHIDs with Iface == l.Name) with " vhid N".
//     status_nl() sorts them by address family, keeping each family in the
//     interface's order (sort_iface_ifaddrs, cmp_ifaddr): every inet line
//     comes before the inet6 lines.
//   - inet (af_inet.c): "\tinet %s netmask 0x%08x", " broadcast %s" on a
//     broadcast interface (the host address of the subnet: a /32 shows
//     itself; none for a /0), " vhid %d".
//   - inet6 (af_inet6.c): "\tinet6 %s prefixlen %d", a link-local address
//     with its zone ("fe80::1%em0") and " scopeid 0x%x" (the ifindex), then
//     " vhid %d". Address flags (autoconf, tentative, ...) are not known and
//     not printed.
//   - One carp block per vhid in creation order (ifcarp.c carp_status()):
//     "\tcarp: %s vhid %d advbase %d advskew %d", ` key "%s"` only with -k
//     (showKeys, which the caller grants to root only) and a key set, then
//     "\t      peer %s peer6 %s" (the multicast groups 224.0.0.18 and
//     ff02::12 unless peer or peer6 set another). A VRRPv3 vhid prints
//     "\tvrrp: %s vrid %d prio %d interval %d" alone instead.
//   - No "options=" and no "nd6 options=" line: the capabilities and ND
//     flags of a Linux link have no truthful FreeBSD value. No "media:" line
//     either: Linux does not report the media of every link (virtual links
//     have none, and ethtool speeds do not map to FreeBSD media words). The
//     "status:" line, which ifmedia prints after it, is printed from the
//     carrier for every link except the loopback: "status: active" or
//     "status: no carrier".
//   - A loopback ends with "\tgroups: lo" like FreeBSD 10+'s lo0
//     (ifgroup.c, the if_lo cloner's group).
func FormatLink(w io.Writer, l api.LinkStatus, st api.Status, showKeys bool) error {
	// Built with appends into one buffer: with 255 vhids this is
	// hundreds of lines, for which fmt's per-line cost showed.
	addrs := make([]linkAddr, 0, len(l.Addrs)+len(st.VHIDs))
	for _, p := range l.Addrs {
		addrs = append(addrs, linkAddr{p: p})
	}
	var vhids []int // indexes into st.VHIDs
	for i := range st.VHIDs {
		v := &st.VHIDs[i]
		if v.Iface != l.Name {
			continue
		}
		for _, p := range v.Addrs {
			addrs = append(addrs, linkAddr{p: p, vhid: v.VHID})
		}
		if v.VHID != 0 {
			vhids = append(vhids, i)
		}
	}
	slices.SortStableFunc(addrs, func(x, y linkAddr) int {
		return addrFamilyRank(x.p) - addrFamilyRank(y.p)
	})
	b := make([]byte, 0, 128+80*len(addrs)+96*len(vhids))
	b = fmt.Appendf(b, "%s: %s metric 0 mtu %d\n", l.Name, formatFlags(linkFlags(l)), l.MTU)
	if l.MAC != "" && !l.Loopback {
		b = append(b, "\tether "...)
		b = append(b, l.MAC...)
		b = append(b, '\n')
	}
	for _, a := range addrs {
		b = append(b, '\t')
		b = appendLinkAddr(b, a, l)
		b = append(b, '\n')
	}
	for _, i := range vhids {
		v := &st.VHIDs[i]
		state := v.State
		if state == "" {
			state = "INIT"
		}
		b = appendVHIDLines(b, v, state, showKeys)
		b = append(b, mismatchLine("\t", *v)...)
	}
	if l.Loopback {
		b = append(b, "\tgroups: lo\n"...)
	} else if l.Carrier {
		b = append(b, "\tstatus: active\n"...)
	} else {
		b = append(b, "\tstatus: no carrier\n"...)
	}
	_, err := w.Write(b)
	return err
}

// appendVHIDLines appends the status lines of vhid v in state
// (sbin/ifconfig/carp.c carp_status()): "\tcarp: %s vhid %d advbase %d
// advskew %d", the key only with showKeys, and the peer line; for a VRRPv3
// vhid "\tvrrp: %s vrid %d prio %d interval %d" and no key, with the peer
// line only when it has a unicast peer (bsdcarp sends VRRPv3 to peers,
// FreeBSD does not: the line says where they go).
func appendVHIDLines(b []byte, v *api.VHIDStatus, state string, showKeys bool) []byte {
	vrrp := v.Version == 3
	if vrrp {
		b = append(b, "\tvrrp: "...)
		b = append(b, state...)
		b = append(b, " vrid "...)
		b = strconv.AppendUint(b, uint64(v.VHID), 10)
		b = append(b, " prio "...)
		b = strconv.AppendUint(b, uint64(v.Priority), 10)
		b = append(b, " interval "...)
		b = strconv.AppendUint(b, uint64(v.Interval), 10)
	} else {
		b = append(b, "\tcarp: "...)
		b = append(b, state...)
		b = append(b, " vhid "...)
		b = strconv.AppendUint(b, uint64(v.VHID), 10)
		b = append(b, " advbase "...)
		b = strconv.AppendUint(b, uint64(v.AdvBase), 10)
		b = append(b, " advskew "...)
		b = strconv.AppendUint(b, uint64(v.AdvSkew), 10)
		if showKeys && v.Key != "" {
			b = append(b, " key \""...)
			b = append(b, v.Key...)
			b = append(b, '"')
		}
	}
	b = append(b, '\n')
	if !vrrp || v.Peer != "" || v.Peer6 != "" {
		b = append(b, "\t      "...)
		b = append(b, v.PeerLine()...)
		b = append(b, '\n')
	}
	return b
}

// addrFamilyRank orders AF_INET (2) before AF_INET6 (28).
func addrFamilyRank(p netip.Prefix) int {
	if p.Addr().Is4() {
		return 0
	}
	return 1
}

func formatLinkAddr(a linkAddr, l api.LinkStatus) string {
	return string(appendLinkAddr(nil, a, l))
}

// appendLinkAddr appends formatLinkAddr's line to b.
func appendLinkAddr(b []byte, a linkAddr, l api.LinkStatus) []byte {
	if ip := a.p.Addr().WithZone(""); ip.Is6() && ip.IsLinkLocalUnicast() {
		b = append(b, "inet6 "...)
		b = ip.AppendTo(b)
		b = append(b, '%')
		b = append(b, l.Name...)
		b = append(b, " prefixlen "...)
		b = strconv.AppendInt(b, int64(a.p.Bits()), 10)
		b = append(b, " scopeid 0x"...)
		b = strconv.AppendInt(b, int64(l.Index), 16)
	} else {
		b = appendInet(b, a.p, l.Broadcast)
	}
	if a.vhid != 0 {
		b = append(b, " vhid "...)
		b = strconv.AppendUint(b, uint64(a.vhid), 10)
	}
	return b
}

// FormatStatus prints every status form of ifconfig that p asks for
// (p.Request == nil): "ifconfig -l", "ifconfig -g GROUP", "ifconfig -a"
// (also no arguments and -k alone) and "ifconfig IF" for a host link or a
// carp clone. p.ShowKeys must be set only for root callers.
//
//   - -a lists st.Links (in ifindex order) then st.Clones (in creation
//     order): FreeBSD lists interfaces by index, and clones get theirs when
//     created, after the host's links.
//   - -l prints the same names on one line, separated by spaces.
//   - -g carp prints the carp(4) clones one per line (FreeBSD <= 9 cloner
//     group "carp"). A physical interface with vhids is not a member: FreeBSD
//     10+ has no carp interfaces, and there "ifconfig -g carp" prints
//     nothing. Any other group prints nothing and succeeds, as printgroup()
//     does for a group that does not exist.
//   - An unknown name is "interface IF does not exist" (an *api.Error).
func FormatStatus(w io.Writer, p ParsedIfconfig, st api.Status) error {
	switch {
	case p.ListNames:
		FormatList(w, statusNames(st))
		return nil
	case p.Group != "":
		if p.Group != "carp" {
			return nil
		}
		var b strings.Builder
		for _, c := range st.Clones {
			b.WriteString(c.Name + "\n")
		}
		_, err := io.WriteString(w, b.String())
		return err
	case p.ListAll:
		for _, l := range st.Links {
			if err := FormatLink(w, l, st, p.ShowKeys); err != nil {
				return err
			}
		}
		for _, c := range st.Clones {
			if err := FormatInterface(w, c.Name, st, p.ShowKeys); err != nil {
				return err
			}
		}
		return nil
	}
	for _, c := range st.Clones {
		if c.Name == p.Iface {
			return FormatInterface(w, p.Iface, st, p.ShowKeys)
		}
	}
	for _, l := range st.Links {
		if l.Name == p.Iface {
			return FormatLink(w, l, st, p.ShowKeys)
		}
	}
	return &api.Error{Reason: api.ReasonNoInterface, Name: p.Iface}
}

// FormatGroupAttribs prints OpenBSD's printgroupattribs() line for group:
// "carp: carp demote count N", N being the demotion counter
// (net.inet.carp.demotion).
func FormatGroupAttribs(w io.Writer, group string, st api.Status) {
	var n int64
	for _, k := range st.Knobs {
		if k.Name == api.SysctlPrefix+"demotion" {
			n = k.Value
		}
	}
	fmt.Fprintf(w, "%s: carp demote count %d\n", group, n)
}

// statusNames is the "ifconfig -l" list: links, then clones; a clone name
// that is also a link name is listed once.
func statusNames(st api.Status) []string {
	var names []string
	for _, l := range st.Links {
		names = append(names, l.Name)
	}
	for _, c := range st.Clones {
		if !slices.Contains(names, c.Name) {
			names = append(names, c.Name)
		}
	}
	return names
}
