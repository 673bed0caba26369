package main

import (
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/bsdcarp/bsdcarp/carp"
	"github.com/bsdcarp/bsdcarp/kernelshim"
)

// floor is about the least work a CARP master of many vhids can do: once a
// second it builds the advert of every vhid (advbase 1, advskew 0, a fresh
// counter and its HMAC), as an Ethernet frame from the vhid's virtual MAC
// to 224.0.0.18, and sends them all with sendmmsg on one AF_PACKET socket.
// No state machine, no timers per vhid, no addresses and nothing to keep
// them (carpd's address lifetimes), no receiving. The scale benchmark runs
// it on its lab to show what putting N adverts a second on that lab's
// wire costs, beside what carpd and keepalived cost. The vhid's address in
// each advert is 10.<parent>.1.<vhid>, the benchmark's.
func floor(args []string) error {
	fs := flag.NewFlagSet("floor", flag.ExitOnError)
	ifnames := fs.String("i", "em0", "interfaces, comma separated (vhids 1..N on each, in turn)")
	vhids := fs.Int("vhids", 255, "vhids per interface")
	total := fs.Int("n", 255, "vhids in all")
	pass := fs.String("pass", "", "the vhids' key")
	_ = fs.Parse(args)
	type vh struct {
		vhid    uint8
		ifindex int
		src     netip.Addr
		addrs   []netip.Addr
		counter uint64
	}
	var vs []vh
	for p, name := range strings.Split(*ifnames, ",") {
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			return err
		}
		src, err := firstIPv4(ifi)
		if err != nil {
			return err
		}
		for v := 1; v <= *vhids && len(vs) < *total; v++ {
			vip := netip.AddrFrom4([4]byte{10, byte(p), 1, byte(v)})
			vs = append(vs, vh{uint8(v), ifi.Index, src, []netip.Addr{vip}, rand.Uint64()})
		}
	}
	if len(vs) == 0 {
		return errors.New("no vhids")
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 4<<20)
	key := carp.Key(*pass)
	n := len(vs)
	sa := make([]unix.RawSockaddrLinklayer, n)
	iov := make([]unix.Iovec, n)
	hdrs := make([]unix.Mmsghdr, n)
	frames := make([][]byte, n)
	const batch = 64
	for next := time.Now(); ; next = next.Add(time.Second) {
		time.Sleep(time.Until(next))
		for i := range vs {
			v := &vs[i]
			v.counter++
			pl := carp.BuildAdvert(v.vhid, 1, 0, v.counter, key, v.addrs)
			var mac [6]byte
			copy(mac[:], carp.VirtualMAC(v.vhid))
			f, err := kernelshim.AppendAdvertFrame(frames[i][:0], mac, v.src, netip.MustParseAddr("224.0.0.18"), 0, pl)
			if err != nil {
				return err
			}
			frames[i] = f
			sa[i] = unix.RawSockaddrLinklayer{Family: unix.AF_PACKET, Protocol: 0x0008, Ifindex: int32(v.ifindex), Halen: 6}
			copy(sa[i].Addr[:], f[:6])
			iov[i].Base = &f[0]
			iov[i].SetLen(len(f))
			hdrs[i] = unix.Mmsghdr{}
			hdrs[i].Hdr.Name = (*byte)(unsafe.Pointer(&sa[i]))
			hdrs[i].Hdr.Namelen = unix.SizeofSockaddrLinklayer
			hdrs[i].Hdr.Iov = &iov[i]
			hdrs[i].Hdr.SetIovlen(1)
		}
		for j := 0; j < n; {
			r, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&hdrs[j])), uintptr(min(n-j, batch)), unix.MSG_DONTWAIT, 0, 0)
			switch {
			case e == unix.EINTR:
			case e != 0:
				return fmt.Errorf("sendmmsg: %w", e)
			default:
				j += int(r)
			}
		}
	}
}

func firstIPv4(ifi *net.Interface) (netip.Addr, error) {
	as, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, err
	}
	for _, a := range as {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			ip, _ := netip.AddrFromSlice(n.IP.To4())
			return ip, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("%s has no IPv4 address", ifi.Name)
}
