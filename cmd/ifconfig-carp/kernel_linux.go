package main

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"github.com/bsdcarp/bsdcarp/carp/api"
)

// Linux's link flags and attributes that the standard library's syscall
// package does not name (linux/if.h, linux/if_link.h).
const (
	iffLowerUp    = 0x10000
	iflaOperState = 16
	iflaLinkInfo  = 18
	iflaInfoKind  = 1
	ifOperUp      = 6
)

// kernelLinks reads the host's links and their addresses from the kernel
// over rtnetlink with the standard library (the command links no netlink
// package), filled as carpd's Linux adapter fills them, so that FormatLink
// prints the same lines with and without carpd. Names are the kernel's:
// carpd's interface map is not applied.
func kernelLinks() ([]api.LinkStatus, error) {
	lb, err := syscall.NetlinkRIB(syscall.RTM_GETLINK, syscall.AF_UNSPEC)
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	lmsgs, err := syscall.ParseNetlinkMessage(lb)
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	var links []api.LinkStatus
	byIndex := map[int]int{}
	for _, m := range lmsgs {
		if m.Header.Type != syscall.RTM_NEWLINK || len(m.Data) < syscall.SizeofIfInfomsg {
			continue
		}
		info := (*syscall.IfInfomsg)(unsafe.Pointer(&m.Data[0]))
		attrs, err := syscall.ParseNetlinkRouteAttr(&m)
		if err != nil {
			return nil, fmt.Errorf("list links: %w", err)
		}
		f := info.Flags
		l := api.LinkStatus{
			Index:     int(info.Index),
			Up:        f&syscall.IFF_UP != 0,
			Running:   f&syscall.IFF_RUNNING != 0,
			Carrier:   f&iffLowerUp != 0,
			Broadcast: f&syscall.IFF_BROADCAST != 0,
			Multicast: f&syscall.IFF_MULTICAST != 0,
			Loopback:  f&syscall.IFF_LOOPBACK != 0,
			Promisc:   f&syscall.IFF_PROMISC != 0,
		}
		for _, a := range attrs {
			switch a.Attr.Type {
			case syscall.IFLA_IFNAME:
				l.Name = cstring(a.Value)
			case syscall.IFLA_MTU:
				if len(a.Value) >= 4 {
					l.MTU = int(binary.NativeEndian.Uint32(a.Value))
				}
			case syscall.IFLA_ADDRESS:
				if len(a.Value) > 0 {
					l.MAC = net.HardwareAddr(a.Value).String()
				}
			case iflaOperState:
				if len(a.Value) > 0 && a.Value[0] == ifOperUp {
					l.Carrier = true
				}
			case iflaLinkInfo:
				l.Kind = linkKind(a.Value)
			}
		}
		byIndex[l.Index] = len(links)
		links = append(links, l)
	}
	ab, err := syscall.NetlinkRIB(syscall.RTM_GETADDR, syscall.AF_UNSPEC)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	amsgs, err := syscall.ParseNetlinkMessage(ab)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	for _, m := range amsgs {
		if m.Header.Type != syscall.RTM_NEWADDR || len(m.Data) < syscall.SizeofIfAddrmsg {
			continue
		}
		am := (*syscall.IfAddrmsg)(unsafe.Pointer(&m.Data[0]))
		attrs, err := syscall.ParseNetlinkRouteAttr(&m)
		if err != nil {
			return nil, fmt.Errorf("list addresses: %w", err)
		}
		// IFA_LOCAL is the address itself on a point-to-point link,
		// IFA_ADDRESS otherwise (the peer there), as the netlink
		// package reads them.
		var local, addr []byte
		for _, a := range attrs {
			switch a.Attr.Type {
			case syscall.IFA_LOCAL:
				local = a.Value
			case syscall.IFA_ADDRESS:
				addr = a.Value
			}
		}
		if local != nil {
			addr = local
		}
		ip, ok := netip.AddrFromSlice(addr)
		i, known := byIndex[int(am.Index)]
		if !ok || !known {
			continue
		}
		links[i].Addrs = append(links[i].Addrs, netip.PrefixFrom(ip.Unmap(), int(am.Prefixlen)))
	}
	return links, nil
}

// linkKind is IFLA_INFO_KIND inside IFLA_LINKINFO ("veth", "bridge", ...).
func linkKind(b []byte) string {
	for len(b) >= 4 {
		n := int(binary.NativeEndian.Uint16(b[0:2]))
		typ := binary.NativeEndian.Uint16(b[2:4]) &^ (1 << 15) // NLA_F_NESTED
		if n < 4 || n > len(b) {
			return ""
		}
		if typ == iflaInfoKind {
			return cstring(b[4:n])
		}
		n = (n + 3) &^ 3
		if n > len(b) {
			return ""
		}
		b = b[n:]
	}
	return ""
}

// cstring is a NUL-terminated netlink string.
func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
