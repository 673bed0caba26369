package bsd

import (
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/bsdcarp/bsdcarp/carp/api"
)

func pfx(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, x := range s {
		out = append(out, netip.MustParsePrefix(x))
	}
	return out
}

func lo0() api.LinkStatus {
	return api.LinkStatus{Name: "lo0", Index: 1, MTU: 65536, Up: true, Running: true, Carrier: true,
		Loopback: true, MAC: "00:00:00:00:00:00", Addrs: pfx("127.0.0.1/8", "::1/128")}
}

func em0() api.LinkStatus {
	return api.LinkStatus{Name: "em0", Index: 2, MAC: "00:0c:29:aa:bb:cc", MTU: 1500,
		Up: true, Running: true, Carrier: true, Broadcast: true, Multicast: true, Promisc: true,
		Addrs: pfx("192.168.1.3/24", "fe80::20c:29ff:feaa:bbcc/64", "2001:db8::3/64")}
}

func em1Down() api.LinkStatus {
	return api.LinkStatus{Name: "em1", Index: 3, MAC: "00:0c:29:aa:bb:cd", MTU: 1500,
		Broadcast: true, Multicast: true, Addrs: pfx("10.1.0.3/16")}
}

// hostStatus: a FreeBSD 10+ style em0 with two vhids (an IPv4 one and an
// IPv6 one, created in that order), a down em1, and a FreeBSD 9 style carp0.
func hostStatus() api.Status {
	return api.Status{
		Links:  []api.LinkStatus{lo0(), em0(), em1Down()},
		Clones: []api.CloneStatus{{Name: "carp0", Up: true, MTU: 1500}},
		VHIDs: []api.VHIDStatus{
			{Iface: "em0", Carpdev: "em0", VHID: 1, AdvBase: 1, AdvSkew: 100, State: "MASTER", Key: "testpass",
				Addrs: pfx("192.168.1.50/32")},
			{Iface: "carp0", VHID: 1, AdvBase: 1, AdvSkew: 100, State: "MASTER", Key: "testpass",
				Addrs: pfx("192.168.1.50/24")},
			{Iface: "em0", Carpdev: "em0", VHID: 3, AdvBase: 2, State: "BACKUP",
				Addrs: pfx("2001:db8::50/64")},
		},
	}
}

func golden(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestFormatLinkGolden(t *testing.T) {
	tests := []struct {
		name     string
		link     api.LinkStatus
		showKeys bool
		file     string
	}{
		{"two vhids, link-local and global IPv6, inet before inet6", em0(), false, "link-em0-two-vhids.txt"},
		{"-k shows the key of a vhid that has one", em0(), true, "link-em0-two-vhids-keys.txt"},
		{"down link without carrier", em1Down(), false, "link-em1-down-no-carrier.txt"},
		{"loopback: no ether, no status, groups lo", lo0(), true, "link-lo0.txt"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			if err := FormatLink(&b, tc.link, hostStatus(), tc.showKeys); err != nil {
				t.Fatal(err)
			}
			if want := golden(t, tc.file); b.String() != want {
				t.Errorf("got\n%s\nwant\n%s", b.String(), want)
			}
		})
	}
}

// FreeBSD 14's ifconfig of em0 with vhid 1 on it (as in the FreeBSD
// Handbook's CARP section), less its media line.
func TestFormatLinkReferenceExample(t *testing.T) {
	l := em0()
	l.Addrs = pfx("192.168.1.3/24")
	st := api.Status{VHIDs: []api.VHIDStatus{{Iface: "em0", Carpdev: "em0", VHID: 1, AdvBase: 1,
		AdvSkew: 100, State: "MASTER", Key: "testpass", Addrs: pfx("192.168.1.50/32")}}}
	want := "em0: flags=1008943<UP,BROADCAST,RUNNING,PROMISC,SIMPLEX,MULTICAST,LOWER_UP> metric 0 mtu 1500\n" +
		"\tether 00:0c:29:aa:bb:cc\n" +
		"\tinet 192.168.1.3 netmask 0xffffff00 broadcast 192.168.1.255\n" +
		"\tinet 192.168.1.50 netmask 0xffffffff broadcast 192.168.1.50 vhid 1\n" +
		"\tcarp: MASTER vhid 1 advbase 1 advskew 100\n" +
		"\t      peer 224.0.0.18 peer6 ff02::12\n" +
		"\tstatus: active\n"
	var b strings.Builder
	if err := FormatLink(&b, l, st, false); err != nil {
		t.Fatal(err)
	}
	if b.String() != want {
		t.Errorf("got\n%q\nwant\n%q", b.String(), want)
	}
}

func TestFormatLinkCases(t *testing.T) {
	plain := api.LinkStatus{Name: "em0", Index: 2, MTU: 1500, Up: true, Running: true, Carrier: true,
		Broadcast: true, Multicast: true}
	with := func(f func(*api.LinkStatus)) api.LinkStatus {
		l := plain
		f(&l)
		return l
	}
	tests := []struct {
		name string
		link api.LinkStatus
		st   api.Status
		want string
	}{
		{"no MAC, no ether line", plain, api.Status{},
			"em0: flags=1008843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST,LOWER_UP> metric 0 mtu 1500\n\tstatus: active\n"},
		{"up without carrier", with(func(l *api.LinkStatus) { l.Carrier = false }), api.Status{},
			"em0: flags=8843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST> metric 0 mtu 1500\n\tstatus: no carrier\n"},
		{"non-broadcast link: no SIMPLEX, no broadcast address",
			with(func(l *api.LinkStatus) { l.Broadcast = false; l.Addrs = pfx("10.0.0.1/24") }), api.Status{},
			"em0: flags=1008041<UP,RUNNING,MULTICAST,LOWER_UP> metric 0 mtu 1500\n\tinet 10.0.0.1 netmask 0xffffff00\n\tstatus: active\n"},
		{"jumbo mtu", with(func(l *api.LinkStatus) { l.MTU = 9000 }), api.Status{},
			"em0: flags=1008843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST,LOWER_UP> metric 0 mtu 9000\n\tstatus: active\n"},
		{"vhids of other interfaces ignored", plain,
			api.Status{VHIDs: []api.VHIDStatus{{Iface: "em1", VHID: 1, State: "MASTER", Addrs: pfx("10.0.0.9/32")}}},
			"em0: flags=1008843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST,LOWER_UP> metric 0 mtu 1500\n\tstatus: active\n"},
		{"vhid without address yet: carp line only, empty state is INIT", plain,
			api.Status{VHIDs: []api.VHIDStatus{{Iface: "em0", VHID: 7, AdvBase: 1}}},
			"em0: flags=1008843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST,LOWER_UP> metric 0 mtu 1500\n" +
				"\tcarp: INIT vhid 7 advbase 1 advskew 0\n\t      peer 224.0.0.18 peer6 ff02::12\n\tstatus: active\n"},
		{"IPv6 vhid address on the link-local scope",
			plain, api.Status{VHIDs: []api.VHIDStatus{{Iface: "em0", VHID: 4, AdvBase: 1, State: "BACKUP", Addrs: pfx("fe80::50/64")}}},
			"em0: flags=1008843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST,LOWER_UP> metric 0 mtu 1500\n" +
				"\tinet6 fe80::50%em0 prefixlen 64 scopeid 0x2 vhid 4\n" +
				"\tcarp: BACKUP vhid 4 advbase 1 advskew 0\n\t      peer 224.0.0.18 peer6 ff02::12\n\tstatus: active\n"},
		{"unicast peers (FreeBSD 14)", plain,
			api.Status{VHIDs: []api.VHIDStatus{{Iface: "em0", VHID: 1, AdvBase: 1, AdvSkew: 100, State: "MASTER", Peer: "192.168.1.4", Peer6: "2001:db8::4"}}},
			"em0: flags=1008843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST,LOWER_UP> metric 0 mtu 1500\n" +
				"\tcarp: MASTER vhid 1 advbase 1 advskew 100\n\t      peer 192.168.1.4 peer6 2001:db8::4\n\tstatus: active\n"},
		{"VRRPv3 vhid: vrrp line, no key, no peer line", plain,
			api.Status{VHIDs: []api.VHIDStatus{{Iface: "em0", VHID: 1, Version: 3, Priority: 100, Interval: 100, State: "MASTER", Key: "k", Addrs: pfx("192.168.1.50/32")}}},
			"em0: flags=1008843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST,LOWER_UP> metric 0 mtu 1500\n" +
				"\tinet 192.168.1.50 netmask 0xffffffff broadcast 192.168.1.50 vhid 1\n" +
				"\tvrrp: MASTER vrid 1 prio 100 interval 100\n\tstatus: active\n"},
		{"VRRPv3 vhid with a unicast peer: the peer line too", plain,
			api.Status{VHIDs: []api.VHIDStatus{{Iface: "em0", VHID: 1, Version: 3, Priority: 100, Interval: 100, State: "BACKUP", Peer: "10.0.0.9"}}},
			"em0: flags=1008843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST,LOWER_UP> metric 0 mtu 1500\n" +
				"\tvrrp: BACKUP vrid 1 prio 100 interval 100\n\t      peer 10.0.0.9 peer6 ff02::12\n\tstatus: active\n"},
		{"a /31 and a /0", with(func(l *api.LinkStatus) { l.Addrs = pfx("10.0.0.0/31", "10.9.9.9/0") }), api.Status{},
			"em0: flags=1008843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST,LOWER_UP> metric 0 mtu 1500\n" +
				"\tinet 10.0.0.0 netmask 0xfffffffe broadcast 10.0.0.1\n\tinet 10.9.9.9 netmask 0x00000000\n\tstatus: active\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			if err := FormatLink(&b, tc.link, tc.st, true); err != nil {
				t.Fatal(err)
			}
			if b.String() != tc.want {
				t.Errorf("got\n%q\nwant\n%q", b.String(), tc.want)
			}
		})
	}
}

func TestFormatFlagsInBitOrder(t *testing.T) {
	tests := map[uint32]string{
		0x1008943: "flags=1008943<UP,BROADCAST,RUNNING,PROMISC,SIMPLEX,MULTICAST,LOWER_UP>",
		0x8049:    "flags=8049<UP,LOOPBACK,RUNNING,MULTICAST>",
		0x8:       "flags=8<LOOPBACK>",
		0:         "flags=0<>",
	}
	for in, want := range tests {
		if got := formatFlags(in); got != want {
			t.Errorf("%#x: got %q want %q", in, got, want)
		}
	}
}

func TestFormatCloneDialectBGolden(t *testing.T) {
	b9 := func(up bool, state string) api.Status {
		return api.Status{
			Clones: []api.CloneStatus{{Name: "carp0", Up: up, MTU: 1500}},
			VHIDs: []api.VHIDStatus{{Iface: "carp0", VHID: 1, AdvBase: 1, AdvSkew: 100, State: state,
				Key: "testpass", Addrs: pfx("192.168.1.50/24")}},
		}
	}
	tests := []struct {
		name string
		st   api.Status
		file string
	}{
		{"MASTER", b9(true, "MASTER"), "freebsd9-carp0-master.txt"},
		{"down", b9(false, "INIT"), "freebsd9-carp0-down.txt"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, keys := range []bool{false, true} { // FreeBSD 9 never prints the key
				var b strings.Builder
				if err := FormatInterface(&b, "carp0", tc.st, keys); err != nil {
					t.Fatal(err)
				}
				if want := golden(t, tc.file); b.String() != want {
					t.Errorf("keys=%v: got\n%q\nwant\n%q", keys, b.String(), want)
				}
			}
		})
	}
}

func TestFormatCloneDialectBCases(t *testing.T) {
	tests := []struct {
		name  string
		up    bool
		addrs []netip.Prefix
		want  string
	}{
		{"up without address is not RUNNING", true, nil,
			"carp0: flags=9<UP,LOOPBACK> metric 0 mtu 1500\n\tcarp: BACKUP vhid 2 advbase 1 advskew 0\n"},
		{"unpadded mask and IPv6 with trailing spaces, in configuration order", true,
			pfx("10.0.0.1/8", "2001:db8::1/64", "10.0.0.2/32"),
			"carp0: flags=49<UP,LOOPBACK,RUNNING> metric 0 mtu 1500\n" +
				"\tinet 10.0.0.1 netmask 0xff000000 \n\tinet6 2001:db8::1 prefixlen 64 \n\tinet 10.0.0.2 netmask 0xffffffff \n" +
				"\tcarp: BACKUP vhid 2 advbase 1 advskew 0\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := api.Status{
				Clones: []api.CloneStatus{{Name: "carp0", Up: tc.up}},
				VHIDs:  []api.VHIDStatus{{Iface: "carp0", VHID: 2, AdvBase: 1, State: "BACKUP", Addrs: tc.addrs}},
			}
			var b strings.Builder
			if err := FormatInterface(&b, "carp0", st, false); err != nil {
				t.Fatal(err)
			}
			if b.String() != tc.want {
				t.Errorf("got\n%q\nwant\n%q", b.String(), tc.want)
			}
		})
	}
}

// The handbook (dialect A) output is unchanged by dialect B's existence.
func TestFormatCloneWithCarpdevStaysDialectA(t *testing.T) {
	var b strings.Builder
	if err := FormatInterface(&b, "carp0", handbookStatus(), false); err != nil {
		t.Fatal(err)
	}
	if want := golden(t, "handbook-28.4-carp0.txt"); b.String() != want {
		t.Errorf("got\n%q\nwant\n%q", b.String(), want)
	}
}

func TestFormatStatus(t *testing.T) {
	st := hostStatus()
	tests := []struct {
		name string
		args []string
		want string // "@file" for a golden file
	}{
		{"-a lists links then clones", []string{"-a"}, "@ifconfig-a.txt"},
		{"no arguments is -a", nil, "@ifconfig-a.txt"},
		{"-l", []string{"-l"}, "@ifconfig-l.txt"},
		{"-g carp lists the clones only", []string{"-g", "carp"}, "carp0\n"},
		{"-g of an unknown group prints nothing", []string{"-g", "vlan"}, ""},
		{"a link", []string{"em0"}, "@link-em0-two-vhids.txt"},
		{"a link with -k", []string{"-k", "em0"}, "@link-em0-two-vhids-keys.txt"},
		{"a link with a family filter", []string{"em1", "inet"}, "@link-em1-down-no-carrier.txt"},
		{"a dialect B clone", []string{"carp0"}, "@freebsd9-carp0-master.txt"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParseIfconfig(tc.args)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.want
			if strings.HasPrefix(want, "@") {
				want = golden(t, want[1:])
			}
			var b strings.Builder
			if err := FormatStatus(&b, p, st); err != nil {
				t.Fatal(err)
			}
			if b.String() != want {
				t.Errorf("got\n%s\nwant\n%s", b.String(), want)
			}
		})
	}
}

func TestFormatStatusEmptyHost(t *testing.T) {
	for _, tc := range []struct{ arg, want string }{{"-l", "\n"}, {"-a", ""}, {"-gcarp", ""}} {
		p, _ := ParseIfconfig([]string{tc.arg})
		var b strings.Builder
		if err := FormatStatus(&b, p, api.Status{}); err != nil || b.String() != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.arg, b.String(), err, tc.want)
		}
	}
}

func TestFormatStatusUnknownInterface(t *testing.T) {
	p, _ := ParseIfconfig([]string{"em7"})
	var b strings.Builder
	err := FormatStatus(&b, p, hostStatus())
	if !printed(err, "interface em7 does not exist") {
		t.Fatalf("err = %v", err)
	}
	if b.Len() != 0 {
		t.Errorf("printed %q", b.String())
	}
}

// Ordinary interface configuration (rc.conf's ifconfig_em0="...").
func TestIfconfigOrdinaryConfiguration(t *testing.T) {
	tests := []struct {
		name, line, ops string
	}{
		{"rc.conf inet with netmask", "em0 inet 192.168.1.3 netmask 255.255.255.0", "addr 192.168.1.3/24"},
		{"slash length", "em0 192.168.1.3/24", "addr 192.168.1.3/24"},
		{"hex netmask", "em0 inet 192.168.1.3 netmask 0xffffff00", "addr 192.168.1.3/24"},
		{"alias", "em0 inet 192.168.1.4/24 alias", "addr 192.168.1.4/24 alias"},
		{"-alias", "em0 inet 192.168.1.4 -alias", "-alias 192.168.1.4/32"},
		{"delete", "em0 inet 192.168.1.4 delete", "-alias 192.168.1.4/32"},
		{"delete without address", "em0 delete", "-alias <first>"},
		{"up", "em0 up", "up"},
		{"down", "em0 down", "down"},
		{"address and up", "em0 inet 192.168.1.3/24 up", "up; addr 192.168.1.3/24"},
		{"mtu", "em0 mtu 9000", "mtu 9000"},
		{"mtu with address", "em0 inet 192.168.1.3/24 mtu 1400", "mtu 1400; addr 192.168.1.3/24"},
		{"mtu is atoi: trailing junk ignored", "em0 mtu 1500abc", "mtu 1500"},
		{"mtu is atoi: no digits is 0 (the kernel's EINVAL)", "em0 mtu abc", "mtu 0"},
		{"mtu is atoi: sign", "em0 mtu -1", "mtu -1"},
		{"mtu is atoi: (int) keeps the low 32 bits", "em0 mtu 4294968796", "mtu 1500"},
		{"mtu is atoi: overflow is LONG_MAX, (int) -1", "em0 mtu 99999999999999999999", "mtu -1"},
		{"inet6 prefixlen", "em0 inet6 2001:db8::3 prefixlen 64", "addr 2001:db8::3/64"},
		{"inet6 alias", "em0 inet6 2001:db8::4 prefixlen 64 alias", "addr 2001:db8::4/64 alias"},
		{"inet6 delete", "em0 inet6 2001:db8::4 delete", "-alias 2001:db8::4/128"},
		{"dialect C vhid line still parsed", "em0 vhid 1 pass testpass alias 192.168.1.50/32",
			"vhid 1; pass testpass; addr 192.168.1.50/32 alias"},
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
			if len(p.Warnings) != 0 {
				t.Errorf("warnings %q", p.Warnings)
			}
		})
	}
}

// Keywords bsdcarp does not apply are refused by name, with no request.
func TestIfconfigUnsupportedKeywordsOnLinks(t *testing.T) {
	for _, line := range []string{
		"em0 media 1000baseT", "em0 mediaopt full-duplex", "em0 -mediaopt full-duplex",
		"em0 txcsum", "em0 -rxcsum", "em0 tso", "em0 -lro", "em0 metric 2", "em0 lladdr 00:11:22:33:44:55",
		"em0 description uplink", "em0 promisc", "em0 -arp", "em0 name lan0", "em0 group lan",
		"em0 inet 192.168.1.3/24 mtu 9000 polling", "em0 mtu 9000 vlanmtu",
	} {
		words := strings.Fields(line)
		var kw string
		for _, w := range words[1:] {
			if k, ok := ifKeywords[w]; ok && k.apply == nil {
				kw = w
				break
			}
		}
		p, err := ParseIfconfig(words)
		if !printed(err, "'"+kw+"' is not supported by bsdcarp") {
			t.Errorf("%q: err %v, want '%s' is not supported by bsdcarp", line, err, kw)
		}
		if p.Request != nil {
			t.Errorf("%q: request %+v", line, p.Request)
		}
	}
}

func TestIfconfigMTUErrors(t *testing.T) {
	for _, tc := range []struct{ line, msg string }{
		{"em0 mtu", "'mtu' requires argument"},
		{"carp0 mtu 1500", "'mtu' is not supported by bsdcarp"},
	} {
		_, err := ParseIfconfig(strings.Fields(tc.line))
		if !printed(err, tc.msg) {
			t.Errorf("%q: %v, want %q", tc.line, err, tc.msg)
		}
	}
}

// TestFormatGroupAttribs: OpenBSD's printgroupattribs() line, with the
// demotion counter net.inet.carp.demotion.
func TestFormatGroupAttribs(t *testing.T) {
	for _, c := range []struct {
		knobs []api.Knob
		want  string
	}{
		{[]api.Knob{{Name: "net.inet.carp.preempt", Value: 1}, {Name: "net.inet.carp.demotion", Value: 50}}, "carp: carp demote count 50\n"},
		{[]api.Knob{{Name: "net.inet.carp.demotion", Value: 0}}, "carp: carp demote count 0\n"},
		{nil, "carp: carp demote count 0\n"},
	} {
		var b strings.Builder
		FormatGroupAttribs(&b, "carp", api.Status{Knobs: c.knobs})
		if b.String() != c.want {
			t.Errorf("%+v: %q, want %q", c.knobs, b.String(), c.want)
		}
	}
}
