package bsd

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/bsdcarp/bsdcarp/carp/api"
)

// opsString renders ops compactly: "vhid 1; pass lanpasswd; addr 10.0.0.1/24".
func opsString(ops []api.Op) string {
	var parts []string
	for _, op := range ops {
		s := string(op.Kind)
		switch op.Kind {
		case api.OpVHID, api.OpAdvBase, api.OpAdvSkew, api.OpMTU, api.OpVersion, api.OpVRRPPrio, api.OpVRRPInterval:
			s += fmt.Sprintf(" %d", op.Int)
		case api.OpPass, api.OpCarpdev, api.OpState, api.OpPeer, api.OpPeer6:
			s += " " + op.Str
		case api.OpAddr, api.OpDelAddr:
			if op.Prefix.IsValid() {
				s += " " + op.Prefix.String()
			} else {
				s += " <first>"
			}
			if op.Alias {
				s += " alias"
			}
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

func TestIfconfigDialectA(t *testing.T) {
	tests := []struct {
		name string
		line string
		ops  string
	}{
		{"create", "carp0 create", "create"},
		{"plumb is create", "carp0 plumb", "create"},
		{"destroy", "carp0 destroy", "destroy"},
		{"unplumb is destroy", "carp0 unplumb", "destroy"},
		{"up", "carp0 up", "up"},
		{"down (forced failover)", "carp0 down", "down"},
		{"handbook 28.4 line", "carp0 vhid 1 pass lanpasswd carpdev em0 advskew 100 10.0.0.1 255.255.255.0",
			"vhid 1; pass lanpasswd; carpdev em0; advskew 100; addr 10.0.0.1/24"},
		{"handbook 28.5 fw1 LAN", "carp0 vhid 1 pass lanpasswd carpdev em0 172.16.0.100 255.255.255.0",
			"vhid 1; pass lanpasswd; carpdev em0; addr 172.16.0.100/24"},
		{"handbook 28.5 fw2 WAN", "carp1 vhid 2 pass wanpasswd carpdev em1 advskew 128 192.0.2.100 255.255.255.0",
			"vhid 2; pass wanpasswd; carpdev em1; advskew 128; addr 192.0.2.100/24"},
		{"mask as netmask keyword", "carp0 vhid 1 10.0.0.1 netmask 255.255.255.0", "vhid 1; addr 10.0.0.1/24"},
		{"mask as hex netmask", "carp0 vhid 1 10.0.0.1 netmask 0xffffff00", "vhid 1; addr 10.0.0.1/24"},
		{"mask as slash length", "carp0 vhid 1 10.0.0.1/24", "vhid 1; addr 10.0.0.1/24"},
		{"mask as bare hex quad", "carp0 vhid 1 10.0.0.1 0xffffff00", "vhid 1; addr 10.0.0.1/24"},
		{"netmask before the address", "carp0 netmask 255.255.255.0 10.0.0.1 vhid 1", "vhid 1; addr 10.0.0.1/24"},
		{"leading inet", "carp0 inet 10.0.0.1/24 vhid 1", "vhid 1; addr 10.0.0.1/24"},
		{"create then more words", "carp0 create vhid 1 10.0.0.1/24", "create; vhid 1; addr 10.0.0.1/24"},
		{"create then inet", "carp0 create inet 10.0.0.1/24", "create; addr 10.0.0.1/24"},
		{"broadcast keyword ignored", "carp0 10.0.0.1 netmask 255.255.255.0 broadcast 10.0.0.255", "addr 10.0.0.1/24"},
		{"second bare non-mask is broadcast, ignored", "carp0 10.0.0.1/24 10.0.0.255", "addr 10.0.0.1/24"},
		{"no mask on a carp clone is class A", "carp0 vhid 1 10.0.0.1", "vhid 1; addr 10.0.0.1/8"},
		{"no mask on a carp clone is class B", "carp0 vhid 1 172.16.0.100", "vhid 1; addr 172.16.0.100/16"},
		{"no mask on a carp clone is class C", "carp0 vhid 1 pass x carpdev em0 192.168.7.50", "vhid 1; pass x; carpdev em0; addr 192.168.7.50/24"},
		{"no mask, alias, on a carp clone", "carp0 128.0.0.1 alias", "addr 128.0.0.1/16 alias"},
		{"no mask on a carp clone, class D and up are /24", "carp0 224.0.0.1", "addr 224.0.0.1/24"},
		{"bare 255.255.255.255 is /32", "carp0 10.0.0.1 255.255.255.255", "addr 10.0.0.1/32"},
		{"alias keeps addresses", "carp0 10.0.0.2/24 alias", "addr 10.0.0.2/24 alias"},
		{"alias before address", "carp0 alias 10.0.0.2/24", "addr 10.0.0.2/24 alias"},
		{"-alias", "carp0 10.0.0.2 -alias", "-alias 10.0.0.2/32"},
		{"-alias keeps given mask", "carp0 -alias 10.0.0.2/24", "-alias 10.0.0.2/24"},
		{"delete is -alias", "carp0 inet 10.0.0.2 delete", "-alias 10.0.0.2/32"},
		{"remove is -alias", "carp0 10.0.0.2 remove", "-alias 10.0.0.2/32"},
		{"-alias without address", "carp0 -alias", "-alias <first>"},
		{"state lower-cased", "carp0 state BACKUP", "state backup"},
		{"state mixed case", "carp0 state Master", "state master"},
		{"state init", "carp0 state init", "state init"},
		{"advbase passes through for the engine", "carp0 advbase 300 advskew 255", "advbase 300; advskew 255"},
		{"vhid above 255 is the kernel's business on a clone", "carp0 vhid 256", "vhid 256"},
		{"carp words in any order on a clone", "carp0 pass x advskew 1 vhid 3", "pass x; advskew 1; vhid 3"},
		{"address ops come last", "carp0 10.0.0.1/24 vhid 1 up", "vhid 1; up; addr 10.0.0.1/24"},
		{"empty password", "carp0 vhid 1 pass ''", "vhid 1; pass ''"},
		{"inet_aton short form", "carp0 10.1/8", "addr 10.0.0.1/8"},
		{"inet6 with /N", "carp0 inet6 2001:db8::50/64 vhid 3", "vhid 3; addr 2001:db8::50/64"},
		{"inet6 prefixlen", "carp0 inet6 2001:db8::50 prefixlen 48", "addr 2001:db8::50/48"},
		{"inet6 default /64", "carp0 inet6 2001:db8::50", "addr 2001:db8::50/64"},
		{"inet6 alias", "carp0 inet6 2001:db8::50/64 alias", "addr 2001:db8::50/64 alias"},
		{"prefixlen ignored for inet", "carp0 10.0.0.1/24 prefixlen 8", "addr 10.0.0.1/24"},
		{"B: FreeBSD 9 line", "carp0 vhid 1 advskew 100 pass testpass 192.168.1.50/24",
			"vhid 1; advskew 100; pass testpass; addr 192.168.1.50/24"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := strings.Fields(tc.line)
			for i, a := range args {
				if a == "''" {
					args[i] = ""
				}
			}
			p, err := ParseIfconfig(args)
			if err != nil {
				t.Fatalf("ParseIfconfig(%q): %v", tc.line, err)
			}
			if p.Request == nil {
				t.Fatalf("no request for %q", tc.line)
			}
			if p.Iface != args[0] || p.Request.Iface != args[0] {
				t.Errorf("iface = %q/%q", p.Iface, p.Request.Iface)
			}
			got := strings.ReplaceAll(opsString(p.Request.Ops), "pass ;", "pass '';")
			if strings.HasSuffix(got, "pass ") {
				got += "''"
			}
			if got != tc.ops {
				t.Errorf("ops\n got %s\nwant %s", got, tc.ops)
			}
			if len(p.Warnings) != 0 {
				t.Errorf("unexpected warnings %q", p.Warnings)
			}
		})
	}
}

// The three mask forms of the FreeBSD Handbook and ifconfig(8) produce one Prefix.
func TestIfconfigMaskFormsAgree(t *testing.T) {
	want := netip.MustParsePrefix("10.0.0.1/24")
	for _, line := range []string{
		"carp0 10.0.0.1 255.255.255.0",
		"carp0 10.0.0.1 netmask 255.255.255.0",
		"carp0 10.0.0.1 netmask 0xffffff00",
		"carp0 10.0.0.1/24",
		"carp0 inet 10.0.0.1/24",
	} {
		p, err := ParseIfconfig(strings.Fields(line))
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		ops := p.Request.Ops
		if len(ops) != 1 || ops[0].Kind != api.OpAddr || ops[0].Prefix != want {
			t.Errorf("%q: ops %s, want addr %s", line, opsString(ops), want)
		}
	}
}

func TestIfconfigDialectC(t *testing.T) {
	tests := []struct {
		name, line, ops string
	}{
		{"handbook alias line", "em0 vhid 1 advskew 100 pass testpass alias 192.168.1.50/32",
			"vhid 1; advskew 100; pass testpass; addr 192.168.1.50/32 alias"},
		{"leading inet", "em0 inet vhid 1 pass testpass alias 192.168.1.50/32",
			"vhid 1; pass testpass; addr 192.168.1.50/32 alias"},
		{"inet6", "em0 inet6 vhid 3 pass testpass 2001:db8::50/64 alias",
			"vhid 3; pass testpass; addr 2001:db8::50/64 alias"},
		{"state", "em0 vhid 1 state backup", "vhid 1; state backup"},
		{"change parameters", "em0 vhid 1 advskew 50", "vhid 1; advskew 50"},
		{"remove address", "em0 inet 192.168.1.50 -alias", "-alias 192.168.1.50/32"},
		{"vhid 255 accepted", "em0 vhid 255", "vhid 255"},
		// FreeBSD 14: VRRPv3 and unicast peers.
		{"vrrp vhid", "em0 vhid 1 carpver 3 vrrpprio 150 vrrpinterval 1 alias 192.168.1.50/32",
			"vhid 1; carpver 3; vrrpprio 150; vrrpinterval 1; addr 192.168.1.50/32 alias"},
		{"carpver 2", "em0 vhid 1 carpver 2", "vhid 1; carpver 2"},
		{"vrrpinterval 4095 accepted", "em0 vhid 1 vrrpinterval 4095", "vhid 1; vrrpinterval 4095"},
		{"vrrpprio range is the engine's", "em0 vhid 1 vrrpprio 300", "vhid 1; vrrpprio 300"},
		{"peer", "em0 vhid 1 peer 192.168.1.4", "vhid 1; peer 192.168.1.4"},
		{"peer6", "em0 vhid 1 peer6 2001:db8::4", "vhid 1; peer6 2001:db8::4"},
		{"mcast", "em0 vhid 1 mcast mcast6", "vhid 1; peer 224.0.0.18; peer6 ff02::12"},
		{"-peer and -peer6 are mcast and mcast6", "em0 vhid 1 -peer -peer6", "vhid 1; peer 224.0.0.18; peer6 ff02::12"},
		{"without a vhid FreeBSD ignores them", "em0 carpver 3 vrrpprio 9 vrrpinterval 5 peer 10.0.0.1 mcast6", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParseIfconfig(strings.Fields(tc.line))
			if err != nil {
				t.Fatalf("%q: %v", tc.line, err)
			}
			if got := opsString(p.Request.Ops); got != tc.ops {
				t.Errorf("ops\n got %s\nwant %s", got, tc.ops)
			}
		})
	}
}

func TestIfconfigPhysicalNoMaskWarnsClassful(t *testing.T) {
	p, err := ParseIfconfig([]string{"em0", "192.168.1.3"})
	if err != nil {
		t.Fatal(err)
	}
	if got := opsString(p.Request.Ops); got != "addr 192.168.1.3/24" {
		t.Errorf("ops %s", got)
	}
	want := "WARNING: setting interface address without mask is deprecated,\ndefault mask may not be correct."
	if len(p.Warnings) != 1 || p.Warnings[0] != want {
		t.Errorf("warnings %q", p.Warnings)
	}
}

func TestIfconfigErrors(t *testing.T) {
	tests := []struct {
		name, line, msg string
	}{
		{"vhid zero on clone", "carp0 vhid 0", "vhid must be greater than 0"},
		{"vhid negative on clone", "carp0 vhid -1", "vhid must be greater than 0"},
		{"vhid non-number on clone", "carp0 vhid one", "vhid must be greater than 0"},
		{"vhid trailing junk on clone", "carp0 vhid 1x", "vhid must be greater than 0"},
		{"vhid zero on physical", "em0 vhid 0", "vhid must be greater than 0 and less than 255"},
		{"vhid 256 on physical", "em0 vhid 256", "vhid must be greater than 0 and less than 255"},
		{"vhid non-number on physical", "em0 vhid x", "vhid must be greater than 0 and less than 255"},
		{"unknown state", "carp0 state primary", "unknown state"},
		{"pass before vhid", "em0 pass x vhid 1", "passwd requires vhid"},
		{"advskew before vhid", "em0 advskew 100 vhid 1", "advskew requires vhid"},
		{"advbase before vhid", "em0 advbase 2", "advbase requires vhid"},
		{"state before vhid", "em0 state master vhid 1", "state requires vhid"},
		{"requires vhid checked before state value", "em0 state bogus", "state requires vhid"},
		{"missing vhid argument", "carp0 vhid", "'vhid' requires argument"},
		{"missing pass argument", "carp0 vhid 1 pass", "'pass' requires argument"},
		{"missing carpdev argument", "carp0 carpdev", "'carpdev' requires argument"},
		{"missing advskew argument", "em0 advskew", "'advskew' requires argument"},
		{"missing netmask argument", "carp0 10.0.0.1 netmask", "'netmask' requires argument"},
		{"missing state argument", "carp0 state", "'state' requires argument"},
		{"advskew non-number", "carp0 advskew high", "SIOCSVH: Invalid argument"},
		{"advbase non-number", "carp0 advbase 1s", "SIOCSVH: Invalid argument"},
		{"garbage word", "carp0 vhid 1 frobnicate", "frobnicate: bad value"},
		{"garbage second word", "carp0 10.0.0.1 garbage", "garbage: bad value"},
		{"passwd is not a keyword", "carp0 vhid 1 passwd x", "passwd: bad value"},
		{"carpdev unknown on physical", "em0 carpdev em1", "carpdev: bad value"},
		{"create later in the line", "carp0 vhid 1 create", "create: bad value"},
		{"inet later in the line", "carp0 vhid 1 inet 10.0.0.1", "inet: bad value"},
		{"ipv6 without inet6", "carp0 2001:db8::1", "2001:db8::1: bad value"},
		{"ipv6 without inet6, width checked first", "carp0 2001:db8::1/64", "2001:db8::1/64: bad value (width too large)"},
		{"hostname not resolved", "carp0 vip.example.org", "vip.example.org: bad value"},
		{"bad address octet", "carp0 10.0.0.256/24", "10.0.0.256: bad value"},
		{"width too large", "carp0 10.0.0.1/33", "10.0.0.1/33: bad value (width too large)"},
		{"width invalid", "carp0 10.0.0.1/x", "10.0.0.1/x: bad value (width invalid)"},
		{"width empty", "carp0 10.0.0.1/", "10.0.0.1/: bad value (width invalid)"},
		{"width trailing junk", "carp0 10.0.0.1/24x", "10.0.0.1/24x: bad value (width invalid)"},
		{"bad netmask", "carp0 10.0.0.1 netmask foo", "foo: bad value"},
		{"bad broadcast", "carp0 10.0.0.1/24 broadcast foo", "foo: bad value"},
		{"inet6 prefix too long", "carp0 inet6 2001:db8::1/129", "129: bad value"},
		{"inet6 bad prefixlen", "carp0 inet6 2001:db8::1 prefixlen x", "x: bad value"},
		{"inet6 bad address", "carp0 inet6 10.0.0.1", "10.0.0.1: bad value"},
		{"unsupported media", "carp0 media autoselect", "'media' is not supported by bsdcarp"},
		{"mtu on a carp clone unsupported", "carp0 vhid 1 mtu 9000", "'mtu' is not supported by bsdcarp"},
		{"unsupported txcsum", "em0 -txcsum", "'-txcsum' is not supported by bsdcarp"},
		{"carpver 4", "em0 vhid 1 carpver 4", "version must be 2 or 3"},
		{"carpver junk", "em0 vhid 1 carpver three", "version must be 2 or 3"},
		{"carpver checked without a vhid", "em0 carpver 1", "version must be 2 or 3"},
		{"vrrpinterval 0", "em0 vhid 1 vrrpinterval 0", "vrrpinterval must be greater than 0 and less than 4095"},
		{"vrrpinterval 4096", "em0 vhid 1 vrrpinterval 4096", "vrrpinterval must be greater than 0 and less than 4095"},
		{"vrrpprio junk", "em0 vhid 1 vrrpprio high", "SIOCSVH: Invalid argument"},
		{"peer not IPv4", "em0 vhid 1 peer 2001:db8::1", "Invalid IPv4 address 2001:db8::1"},
		{"peer typo", "em0 vhid 1 peer 192.168.1", "Invalid IPv4 address 192.168.1"},
		{"peer6 not IPv6", "em0 vhid 1 peer6 192.168.1.4", "Invalid IPv6 address 192.168.1.4"},
		{"missing peer argument", "em0 vhid 1 peer", "'peer' requires argument"},
		{"unsupported without its argument", "carp0 mediaopt", "'mediaopt' is not supported by bsdcarp"},
		{"netmask alone", "carp0 netmask 255.255.255.0", "'netmask without an address' is not supported by bsdcarp"},
		{"first error wins", "carp0 vhid 0 state bogus", "vhid must be greater than 0"},
		// Linux, like FreeBSD, holds at most 15 bytes of interface name.
		{"clone name too long", "carp99999999999999999999 create", "carp99999999999999999999: cloning name too long"},
		{"clone name too long, plumb", "carp1234567890123 plumb vhid 1", "carp1234567890123: cloning name too long"},
		// A non-contiguous mask is refused (FreeBSD 14 would count its
		// bits and make a typo a /16; Linux cannot hold it).
		{"non-contiguous netmask", "carp0 vhid 1 pass x 10.0.0.1 netmask 255.0.255.0", "255.0.255.0: bad value"},
		{"non-contiguous mask as second word", "carp0 vhid 1 10.0.0.1 255.255.0.255", "255.255.0.255: bad value"},
		{"non-contiguous hex netmask", "carp0 10.0.0.1 netmask 0xff00ff00", "0xff00ff00: bad value"},
		{"non-contiguous netmask on physical", "em0 inet 10.0.0.7 netmask 255.255.0.255 alias", "255.255.0.255: bad value"},
		{"non-contiguous inet6 netmask", "carp0 inet6 2001:db8::1 netmask ffff:0:ffff::", "ffff:0:ffff::: bad value"},
		{"inet6 netmask with a hole late", "carp0 inet6 2001:db8::1 netmask ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffd", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffd: bad value"},
		{"error after good words", "carp0 vhid 1 pass x advskew 100 state bogus", "unknown state"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParseIfconfig(strings.Fields(tc.line))
			if err == nil {
				t.Fatalf("%q: no error, ops %s", tc.line, opsString(p.Request.Ops))
			}
			if !printable(err) {
				t.Fatalf("%q: error %T %v is not one ifconfig prints", tc.line, err, err)
			}
			if got := Text(err); got != tc.msg {
				t.Errorf("%q:\n got ifconfig: %s\nwant ifconfig: %s", tc.line, got, tc.msg)
			}
			if p.Request != nil || p.Iface != "" {
				t.Errorf("%q: partial result %+v", tc.line, p)
			}
		})
	}
}

func TestIfconfigModes(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want ParsedIfconfig
	}{
		{"no arguments lists all", nil, ParsedIfconfig{ListAll: true}},
		{"-a", []string{"-a"}, ParsedIfconfig{ListAll: true}},
		{"-a -k", []string{"-a", "-k"}, ParsedIfconfig{ListAll: true, ShowKeys: true}},
		{"-ak", []string{"-ak"}, ParsedIfconfig{ListAll: true, ShowKeys: true}},
		{"-k alone lists all", []string{"-k"}, ParsedIfconfig{ListAll: true, ShowKeys: true}},
		{"-l", []string{"-l"}, ParsedIfconfig{ListNames: true}},
		{"-g carp", []string{"-g", "carp"}, ParsedIfconfig{Group: "carp"}},
		{"-gcarp", []string{"-gcarp"}, ParsedIfconfig{Group: "carp"}},
		{"status", []string{"carp0"}, ParsedIfconfig{Iface: "carp0"}},
		{"status with inet", []string{"carp0", "inet"}, ParsedIfconfig{Iface: "carp0"}},
		{"-k status", []string{"-k", "carp0"}, ParsedIfconfig{Iface: "carp0", ShowKeys: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseIfconfig(tc.args)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", tc.want) {
				t.Errorf("got %+v want %+v", got, tc.want)
			}
		})
	}
}

// TestGroupDemoteParse pins OpenBSD's setgroupattribs() grammar: N is
// 0..128 and defaults to 1, the minus form negates it, words after N are
// ignored.
func TestGroupDemoteParse(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		group string
		delta int
	}{
		{[]string{"-g", "carp", "carpdemote"}, "carp", 1},
		{[]string{"-g", "carp", "carpdemote", "50"}, "carp", 50},
		{[]string{"-g", "carp", "-carpdemote"}, "carp", -1},
		{[]string{"-g", "carp", "-carpdemote", "50"}, "carp", -50},
		{[]string{"-g", "carp", "carpdemote", "0"}, "carp", 0},
		{[]string{"-g", "carp", "carpdemote", "128", "ignored"}, "carp", 128},
		{[]string{"-gcarp", "-carpdemote", "128"}, "carp", -128},
		{[]string{"-g", "internal", "carpdemote", "2"}, "internal", 2},
	} {
		got, err := ParseIfconfig(tc.args)
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		want := api.IfconfigRequest{Iface: tc.group, Ops: []api.Op{{Kind: api.OpGroupDemote, Int: tc.delta}}}
		if got.Group != tc.group || got.Request == nil || fmt.Sprintf("%+v", *got.Request) != fmt.Sprintf("%+v", want) {
			t.Errorf("%q: got %+v (request %+v), want group %q and %+v", tc.args, got, got.Request, tc.group, want)
		}
	}
	// The display form carries no request.
	if got, err := ParseIfconfig([]string{"-g", "carp"}); err != nil || got.Request != nil {
		t.Errorf("-g carp: %+v, %v", got, err)
	}
}

func TestIfconfigModeErrors(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		usage string // UsageError prefix line, or "" for a refusal
		msg   string
	}{
		{"illegal option", []string{"-z"}, "ifconfig: illegal option -- z\nusage: ifconfig", ""},
		{"-g without group", []string{"-g"}, "ifconfig: option requires an argument -- g\nusage: ifconfig", ""},
		{"-a with -l", []string{"-a", "-l"}, "usage: ifconfig", ""},
		{"carpdemote above 128", []string{"-g", "carp", "carpdemote", "129"}, "", "carp: invalid carp demotion: too large"},
		{"-carpdemote negative", []string{"-g", "carp", "-carpdemote", "-1"}, "", "carp: invalid carp demotion: too small"},
		{"carpdemote not a number", []string{"-g", "carp", "carpdemote", "x"}, "", "carp: invalid carp demotion: invalid"},
		{"the number is checked before the word", []string{"-g", "carp", "bogus", "999"}, "", "carp: invalid carp demotion: too large"},
		{"unknown group attribute", []string{"-g", "carp", "bogus"}, "usage: ifconfig", ""},
		{"--carpdemote", []string{"-g", "carp", "--carpdemote"}, "usage: ifconfig", ""},
		{"-l with family", []string{"-l", "inet"}, "", "'inet' is not supported by bsdcarp"},
		{"-v", []string{"-v", "carp0"}, "", "'-v' is not supported by bsdcarp"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseIfconfig(tc.args)
			if err == nil {
				t.Fatal("no error")
			}
			if tc.usage != "" {
				var ue *UsageError
				if !errors.As(err, &ue) || !strings.HasPrefix(ue.Text, tc.usage) || !strings.HasSuffix(ue.Text, "\n") {
					t.Errorf("got %T %q, want usage starting %q", err, err, tc.usage)
				}
				return
			}
			if !printed(err, tc.msg) {
				t.Errorf("got %T %q, want %q", err, err, tc.msg)
			}
		})
	}
}

func handbookStatus() api.Status {
	return api.Status{
		Clones: []api.CloneStatus{{Name: "carp0", Up: true, MTU: 1500}},
		VHIDs: []api.VHIDStatus{{
			Iface: "carp0", Carpdev: "em0", VHID: 1, AdvBase: 1, AdvSkew: 100,
			State: "BACKUP", Key: "lanpasswd",
			Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")},
		}},
	}
}

func TestFormatInterfaceHandbookByteExact(t *testing.T) {
	want, err := os.ReadFile("testdata/handbook-28.4-carp0.txt")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := FormatInterface(&b, "carp0", handbookStatus(), false); err != nil {
		t.Fatal(err)
	}
	if b.String() != string(want) {
		t.Errorf("got\n%q\nwant\n%q", b.String(), want)
	}
}

func TestFormatInterfaceDownKeysMultipleAddresses(t *testing.T) {
	want, err := os.ReadFile("testdata/carp1-down-keys-multi.txt")
	if err != nil {
		t.Fatal(err)
	}
	st := api.Status{
		Clones: []api.CloneStatus{{Name: "carp0", Up: true, MTU: 1500}, {Name: "carp1", MTU: 1500}},
		VHIDs: []api.VHIDStatus{
			handbookStatus().VHIDs[0],
			{Iface: "carp1", Carpdev: "em1", VHID: 2, AdvBase: 1, State: "MASTER", Key: "wanpasswd",
				Addrs: []netip.Prefix{
					netip.MustParsePrefix("192.0.2.100/24"),
					netip.MustParsePrefix("192.0.2.101/32"),
					netip.MustParsePrefix("2001:db8::100/64"),
				}},
		},
	}
	var b strings.Builder
	if err := FormatInterface(&b, "carp1", st, true); err != nil {
		t.Fatal(err)
	}
	if b.String() != string(want) {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestFormatInterfaceCases(t *testing.T) {
	tests := []struct {
		name     string
		st       api.Status
		showKeys bool
		want     string
	}{
		{"clone without vhid prints only flags",
			api.Status{Clones: []api.CloneStatus{{Name: "carp0", Up: true, MTU: 1500}}}, false,
			"carp0: flags=8802<UP,BROADCAST,SIMPLEX,MULTICAST> mtu 1500\n"},
		{"down clone drops UP",
			api.Status{Clones: []api.CloneStatus{{Name: "carp0", MTU: 1500}}}, false,
			"carp0: flags=8802<BROADCAST,SIMPLEX,MULTICAST> mtu 1500\n"},
		{"vhid without carpdev is dialect B",
			api.Status{
				Clones: []api.CloneStatus{{Name: "carp0", Up: true, MTU: 1500}},
				VHIDs:  []api.VHIDStatus{{Iface: "carp0", VHID: 1, AdvBase: 1, State: "INIT"}},
			}, false,
			"carp0: flags=9<UP,LOOPBACK> metric 0 mtu 1500\n\tcarp: INIT vhid 1 advbase 1 advskew 0\n"},
		{"key hidden without -k", handbookStatus(), false,
			"carp0: flags=8802<UP,BROADCAST,SIMPLEX,MULTICAST> mtu 1500\n     carp: BACKUP carpdev em0 vhid 1 advbase 1 advskew 100\n     inet 10.0.0.1 netmask 0xffffff00 broadcast 10.0.0.255\n"},
		{"key shown with -k", handbookStatus(), true,
			"carp0: flags=8802<UP,BROADCAST,SIMPLEX,MULTICAST> mtu 1500\n     carp: BACKUP carpdev em0 vhid 1 advbase 1 advskew 100 key \"lanpasswd\"\n     inet 10.0.0.1 netmask 0xffffff00 broadcast 10.0.0.255\n"},
		{"no key set with -k",
			api.Status{
				Clones: []api.CloneStatus{{Name: "carp0", Up: true, MTU: 1500}},
				VHIDs:  []api.VHIDStatus{{Iface: "carp0", Carpdev: "em0", VHID: 1, AdvBase: 1, State: "MASTER"}},
			}, true,
			"carp0: flags=8802<UP,BROADCAST,SIMPLEX,MULTICAST> mtu 1500\n     carp: MASTER carpdev em0 vhid 1 advbase 1 advskew 0\n"},
		{"other interfaces' vhids ignored",
			api.Status{
				Clones: []api.CloneStatus{{Name: "carp0", Up: true, MTU: 1500}},
				VHIDs:  []api.VHIDStatus{{Iface: "em0", VHID: 1, AdvBase: 1, State: "MASTER"}},
			}, false,
			"carp0: flags=8802<UP,BROADCAST,SIMPLEX,MULTICAST> mtu 1500\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			if err := FormatInterface(&b, "carp0", tc.st, tc.showKeys); err != nil {
				t.Fatal(err)
			}
			if b.String() != tc.want {
				t.Errorf("got\n%q\nwant\n%q", b.String(), tc.want)
			}
		})
	}
}

func TestFormatInterfaceMissing(t *testing.T) {
	var b strings.Builder
	err := FormatInterface(&b, "carp9", handbookStatus(), false)
	if !printed(err, "interface carp9 does not exist") {
		t.Fatalf("err = %v", err)
	}
	if b.Len() != 0 {
		t.Errorf("printed %q", b.String())
	}
}

func TestFormatAddr(t *testing.T) {
	tests := map[string]string{
		"10.0.0.1/24":      "inet 10.0.0.1 netmask 0xffffff00 broadcast 10.0.0.255",
		"192.168.1.50/32":  "inet 192.168.1.50 netmask 0xffffffff broadcast 192.168.1.50",
		"172.16.0.100/16":  "inet 172.16.0.100 netmask 0xffff0000 broadcast 172.16.255.255",
		"10.0.0.1/0":       "inet 10.0.0.1 netmask 0x00000000",
		"2001:db8::50/64":  "inet6 2001:db8::50 prefixlen 64",
		"2001:db8::50/128": "inet6 2001:db8::50 prefixlen 128",
	}
	for in, want := range tests {
		if got := formatAddr(netip.MustParsePrefix(in)); got != want {
			t.Errorf("%s: got %q want %q", in, got, want)
		}
	}
}

func TestFormatList(t *testing.T) {
	var b strings.Builder
	FormatList(&b, []string{"em0", "lo0", "carp0"})
	if b.String() != "em0 lo0 carp0\n" {
		t.Errorf("got %q", b.String())
	}
}

func TestInetAton(t *testing.T) {
	tests := map[string]string{
		"10.0.0.1":     "10.0.0.1",
		"10.1":         "10.0.0.1",
		"10.1.2":       "10.1.0.2",
		"0xffffff00":   "255.255.255.0",
		"167772161":    "10.0.0.1",
		"012.0.0.1":    "10.0.0.1",
		"0x0a.0.0.1":   "10.0.0.1",
		"10.0.0.256":   "",
		"1.2.3.4.5":    "",
		"":             "",
		"a.b.c.d":      "",
		"09.0.0.1":     "",
		"4294967296":   "",
		"256.0.0.1":    "",
		"10.0.0.1 foo": "10.0.0.1",
	}
	for in, want := range tests {
		a, ok := inetAton(in)
		got := ""
		if ok {
			got = a.String()
		}
		if got != want {
			t.Errorf("inetAton(%q) = %q want %q", in, got, want)
		}
	}
}

// Contiguous masks of every length are still masks; 15 bytes is a name.
func TestIfconfigContiguousMasksAndLongestName(t *testing.T) {
	for bits := 0; bits <= 32; bits++ {
		v := uint32(0)
		if bits > 0 {
			v = ^uint32(0) << (32 - bits)
		}
		m := [4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
		line := "carp0 10.0.0.1 netmask " + netip.AddrFrom4(m).String()
		p, err := ParseIfconfig(strings.Fields(line))
		if err != nil || p.Request.Ops[0].Prefix.Bits() != bits {
			t.Errorf("%q: %v %+v", line, err, p.Request)
		}
	}
	for _, c := range []struct {
		mask string
		bits int
	}{{"ffff:ffff:ffff:ffff::", 64}, {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 128}, {"::", 0}, {"ffff:fe00::", 23}} {
		line := "carp0 inet6 2001:db8::1 netmask " + c.mask
		p, err := ParseIfconfig(strings.Fields(line))
		if err != nil || p.Request.Ops[0].Prefix.Bits() != c.bits {
			t.Errorf("%q: %v %+v", line, err, p.Request)
		}
	}
	p, err := ParseIfconfig([]string{"carp12345678901", "create"})
	if err != nil || p.Request.Ops[0].Kind != api.OpCreate {
		t.Fatalf("a 15-byte clone name: %v", err)
	}
}
