//go:build linux

package kernelshim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"

	"github.com/bsdcarp/bsdcarp/carp/osif"
	"golang.org/x/sys/unix"
)

// The address refresh (RefreshAddrs) is the one periodic kernel write of a
// MASTER: every virtual address, a few times per lifetime. It goes out as
// RTM_NEWADDR messages (NLM_F_CREATE|NLM_F_REPLACE, what `ip addr replace`
// sends), many in one sendmsg on a NETLINK_ROUTE socket of its own, built
// from what ReplaceAddr decided at the install (link index, flags): no
// link lookup, no address dump.
//
// Acknowledgement: only the last message of each sendmsg asks for an ACK
// (NLM_F_ACK); the kernel reports an error for any message that fails
// whether asked or not (netlink_rcv_skb acks when NLM_F_ACK is set or the
// handler failed). rtnetlink handles a request synchronously inside
// sendmsg, so when sendmsg returns every reply is already queued on the
// socket, in message order: the replies are read without blocking up to
// that one ACK. A batch that succeeds costs one sendmsg and one recvmsg per
// refreshBatchBytes of messages, instead of one ACK per address (hundreds
// of queued ACKs would also overrun the receive buffer).
const (
	// refreshBatchBytes bounds one sendmsg (the kernel refuses one larger
	// than the socket's send buffer, 208 KiB by default): about 450 IPv4
	// or 350 IPv6 addresses.
	refreshBatchBytes = 32 << 10
	// refreshRcvBuf holds the error replies of a batch whose links are
	// all gone (NETLINK_CAP_ACK keeps each to 36 bytes plus overhead).
	refreshRcvBuf = 1 << 20
)

// refreshSocket returns the (lazily created) netlink socket of RefreshAddrs,
// opened in the adapter's namespace; k.rmu must be held.
func (k *Linux) refreshSocket() (int, error) {
	if k.rfd >= 0 {
		return k.rfd, nil
	}
	err := k.inNS(func() error {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
		if err != nil {
			return fmt.Errorf("netlink socket: %w", err)
		}
		if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			unix.Close(fd)
			return fmt.Errorf("bind netlink socket: %w", err)
		}
		// Errors carry only the failed request's header, not its payload.
		_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, refreshRcvBuf) != nil {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, refreshRcvBuf)
		}
		k.rfd = fd
		return nil
	})
	if err != nil {
		return -1, fmt.Errorf("kernelshim: refresh addresses: %w", err)
	}
	return k.rfd, nil
}

// RefreshAddrs: see the contract in carp/engine's kernel.go. A batch of
// at most rawRefreshMax addresses goes out as a raw system call (rawSend).
func (k *Linux) RefreshAddrs(batch []osif.AddrLifetime) error {
	return k.refreshAddrs(batch, len(batch) <= rawRefreshMax)
}

// refreshAddrs writes batch as RefreshAddrs does; raw sends it with
// rawSend, else with a system call the runtime knows may block (ReplaceAddr's
// installs: see rawSend).
func (k *Linux) refreshAddrs(batch []osif.AddrLifetime, raw bool) error {
	if len(batch) == 0 {
		return nil
	}
	k.rmu.Lock()
	defer k.rmu.Unlock()
	if k.isClosed() {
		return fmt.Errorf("kernelshim: refresh addresses: %w", osif.ErrClosed)
	}
	fd, err := k.refreshSocket()
	if err != nil {
		return err
	}
	var errs []error
	base := k.rseq + 1
	k.rseq += uint32(len(batch))
	for i := 0; i < len(batch); {
		// One sendmsg: entries i..j-1, the last one acknowledged.
		b := k.wbuf[:0]
		j := i
		for j < len(batch) && (j == i || len(b) < refreshBatchBytes-256) {
			if !batch[j].Prefix.IsValid() {
				errs = append(errs, &osif.AddrError{Entry: j, Addr: batch[j], Err: errors.New("invalid prefix")})
			} else {
				b = appendNewAddr(b, base+uint32(j), false, batch[j])
			}
			j++
		}
		k.wbuf = b
		if len(b) == 0 {
			i = j
			continue
		}
		last := lastMessage(b)
		binary.NativeEndian.PutUint16(b[last+6:], binary.NativeEndian.Uint16(b[last+6:])|unix.NLM_F_ACK)
		ackSeq := binary.NativeEndian.Uint32(b[last+8:])
		if err := sendNetlink(fd, b, raw); err != nil {
			return errors.Join(append(errs, fmt.Errorf("kernelshim: refresh %d addresses: send: %w", len(batch), err))...)
		}
		errs = append(errs, k.readRefreshReplies(fd, batch, base, ackSeq)...)
		i = j
	}
	return errors.Join(errs...)
}

// request sends one rtnetlink request msg (a whole message; its sequence
// number is set here and NLM_F_ACK added) on RefreshAddrs' socket and
// returns the error the kernel answered, if any: no socket made and closed
// for it, no change of namespace.
func (k *Linux) request(msg []byte) error {
	if len(msg) < unix.NLMSG_HDRLEN {
		return errors.New("kernelshim: netlink request: short message")
	}
	k.rmu.Lock()
	defer k.rmu.Unlock()
	if k.isClosed() {
		return fmt.Errorf("kernelshim: netlink request: %w", osif.ErrClosed)
	}
	fd, err := k.refreshSocket()
	if err != nil {
		return err
	}
	k.rseq++
	seq := k.rseq
	ne := binary.NativeEndian
	ne.PutUint32(msg[8:], seq)
	ne.PutUint16(msg[6:], ne.Uint16(msg[6:])|unix.NLM_F_ACK)
	if err := sendNetlink(fd, msg, false); err != nil {
		return fmt.Errorf("kernelshim: netlink request: send: %w", err)
	}
	for _, err := range k.readRefreshReplies(fd, make([]osif.AddrLifetime, 1), seq, seq) {
		var ae *osif.AddrError
		if errors.As(err, &ae) {
			return ae.Err
		}
		return err
	}
	return nil
}

// rawRefreshMax is the most addresses a refresh sends as a raw system
// call (rawSend): the periodic refresh of an idle MASTER of a few vhids,
// where the wake-up is most of the cost, the kernel's work a few µs an
// address and at most a few hundred µs in all.
const rawRefreshMax = 64

// sendNetlink sends b, one or more whole netlink messages (not empty), to
// the kernel on the netlink socket fd: with rawSend if raw, else as a
// system call the runtime knows may block.
func sendNetlink(fd int, b []byte, raw bool) error {
	if raw {
		return rawSend(fd, b)
	}
	return unix.Sendto(fd, b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
}

// rawSend sends b (not empty) as a raw system call. The runtime's
// bookkeeping for a call that may block wakes its monitor thread, sysmon,
// out of its sleep on each one, which then polls every 20 µs until the
// program is idle again: on the refresh of an idle MASTER of a few vhids,
// twice a second, that was half its context switches. The price: a raw
// call keeps the runtime's P while the kernel works, which may include
// waiting for the rtnl lock while anything else holds it. carpd runs on one
// P (cmd/carpd), so nothing else of carpd runs meanwhile: the engine, the
// one caller, waits for the answer all the same and the sockets' receive
// queues hold what arrives (up to their buffers), but a request on the
// control socket is not even read until it returns. (With a runtime-aware
// call, sysmon hands the P to another thread after about 20 µs.) Hence raw
// only for small batches: the installs of a takeover of many vhids and the
// refresh of many addresses keep the ordinary call, which let a
// configuration line through while they ran. With GOMAXPROCS above 1 a
// stop-the-world of the garbage collector waits for a raw call too.
// Nothing the kernel waits for there needs carpd to run, and a signal does
// not cut the call short (the lock is not interruptible, the runtime's
// handlers restart system calls); EINTR is retried all the same.
func rawSend(fd int, b []byte) error {
	sa := unix.RawSockaddrNetlink{Family: unix.AF_NETLINK}
	for {
		_, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
			0, uintptr(unsafe.Pointer(&sa)), unsafe.Sizeof(sa))
		switch e {
		case 0:
			return nil
		case unix.EINTR:
			continue
		}
		return e
	}
}

// rawRecv reads one datagram of the netlink socket fd without waiting
// (buf not empty) as a raw system call: it never waits, and the runtime's
// bookkeeping would wake sysmon (see rawSend).
func rawRecv(fd int, buf []byte) (int, error) {
	r, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)),
		unix.MSG_DONTWAIT, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// lastMessage returns the offset of the last netlink message in b.
func lastMessage(b []byte) int {
	off, last := 0, 0
	for off < len(b) {
		last = off
		off += nlmAlign(int(binary.NativeEndian.Uint32(b[off:])))
	}
	return last
}

func nlmAlign(n int) int { return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1) }

// readRefreshReplies reads, without blocking, the replies queued for one
// sendmsg up to the ACK of its last message (sequence number ackSeq), and
// returns an *osif.AddrError per failed entry. Replies of earlier calls (left by
// a call that failed half-way) are skipped by their sequence numbers.
func (k *Linux) readRefreshReplies(fd int, batch []osif.AddrLifetime, base, ackSeq uint32) []error {
	if k.rbuf == nil {
		k.rbuf = make([]byte, 64<<10)
	}
	var errs []error
	lost := false
	for {
		n, err := rawRecv(fd, k.rbuf)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.ENOBUFS):
			lost = true // the queue overran: some replies were dropped
			continue
		case errors.Is(err, unix.EAGAIN):
			e := errors.New("kernelshim: refresh addresses: no acknowledgement from the kernel")
			if lost {
				e = errors.New("kernelshim: refresh addresses: replies lost (receive queue overrun)")
			}
			return append(errs, e)
		case err != nil:
			return append(errs, fmt.Errorf("kernelshim: refresh addresses: receive: %w", err))
		}
		b := k.rbuf[:n]
		done := false
		for len(b) >= unix.NLMSG_HDRLEN {
			l := int(binary.NativeEndian.Uint32(b))
			typ := binary.NativeEndian.Uint16(b[4:])
			seq := binary.NativeEndian.Uint32(b[8:])
			if l < unix.NLMSG_HDRLEN || l > len(b) {
				break
			}
			if typ == unix.NLMSG_ERROR && l >= unix.NLMSG_HDRLEN+4 {
				if i := seq - base; i < uint32(len(batch)) {
					if code := int32(binary.NativeEndian.Uint32(b[unix.NLMSG_HDRLEN:])); code != 0 {
						errno := unix.Errno(-code)
						var cause error = errno
						if errno == unix.ENODEV {
							cause = fmt.Errorf("%w (%w)", osif.ErrNoLink, errno)
						}
						errs = append(errs, &osif.AddrError{Entry: int(i), Addr: batch[i], Err: cause})
					}
				}
				if seq == ackSeq {
					done = true
				}
			}
			if nlmAlign(l) >= len(b) {
				break
			}
			b = b[nlmAlign(l):]
		}
		if done {
			if lost {
				errs = append(errs, errors.New("kernelshim: refresh addresses: some error replies lost (receive queue overrun)"))
			}
			return errs
		}
	}
}

// appendNewAddr appends to b one RTM_NEWADDR request (NLM_F_REQUEST,
// NLM_F_CREATE, NLM_F_REPLACE; NLM_F_ACK with ack) that sets a's address on
// link a.Index with a's flags and lifetime: the message `ip addr replace`
// (and vishvananda/netlink's AddrReplace) sends; ReplaceAddr sends it too.
// a.Prefix must be valid.
func appendNewAddr(b []byte, seq uint32, ack bool, a osif.AddrLifetime) []byte {
	ne := binary.NativeEndian
	addr := a.Prefix.Addr().Unmap()
	family := uint8(unix.AF_INET6)
	if addr.Is4() {
		family = unix.AF_INET
	}
	flags := uint16(unix.NLM_F_REQUEST | unix.NLM_F_CREATE | unix.NLM_F_REPLACE)
	if ack {
		flags |= unix.NLM_F_ACK
	}
	start := len(b)
	b = ne.AppendUint32(b, 0) // nlmsg_len, set below
	b = ne.AppendUint16(b, unix.RTM_NEWADDR)
	b = ne.AppendUint16(b, flags)
	b = ne.AppendUint32(b, seq)
	b = ne.AppendUint32(b, 0) // nlmsg_pid: the kernel
	// struct ifaddrmsg
	b = append(b, family, uint8(a.Prefix.Bits()), uint8(a.Flags), 0 /* scope universe */)
	b = ne.AppendUint32(b, uint32(a.Index))
	attr := func(typ uint16, n int) {
		b = ne.AppendUint16(b, uint16(unix.SizeofRtAttr+n))
		b = ne.AppendUint16(b, typ)
	}
	raw := addr.AsSlice()
	attr(unix.IFA_LOCAL, len(raw))
	b = append(b, raw...)
	attr(unix.IFA_ADDRESS, len(raw))
	b = append(b, raw...)
	attr(unix.IFA_FLAGS, 4)
	b = ne.AppendUint32(b, a.Flags)
	if addr.Is4() && a.Prefix.Bits() < 31 {
		// The broadcast address an install sets (netlink's AddrReplace
		// computes it alike), for an address the refresh adds again.
		bc := addr.As4()
		host := ^uint32(0) >> a.Prefix.Bits()
		v := binary.BigEndian.Uint32(bc[:]) | host
		attr(unix.IFA_BROADCAST, 4)
		b = binary.BigEndian.AppendUint32(b, v)
	}
	if secs := osif.LifetimeSeconds(a.Lifetime); secs > 0 {
		attr(unix.IFA_CACHEINFO, unix.SizeofIfaCacheinfo)
		b = ne.AppendUint32(b, uint32(secs)) // ifa_prefered
		b = ne.AppendUint32(b, uint32(secs)) // ifa_valid
		b = ne.AppendUint32(b, 0)            // cstamp
		b = ne.AppendUint32(b, 0)            // tstamp
	}
	ne.PutUint32(b[start:], uint32(len(b)-start))
	return b
}
