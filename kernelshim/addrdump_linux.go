package kernelshim

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"syscall"
	"unsafe"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// addrsOf returns the addresses of the link of the given index (> 0), as
// the netlink package reads them (see addrPrefix), from an address dump
// the kernel filters by that index: the socket asks for strict checking
// (NETLINK_GET_STRICT_CHK, Linux 4.20), which makes the kernel honour the
// index of the request. Without it, every link event of carpd's link
// watch carried every address of the namespace: with 1,020 vhids, a
// quarter of carpd's CPU while vhids were added. On an older kernel the
// dump is whole and filtered here.
func (k *Linux) addrsOf(index int) ([]netip.Prefix, error) {
	var out []netip.Prefix
	err := k.inNS(func() error {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
		if err != nil {
			return fmt.Errorf("netlink socket: %w", err)
		}
		defer unix.Close(fd)
		_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_GET_STRICT_CHK, 1)
		if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			return fmt.Errorf("netlink bind: %w", err)
		}
		req := make([]byte, unix.SizeofNlMsghdr+unix.SizeofIfAddrmsg)
		binary.NativeEndian.PutUint32(req[0:4], uint32(len(req)))
		binary.NativeEndian.PutUint16(req[4:6], unix.RTM_GETADDR)
		binary.NativeEndian.PutUint16(req[6:8], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
		binary.NativeEndian.PutUint32(req[8:12], 1) // sequence
		binary.NativeEndian.PutUint32(req[unix.SizeofNlMsghdr+4:], uint32(index))
		if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			return fmt.Errorf("address dump: %w", err)
		}
		buf := make([]byte, 64<<10)
		interrupted := false
		for {
			n, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				return fmt.Errorf("address dump: %w", err)
			}
			msgs, err := syscall.ParseNetlinkMessage(buf[:n])
			if err != nil {
				return fmt.Errorf("address dump: %w", err)
			}
			for i := range msgs {
				m := &msgs[i]
				if m.Header.Flags&unix.NLM_F_DUMP_INTR != 0 {
					interrupted = true
				}
				switch m.Header.Type {
				case unix.NLMSG_DONE:
					// A dump that failed ends with its error here.
					if len(m.Data) >= 4 {
						if e := int32(binary.NativeEndian.Uint32(m.Data[0:4])); e < 0 && syscall.Errno(-e) != unix.ENODEV {
							return fmt.Errorf("address dump: %w", syscall.Errno(-e))
						}
					}
					if interrupted {
						return netlink.ErrDumpInterrupted
					}
					return nil
				case unix.NLMSG_ERROR:
					if len(m.Data) >= 4 {
						if e := int32(binary.NativeEndian.Uint32(m.Data[0:4])); e != 0 {
							return fmt.Errorf("address dump: %w", syscall.Errno(-e))
						}
					}
					return nil
				case unix.RTM_NEWADDR:
					k.addrMsgs.Add(1)
					if len(m.Data) < unix.SizeofIfAddrmsg {
						continue
					}
					am := (*unix.IfAddrmsg)(unsafe.Pointer(&m.Data[0]))
					if int(am.Index) != index {
						continue // a kernel without strict checking dumps all
					}
					if p, ok := addrPrefix(m, am); ok {
						out = append(out, p)
					}
				}
			}
		}
	})
	return out, err
}

// addrPrefix is the prefix of an RTM_NEWADDR message as the netlink
// package's AddrList gives it (and prefixOf turns it into a prefix): the
// local address with the prefix length when IFA_LOCAL is absent or equals
// IFA_ADDRESS on IPv4, else IFA_LOCAL as a host prefix (a point-to-point
// address, whose IFA_ADDRESS is the peer).
func addrPrefix(m *syscall.NetlinkMessage, am *unix.IfAddrmsg) (netip.Prefix, bool) {
	attrs, err := syscall.ParseNetlinkRouteAttr(m)
	if err != nil {
		return netip.Prefix{}, false
	}
	var local, addr []byte
	for _, a := range attrs {
		switch a.Attr.Type {
		case unix.IFA_LOCAL:
			local = a.Value
		case unix.IFA_ADDRESS:
			addr = a.Value
		}
	}
	pick, bits := addr, int(am.Prefixlen)
	if local != nil {
		la, _ := netip.AddrFromSlice(local)
		da, _ := netip.AddrFromSlice(addr)
		if !(am.Family == unix.AF_INET && addr != nil && la == da) {
			pick, bits = local, 8*len(local)
		}
	}
	a, ok := netip.AddrFromSlice(pick)
	if !ok || bits > a.BitLen() {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a.Unmap(), bits), true
}
