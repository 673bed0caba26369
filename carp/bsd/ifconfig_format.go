package bsd

import (
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"github.com/bsdcarp/bsdcarp/carp/api"
)

// cloneIndent is the indentation of the handbook's carp0 status (section
// 28.4 of the OpenBSD-style chapter): five spaces, not a tab. Runbooks grep
// this text, so it stays byte-exact.
const cloneIndent = "     "

// FormatInterface prints a cloned carp interface (dialect A) the way the
// handbook shows it:
//
//	carp0: flags=8802<UP,BROADCAST,SIMPLEX,MULTICAST> mtu 1500
//	     carp: BACKUP carpdev em0 vhid 1 advbase 1 advskew 100
//	     inet 10.0.0.1 netmask 0xffffff00 broadcast 10.0.0.255
//
// The handbook prints the hex value 8802 although its bit list contains UP
// (0x1); the text is reproduced as is. An administratively down clone keeps
// the same hex value and drops UP from the list:
// "flags=8802<BROADCAST,SIMPLEX,MULTICAST>". There is no "metric 0" in this
// dialect. A clone without a vhid prints only the flags line. The key
// is appended to the carp line only when showKeys is set; the caller must
// pass showKeys only for root callers of "ifconfig -k".
//
// A clone whose vhid has no carpdev is a FreeBSD <= 9 carp interface
// (dialect B) and prints in that format instead: see formatCloneB. A clone
// without a vhid cannot tell the dialects apart and keeps the handbook's
// format (the first status after "ifconfig carp0 create").
func FormatInterface(w io.Writer, name string, st api.Status, showKeys bool) error {
	var clone *api.CloneStatus
	for i := range st.Clones {
		if st.Clones[i].Name == name {
			clone = &st.Clones[i]
			break
		}
	}
	if clone == nil {
		return &api.Error{Reason: api.ReasonNoInterface, Name: name}
	}
	for _, v := range st.VHIDs {
		if v.Iface == name && v.VHID != 0 && v.Carpdev == "" {
			return formatCloneB(w, *clone, st)
		}
	}
	var b strings.Builder
	flags := "UP,BROADCAST,SIMPLEX,MULTICAST"
	if !clone.Up {
		flags = "BROADCAST,SIMPLEX,MULTICAST"
	}
	mtu := clone.MTU
	if mtu == 0 {
		mtu = 1500
	}
	fmt.Fprintf(&b, "%s: flags=8802<%s> mtu %d\n", name, flags, mtu)

	var addrs []netip.Prefix
	for _, v := range st.VHIDs {
		if v.Iface != name {
			continue
		}
		addrs = append(addrs, v.Addrs...)
		if v.VHID == 0 {
			continue // addresses set before the vhid: no carp line yet
		}
		state := v.State
		if state == "" {
			state = "INIT"
		}
		if v.Version == 3 {
			fmt.Fprintf(&b, "%svrrp: %s vrid %d prio %d interval %d\n", cloneIndent, state, v.VHID, v.Priority, v.Interval)
			b.WriteString(mismatchLine(cloneIndent, v))
			continue
		}
		b.WriteString(cloneIndent + "carp: " + state)
		if v.Carpdev != "" {
			b.WriteString(" carpdev " + v.Carpdev)
		}
		fmt.Fprintf(&b, " vhid %d advbase %d advskew %d", v.VHID, v.AdvBase, v.AdvSkew)
		if showKeys && v.Key != "" {
			fmt.Fprintf(&b, " key \"%s\"", v.Key)
		}
		b.WriteByte('\n')
		b.WriteString(mismatchLine(cloneIndent, v))
	}
	for _, p := range addrs {
		b.WriteString(cloneIndent + formatAddr(p) + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// formatCloneB prints a FreeBSD <= 9 carp(4) interface (dialect B, cloned
// carpN without carpdev), as FreeBSD 9.3's sbin/ifconfig builds it ("·" is
// the trailing space of the inet line):
//
//	carp0: flags=49<UP,LOOPBACK,RUNNING> metric 0 mtu 1500
//		inet 192.168.1.50 netmask 0xffffff00·
//		carp: MASTER vhid 1 advbase 1 advskew 100
//
// Line by line:
//
//   - ifconfig.c status(): printb("flags", ...) with IFFBITS, then
//     " metric %d" and " mtu %d". FreeBSD 9's carp_clone_create() sets
//     IFF_LOOPBACK only (no BROADCAST, MULTICAST or SIMPLEX); carp_setrun()
//     sets RUNNING while the interface is up with a vhid and an address.
//     Down: "flags=8<LOOPBACK>"; up without a vhid address: "flags=9<UP,LOOPBACK>".
//   - The addresses in the interface's order (no sorting in FreeBSD 9), by
//     af_inet.c in_status(): printf("\tinet %s ", addr);
//     printf("netmask 0x%lx ", mask); no broadcast, the interface not being
//     IFF_BROADCAST; putchar('\n'). Hence the trailing space and the
//     unpadded hex mask. af_inet6.c in6_status() likewise ends
//     "\tinet6 %s prefixlen %d " with a space.
//   - Then af_other_status(), of which only ifcarp.c carp_status() prints
//     anything for carp0: printf("\tcarp: %s vhid %d advbase %d advskew %d\n").
//     FreeBSD 9 prints no key there, so showKeys does not apply. (ifmedia:
//     no SIOCGIFMEDIA on carp; ifgroup.c getifgroups(): only with -v.)
func formatCloneB(w io.Writer, clone api.CloneStatus, st api.Status) error {
	var addrs []netip.Prefix
	var carpLines []string
	for _, v := range st.VHIDs {
		if v.Iface != clone.Name {
			continue
		}
		addrs = append(addrs, v.Addrs...)
		if v.VHID == 0 {
			continue
		}
		state := v.State
		if state == "" {
			state = "INIT"
		}
		line := fmt.Sprintf("\tcarp: %s vhid %d advbase %d advskew %d\n", state, v.VHID, v.AdvBase, v.AdvSkew)
		if v.Version == 3 {
			line = fmt.Sprintf("\tvrrp: %s vrid %d prio %d interval %d\n", state, v.VHID, v.Priority, v.Interval)
		}
		carpLines = append(carpLines, line+mismatchLine("\t", v))
	}
	flags := uint32(iffLoopback)
	if clone.Up {
		flags |= iffUp
		if len(addrs) > 0 && len(carpLines) > 0 {
			flags |= iffRunning
		}
	}
	mtu := clone.MTU
	if mtu == 0 {
		mtu = 1500
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s metric 0 mtu %d\n", clone.Name, formatFlags(flags), mtu)
	for _, p := range addrs {
		a := p.Addr()
		if a.Is4() {
			fmt.Fprintf(&b, "\tinet %s netmask 0x%x \n", a, prefixMask4(p.Bits()))
		} else {
			fmt.Fprintf(&b, "\tinet6 %s prefixlen %d \n", a, p.Bits())
		}
	}
	for _, l := range carpLines {
		b.WriteString(l)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// formatAddr renders one address line without indentation:
// "inet A netmask 0x%08x broadcast B" (no broadcast for a /0; a /32 shows
// itself) or "inet6 A prefixlen N".
func formatAddr(p netip.Prefix) string { return formatInet(p, true) }

// formatInet renders an inet or inet6 line without indentation (and without
// the link-local zone and scopeid a physical interface adds): "inet A
// netmask 0x%08x broadcast B", broadcast only on a broadcast interface and
// not for a /0, a /32 showing itself; "inet6 A prefixlen N".
func formatInet(p netip.Prefix, broadcast bool) string {
	return string(appendInet(nil, p, broadcast))
}

// appendInet appends formatInet's text to b.
func appendInet(b []byte, p netip.Prefix, broadcast bool) []byte {
	a := p.Addr()
	if !a.Is4() {
		b = append(b, "inet6 "...)
		b = appendAddr(b, a.WithZone(""))
		b = append(b, " prefixlen "...)
		return strconv.AppendInt(b, int64(p.Bits()), 10)
	}
	mask := prefixMask4(p.Bits())
	b = append(b, "inet "...)
	b = a.AppendTo(b)
	b = append(b, " netmask 0x"...)
	b = appendHex8(b, mask)
	if broadcast && p.Bits() != 0 {
		v := maskBits(a) | ^mask
		b = append(b, " broadcast "...)
		b = netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}).AppendTo(b)
	}
	return b
}

// appendAddr appends a's text as fmt's %s prints it ("invalid IP" for the
// zero Addr, which AppendTo leaves out).
func appendAddr(b []byte, a netip.Addr) []byte {
	if !a.IsValid() {
		return append(b, a.String()...)
	}
	return a.AppendTo(b)
}

// appendHex8 appends v as %08x does.
func appendHex8(b []byte, v uint32) []byte {
	const digits = "0123456789abcdef"
	for shift := 28; shift >= 0; shift -= 4 {
		b = append(b, digits[v>>uint(shift)&0xf])
	}
	return b
}

// FormatList prints the output of "ifconfig -l": the names on one line,
// separated by single spaces.
func FormatList(w io.Writer, names []string) {
	io.WriteString(w, strings.Join(names, " ")+"\n")
}

// mismatchLine is bsdcarp's warning under the carp line of a vhid whose
// adverts from another host fail authentication (a split brain: both may
// be MASTER), printed only while that lasts; "" otherwise. It does not
// start with "carp:", so scripts that read the state from the carp line
// are not misled.
func mismatchLine(indent string, v api.VHIDStatus) string {
	if v.AuthMismatch == "" {
		return ""
	}
	return fmt.Sprintf("%swarning: vhid %d: adverts from %s fail authentication (password or address set differs)\n",
		indent, v.VHID, v.AuthMismatch)
}
