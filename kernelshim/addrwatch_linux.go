//go:build linux

package kernelshim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"syscall"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// The link watch's address notifications. carpd refreshes the lifetime of
// each of its virtual addresses twice a second, and every refresh makes the
// kernel multicast an RTM_NEWADDR to the address groups: at 1,020 vhids
// parsing those into objects only to drop them cost a MASTER more CPU than
// anything but sending adverts. So the watch reads the groups itself: a
// socket filter drops the notifications of our own macvlans in the kernel,
// and what gets through is looked at only as far as ifa_index, in one reused
// buffer, before anything is allocated.

// Offsets in a notification: struct nlmsghdr (16 bytes), then struct
// ifaddrmsg whose ifa_index (__u32, host order) starts at byte 4.
const (
	nlmsgHdrLen    = unix.SizeofNlMsghdr
	ifaIndexOffset = nlmsgHdrLen + 4
	ifaMinLen      = nlmsgHdrLen + unix.SizeofIfAddrmsg
)

// addrWatchBuf is the reused receive buffer: notifications are about 100
// bytes, and each datagram carries one.
const addrWatchBuf = 32 << 10

// maxFilterRanges bounds the socket filter to BPF_MAXINSNS (4096): three
// instructions per range of our ifindexes. Indexes beyond it pass the filter
// and are dropped by the reader instead.
const maxFilterRanges = 1300

// addrWatch is a netlink socket subscribed to RTNLGRP_IPV4_IFADDR and
// RTNLGRP_IPV6_IFADDR, non-blocking under the runtime's poller so that
// closing it ends a blocked read.
type addrWatch struct {
	f  *os.File
	rc syscall.RawConn
}

// openAddrWatch opens the socket in k's namespace, with the filter for the
// links in ours.
func (k *Linux) openAddrWatch(ours []int) (*addrWatch, error) {
	var fd int
	err := k.inNS(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
		if err != nil {
			return fmt.Errorf("netlink socket: %w", err)
		}
		groups := uint32(1<<(unix.RTNLGRP_IPV4_IFADDR-1) | 1<<(unix.RTNLGRP_IPV6_IFADDR-1))
		if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: groups}); err != nil {
			unix.Close(fd)
			return fmt.Errorf("bind netlink address groups: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("address notifications: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, netlinkRcvBuf); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("address notifications: receive buffer: %w", err)
	}
	w := &addrWatch{f: os.NewFile(uintptr(fd), "netlink-addr")}
	if w.rc, err = w.f.SyscallConn(); err != nil {
		w.f.Close()
		return nil, fmt.Errorf("address notifications: %w", err)
	}
	if err := w.setFilter(ours); err != nil {
		k.log.Debug("link watch: no filter for our own address notifications", "err", err)
	}
	return w, nil
}

// setFilter attaches (replaces) the socket filter that drops the
// notifications of the links in ours.
func (w *addrWatch) setFilter(ours []int) error {
	prog, err := ifindexFilter(ours, nativeIsBig())
	if err != nil {
		return err
	}
	fp := make([]unix.SockFilter, len(prog))
	for i, in := range prog {
		fp[i] = unix.SockFilter{Code: in.Op, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	var serr error
	if err := w.rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptSockFprog(int(fd), unix.SOL_SOCKET, unix.SO_ATTACH_FILTER,
			&unix.SockFprog{Len: uint16(len(fp)), Filter: &fp[0]})
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("SO_ATTACH_FILTER: %w", serr)
	}
	return nil
}

func nativeIsBig() bool { return binary.NativeEndian.Uint16([]byte{0, 1}) == 1 }

// ifindexFilter is a classic BPF program that drops a notification whose
// ifa_index is in ours and accepts anything else (also anything too short
// to hold an ifaddrmsg).
func ifindexFilter(ours []int, bigEndian bool) ([]bpf.RawInstruction, error) {
	const accept, drop = math.MaxUint32, 0
	prog := []bpf.Instruction{
		bpf.LoadExtension{Num: bpf.ExtLen},
		bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: ifaMinLen, SkipTrue: 1},
		bpf.RetConstant{Val: accept},
	}
	if bigEndian {
		prog = append(prog, bpf.LoadAbsolute{Off: ifaIndexOffset, Size: 4})
	} else {
		// BPF loads words big-endian: assemble the host-order value from
		// its bytes, most significant (the last) first.
		prog = append(prog, bpf.LoadAbsolute{Off: ifaIndexOffset + 3, Size: 1})
		for off := uint32(ifaIndexOffset + 2); ; off-- {
			prog = append(prog,
				bpf.ALUOpConstant{Op: bpf.ALUOpShiftLeft, Val: 8},
				bpf.TAX{},
				bpf.LoadAbsolute{Off: off, Size: 1},
				bpf.ALUOpX{Op: bpf.ALUOpOr},
			)
			if off == ifaIndexOffset {
				break
			}
		}
	}
	for i, r := range indexRanges(ours) {
		if i == maxFilterRanges {
			break
		}
		prog = append(prog,
			bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: r[0], SkipFalse: 2},
			bpf.JumpIf{Cond: bpf.JumpGreaterThan, Val: r[1], SkipTrue: 1},
			bpf.RetConstant{Val: drop},
		)
	}
	prog = append(prog, bpf.RetConstant{Val: accept})
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, fmt.Errorf("assemble address filter: %w", err)
	}
	return raw, nil
}

// indexRanges turns a set of ifindexes into sorted [first, last] runs of
// consecutive ones.
func indexRanges(idx []int) [][2]uint32 {
	s := slices.Clone(idx)
	slices.Sort(s)
	var out [][2]uint32
	for _, i := range s {
		if i <= 0 || i > math.MaxUint32 {
			continue
		}
		u := uint32(i)
		if n := len(out); n > 0 && (out[n-1][1] == u || out[n-1][1]+1 == u) {
			out[n-1][1] = u
			continue
		}
		out = append(out, [2]uint32{u, u})
	}
	return out
}

// readAddrWatch delivers the link index of every address notification that is not
// about one of our links to ch, and closes ch when the socket fails or is
// closed; a failure (ENOBUFS: notifications were lost) goes to onErr first.
func (k *Linux) readAddrWatch(w *addrWatch, ch chan<- int, done <-chan struct{}, onErr func(error)) {
	defer close(ch)
	buf := make([]byte, addrWatchBuf)
	for {
		var n int
		var from unix.Sockaddr
		var rerr error
		err := w.rc.Read(func(fd uintptr) bool {
			n, from, rerr = unix.Recvfrom(int(fd), buf, 0)
			return !errors.Is(rerr, unix.EAGAIN)
		})
		if err == nil {
			err = rerr
		}
		if err != nil {
			select {
			case <-done: // closed on purpose
			default:
				onErr(fmt.Errorf("address notifications: receive: %w", err))
			}
			return
		}
		if sa, ok := from.(*unix.SockaddrNetlink); !ok || sa.Pid != 0 {
			continue // only the kernel speaks for the address groups
		}
		for b := buf[:n]; len(b) >= nlmsgHdrLen; {
			l := int(binary.NativeEndian.Uint32(b[0:4]))
			if l < nlmsgHdrLen || l > len(b) {
				break
			}
			typ := binary.NativeEndian.Uint16(b[4:6])
			if (typ == unix.RTM_NEWADDR || typ == unix.RTM_DELADDR) && l >= ifaMinLen {
				index := int(binary.NativeEndian.Uint32(b[ifaIndexOffset:]))
				k.addrNotes.Add(1)
				if k.isOurs(index) {
					k.ownAddrNotes.Add(1)
					if k.filterStale.Load() {
						k.refilter()
					}
				} else {
					select {
					case ch <- index:
					case <-done:
						return
					}
				}
			}
			b = b[min(nlmsgAlign(l), len(b)):]
		}
	}
}

func nlmsgAlign(l int) int { return (l + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1) }
