//go:build linux

package kernelshim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/bsdcarp/bsdcarp/carp/osif"
	"golang.org/x/sys/unix"
)

// ListenARP: see the contract in carp/engine's kernel.go. One AF_PACKET socket for ETH_P_ARP, not bound to
// an interface, so that requests sent to a macvlan's own MAC (which the
// kernel delivers to the macvlan only) are seen as well as broadcasts.
func (k *Linux) ListenARP(ctx context.Context, onto chan<- osif.ARPRequest) error {
	if k.isClosed() {
		return fmt.Errorf("kernelshim: listen for ARP: %w", osif.ErrClosed)
	}
	var fd int
	err := k.inNS(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, int(htons(unix.ETH_P_ARP)))
		if err != nil {
			return fmt.Errorf("AF_PACKET ARP socket: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("kernelshim: listen for ARP: %w", err)
	}
	// A non-blocking descriptor in an os.File goes through the runtime
	// poller: closing the file wakes the reader.
	f := os.NewFile(uintptr(fd), "arp")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return fmt.Errorf("kernelshim: listen for ARP: %w", err)
	}
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		select {
		case <-ctx.Done():
		case <-k.close:
		}
		f.Close()
	}()
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		buf := make([]byte, 256)
		for {
			var n int
			var from unix.Sockaddr
			var rerr error
			err := rc.Read(func(fd uintptr) bool {
				n, from, rerr = unix.Recvfrom(int(fd), buf, 0)
				return !errors.Is(rerr, unix.EAGAIN)
			})
			if err != nil || ctx.Err() != nil {
				return // closed
			}
			if rerr != nil {
				if errors.Is(rerr, unix.EINTR) || errors.Is(rerr, unix.ENETDOWN) {
					continue
				}
				k.log.Warn("ARP receive", "err", rerr)
				continue
			}
			sa, ok := from.(*unix.SockaddrLinklayer)
			if !ok || sa.Pkttype == unix.PACKET_OUTGOING || sa.Pkttype == unix.PACKET_OTHERHOST {
				continue
			}
			req, ok := ParseARPRequest(buf[:n])
			if !ok {
				continue
			}
			req.IfIndex = sa.Ifindex
			select {
			case onto <- req:
			case <-ctx.Done():
				return
			case <-k.close:
				return
			}
		}
	}()
	return nil
}

// ReplyARP: see the contract in carp/engine's kernel.go.
func (k *Linux) ReplyARP(link string, mac net.HardwareAddr, addr netip.Addr, toMAC net.HardwareAddr, toIP netip.Addr) error {
	frame, err := ARPReplyFrame(mac, addr, toMAC, toIP)
	if err != nil {
		return err
	}
	l, err := k.nlLink(link)
	if err != nil {
		return fmt.Errorf("kernelshim: arp reply %s on %w", addr, err)
	}
	fd, err := k.packetSocket()
	if err != nil {
		return fmt.Errorf("kernelshim: arp reply %s on %s: %w", addr, link, err)
	}
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: l.Attrs().Index, Halen: 6}
	copy(sa.Addr[:], toMAC)
	if err := unix.Sendto(fd, frame, 0, sa); err != nil {
		return fmt.Errorf("kernelshim: arp reply %s on %s: send: %w", addr, link, err)
	}
	return nil
}
