package carp

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"net/netip"
	"testing"
)

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

// refMAC is the HMAC of the message carp_hmac_prepare() builds
// (sys/netinet/ip_carp.c), written out by hand.
func refMAC(key []byte, vhid uint8, msgAddrs string, counter string) [20]byte {
	m, err := hex.DecodeString("0201" + hex.EncodeToString([]byte{vhid}) + msgAddrs + counter)
	if err != nil {
		panic(err)
	}
	h := hmac.New(sha1.New, key)
	h.Write(m)
	var md [20]byte
	h.Sum(md[:0])
	return md
}

func TestMACMessage(t *testing.T) {
	const ctr = "0102030405060708"
	const counter = 0x0102030405060708
	key := []byte("pw")
	tests := []struct {
		name  string
		addrs []netip.Addr
		// msg is the hex of the addresses part of the HMAC message.
		msg string
	}{
		{"no address", nil, ""},
		{"one IPv4 address", addrs("192.0.2.100"), "c0000264"},
		{"IPv4 sorted numerically", addrs("10.0.0.2", "10.0.0.1", "9.255.255.255"), "09ffffff" + "0a000001" + "0a000002"},
		{"IPv4 duplicates hashed once", addrs("10.0.0.1", "10.0.0.1"), "0a000001"},
		{"0.0.0.0 and broadcast never hashed", addrs("0.0.0.0", "255.255.255.255", "10.0.0.1"), "0a000001"},
		{"IPv4 before IPv6 whatever the order", addrs("2001:db8::1", "10.0.0.1"), "0a000001" + "20010db8000000000000000000000001"},
		{"IPv6 sorted bytewise and deduplicated", addrs("2001:db8::2", "fe80::1", "2001:db8::2"),
			"20010db8000000000000000000000002" + "fe800000000000000000000000000001"},
		{"IPv6 zone stripped", addrs("fe80::1%eth0", "fe80::1%eth1"), "fe800000000000000000000000000001"},
		{":: and all-ones never hashed", addrs("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db8::1"),
			"20010db8000000000000000000000001"},
		{"invalid netip.Addr ignored", []netip.Addr{{}, netip.MustParseAddr("10.0.0.1")}, "0a000001"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := refMAC(key, 5, tt.msg, ctr)
			if got := MAC(key, 5, tt.addrs, counter); got != want {
				t.Errorf("MAC = %x, want %x", got, want)
			}
			if !VerifyMAC(key, 5, tt.addrs, counter, want) {
				t.Errorf("VerifyMAC = false")
			}
		})
	}
}

func TestMACIndependentOfAddressOrder(t *testing.T) {
	a := addrs("10.0.0.3", "2001:db8::9", "10.0.0.1", "fe80::5%em0", "10.0.0.2", "2001:db8::1")
	want := MAC(nil, 1, a, 99)
	for i := range a {
		rot := append(append([]netip.Addr{}, a[i:]...), a[:i]...)
		if got := MAC(nil, 1, rot, 99); got != want {
			t.Errorf("rotation %d: %x != %x", i, got, want)
		}
	}
	if got := MAC(nil, 1, a[:5], 99); got == want {
		t.Errorf("dropping an address does not change the MAC")
	}
}

func TestMACInputsMatter(t *testing.T) {
	a := addrs("10.0.0.1")
	base := MAC([]byte("k"), 1, a, 1)
	for name, md := range map[string][20]byte{
		"vhid":    MAC([]byte("k"), 2, a, 1),
		"counter": MAC([]byte("k"), 1, a, 2),
		"key":     MAC([]byte("K"), 1, a, 1),
		"address": MAC([]byte("k"), 1, addrs("10.0.0.2"), 1),
	} {
		if md == base {
			t.Errorf("changing the %s does not change the MAC", name)
		}
	}
}

func TestKey(t *testing.T) {
	tests := []struct {
		name, pass string
		want       []byte
	}{
		{"empty password is an empty key", "", []byte{}},
		{"short password as is", "secret", []byte("secret")},
		{"19 bytes kept", "0123456789abcdefghi", []byte("0123456789abcdefghi")},
		{"longer cut silently to 19 like strlcpy into 20", "0123456789abcdefghijklmnop", []byte("0123456789abcdefghi")},
		{"C string ends at NUL", "ab\x00cd", []byte("ab")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Key(tt.pass); !bytes.Equal(got, tt.want) {
				t.Errorf("Key(%q) = %q, want %q", tt.pass, got, tt.want)
			}
		})
	}
	t.Run("passwords equal in 19 bytes authenticate each other", func(t *testing.T) {
		md := MAC(Key("0123456789abcdefghi-one"), 1, nil, 7)
		if !VerifyMAC(Key("0123456789abcdefghi-two"), 1, nil, 7, md) {
			t.Errorf("truncated keys differ")
		}
	})
	t.Run("empty key is still HMACed", func(t *testing.T) {
		md := MAC(Key(""), 1, addrs("10.0.0.1"), 7)
		if md != refMAC(nil, 1, "0a000001", "0000000000000007") {
			t.Errorf("empty key MAC differs from HMAC with an empty key")
		}
		if VerifyMAC(Key("x"), 1, addrs("10.0.0.1"), 7, md) {
			t.Errorf("a set password accepts an unauthenticated peer")
		}
	})
	t.Run("trailing zero bytes equal the kernel's zero padded key", func(t *testing.T) {
		padded := append([]byte("secret"), make([]byte, 14)...)
		if MAC(padded, 1, nil, 1) != MAC(Key("secret"), 1, nil, 1) {
			t.Errorf("zero padding changes the MAC")
		}
	})
}

func TestVerifyMACAcceptsOpenBSDVariantWithoutLinkLocal(t *testing.T) {
	local := addrs("2001:db8::1", "fe80::1%em0", "10.0.0.1")
	openbsd := MAC([]byte("k"), 3, addrs("2001:db8::1", "10.0.0.1"), 5)
	if !VerifyMAC([]byte("k"), 3, local, 5, openbsd) {
		t.Errorf("OpenBSD variant rejected")
	}
	if !VerifyMAC([]byte("k"), 3, local, 5, MAC([]byte("k"), 3, local, 5)) {
		t.Errorf("FreeBSD form rejected")
	}
	if VerifyMAC([]byte("k"), 3, addrs("2001:db8::1", "10.0.0.1"), 5, MAC([]byte("k"), 3, local, 5)) {
		t.Errorf("a link-local address the receiver lacks is accepted")
	}
}

func TestCounter(t *testing.T) {
	random := func() uint64 { return 0xfffffffffffffffe }
	t.Run("random at first send then +1 wrapping", func(t *testing.T) {
		var c Counter
		if _, ok := c.Value(); ok {
			t.Fatal("zero Counter has a value")
		}
		for i, want := range []uint64{0xfffffffffffffffe, 0xffffffffffffffff, 0, 1} {
			if got := c.Next(random); got != want {
				t.Errorf("send %d: %#x, want %#x", i, got, want)
			}
		}
	})
	t.Run("adopting a received value continues at peer+1 without drawing", func(t *testing.T) {
		var c Counter
		c.Adopt(false, 41)
		if got := c.Next(func() uint64 { t.Fatal("random drawn after Adopt"); return 0 }); got != 42 {
			t.Errorf("Next = %d, want 42", got)
		}
		c.Adopt(false, 1000)
		if got := c.Next(nil); got != 1001 {
			t.Errorf("Next = %d, want 1001", got)
		}
		if v, ok := c.Value(); v != 1001 || !ok {
			t.Errorf("Value = %d %v", v, ok)
		}
	})
}

func TestCounterReplay(t *testing.T) {
	const start = 5000
	fixed := func() uint64 { return start }
	tests := []struct {
		name  string
		setup func(c *Counter)
		ipv6  bool
		v     uint64
		fresh bool
	}{
		{"first advert ever is fresh", func(c *Counter) {}, false, 77, true},
		{"the peer's next advert is fresh", func(c *Counter) { c.Adopt(false, 100) }, false, 101, true},
		{"the same advert again is a replay", func(c *Counter) { c.Adopt(false, 100) }, false, 100, false},
		{"an older captured advert is a replay", func(c *Counter) { c.Adopt(false, 100) }, false, 40, false},
		{"a replay from far back inside the window", func(c *Counter) { c.Adopt(false, 1<<41) }, false, 1<<41 - ReplayWindow, false},
		{"just outside the window is a reboot's fresh counter", func(c *Counter) { c.Adopt(false, 1<<41) }, false, 1<<41 - ReplayWindow - 1, true},
		{"a random counter ahead (reboot) is fresh", func(c *Counter) { c.Adopt(false, 100) }, false, 0xdeadbeefcafe0000, true},
		{"a copy of our own last advert is a replay", func(c *Counter) { c.Next(fixed) }, false, start, false},
		{"our own advert over IPv6 too", func(c *Counter) { c.Next(fixed) }, true, start, false},
		{"a backup that adopted ours and takes over is fresh", func(c *Counter) { c.Next(fixed) }, false, start + 1, true},
		{"families are independent (IPv6 same counter as IPv4)", func(c *Counter) { c.Adopt(false, 100) }, true, 100, true},
		{"wrapping: behind across zero", func(c *Counter) { c.Adopt(false, 3) }, false, 0xfffffffffffffff0, false},
		{"wrapping: ahead across zero", func(c *Counter) { c.Adopt(false, 0xfffffffffffffff0) }, false, 3, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Counter
			tt.setup(&c)
			if got := c.Fresh(tt.ipv6, tt.v); got != tt.fresh {
				t.Errorf("Fresh(%v, %#x) = %v, want %v", tt.ipv6, tt.v, got, tt.fresh)
			}
		})
	}
	t.Run("adoption never moves the counter back", func(t *testing.T) {
		var c Counter
		c.Adopt(false, 200)
		c.Adopt(true, 150) // a lagging peer's IPv6 advert: fresh on its family, but behind
		if got := c.Next(nil); got != 201 {
			t.Errorf("Next = %d, want 201", got)
		}
		if c.Fresh(false, 201) || c.Fresh(true, 201) {
			t.Errorf("our own advert 201 is fresh after sending it")
		}
	})
	t.Run("old chains stay stale after the segment moved to a rebooted peer's chain", func(t *testing.T) {
		// Found by TestSimulation (seed 2 before the fix): remembering
		// only the newest counter, a host that heard a rebooted peer's
		// fresh chain took every replay of the old chain as fresh again,
		// and two captures from two chains could be replayed forever.
		var c Counter
		c.Adopt(false, 100)                // chain X
		c.Adopt(false, 0x8000000000000000) // a peer rebooted: chain Z
		for _, v := range []uint64{100, 99, 0x8000000000000000} {
			if c.Fresh(false, v) {
				t.Errorf("Fresh(%#x) after both chains were seen", v)
			}
		}
		if !c.Fresh(false, 101) || !c.Fresh(false, 0x8000000000000001) {
			t.Error("the next advert of a chain is not fresh")
		}
		c.Adopt(false, 101) // chain X goes on
		if c.Fresh(false, 0x8000000000000000) || c.Fresh(false, 101) {
			t.Error("a chain was forgotten when the other advanced")
		}
	})
	t.Run("at most MaxChains chains, the least recently advanced forgotten", func(t *testing.T) {
		var c Counter
		chain := func(i int) uint64 { return uint64(i) << 48 }
		for i := range MaxChains + 1 {
			c.Adopt(true, chain(i))
		}
		if !c.Fresh(true, chain(0)) {
			t.Error("the oldest chain is still remembered beyond MaxChains")
		}
		for i := 1; i <= MaxChains; i++ {
			if c.Fresh(true, chain(i)) {
				t.Errorf("chain %d forgotten", i)
			}
		}
		if got := len(c.heads[1]); got != MaxChains {
			t.Errorf("%d chains remembered, want %d", got, MaxChains)
		}
	})
	t.Run("a rebooted peer's fresh counter is adopted", func(t *testing.T) {
		var c Counter
		c.Adopt(false, 200)
		c.Adopt(false, 0x8000000000000000)
		if got := c.Next(nil); got != 0x8000000000000001 {
			t.Errorf("Next = %#x", got)
		}
	})
}

func TestCounterStateRoundTrip(t *testing.T) {
	var c Counter
	c.Adopt(false, 500)
	c.Adopt(true, 1<<50)
	c.Next(nil)
	var r Counter
	r.Restore(c.State())
	if r.Fresh(false, 500) || r.Fresh(true, 1<<50) {
		t.Error("a restored counter forgot the chains it had seen")
	}
	v, _ := c.Value()
	if got := r.Next(nil); got != v+RestoreMargin+1 {
		t.Errorf("first advert after a restore has counter %d, want %d (the margin ahead)", got, v+RestoreMargin+1)
	}
	big := CounterState{IPv4: make([]uint64, MaxChains+10)}
	var g Counter
	g.Restore(big)
	if len(g.heads[0]) != MaxChains {
		t.Errorf("restored %d chains, want at most %d", len(g.heads[0]), MaxChains)
	}
}
