package bsd

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"syscall"

	"github.com/bsdcarp/bsdcarp/carp/api"
)

// ParsedIfconfig is one parsed ifconfig command line.
type ParsedIfconfig struct {
	// Exactly one of these modes:
	ListAll   bool   // ifconfig -a (also no arguments at all, and -k alone)
	ListNames bool   // ifconfig -l
	Group     string // ifconfig -g carp
	ShowKeys  bool   // -k given (with -a or with an interface)
	Iface     string // interface named
	// Request is nil for a status display of Iface.
	Request *api.IfconfigRequest
	// Warnings are printed to stderr as "ifconfig: " + w before the request
	// runs (FreeBSD 14 warns when an IPv4 address on a physical interface
	// has no mask).
	Warnings []string
}

// ifconfigUsage is FreeBSD 14's usage(); the af list is what a GENERIC
// kernel registers. Scripts do not grep it, but keep it recognisable.
const ifconfigUsage = "usage: ifconfig [-j jail] [-f type:format] [-g groupname] interface address_family\n" +
	"                [address [dest_address]] [parameters]\n" +
	"       ifconfig [-j jail] interface create\n" +
	"       ifconfig [-j jail] -a [-dkmuv] [-G groupname] [-g groupname] [address_family]\n" +
	"       ifconfig [-j jail] -l [-du] [-g groupname] [address_family]\n" +
	"       ifconfig [-j jail] [-dkmuv]\n"

func ifUsage(prefix string) error {
	return &UsageError{Text: prefix + ifconfigUsage}
}

// notSupported is the error for valid BSD syntax bsdcarp does not implement.
func notSupported(what string) error {
	return cliErr(fmt.Sprintf("'%s' is not supported by bsdcarp", what))
}

// ParseIfconfig parses the words after the program name. The whole line is
// parsed before anything is returned: a bad line yields an error and no
// request. Errors are refusals (*api.Error or *CommandError: print "ifconfig: "
// + Text(err)) or *UsageError (print Text verbatim); all exit 1.
func ParseIfconfig(args []string) (ParsedIfconfig, error) {
	var res ParsedIfconfig
	var all, names, keys bool
	var group string
	// After -g GROUP, "-carpdemote" is OpenBSD's group attribute word.
	groupWord := func(w string) bool { return group != "" && strings.TrimLeft(w, "-") == "carpdemote" }
	rest, err := getoptUntil(args, "g", groupWord, func(c byte, arg string) error {
		switch c {
		case 'a':
			all = true
		case 'l':
			names = true
		case 'k':
			keys = true
		case 'g':
			group = arg
		case 'd', 'u', 'm', 'v', 'n', 'C', 'D', 'L', 'W', 'G', 'f', 'j':
			return notSupported("-" + string(c))
		default:
			return ifUsage(fmt.Sprintf("ifconfig: illegal option -- %c\n", c))
		}
		return nil
	}, func(c byte) error {
		return ifUsage(fmt.Sprintf("ifconfig: option requires an argument -- %c\n", c))
	})
	if err != nil {
		return res, err
	}
	if names && all {
		return res, ifUsage("")
	}
	res.ShowKeys = keys
	switch {
	case group != "" && !names && !all:
		res.Group = group
		if len(rest) > 0 {
			// OpenBSD "ifconfig -g carp carpdemote 50" and friends.
			op, err := parseGroupAttr(group, rest)
			if err != nil {
				return ParsedIfconfig{}, err
			}
			res.Request = &api.IfconfigRequest{Iface: group, Ops: []api.Op{op}}
		}
		return res, nil
	case group != "":
		return res, notSupported("-g with -a or -l")
	case names || all || len(rest) == 0:
		if len(rest) > 0 {
			// An address family filter ("ifconfig -l inet").
			return res, notSupported(rest[0])
		}
		if names {
			if keys {
				return res, ifUsage("")
			}
			res.ListNames = true
		} else {
			res.ListAll = true
		}
		return res, nil
	}
	if rest[0] == "" {
		return ParsedIfconfig{}, &api.Error{Reason: api.ReasonNoInterface}
	}
	res.Iface = rest[0]
	words := rest[1:]
	if len(words) > 0 && (words[0] == "create" || words[0] == "plumb") && len(res.Iface) > api.MaxIfNameLen {
		// FreeBSD ifconfig: strlcpy into IFNAMSIZ before SIOCIFCREATE2.
		// Linux names have the same bound.
		return ParsedIfconfig{}, &api.Error{Reason: api.ReasonCloneNameLong, Name: res.Iface}
	}
	if len(words) == 0 || (len(words) == 1 && isStatusAF(words[0])) {
		// "ifconfig carp0" or "ifconfig carp0 inet": status display.
		// The address family filter of the second form is not applied.
		return res, nil
	}
	p := newIfParser(res.Iface)
	if err := p.parse(words); err != nil {
		return ParsedIfconfig{}, err
	}
	res.Request = &api.IfconfigRequest{Iface: res.Iface, Ops: p.ops}
	res.Warnings = p.warnings
	return res, nil
}

func isStatusAF(w string) bool { return w == "inet" || w == "inet6" }

// isCarpClone reports whether name is a cloned carp interface (dialects A
// and B); every other interface uses the FreeBSD 10+ grammar (dialect C).
func isCarpClone(name string) bool { return api.IsCloneName(name) }

type family int

const (
	afInet family = iota
	afInet6
)

// ifParser holds the state FreeBSD's ifconfig() keeps in globals while it
// walks the words left to right (setaddr, doalias, newaddr, ...).
type ifParser struct {
	iface    string
	clone    bool
	af       family
	ops      []api.Op
	warnings []string

	vhidSeen bool // dialect C: carp words need a vhid first

	setaddr bool
	addr    netip.Addr
	plen    int
	maskSet bool
	// doalias: 0 none, 1 "alias", -1 "-alias"/"delete"/"remove".
	doalias int
}

func newIfParser(iface string) *ifParser {
	return &ifParser{iface: iface, clone: isCarpClone(iface), plen: -1}
}

// keyword describes one ifconfig word: how many arguments follow it and what
// it does. A nil apply means valid BSD syntax that bsdcarp does not support
// yet; to support one, give it an apply function.
type keyword struct {
	nargs int
	apply func(p *ifParser, arg string) error
}

var ifKeywords map[string]keyword

func init() {
	ifKeywords = map[string]keyword{
		"destroy":   {0, opOnly(api.OpDestroy)},
		"unplumb":   {0, opOnly(api.OpDestroy)},
		"up":        {0, opOnly(api.OpUp)},
		"down":      {0, opOnly(api.OpDown)},
		"vhid":      {1, (*ifParser).setVHID},
		"pass":      {1, (*ifParser).setPass},
		"carpdev":   {1, (*ifParser).setCarpdev},
		"advbase":   {1, (*ifParser).setAdvBase},
		"advskew":   {1, (*ifParser).setAdvSkew},
		"state":     {1, (*ifParser).setState},
		"alias":     {0, func(p *ifParser, _ string) error { p.doalias = 1; return nil }},
		"-alias":    {0, (*ifParser).noteDelete},
		"delete":    {0, (*ifParser).noteDelete},
		"remove":    {0, (*ifParser).noteDelete},
		"netmask":   {1, (*ifParser).setNetmask},
		"broadcast": {1, (*ifParser).setBroadcast},
		"prefixlen": {1, (*ifParser).setPrefixlen},
		"mtu":       {1, (*ifParser).setMTU},

		// FreeBSD 14 unicast peers and VRRPv3 (-peer and -peer6 are
		// bsdcarp's spellings of mcast and mcast6).
		"peer": {1, (*ifParser).setPeer}, "peer6": {1, (*ifParser).setPeer6},
		"mcast": {0, (*ifParser).setMcast}, "-peer": {0, (*ifParser).setMcast},
		"mcast6": {0, (*ifParser).setMcast6}, "-peer6": {0, (*ifParser).setMcast6},
		"carpver": {1, (*ifParser).setVersion}, "vrrpprio": {1, (*ifParser).setVRRPPrio},
		"vrrpinterval": {1, (*ifParser).setVRRPInterval},
		// OpenBSD carp words.
		"-carpdev": {0, nil}, "carppeer": {1, nil}, "-carppeer": {0, nil},
		"balancing": {1, nil}, "carpnodes": {1, nil},
		// Generic interface words.
		"media": {1, nil}, "mediaopt": {1, nil}, "-mediaopt": {1, nil},
		"mode": {1, nil}, "inst": {1, nil}, "instance": {1, nil},
		"metric": {1, nil}, "lladdr": {1, nil},
		"name": {1, nil}, "description": {1, nil}, "descr": {1, nil},
		"-description": {0, nil}, "-descr": {0, nil},
		"group": {1, nil}, "-group": {1, nil}, "fib": {1, nil}, "tunfib": {1, nil},
		"vnet": {1, nil}, "-vnet": {1, nil},
		"arp": {0, nil}, "-arp": {0, nil}, "staticarp": {0, nil}, "-staticarp": {0, nil},
		"promisc": {0, nil}, "-promisc": {0, nil}, "monitor": {0, nil}, "-monitor": {0, nil},
		"debug": {0, nil}, "-debug": {0, nil},
		"link0": {0, nil}, "-link0": {0, nil}, "link1": {0, nil}, "-link1": {0, nil},
		"link2": {0, nil}, "-link2": {0, nil},
		"txcsum": {0, nil}, "-txcsum": {0, nil}, "rxcsum": {0, nil}, "-rxcsum": {0, nil},
		"txcsum6": {0, nil}, "-txcsum6": {0, nil}, "rxcsum6": {0, nil}, "-rxcsum6": {0, nil},
		"tso": {0, nil}, "-tso": {0, nil}, "tso4": {0, nil}, "-tso4": {0, nil},
		"tso6": {0, nil}, "-tso6": {0, nil}, "lro": {0, nil}, "-lro": {0, nil},
		"vlanmtu": {0, nil}, "-vlanmtu": {0, nil}, "vlanhwtag": {0, nil}, "-vlanhwtag": {0, nil},
		"polling": {0, nil}, "-polling": {0, nil}, "wol": {0, nil}, "-wol": {0, nil},
		"tunnel": {2, nil}, "-tunnel": {0, nil}, "deletetunnel": {0, nil},
		// inet6 address flags.
		"anycast": {0, nil}, "-anycast": {0, nil}, "tentative": {0, nil}, "-tentative": {0, nil},
		"deprecated": {0, nil}, "-deprecated": {0, nil}, "autoconf": {0, nil}, "-autoconf": {0, nil},
		"pltime": {1, nil}, "vltime": {1, nil}, "eui64": {0, nil},
		"accept_rtadv": {0, nil}, "-accept_rtadv": {0, nil},
		"auto_linklocal": {0, nil}, "-auto_linklocal": {0, nil},
		"ifdisabled": {0, nil}, "-ifdisabled": {0, nil}, "nud": {0, nil}, "-nud": {0, nil},
		"prefer_source": {0, nil}, "-prefer_source": {0, nil},
		// Address families other than inet and inet6 (only meaningful as
		// the first word, but never an address).
		"link": {0, nil}, "ether": {0, nil},
	}
}

func opOnly(k api.OpKind) func(*ifParser, string) error {
	return func(p *ifParser, _ string) error {
		p.ops = append(p.ops, api.Op{Kind: k})
		return nil
	}
}

func (p *ifParser) parse(words []string) error {
	i := 0
	// "create" / "plumb" are clone operations only as the first word; an
	// address family may follow them (FreeBSD: isargcreate, then af spec).
	if words[0] == "create" || words[0] == "plumb" {
		p.ops = append(p.ops, api.Op{Kind: api.OpCreate})
		i++
	}
	if i < len(words) {
		switch words[i] {
		case "inet":
			p.af = afInet
			i++
		case "inet6":
			p.af = afInet6
			i++
		}
	}
	for i < len(words) {
		w := words[i]
		kw, ok := ifKeywords[w]
		if w == "carpdev" && !p.clone {
			ok = false // FreeBSD 10+ has no carpdev keyword: an address
		}
		if !ok {
			if err := p.bareWord(w); err != nil {
				return err
			}
			i++
			continue
		}
		if i+kw.nargs >= len(words) {
			if kw.apply == nil {
				return notSupported(w)
			}
			if kw.nargs == 1 {
				return cliErr(fmt.Sprintf("'%s' requires argument", w))
			}
			return cliErr(fmt.Sprintf("'%s' requires %d arguments", w, kw.nargs))
		}
		if kw.apply == nil {
			return notSupported(w)
		}
		arg := ""
		if kw.nargs > 0 {
			arg = words[i+1]
		}
		if err := kw.apply(p, arg); err != nil {
			return err
		}
		i += 1 + kw.nargs
	}
	return p.finish()
}

// needVHID enforces FreeBSD 10+'s left-to-right rule on a physical
// interface: carp parameters only after "vhid".
func (p *ifParser) needVHID(op api.OpKind) error {
	if !p.clone && !p.vhidSeen {
		return &api.Error{Reason: api.ReasonNeedsVHID, Op: op}
	}
	return nil
}

// atoi accepts what strconv.Atoi accepts (optional sign, decimal digits);
// values beyond int are clamped so that range checks still fail.
func atoi(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return n, true // clamped to MinInt/MaxInt
		}
		return 0, false
	}
	return n, true
}

func (p *ifParser) setVHID(arg string) error {
	n, ok := atoi(arg)
	if p.clone {
		// FreeBSD <= 9 carp(4) clones (dialects A and B): ifconfig checks
		// only the lower bound; the kernel rejects > 255 with EINVAL.
		if !ok || n <= 0 {
			return cliErr("vhid must be greater than 0")
		}
	} else if !ok || n <= 0 || n > 255 {
		// FreeBSD 10+: CARP_MAXVHID is 255 and 255 itself is accepted.
		return &api.Error{Reason: api.ReasonVHIDRange}
	}
	p.vhidSeen = true
	p.ops = append(p.ops, api.Op{Kind: api.OpVHID, Int: n})
	return nil
}

func (p *ifParser) setPass(arg string) error {
	if err := p.needVHID(api.OpPass); err != nil {
		return err
	}
	p.ops = append(p.ops, api.Op{Kind: api.OpPass, Str: arg})
	return nil
}

func (p *ifParser) setCarpdev(arg string) error {
	p.ops = append(p.ops, api.Op{Kind: api.OpCarpdev, Str: arg})
	return nil
}

// Non-numeric advbase/advskew: BSD's atoi would silently read 0; bsdcarp
// refuses the word with the kernel's answer to an out-of-range value.
func (p *ifParser) setAdvBase(arg string) error {
	if err := p.needVHID(api.OpAdvBase); err != nil {
		return err
	}
	n, ok := atoi(arg)
	if !ok {
		return api.Refused(api.StepSetVHID, syscall.EINVAL)
	}
	p.ops = append(p.ops, api.Op{Kind: api.OpAdvBase, Int: n})
	return nil
}

func (p *ifParser) setAdvSkew(arg string) error {
	if err := p.needVHID(api.OpAdvSkew); err != nil {
		return err
	}
	n, ok := atoi(arg)
	if !ok {
		return api.Refused(api.StepSetVHID, syscall.EINVAL)
	}
	p.ops = append(p.ops, api.Op{Kind: api.OpAdvSkew, Int: n})
	return nil
}

// The FreeBSD 14 words below (sbin/ifconfig/carp.c) do not need a vhid
// before them on the line: without one FreeBSD's ifconfig never sends them,
// so on a physical interface they are ignored as there. A carp clone has
// its vhid implied.

// hasVHID reports whether the line names a vhid the word can apply to.
func (p *ifParser) hasVHID() bool { return p.clone || p.vhidSeen }

// setVersion is carpver: 2 (CARP) or 3 (VRRPv3), checked by ifconfig.
func (p *ifParser) setVersion(arg string) error {
	n, ok := atoi(arg)
	if !ok || (n != 2 && n != 3) {
		return cliErr("version must be 2 or 3")
	}
	if p.hasVHID() {
		p.ops = append(p.ops, api.Op{Kind: api.OpVersion, Int: n})
	}
	return nil
}

// setVRRPPrio is vrrpprio: FreeBSD's ifconfig does not check it; the
// engine refuses what is not 1..254 as the kernel would (EINVAL).
func (p *ifParser) setVRRPPrio(arg string) error {
	n, ok := atoi(arg)
	if !ok {
		return api.Refused(api.StepSetVHID, syscall.EINVAL)
	}
	if p.hasVHID() {
		p.ops = append(p.ops, api.Op{Kind: api.OpVRRPPrio, Int: n})
	}
	return nil
}

// setVRRPInterval is vrrpinterval, in centiseconds: ifconfig refuses 0 and
// what the 12-bit field cannot hold (4095 itself is accepted, whatever the
// message says).
func (p *ifParser) setVRRPInterval(arg string) error {
	n, ok := atoi(arg)
	if !ok || n <= 0 || n > api.MaxVRRPInterval {
		return cliErr(fmt.Sprintf("vrrpinterval must be greater than 0 and less than %d", api.MaxVRRPInterval))
	}
	if p.hasVHID() {
		p.ops = append(p.ops, api.Op{Kind: api.OpVRRPInterval, Int: n})
	}
	return nil
}

// setPeer is peer ADDR: adverts go to this IPv4 address instead of
// 224.0.0.18. FreeBSD's ifconfig takes anything through inet_addr(3) and
// sends a typo to 255.255.255.255; bsdcarp refuses it instead, in the words
// ifconfig has for peer6.
func (p *ifParser) setPeer(arg string) error {
	a, err := netip.ParseAddr(arg)
	if err != nil || !a.Is4() {
		return cliErr("Invalid IPv4 address " + arg)
	}
	return p.addPeer(api.OpPeer, a)
}

// setPeer6 is peer6 ADDR (getaddrinfo with AI_NUMERICHOST in FreeBSD).
func (p *ifParser) setPeer6(arg string) error {
	a, err := netip.ParseAddr(arg)
	if err != nil || !a.Is6() || a.Is4In6() {
		return cliErr("Invalid IPv6 address " + arg)
	}
	return p.addPeer(api.OpPeer6, a.WithZone(""))
}

// setMcast is mcast (and -peer): back to the multicast group.
func (p *ifParser) setMcast(string) error {
	return p.addPeer(api.OpPeer, netip.MustParseAddr(api.MulticastPeer))
}

// setMcast6 is mcast6 (and -peer6).
func (p *ifParser) setMcast6(string) error {
	return p.addPeer(api.OpPeer6, netip.MustParseAddr(api.MulticastPeer6))
}

func (p *ifParser) addPeer(k api.OpKind, a netip.Addr) error {
	if p.hasVHID() {
		p.ops = append(p.ops, api.Op{Kind: k, Str: a.String()})
	}
	return nil
}

func (p *ifParser) setState(arg string) error {
	if err := p.needVHID(api.OpState); err != nil {
		return err
	}
	if !api.IsState(arg) {
		return &api.Error{Reason: api.ReasonUnknownState}
	}
	p.ops = append(p.ops, api.Op{Kind: api.OpState, Str: strings.ToLower(arg)})
	return nil
}

// setMTU is sbin/ifconfig setifmtu(): "ifr.ifr_mtu = atoi(val)" and the
// SIOCSIFMTU ioctl, so the word is never refused here: "mtu abc" asks for 0
// and the kernel answers EINVAL, which the engine reports as FreeBSD 14's
// err(1, "ioctl SIOCSIFMTU (set mtu)"): "ioctl SIOCSIFMTU (set mtu): Invalid
// argument". On a carp clone bsdcarp does not support it.
func (p *ifParser) setMTU(arg string) error {
	if p.clone {
		return notSupported("mtu")
	}
	p.ops = append(p.ops, api.Op{Kind: api.OpMTU, Int: cAtoi(arg)})
	return nil
}

// cAtoi is atoi(3) as (int)strtol(s, NULL, 10): leading white space, an
// optional sign, then decimal digits up to the first other byte; no digits
// is 0. An overflowing value saturates at LONG_MAX / LONG_MIN, which the
// (int) cast of amd64 turns into -1 / 0: both out of any MTU range.
func cAtoi(s string) int {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	limit := uint64(1<<63 - 1) // LONG_MAX
	if neg {
		limit++ // magnitude of LONG_MIN
	}
	var u uint64
	for ; i < len(s) && isDigit(s[i]); i++ {
		d := uint64(s[i] - '0')
		if u > (limit-d)/10 {
			if neg {
				return 0 // (int)LONG_MIN
			}
			return -1 // (int)LONG_MAX
		}
		u = u*10 + d
	}
	if neg {
		u = -u
	}
	return int(int32(u)) // the (int) cast keeps the low 32 bits
}

func (p *ifParser) noteDelete(string) error {
	p.doalias = -1
	return nil
}

// bareWord is a word that is not a keyword: the address, or once the
// address is set, the destination/broadcast address (FreeBSD setifdstaddr).
func (p *ifParser) bareWord(w string) error {
	if !p.setaddr {
		return p.setAddr(w)
	}
	if p.af == afInet6 {
		if _, ok := parseInet6(w); !ok {
			return cliErr(w + ": bad value")
		}
		return nil // destination address of a non point-to-point link: ignored
	}
	a, ok := inetAton(w)
	if !ok {
		return cliErr(w + ": bad value")
	}
	if p.clone {
		// Handbook dialect: "10.0.0.1 255.255.255.0" -- on a carp interface
		// a second bare dotted quad that is a contiguous netmask is the
		// netmask (freebsd-cli.md section 1.A).
		if n, ok := contiguousMask(a); ok {
			p.plen = n
			p.maskSet = true
		} else if a.As4()[0] == 0xff {
			// 255.255.0.255 is a mistyped netmask, not the broadcast
			// address of any virtual address: refuse it as netmask does
			// rather than ignore it and make the address a /32.
			return cliErr(w + ": bad value")
		}
	}
	// Otherwise it is the broadcast address: accepted and ignored.
	return nil
}

func parseInet6(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is6() {
		return netip.Addr{}, false
	}
	return a.WithZone(""), true
}

func (p *ifParser) setAddr(w string) error {
	p.setaddr = true
	if p.af == afInet6 {
		s := w
		if k := strings.LastIndexByte(w, '/'); k >= 0 {
			s = w[:k]
			n, ok := atoi(w[k+1:])
			if !ok || n < 0 || n > 128 {
				return cliErr(w[k+1:] + ": bad value")
			}
			p.plen = n
			p.maskSet = true
		}
		a, ok := parseInet6(s)
		if !ok {
			return cliErr(s + ": bad value")
		}
		p.addr = a
		return nil
	}
	s := w
	if k := strings.LastIndexByte(w, '/'); k >= 0 {
		s = w[:k]
		width := w[k+1:]
		errstr := "invalid"
		var n int64
		if width != "" && isDigit(width[0]) {
			n, errstr = strtonum(width, 0, 32)
		}
		if errstr != "" {
			return cliErr(fmt.Sprintf("%s: bad value (width %s)", w, errstr))
		}
		p.plen = int(n)
		p.maskSet = true
	}
	a, ok := inetAton(s)
	if !ok {
		// BSD would try gethostbyname(3) and getnetbyname(3) first;
		// bsdcarp does not resolve names.
		return cliErr(s + ": bad value")
	}
	p.addr = a
	return nil
}

func (p *ifParser) setNetmask(arg string) error {
	if p.af == afInet6 {
		// FreeBSD's in6_getaddr(MASK) takes an IPv6 mask.
		a, ok := parseInet6(arg)
		if !ok {
			return cliErr(arg + ": bad value")
		}
		n, ok := contiguousMask6(a)
		if !ok {
			return cliErr(arg + ": bad value")
		}
		p.plen, p.maskSet = n, true
		return nil
	}
	a, ok := inetAton(arg)
	if !ok {
		return cliErr(arg + ": bad value")
	}
	// FreeBSD 14 (netlink) counts the bits of the mask: a non-contiguous
	// mask silently becomes the prefix of that many bits, so a typo
	// (255.0.255.0) becomes a /16. Linux cannot hold such a mask either:
	// bsdcarp refuses it in the words ifconfig uses for a mask it cannot
	// parse.
	n, ok := contiguousMask(a)
	if !ok {
		return cliErr(arg + ": bad value")
	}
	p.plen, p.maskSet = n, true
	return nil
}

func (p *ifParser) setBroadcast(arg string) error {
	if p.af == afInet6 {
		if _, ok := parseInet6(arg); !ok {
			return cliErr(arg + ": bad value")
		}
		return nil
	}
	if _, ok := inetAton(arg); !ok {
		return cliErr(arg + ": bad value")
	}
	return nil // accepted, ignored: the broadcast follows from the mask
}

func (p *ifParser) setPrefixlen(arg string) error {
	if p.af != afInet6 {
		return nil // inet has no af_getprefix: FreeBSD ignores the word
	}
	n, ok := atoi(arg)
	if !ok || n < 0 || n > 128 {
		return cliErr(arg + ": bad value")
	}
	p.plen, p.maskSet = n, true
	return nil
}

// finish appends the deferred address operation, as FreeBSD does after the
// carp callback (SIOCSVH): delete first, then add.
func (p *ifParser) finish() error {
	if p.doalias < 0 {
		// "-alias" / "delete": without an address FreeBSD removes the
		// first address of the family; a zero Prefix asks for that.
		var pfx netip.Prefix
		if p.setaddr {
			bitsLen := p.plen
			if !p.maskSet {
				bitsLen = p.addr.BitLen()
			}
			pfx = netip.PrefixFrom(p.addr, bitsLen)
		}
		p.ops = append(p.ops, api.Op{Kind: api.OpDelAddr, Prefix: pfx})
		return nil
	}
	if !p.setaddr {
		if p.maskSet {
			return notSupported("netmask without an address")
		}
		return nil
	}
	plen := p.plen
	if !p.maskSet {
		switch {
		case p.af == afInet6:
			plen = 64 // FreeBSD in6_postproc: prefixlen 64 when none given
		case p.clone:
			// carp clones (OpenBSD, FreeBSD <= 9): the classful default
			// mask, as OpenBSD's kernel and FreeBSD <= 12's in_control()
			// gave an address without one, and without a warning.
			plen = classfulBits(p.addr)
		default:
			plen = classfulBits(p.addr)
			p.warnings = append(p.warnings,
				"WARNING: setting interface address without mask is deprecated,\ndefault mask may not be correct.")
		}
	}
	p.ops = append(p.ops, api.Op{
		Kind:   api.OpAddr,
		Prefix: netip.PrefixFrom(p.addr, plen),
		Alias:  p.doalias > 0,
	})
	return nil
}

// classfulBits is FreeBSD 14's historical default mask (in_setdefaultmask_nl).
func classfulBits(a netip.Addr) int {
	b := a.As4()[0]
	switch {
	case b < 128:
		return 8
	case b < 192:
		return 16
	default:
		return 24
	}
}

// parseGroupAttr parses OpenBSD's "ifconfig -g GROUP carpdemote [N]" and
// "-carpdemote [N]" (sbin/ifconfig setgroupattribs()): N is 0..128 and
// defaults to 1; the minus form lowers the group's demotion counter by N.
// As there, N is checked before the word, and words after N are ignored.
func parseGroupAttr(group string, words []string) (api.Op, error) {
	n := int64(1)
	if len(words) > 1 {
		v, errstr := strtonum(words[1], 0, 128)
		if errstr != "" {
			return api.Op{}, cliErr(fmt.Sprintf("%s: invalid carp demotion: %s", group, errstr))
		}
		n = v
	}
	w := words[0]
	if rest, ok := strings.CutPrefix(w, "-"); ok {
		n, w = -n, rest
	}
	if w != "carpdemote" {
		return api.Op{}, ifUsage("")
	}
	return api.Op{Kind: api.OpGroupDemote, Int: int(n)}, nil
}
