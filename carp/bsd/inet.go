package bsd

import (
	"math/bits"
	"net/netip"
	"strings"
)

// inetAton mirrors BSD libc inet_aton(3): one to four parts separated by
// dots, each decimal, octal (leading 0) or hexadecimal (leading 0x); the last
// part fills the remaining bytes ("10.1" is 10.0.0.1, "0xffffff00" is
// 255.255.255.0). Trailing white space ends the address, as in libc.
// Unlike the historical libc, a part that overflows is rejected.
func inetAton(s string) (netip.Addr, bool) {
	var parts []uint64
	i := 0
	for {
		if i >= len(s) || !isDigit(s[i]) {
			return netip.Addr{}, false
		}
		var val uint64
		base := uint64(10)
		if s[i] == '0' {
			i++
			if i < len(s) && (s[i] == 'x' || s[i] == 'X') {
				base = 16
				i++
			} else {
				base = 8
			}
		}
		for i < len(s) {
			c := s[i]
			var d uint64
			switch {
			case isDigit(c):
				if base == 8 && (c == '8' || c == '9') {
					return netip.Addr{}, false
				}
				d = uint64(c - '0')
			case base == 16 && c >= 'a' && c <= 'f':
				d = uint64(c-'a') + 10
			case base == 16 && c >= 'A' && c <= 'F':
				d = uint64(c-'A') + 10
			default:
				goto endPart
			}
			val = val*base + d
			if val > 0xffffffff {
				return netip.Addr{}, false
			}
			i++
		}
	endPart:
		if i < len(s) && s[i] == '.' {
			if len(parts) >= 3 {
				return netip.Addr{}, false
			}
			parts = append(parts, val)
			i++
			continue
		}
		parts = append(parts, val)
		break
	}
	if i < len(s) && !isSpace(s[i]) {
		return netip.Addr{}, false
	}
	n := len(parts)
	for _, p := range parts[:n-1] {
		if p > 0xff {
			return netip.Addr{}, false
		}
	}
	last := parts[n-1]
	var v uint64
	switch n {
	case 1:
		v = last
	case 2:
		if last > 0xffffff {
			return netip.Addr{}, false
		}
		v = parts[0]<<24 | last
	case 3:
		if last > 0xffff {
			return netip.Addr{}, false
		}
		v = parts[0]<<24 | parts[1]<<16 | last
	case 4:
		if last > 0xff {
			return netip.Addr{}, false
		}
		v = parts[0]<<24 | parts[1]<<16 | parts[2]<<8 | last
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// maskBits returns the value of an IPv4 address as a 32-bit mask.
func maskBits(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// contiguousMask reports whether a is a netmask of leading ones and returns
// its prefix length.
func contiguousMask(a netip.Addr) (int, bool) {
	m := maskBits(a)
	ones := bits.LeadingZeros32(^m)
	if ones < 32 && m<<ones != 0 {
		return 0, false
	}
	return ones, true
}

// contiguousMask6 is contiguousMask for an IPv6 netmask.
func contiguousMask6(a netip.Addr) (int, bool) {
	b := a.As16()
	n := 0
	for i, x := range b {
		ones := bits.LeadingZeros8(^x)
		n += ones
		if ones < 8 {
			if x<<ones != 0 {
				return 0, false
			}
			for _, rest := range b[i+1:] {
				if rest != 0 {
					return 0, false
				}
			}
			break
		}
	}
	return n, true
}

// strtonum mirrors the error strings of BSD strtonum(3) for a decimal string
// in [lo, hi]: "invalid", "too small" or "too large".
func strtonum(s string, lo, hi int64) (int64, string) {
	t := strings.TrimLeft(s, " \t\n\v\f\r")
	neg := false
	if t != "" && (t[0] == '+' || t[0] == '-') {
		neg = t[0] == '-'
		t = t[1:]
	}
	if t == "" {
		return 0, "invalid"
	}
	var v int64
	overflow := false
	for i := 0; i < len(t); i++ {
		if !isDigit(t[i]) {
			return 0, "invalid"
		}
		if v > (1<<62)/5 { // v*10 would overflow int64
			overflow = true
			continue
		}
		v = v*10 + int64(t[i]-'0')
		if v < 0 {
			overflow = true
		}
	}
	if overflow {
		if neg {
			return 0, "too small"
		}
		return 0, "too large"
	}
	if neg {
		v = -v
	}
	if v < lo {
		return 0, "too small"
	}
	if v > hi {
		return 0, "too large"
	}
	return v, ""
}
