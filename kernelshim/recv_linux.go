package kernelshim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
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

// batchReader reads up to readBatch datagrams in one recvmmsg from a raw IP
// socket, into buffers it owns and reuses (no allocation per read). The
// call is a raw, non-blocking system call made when the runtime's poller
// says the socket is readable: the runtime's bookkeeping for a system call
// that may block (entersyscall) wakes its monitor thread, sysmon, on every
// call while it sleeps, and sysmon then polls every 20 µs for a
// millisecond: on a BACKUP of 1,020 vhids that was a fifth of its CPU.
type batchReader struct {
	rc     syscall.RawConn
	hs     []mmsghdr
	iovs   []unix.Iovec
	names  []unix.RawSockaddrInet6 // large enough for an IPv4 source too
	buf    []byte                  // readBatch datagrams of readBufSize
	oob    []byte                  // readBatch control areas of oobLen
	oobLen int
}

// newBatchReader returns a reader of c with room for oobLen bytes of
// control messages per datagram.
func newBatchReader(c *net.IPConn, oobLen int) (*batchReader, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("raw socket: %w", err)
	}
	r := &batchReader{
		rc:     rc,
		hs:     make([]mmsghdr, readBatch),
		iovs:   make([]unix.Iovec, readBatch),
		names:  make([]unix.RawSockaddrInet6, readBatch),
		buf:    make([]byte, readBatch*readBufSize),
		oob:    make([]byte, readBatch*oobLen),
		oobLen: oobLen,
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

// read waits until the socket is readable and reads what is queued, up to
// readBatch datagrams; it returns how many.
func (r *batchReader) read() (int, error) {
	for i := range r.hs {
		h := &r.hs[i].hdr
		h.Namelen = unix.SizeofSockaddrInet6
		h.SetControllen(r.oobLen)
		h.Flags = 0
		r.hs[i].n = 0
	}
	var n int
	var errno syscall.Errno
	err := r.rc.Read(func(fd uintptr) bool {
		for {
			r1, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hs[0])), uintptr(len(r.hs)),
				unix.MSG_DONTWAIT, 0, 0)
			switch e {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false // wait in the poller
			}
			n, errno = int(r1), e
			return true
		}
	})
	if err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, fmt.Errorf("recvmmsg: %w", errno)
	}
	return n, nil
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
