package kernelshim

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// cmsg builds one control message as the kernel lays it out.
func cmsg(level, typ int32, data []byte) []byte {
	b := make([]byte, unix.CmsgSpace(len(data)))
	h := (*unix.Cmsghdr)(unsafePointer(&b[0]))
	h.Level, h.Type = level, typ
	h.SetLen(unix.CmsgLen(len(data)))
	copy(b[unix.CmsgLen(0):], data)
	return b
}

func TestParseCmsgs(t *testing.T) {
	ttl := []byte{64, 0, 0, 0}
	pkt4 := make([]byte, unix.SizeofInet4Pktinfo)
	pkt4[0] = 7                             // ifindex 7 (little-endian host)
	copy(pkt4[8:12], []byte{224, 0, 0, 18}) // header destination
	v4 := append(cmsg(unix.IPPROTO_IP, unix.IP_TTL, ttl), cmsg(unix.IPPROTO_IP, unix.IP_PKTINFO, pkt4)...)
	pi, err := parseCmsgs(v4)
	if err != nil || pi != (pktInfo{ifIndex: 7, ttl: 64, dst: netip.MustParseAddr("224.0.0.18")}) {
		t.Errorf("IPv4: %+v, %v", pi, err)
	}
	if n := len(ipv4.NewControlMessage(ipv4.FlagTTL | ipv4.FlagInterface | ipv4.FlagDst)); n < len(v4) {
		t.Errorf("read4's control area of %d bytes is smaller than the %d the kernel writes", n, len(v4))
	}

	pkt6 := make([]byte, unix.SizeofInet6Pktinfo)
	g := netip.MustParseAddr("ff02::12").As16()
	copy(pkt6, g[:])
	pkt6[16] = 9
	v6 := append(cmsg(unix.IPPROTO_IPV6, unix.IPV6_HOPLIMIT, []byte{255, 0, 0, 0}), cmsg(unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, pkt6)...)
	pi, err = parseCmsgs(v6)
	if err != nil || pi != (pktInfo{ifIndex: 9, ttl: 255, dst: netip.MustParseAddr("ff02::12")}) {
		t.Errorf("IPv6: %+v, %v", pi, err)
	}
	if n := len(ipv6.NewControlMessage(ipv6.FlagHopLimit | ipv6.FlagInterface | ipv6.FlagDst)); n < len(v6) {
		t.Errorf("read6's control area of %d bytes is smaller than the %d the kernel writes", n, len(v6))
	}

	if pi, err := parseCmsgs(nil); err != nil || pi != (pktInfo{}) {
		t.Errorf("no control messages: %+v, %v", pi, err)
	}
	// Unknown messages are skipped.
	if pi, err := parseCmsgs(append(cmsg(unix.SOL_SOCKET, unix.SCM_TIMESTAMP, make([]byte, 16)), v4...)); err != nil || pi.ifIndex != 7 {
		t.Errorf("after an unknown message: %+v, %v", pi, err)
	}
	// Malformed areas are errors, never a panic.
	bad := cmsg(unix.IPPROTO_IP, unix.IP_TTL, ttl)
	(*unix.Cmsghdr)(unsafePointer(&bad[0])).SetLen(len(bad) + 8)
	for name, b := range map[string][]byte{"length beyond the area": bad, "short header": v4[:5], "cut message": v4[:len(v4)-8]} {
		if _, err := parseCmsgs(b); !errors.Is(err, errCmsg) {
			t.Errorf("%s: err %v, want errCmsg", name, err)
		}
	}
	if a := testing.AllocsPerRun(100, func() { _, _ = parseCmsgs(v6) }); a != 0 {
		t.Errorf("parseCmsgs allocates %v times", a)
	}
}

func unsafePointer(b *byte) unsafe.Pointer { return unsafe.Pointer(b) }

// pairReader returns a batchReader of one end of a datagram socketpair and
// the other end to write to.
func pairReader(t *testing.T) (*batchReader, int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	r, err := newBatchReader(fds[0], 0)
	if err != nil {
		unix.Close(fds[1])
		t.Fatal(err)
	}
	t.Cleanup(func() { r.close(); unix.Close(fds[1]) })
	return r, fds[1]
}

// readResult is one batchReader.read: the datagrams and the error.
type readResult struct {
	got []string
	err error
}

// readAsync runs one read on its own goroutine.
func readAsync(r *batchReader) <-chan readResult {
	ch := make(chan readResult, 1)
	go func() {
		n, err := r.read()
		var got []string
		for i := range n {
			got = append(got, string(r.datagram(i)))
		}
		ch <- readResult{got, err}
	}()
	return ch
}

func writeDatagrams(t *testing.T, fd int, names ...string) {
	t.Helper()
	for _, s := range names {
		if _, err := unix.Write(fd, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
}

func awaitRead(t *testing.T, ch <-chan readResult) readResult {
	t.Helper()
	select {
	case res := <-ch:
		return res
	case <-time.After(10 * time.Second):
		t.Fatal("read did not return")
		return readResult{}
	}
}

// awaitWaits polls until r has begun its n-th wait (when names when).
func awaitWaits(t *testing.T, r *batchReader, n int64, when string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for r.waits.Load() != n {
		if time.Now().After(deadline) {
			t.Fatalf("the reader did not wait %s", when)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestBatchReaderWaitsOncePerBurst: the reader waits for the socket only
// when a read found it empty; what is queued meanwhile is read without
// another wake-up, in order, none twice, none lost, a full batch at a time.
func TestBatchReaderWaitsOncePerBurst(t *testing.T) {
	r, w := pairReader(t)
	writeDatagrams(t, w, "a", "b", "c")
	if res := awaitRead(t, readAsync(r)); res.err != nil || !slices.Equal(res.got, []string{"a", "b", "c"}) {
		t.Fatalf("first read: %v, %v", res.got, res.err)
	}
	if r.armed {
		t.Fatal("the socket is armed again after a read that found datagrams")
	}
	// More of the burst: read without waiting; a full batch is followed
	// by a read without a pause.
	var more []string
	for i := range readBatch + 5 {
		more = append(more, fmt.Sprintf("d%d", i))
	}
	writeDatagrams(t, w, more...)
	res := awaitRead(t, readAsync(r))
	if res.err != nil || !slices.Equal(res.got, more[:readBatch]) || !r.full {
		t.Fatalf("second read: %v, %v, full %v; want the first %d", res.got, res.err, r.full, readBatch)
	}
	if res = awaitRead(t, readAsync(r)); res.err != nil || !slices.Equal(res.got, more[readBatch:]) {
		t.Fatalf("third read: %v, %v; want %v", res.got, res.err, more[readBatch:])
	}
	if n := r.waits.Load(); n != 1 {
		t.Fatalf("%d waits for one burst, want 1", n)
	}
	if n := r.sleeps.Load(); n != 0 {
		t.Fatalf("%d gathering pauses before a partial read, want 0", n)
	}
	// The last read was partial and followed others: the burst may go
	// on, so the next read pauses first and reads what came meanwhile.
	writeDatagrams(t, w, "f", "g")
	if res := awaitRead(t, readAsync(r)); res.err != nil || !slices.Equal(res.got, []string{"f", "g"}) {
		t.Fatalf("read after the pause: %v, %v", res.got, res.err)
	}
	if n, w := r.sleeps.Load(), r.waits.Load(); n != 1 || w != 1 {
		t.Fatalf("%d pauses and %d waits, want 1 and 1", n, w)
	}
	// Nothing queued: the next read arms the socket and waits for the
	// next datagram.
	ch := readAsync(r)
	awaitWaits(t, r, 2, "when its socket was empty")
	select {
	case res := <-ch:
		t.Fatalf("read returned %v, %v with nothing queued", res.got, res.err)
	default:
	}
	writeDatagrams(t, w, "e")
	if res := awaitRead(t, ch); res.err != nil || !slices.Equal(res.got, []string{"e"}) {
		t.Fatalf("read after the wait: %v, %v", res.got, res.err)
	}
}

// TestBatchReaderStop: stop ends a read waiting for datagrams with
// net.ErrClosed, and every later read too.
func TestBatchReaderStop(t *testing.T) {
	r, _ := pairReader(t)
	ch := readAsync(r)
	awaitWaits(t, r, 1, "")
	r.stop()
	if res := awaitRead(t, ch); !errors.Is(res.err, net.ErrClosed) {
		t.Fatalf("read after stop: %v, %v; want net.ErrClosed", res.got, res.err)
	}
	if _, err := r.read(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second read after stop: %v; want net.ErrClosed", err)
	}
	r.stop() // twice is harmless

	// Stopped in the middle of a burst: the reader pauses, finds
	// nothing, and its re-arm reports the stop.
	r2, w := pairReader(t)
	for _, d := range []string{"a", "b"} {
		writeDatagrams(t, w, d)
		if res := awaitRead(t, readAsync(r2)); res.err != nil || !slices.Equal(res.got, []string{d}) {
			t.Fatalf("read %s: %v, %v", d, res.got, res.err)
		}
	}
	r2.stop()
	if res := awaitRead(t, readAsync(r2)); !errors.Is(res.err, net.ErrClosed) || r2.sleeps.Load() != 1 {
		t.Fatalf("read after a stop during a burst: %v, %v, %d pauses; want net.ErrClosed after 1", res.got, res.err, r2.sleeps.Load())
	}
}
