//go:build linux

package kernelshim

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bsdcarp/bsdcarp/carp/osif"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// The refresh batch decodes, with the netlink library's parsers, to the
// RTM_NEWADDR messages the library's AddrReplace sends: family,
// prefix length, index, addresses, flags, broadcast, lifetimes.
func TestRefreshBatchEncoding(t *testing.T) {
	entries := []osif.AddrLifetime{
		{Index: 7, Prefix: netip.MustParsePrefix("192.0.2.10/24"), Lifetime: time.Second, Flags: osif.AddrNoPrefixRoute},
		{Index: 8, Prefix: netip.MustParsePrefix("198.51.100.1/32"), Lifetime: 1500 * time.Millisecond},
		{Index: 9, Prefix: netip.MustParsePrefix("2001:db8::10/64"), Lifetime: 3 * time.Second, Flags: osif.AddrNoDAD | osif.AddrNoPrefixRoute},
		{Index: 10, Prefix: netip.MustParsePrefix("203.0.113.5/24")}, // permanent: no IFA_CACHEINFO
	}
	var b []byte
	for i, a := range entries {
		b = appendNewAddr(b, 100+uint32(i), i == len(entries)-1, a)
	}
	msgs, err := syscall.ParseNetlinkMessage(b)
	if err != nil || len(msgs) != len(entries) {
		t.Fatalf("ParseNetlinkMessage: %d messages, %v; want %d", len(msgs), err, len(entries))
	}
	for i, m := range msgs {
		a := entries[i]
		wantFlags := uint16(unix.NLM_F_REQUEST | unix.NLM_F_CREATE | unix.NLM_F_REPLACE)
		if i == len(entries)-1 {
			wantFlags |= unix.NLM_F_ACK
		}
		if m.Header.Type != unix.RTM_NEWADDR || m.Header.Flags != wantFlags || m.Header.Seq != 100+uint32(i) {
			t.Errorf("entry %d: header %+v, want RTM_NEWADDR flags %#x seq %d", i, m.Header, wantFlags, 100+i)
		}
		ifa := nl.DeserializeIfAddrmsg(m.Data)
		fam := uint8(unix.AF_INET)
		if a.Prefix.Addr().Is6() {
			fam = unix.AF_INET6
		}
		if ifa.Family != fam || int(ifa.Prefixlen) != a.Prefix.Bits() || int(ifa.Index) != a.Index || ifa.Scope != 0 || ifa.Flags != uint8(a.Flags) {
			t.Errorf("entry %d: ifaddrmsg %+v, want family %d, prefixlen %d, index %d, flags %#x", i, ifa, fam, a.Prefix.Bits(), a.Index, uint8(a.Flags))
		}
		attrs, err := nl.ParseRouteAttr(m.Data[unix.SizeofIfAddrmsg:])
		if err != nil {
			t.Fatalf("entry %d: attributes: %v", i, err)
		}
		got := map[uint16]string{}
		for _, at := range attrs {
			got[at.Attr.Type] = fmt.Sprintf("%x", at.Value)
		}
		raw := fmt.Sprintf("%x", a.Prefix.Addr().AsSlice())
		want := map[uint16]string{
			unix.IFA_LOCAL:   raw,
			unix.IFA_ADDRESS: raw,
			unix.IFA_FLAGS:   fmt.Sprintf("%x", nl.Uint32Attr(a.Flags)),
		}
		switch a.Prefix {
		case entries[0].Prefix:
			want[unix.IFA_BROADCAST] = "c00002ff" // 192.0.2.255
		case entries[3].Prefix:
			want[unix.IFA_BROADCAST] = "cb0071ff" // 203.0.113.255
		}
		if secs := osif.LifetimeSeconds(a.Lifetime); secs > 0 {
			ci := nl.IfaCacheInfo{IfaCacheinfo: unix.IfaCacheinfo{Prefered: uint32(secs), Valid: uint32(secs)}}
			want[unix.IFA_CACHEINFO] = fmt.Sprintf("%x", ci.Serialize())
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("entry %d (%s): attributes %v, want %v", i, a.Prefix, got, want)
		}
	}
	if off := lastMessage(b); off != len(b)-int(msgs[len(msgs)-1].Header.Len) {
		t.Errorf("lastMessage = %d, want %d", off, len(b)-int(msgs[len(msgs)-1].Header.Len))
	}
}

// BenchmarkRefreshBatchEncoding encodes the refresh of 255 IPv4 addresses
// (one MASTER of 255 vhids): one sendmsg's worth.
func BenchmarkRefreshBatchEncoding(b *testing.B) {
	batch := make([]osif.AddrLifetime, 255)
	for i := range batch {
		batch[i] = osif.AddrLifetime{Index: 10 + i, Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 99, byte(i/250 + 1), byte(i%250 + 1)}), 32),
			Lifetime: time.Second, Flags: osif.AddrNoPrefixRoute}
	}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = buf[:0]
		for i, a := range batch {
			buf = appendNewAddr(buf, uint32(i), i == len(batch)-1, a)
		}
	}
	b.ReportMetric(float64(len(buf)), "bytes/batch")
}

// TestLinuxRequest: request sends one rtnetlink request on the refresh
// socket and returns the kernel's answer: an errno for a link that is not
// there, nil for one that is (the change made); a refresh on the same
// socket afterwards still reads its own replies.
func TestLinuxRequest(t *testing.T) {
	requireRoot(t)
	a, _ := vethPair(t)
	k := kernelIn(t, a)
	alias := func(index int32, s string) []byte {
		req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, 0)
		msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
		msg.Index = index
		req.AddData(msg)
		req.AddData(nl.NewRtAttr(unix.IFLA_IFALIAS, []byte(s)))
		return req.Serialize()
	}
	if err := k.request(alias(1<<30, "nobody")); !errors.Is(err, unix.ENODEV) {
		t.Errorf("request for a missing link = %v, want ENODEV", err)
	}
	l, err := k.LinkByName("veth0")
	if err != nil {
		t.Fatal(err)
	}
	if err := k.request(alias(int32(l.Index), "set by request")); err != nil {
		t.Fatalf("request for veth0: %v", err)
	}
	if nl, err := k.nlLink("veth0"); err != nil || nl.Attrs().Alias != "set by request" {
		t.Errorf("veth0 after the request: %v, %v", nl, err)
	}
	if err := k.request([]byte{1, 2}); err == nil {
		t.Error("request of a short message: no error")
	}
	p := netip.MustParsePrefix("192.0.2.77/32")
	if _, err := k.ReplaceAddr("veth0", p, 30*time.Second); err != nil {
		t.Fatalf("ReplaceAddr after requests: %v", err)
	}
	if err := k.RefreshAddrs([]osif.AddrLifetime{{Index: l.Index, Prefix: p, Lifetime: time.Minute}}); err != nil {
		t.Fatalf("RefreshAddrs after requests: %v", err)
	}
}

// TestLinuxRefreshSmallAndLarge: a refresh of at most rawRefreshMax
// addresses (a raw system call) and one of more (an ordinary one, in two
// sendmsg as it is over refreshBatchBytes) each set the lifetime of every
// address they name, and report an entry that fails by its index while
// writing the others.
func TestLinuxRefreshSmallAndLarge(t *testing.T) {
	requireRoot(t)
	a, _ := vethPair(t)
	k := kernelIn(t, a)
	const n = 600
	batch := make([]osif.AddrLifetime, n)
	for i := range batch {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), 32)
		got, err := k.ReplaceAddr("veth0", p, time.Minute)
		if err != nil {
			t.Fatalf("ReplaceAddr(veth0, %s): %v", p, err)
		}
		batch[i] = got
	}
	if len(appendNewAddr(nil, 1, false, batch[0]))*n <= refreshBatchBytes {
		t.Fatalf("%d addresses fit one sendmsg: the test needs more", n)
	}
	lifetimes := func() map[netip.Addr]int {
		out := map[netip.Addr]int{}
		re := regexp.MustCompile(`inet (\S+)/32 .*valid_lft (\d+)sec`)
		for _, line := range strings.Split(ipn(t, a, "-o", "-4", "addr", "show", "dev", "veth0"), "\n") {
			if m := re.FindStringSubmatch(line); m != nil {
				secs, _ := strconv.Atoi(m[2])
				out[netip.MustParseAddr(m[1])] = secs
			}
		}
		return out
	}
	// check: entries [lo, hi) have a lifetime in (above, upTo] seconds.
	check := func(when string, lft map[netip.Addr]int, lo, hi, above, upTo int) {
		t.Helper()
		for i := lo; i < hi; i++ {
			if s, ok := lft[batch[i].Prefix.Addr()]; !ok || s <= above || s > upTo {
				t.Errorf("%s: %s valid_lft %ds (present %v), want (%d, %d]", when, batch[i].Prefix, s, ok, above, upTo)
			}
		}
	}

	small := make([]osif.AddrLifetime, rawRefreshMax)
	copy(small, batch)
	for i := range small {
		small[i].Lifetime = time.Hour
	}
	if err := k.RefreshAddrs(small); err != nil {
		t.Fatalf("RefreshAddrs of %d: %v", len(small), err)
	}
	lft := lifetimes()
	check("small refresh", lft, 0, rawRefreshMax, 3000, 3600)
	check("not in the small refresh", lft, rawRefreshMax, n, 0, 60)

	large := make([]osif.AddrLifetime, n)
	copy(large, batch)
	for i := range large {
		large[i].Lifetime = 2 * time.Hour
	}
	bad := n - 100 // in the second sendmsg
	large[bad].Index = 1 << 30
	err := k.RefreshAddrs(large)
	var ae *osif.AddrError
	if !errors.As(err, &ae) || ae.Entry != bad || !errors.Is(err, osif.ErrNoLink) {
		t.Fatalf("RefreshAddrs of %d with entry %d on no link = %v, want an *osif.AddrError for entry %d (ErrNoLink)", n, bad, err, bad)
	}
	lft = lifetimes()
	check("large refresh", lft, 0, bad, 6600, 7200)
	check("large refresh", lft, bad+1, n, 6600, 7200)
	check("the failed entry", lft, bad, bad+1, 0, 60)
}
