//go:build linux

package kernelshim

import (
	"slices"
	"unsafe"

	"github.com/bsdcarp/bsdcarp/carp/osif"
	"golang.org/x/sys/unix"
)

// sendBatchMax bounds the frames of one sendmmsg. On a veth the receiving
// side's work runs inside the sender's system call (a few µs a frame), and
// the call is a raw one (see sendFrame), which holds its thread's share of
// the Go runtime that long: 64 frames keep it well under a millisecond
// while the system call's own cost is spread over 64 adverts.
const sendBatchMax = 64

// frameBatch holds the frames of one SendCARPs call and their sendmmsg
// headers, reused from call to call (under fmu).
type frameBatch struct {
	buf  []byte                      // the frames, back to back
	off  []int                       // off[j]: where frame j starts in buf
	ad   []int                       // ad[j]: the advert (index in ads) frame j is
	sa   []unix.RawSockaddrLinklayer // sa[j]: where frame j goes
	iov  []unix.Iovec
	hdrs []unix.Mmsghdr
}

// SendCARPs: see the contract in carp/engine's kernel.go.
//
// The multicast adverts that SendCARP would send as frames on the
// AF_PACKET socket (see there) are built into one buffer and sent by
// sendmmsg, sendBatchMax at a time: one system call for many adverts
// instead of one each. Every other advert, and any frame the kernel
// refused, goes through SendCARP afterwards (which looks its link up
// again and retries once when the cached one failed), so each advert gets
// SendCARP's result; those leave after the batch's frames.
func (k *Linux) SendCARPs(ads []osif.Advert, errs []error) {
	var single []int // adverts for SendCARP, in order
	if fd, v6, ok := k.batchable(); ok {
		single = k.sendFrames(fd, v6, ads, errs)
	} else {
		single = make([]int, len(ads))
		for i := range ads {
			single[i] = i
		}
	}
	for _, i := range single {
		a := ads[i]
		errs[i] = k.SendCARP(a.Out, a.Src, a.Dst, a.TOS, a.Payload)
	}
}

// batchable returns the AF_PACKET socket when frames can be sent on it
// (the adapter open, OpenCARP done: SendCARP needs its sockets first, and
// the socket made), and whether the IPv6 CARP socket is open (SendCARP
// refuses an IPv6 advert when it is not).
func (k *Linux) batchable() (fd int, v6, ok bool) {
	_, p6, err := k.sockets()
	if err != nil {
		return -1, false, false
	}
	fd, err = k.packetSocket()
	return fd, p6 != nil, err == nil
}

// sendFrames sends the adverts of ads that leave as frames in batches
// (IPv6 ones only when v6), sets errs[i] = nil for each one sent, and
// returns the indexes of the others (not a frame, or refused) in order.
func (k *Linux) sendFrames(fd int, v6 bool, ads []osif.Advert, errs []error) (single []int) {
	k.fmu.Lock()
	defer k.fmu.Unlock()
	b := &k.batch
	b.buf, b.off, b.ad, b.sa = b.buf[:0], b.off[:0], b.ad[:0], b.sa[:0]
	for i, a := range ads {
		src, dst := a.Src.Unmap(), a.Dst.Unmap()
		if !src.IsValid() || !dst.IsValid() || src.Is4() != dst.Is4() || !dst.IsMulticast() || (dst.Is6() && !v6) {
			single = append(single, i)
			continue
		}
		sl, _, err := k.sendLink(a.Out)
		if err != nil || sl.wire == 0 {
			single = append(single, i)
			continue
		}
		start := len(b.buf)
		f, err := AppendAdvertFrame(b.buf, sl.mac, src, dst, a.TOS, a.Payload)
		if err != nil {
			b.buf = f[:start]
			single = append(single, i)
			continue
		}
		b.buf = f
		b.off, b.ad, b.sa = append(b.off, start), append(b.ad, i), append(b.sa, frameDest(sl, f[start:]))
	}
	n := len(b.off)
	if n == 0 {
		return single
	}
	if k.isClosed() {
		// SendCARP reports the adapter closed for each.
		single = append(single, b.ad...)
		slices.Sort(single)
		return single
	}
	// The headers point into buf and sa, which no longer grow.
	if cap(b.iov) < n {
		b.iov, b.hdrs = make([]unix.Iovec, n), make([]unix.Mmsghdr, n)
	}
	b.iov, b.hdrs = b.iov[:n], b.hdrs[:n]
	for j := range n {
		end := len(b.buf)
		if j+1 < n {
			end = b.off[j+1]
		}
		b.iov[j].Base = &b.buf[b.off[j]]
		b.iov[j].SetLen(end - b.off[j])
		b.hdrs[j] = unix.Mmsghdr{}
		h := &b.hdrs[j].Hdr
		h.Name = (*byte)(unsafe.Pointer(&b.sa[j]))
		h.Namelen = unix.SizeofSockaddrLinklayer
		h.Iov = &b.iov[j]
		h.SetIovlen(1)
	}
	refused := false
	for j := 0; j < n; {
		m := min(n-j, sendBatchMax)
		// Raw, as sendFrame's sendto: MSG_DONTWAIT, it never parks.
		r, _, errno := unix.RawSyscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&b.hdrs[j])), uintptr(m),
			unix.MSG_DONTWAIT, 0, 0)
		switch {
		case errno == unix.EINTR:
			continue
		case errno != 0 || r == 0:
			// The first frame of this call was refused: SendCARP tries
			// it again and reports what it gets.
			single = append(single, b.ad[j])
			refused = true
			j++
			continue
		}
		k.mmsgCalls.Add(1)
		for _, i := range b.ad[j : j+int(r)] {
			errs[i] = nil
		}
		j += int(r) // a frame after the r sent was refused: the next call starts at it
	}
	if refused {
		slices.Sort(single)
	}
	return single
}
