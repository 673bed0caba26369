package kernelshim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsghdr is struct mmsghdr of recvmmsg(2): one message header and the
// number of bytes the kernel put in it.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
	_   [4]byte
}

// batchReader reads the adverts of one address family from a raw IP socket
// of its own (protocol 112, opened by openReceiver), up to readBatch
// datagrams per recvmmsg, into buffers it owns and reuses (no allocation
// per read).
//
// Gathering: the adverts of many vhids come in bursts (a MASTER sends those
// due together back to back, a few milliseconds for hundreds), and a reader
// woken per datagram pays a wake-up of the Go program (the poller's
// epoll_wait, the scheduler) for every one or two adverts: at 1,020 vhids
// that was most of a BACKUP's CPU. So the socket is not in the runtime's
// poller but, one-shot, in an epoll set of the reader's own, which is: the
// first datagram wakes the reader and disarms the socket; the reader takes
// what is queued, once more at once, and when the burst goes on it lets it
// gather for gatherWindow (no wake-up in between: the socket is disarmed)
// before each further read; when a read finds nothing it arms the socket
// again. A lone advert costs one wake-up as before, a burst a few.
//
// Every system call here is a raw, non-blocking one: the runtime's
// bookkeeping for a call that may block (entersyscall) wakes its monitor
// thread, sysmon, on every call while it sleeps, and sysmon then polls every
// 20 µs for a millisecond. Only the reader's goroutine uses the socket and
// closes it (close); the epoll set is an *os.File so that closing it
// (stop, from any goroutine) ends a wait or a re-arm without the race of
// a number closed under a system call.
type batchReader struct {
	fd     int // the socket, owned by the reader's goroutine
	ep     *os.File
	eprc   syscall.RawConn
	hs     []mmsghdr
	iovs   []unix.Iovec
	names  []unix.RawSockaddrInet6 // large enough for an IPv4 source too
	buf    []byte                  // readBatch datagrams of readBufSize
	oob    []byte                  // readBatch control areas of oobLen
	oobLen int
	events [1]unix.EpollEvent

	waits   atomic.Int64 // waits begun, for the tests
	sleeps  atomic.Int64 // gathering pauses, for the tests
	stopped atomic.Bool  // stop was called

	armed bool // the socket is armed in ep (waiting for a datagram)
	reads int  // reads that found datagrams since the last wake-up
	full  bool // the last read filled every buffer
}

// gatherWindow is how long a reader lets a burst of adverts gather before
// its next read (see batchReader). Adverts are timed in seconds (CARP) or
// at least 10 ms (VRRPv3), and a backup's master-down timer is three of
// them: a datagram handled 2 ms later changes nothing.
const gatherWindow = 2 * time.Millisecond

// newBatchReader returns a reader of the raw socket fd, which it owns from
// now on (close closes it, also when newBatchReader fails), with room for
// oobLen bytes of control messages per datagram.
func newBatchReader(fd, oobLen int) (*batchReader, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("epoll: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLONESHOT, Fd: int32(fd)}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		unix.Close(ep)
		unix.Close(fd)
		return nil, fmt.Errorf("epoll add: %w", err)
	}
	if err := unix.SetNonblock(ep, true); err != nil {
		unix.Close(ep)
		unix.Close(fd)
		return nil, fmt.Errorf("epoll: %w", err)
	}
	r := &batchReader{
		fd:     fd,
		ep:     os.NewFile(uintptr(ep), "carp-epoll"), // non-blocking: in the runtime's poller
		hs:     make([]mmsghdr, readBatch),
		iovs:   make([]unix.Iovec, readBatch),
		names:  make([]unix.RawSockaddrInet6, readBatch),
		buf:    make([]byte, readBatch*readBufSize),
		oob:    make([]byte, readBatch*oobLen),
		oobLen: oobLen,
		armed:  true,
	}
	if r.eprc, err = r.ep.SyscallConn(); err != nil {
		r.close()
		return nil, fmt.Errorf("epoll: %w", err)
	}
	if !pollable(r.ep) {
		r.close()
		return nil, errors.New("epoll: not pollable")
	}
	for i := range r.hs {
		r.iovs[i].Base = &r.buf[i*readBufSize]
		r.iovs[i].SetLen(readBufSize)
		h := &r.hs[i].hdr
		h.Name = (*byte)(unsafe.Pointer(&r.names[i]))
		h.Iov = &r.iovs[i]
		h.SetIovlen(1)
		if oobLen > 0 {
			h.Control = &r.oob[i*oobLen]
		}
	}
	return r, nil
}

// pollable reports whether f is in the runtime's poller: os.NewFile leaves
// a file out when it cannot add it (fs.epoll.max_user_watches), and waiting
// on it would then fail at once.
func pollable(f *os.File) bool {
	return !errors.Is(f.SetReadDeadline(time.Time{}), os.ErrNoDeadline)
}

// stop ends the reader's current or next wait with net.ErrClosed; any
// goroutine may call it, more than once.
func (r *batchReader) stop() {
	r.stopped.Store(true)
	r.ep.Close()
}

// pollErr is the error of a wait or re-arm that the epoll set's file
// refused: net.ErrClosed after stop, else what it said.
func (r *batchReader) pollErr(err error) error {
	if r.stopped.Load() {
		return fmt.Errorf("wait for adverts: %w", net.ErrClosed)
	}
	return fmt.Errorf("wait for adverts: %w", err)
}

// close releases the socket and the epoll set; only the reader's goroutine
// calls it, once, when it is done reading.
func (r *batchReader) close() {
	r.ep.Close()
	unix.Close(r.fd)
}

// read waits until the socket has datagrams and reads what is queued, up to
// readBatch datagrams; it returns how many. After stop it returns an error
// wrapping net.ErrClosed.
func (r *batchReader) read() (int, error) {
	for {
		if r.armed {
			if err := r.wait(); err != nil {
				return 0, err
			}
			r.armed, r.reads, r.full = false, 0, false
		} else if r.reads >= 2 && !r.full {
			// A burst is under way and the queue was drained: let the
			// rest of it gather (the socket stays disarmed).
			r.sleeps.Add(1)
			time.Sleep(gatherWindow)
		}
		n, err := r.recv()
		if err != nil {
			return 0, err
		}
		if n > 0 {
			r.reads++
			r.full = n == len(r.hs)
			return n, nil
		}
		if err := r.arm(); err != nil {
			return 0, err
		}
	}
}

// wait waits in the runtime's poller until the epoll set reports the
// socket, which disarms it (EPOLLONESHOT).
func (r *batchReader) wait() error {
	r.waits.Add(1)
	var errno syscall.Errno
	err := r.eprc.Read(func(ep uintptr) bool {
		for {
			n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, ep, uintptr(unsafe.Pointer(&r.events[0])), 1, 0, 0, 0)
			switch {
			case e == unix.EINTR:
				continue
			case e != 0:
				errno = e
				return true
			}
			return n > 0
		}
	})
	if err != nil {
		return r.pollErr(err)
	}
	if errno != 0 {
		return fmt.Errorf("epoll_wait: %w", errno)
	}
	return nil
}

// arm arms the socket again in the epoll set: a datagram queued since the
// last read makes the set readable at once.
func (r *batchReader) arm() error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLONESHOT, Fd: int32(r.fd)}
	var errno syscall.Errno
	err := r.eprc.Control(func(ep uintptr) {
		_, _, errno = unix.RawSyscall6(unix.SYS_EPOLL_CTL, ep, unix.EPOLL_CTL_MOD, uintptr(r.fd), uintptr(unsafe.Pointer(&ev)), 0, 0)
	})
	if err != nil {
		return r.pollErr(err)
	}
	if errno != 0 {
		return fmt.Errorf("epoll_ctl: %w", errno)
	}
	r.armed = true
	return nil
}

// recv reads what is queued, up to readBatch datagrams, without waiting:
// 0 when nothing is.
func (r *batchReader) recv() (int, error) {
	for i := range r.hs {
		h := &r.hs[i].hdr
		h.Namelen = unix.SizeofSockaddrInet6
		h.SetControllen(r.oobLen)
		h.Flags = 0
		r.hs[i].n = 0
	}
	for {
		n, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, uintptr(r.fd), uintptr(unsafe.Pointer(&r.hs[0])), uintptr(len(r.hs)),
			unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			return int(n), nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return 0, nil
		}
		return 0, fmt.Errorf("recvmmsg: %w", e)
	}
}

// datagram is the i-th datagram of the last read (at most readBufSize
// bytes: a longer one is cut, and its checks fail).
func (r *batchReader) datagram(i int) []byte {
	return r.buf[i*readBufSize : i*readBufSize+min(int(r.hs[i].n), readBufSize)]
}

// control is the control messages of the i-th datagram.
func (r *batchReader) control(i int) []byte {
	return r.oob[i*r.oobLen : i*r.oobLen+min(int(r.hs[i].hdr.Controllen), r.oobLen)]
}

// source is the sender of the i-th datagram, invalid when the kernel gave
// none.
func (r *batchReader) source(i int) netip.Addr {
	sa := &r.names[i]
	switch {
	case sa.Family == unix.AF_INET && r.hs[i].hdr.Namelen >= unix.SizeofSockaddrInet4:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrFrom4(sa4.Addr)
	case sa.Family == unix.AF_INET6 && r.hs[i].hdr.Namelen >= unix.SizeofSockaddrInet6:
		return netip.AddrFrom16(sa.Addr)
	}
	return netip.Addr{}
}

// pktInfo is what the control messages of a datagram say: the interface
// it arrived on, its TTL (hop limit) and destination; zero values for what
// they lack.
type pktInfo struct {
	ifIndex int
	ttl     int
	dst     netip.Addr
}

// errCmsg is wrapped by parseCmsgs' error for a malformed control area.
var errCmsg = errors.New("malformed control message")

// parseCmsgs reads IP_PKTINFO / IP_TTL (IPv4) and IPV6_PKTINFO /
// IPV6_HOPLIMIT (IPv6) out of the control area b, without allocating.
func parseCmsgs(b []byte) (pktInfo, error) {
	var pi pktInfo
	hdr := unix.CmsgLen(0)
	for len(b) > 0 {
		if len(b) < unix.SizeofCmsghdr {
			return pi, fmt.Errorf("%w: %d bytes left", errCmsg, len(b))
		}
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		l := int(h.Len)
		if l < hdr || l > len(b) {
			return pi, fmt.Errorf("%w: length %d of %d", errCmsg, l, len(b))
		}
		data := b[hdr:l]
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			pi.ifIndex = int(int32(binary.NativeEndian.Uint32(data[0:4])))
			pi.dst = netip.AddrFrom4([4]byte(data[8:12]))
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_TTL && len(data) >= 4:
			pi.ttl = int(int32(binary.NativeEndian.Uint32(data)))
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			pi.dst = netip.AddrFrom16([16]byte(data[0:16]))
			pi.ifIndex = int(binary.NativeEndian.Uint32(data[16:20]))
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_HOPLIMIT && len(data) >= 4:
			pi.ttl = int(int32(binary.NativeEndian.Uint32(data)))
		}
		next := unix.CmsgSpace(l - hdr)
		if next >= len(b) {
			break
		}
		b = b[next:]
	}
	return pi, nil
}
