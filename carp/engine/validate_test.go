package engine

import (
	"context"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bsdcarp/bsdcarp/carp/api"
	"github.com/bsdcarp/bsdcarp/carp/osif"
	"github.com/bsdcarp/bsdcarp/kernelshim/memkernel"
)

// goodConfig is what the three dialects and a few sysctls save.
const goodConfig = `{
  "version": 1,
  "knobs": {"preempt": 1, "demotion": -20, "dscp": 0},
  "ifaces": [
    {"name": "carp0", "clone": true, "down": true, "vhids": [
      {"vhid": 1, "carpdev": "em0", "advbase": 1, "advskew": 100, "key": "lanpasswd", "addrs": ["10.0.0.1/24"]}]},
    {"name": "carp1", "clone": true, "vhids": [
      {"vhid": 0, "advbase": 1, "advskew": 0, "addrs": ["192.168.1.50/24"]}]},
    {"name": "carp2", "clone": true},
    {"name": "em1", "clone": false, "vhids": [
      {"vhid": 1, "carpdev": "em1", "advbase": 255, "advskew": 254, "addrs": ["192.168.1.51/32", "2001:db8::50/64", "fe80::50/64"]},
      {"vhid": 2, "carpdev": "em1", "advbase": 3, "advskew": 0}]}
  ]
}`

func TestValidConfigLoads(t *testing.T) {
	c, err := decodeConfig([]byte(goodConfig))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Ifaces) != 4 || c.Knobs["preempt"] != 1 || c.Ifaces[3].VHIDs[0].AdvSkew != 254 {
		t.Fatalf("decoded %+v", c)
	}
}

// Every refusal names the field and the reason; the file name is added by
// loadConfig (TestBadStateFilesNameFileFieldAndReason).
func TestConfigValidationRefusesWithFieldAndReason(t *testing.T) {
	vhid := func(s string) string {
		return `{"version":1,"ifaces":[{"name":"em0","vhids":[{"vhid":1,"carpdev":"em0","advbase":1,"advskew":0,"addrs":["10.0.0.1/24"]}]},` +
			`{"name":"carp0","clone":true,"vhids":[` + s + `]}]}`
	}
	long := strings.Repeat("k", 5000)
	for _, c := range []struct{ json, want string }{
		{`{"version":2}`, "version: 2 is not supported (want 1)"},
		{`{}`, "version: 0 is not supported"},
		{`{"version":1,"knobs":{"dscp":999}}`, "knobs.dscp: 999 is out of range 0..63"},
		{`{"version":1,"knobs":{"foo":1}}`, "knobs.foo: unknown knob"},
		{`{"version":1,"knobs":{"suppress_preempt":1}}`, "knobs.suppress_preempt: not writable"},
		{`{"version":1,"knobs":{"stats":1}}`, "knobs.stats: not writable"},
		{`{"version":1,"knobs":{"log":4294967296}}`, "knobs.log: 4294967296 is out of range -2147483648..2147483647"},
		{`{"version":1,"knobs":{"log":1.5}}`, "knobs: number 1.5 does not fit (want int64)"},
		{`{"version":1,"bogus":1}`, `unknown field "bogus"`},
		{`{"version":1,"ifaces":[{"name":"carp0","clone":true,"colne":true}]}`, `unknown field "colne"`},
		{`{"version":1} {}`, "data after the JSON object"},
		{`{"version":1`, "truncated JSON"},
		{``, "empty file"},
		{`[1]`, "array where engine.Config is wanted"},
		{vhid(`{"vhid":1,"carpdev":"em0","advbase":0,"advskew":0}`), "ifaces[1].vhids[0].advbase: 0 is out of range 1..255"},
		{vhid(`{"vhid":1,"carpdev":"em0","advbase":1,"advskew":255}`), "ifaces[1].vhids[0].advskew: 255 is out of range 0..254"},
		{vhid(`{"vhid":1,"carpdev":"em0","advbase":999,"advskew":0}`), "ifaces.vhids.advbase: number 999 does not fit (want uint8)"},
		{vhid(`{"vhid":2,"carpdev":"em0","advbase":1,"key":"` + long + `"}`), "ifaces[1].vhids[0].key: 5000 bytes, longer than 255"},
		{vhid(`{"vhid":2,"carpdev":"em0","advbase":1,"key":"a\u0000b"}`), "ifaces[1].vhids[0].key: contains a NUL byte"},
		{vhid(`{"vhid":1,"carpdev":"em0","advbase":1}`), "ifaces[1].vhids[0].vhid: vhid 1 on em0 is already configured by ifaces[0].vhids[0]"},
		{vhid(`{"vhid":2,"carpdev":"carp1","advbase":1}`), "ifaces[1].vhids[0].carpdev: carp1 is a carp clone, not a physical interface"},
		{vhid(`{"vhid":2,"carpdev":"em0/x","advbase":1}`), `ifaces[1].vhids[0].carpdev: interface name "em0/x" contains '/'`},
		{vhid(`{"vhid":2,"advbase":1,"addrs":["0.0.0.0/0"]}`), "ifaces[1].vhids[0].addrs[0]: 0.0.0.0/0 is the unspecified address"},
		{vhid(`{"vhid":2,"advbase":1,"addrs":["10.0.0.9/0"]}`), "ifaces[1].vhids[0].addrs[0]: 10.0.0.9/0: a /0 prefix claims every address"},
		{vhid(`{"vhid":2,"advbase":1,"addrs":["224.0.0.18/32"]}`), "is a multicast address"},
		{vhid(`{"vhid":2,"advbase":1,"addrs":["127.0.0.1/8"]}`), "is a loopback address"},
		{vhid(`{"vhid":2,"advbase":1,"addrs":["::1/128"]}`), "is a loopback address"},
		{vhid(`{"vhid":2,"advbase":1,"addrs":["255.255.255.255/32"]}`), "is the broadcast address"},
		{vhid(`{"vhid":2,"advbase":1,"addrs":["10.0.0.255/24"]}`), "10.0.0.255/24 is the broadcast address of its subnet"},
		{vhid(`{"vhid":2,"advbase":1,"addrs":["::ffff:10.0.0.1/120"]}`), "is an IPv4-mapped IPv6 address"},
		{vhid(`{"vhid":2,"advbase":1,"addrs":["10.0.0.1/24","10.0.0.1/32"]}`), "ifaces[1].vhids[0].addrs[1]: 10.0.0.1 is listed twice (also addrs[0])"},
		{vhid(`{"vhid":2,"advbase":1,"addrs":["10.0.0.1/33"]}`), `ifaces[1].vhids[0].addrs[0]: "10.0.0.1/33" is not an address/prefix`},
		{vhid(`{"vhid":2,"advbase":1},{"vhid":3,"advbase":1}`), "ifaces[1].vhids: a carp clone has one vhid, not 2"},
		{`{"version":1,"ifaces":[{"name":"carp99999999999999999999","clone":true}]}`, "ifaces[0].name: interface name of 24 bytes, longer than 15"},
		{`{"version":1,"ifaces":[{"name":"","clone":false}]}`, "ifaces[0].name: empty interface name"},
		{`{"version":1,"ifaces":[{"name":"em 0","clone":false}]}`, `ifaces[0].name: interface name "em 0" contains ' '`},
		{`{"version":1,"ifaces":[{"name":"carp0"}]}`, "ifaces[0].clone: false, but carp0 is a carp clone name"},
		{`{"version":1,"ifaces":[{"name":"em0","clone":true}]}`, "ifaces[0].clone: true, but em0 is not a carpN name"},
		{`{"version":1,"ifaces":[{"name":"em0","down":true}]}`, "ifaces[0].down: only a carp clone"},
		{`{"version":1,"ifaces":[{"name":"carp0","clone":true},{"name":"carp0","clone":true}]}`, "ifaces[1].name: carp0 is listed twice (also ifaces[0])"},
		{`{"version":1,"ifaces":[{"name":"em0","vhids":[{"vhid":0,"carpdev":"em0","advbase":1}]}]}`, "ifaces[0].vhids[0].vhid: 0 is out of range 1..255"},
		{`{"version":1,"ifaces":[{"name":"em0","vhids":[{"vhid":1,"carpdev":"em1","advbase":1}]}]}`, `ifaces[0].vhids[0].carpdev: "em1", but a vhid of em0 runs on em0 itself`},
		{`{"version":1,"ifaces":[{"name":"em0","vhids":[{"vhid":1,"carpdev":"em0","advbase":1},{"vhid":1,"carpdev":"em0","advbase":1}]}]}`, "ifaces[0].vhids[1].vhid: 1 is listed twice on em0 (also vhids[0])"},
		// The link churn of the issue: two clones on one vhid of one parent.
		{`{"version":1,"ifaces":[{"name":"carp0","clone":true,"vhids":[{"vhid":7,"carpdev":"em0","advbase":1}]},{"name":"carp1","clone":true,"vhids":[{"vhid":7,"carpdev":"em0","advbase":1}]}]}`,
			"ifaces[1].vhids[0].vhid: vhid 7 on em0 is already configured by ifaces[0].vhids[0]"},
	} {
		_, err := decodeConfig([]byte(c.json))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%.120s:\n got %v\nwant ...%s", c.json, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), long) {
			t.Errorf("the error repeats the key")
		}
	}
}

func TestBadStateFilesNameFileFieldAndReason(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, configFile)
	bad := `{"version":1,"ifaces":[{"name":"em0","vhids":[{"vhid":1,"carpdev":"em0","advbase":1}]},` +
		`{"name":"carp0","clone":true,"vhids":[{"vhid":2,"carpdev":"em0","advbase":0,"advskew":0,"key":"s3cret"}]}]}`
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := New(Options{Kernel: memkernel.NewMemory(), StateDir: dir})
	want := path + ": ifaces[1].vhids[0].advbase: 0 is out of range 1..255"
	if err == nil || err.Error() != want {
		t.Fatalf("New = %v, want %q", err, want)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Fatal("the error shows the key")
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	kpath := filepath.Join(dir, kernelFile)
	for _, c := range []struct{ json, want string }{
		{`{"net/ipv4/conf/em0/arp_ignore":"0","net/ipv4/ip_forward":"1"}`, `"net/ipv4/ip_forward": not a setting carpd changes`},
		{`{"net/ipv4/conf/../../../kernel/core_pattern/arp_ignore":"0"}`, `not a setting carpd changes`},
		{`{"net/ipv4/conf/../arp_ignore":"0"}`, `"net/ipv4/conf/../arp_ignore": ".." is not an interface name`},
		{`{"net/ipv4/conf/em0/arp_announce":"|sh"}`, `"net/ipv4/conf/em0/arp_announce": value "|sh" is not an integer`},
		{`{"net/ipv4/conf/em0/arp_announce":2}`, `"net/ipv4/conf/em0/arp_announce": value is not a string`},
		{`{"net/ipv4/conf/averyveryverylongname/arp_ignore":"1"}`, "longer than 15"},
	} {
		if err := os.WriteFile(kpath, []byte(c.json), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := New(Options{Kernel: memkernel.NewMemory(), StateDir: dir})
		if err == nil || !strings.HasPrefix(err.Error(), kpath+": ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("kernel.json %s: New = %v, want %s: ...%s", c.json, err, kpath, c.want)
		}
	}
	if err := os.WriteFile(kpath, []byte(`{"net/ipv4/conf/em0/arp_ignore":"0","net/ipv4/conf/eth0.10/arp_announce":"-1"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{Kernel: memkernel.NewMemory(), StateDir: dir}); err != nil {
		t.Fatalf("a good kernel.json: %v", err)
	}
}

// The bad file of the issue leaves the kernel untouched: New refuses it
// before Run, and so before any link or /proc/sys value is made.
func TestAdvbaseZeroIsRefusedBeforeAnyKernelChange(t *testing.T) {
	dir := t.TempDir()
	bad := `{"version":1,"ifaces":[{"name":"carp0","clone":true,"vhids":[{"vhid":1,"carpdev":"em0","advbase":0,"advskew":0,"addrs":["10.0.0.1/24"]}]}]}`
	if err := os.WriteFile(filepath.Join(dir, configFile), []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	k := memkernel.NewMemory()
	if _, err := New(Options{Kernel: k, StateDir: dir}); err == nil {
		t.Fatal("advbase 0 accepted")
	}
	if got := k.Transcript(); len(got) != 0 {
		t.Fatalf("kernel changed: %v", got)
	}
}

func TestValidIfName(t *testing.T) {
	for _, ok := range []string{"em0", "eth0", "enp3s0", "eth0.10", "br-lan", "a", "carp123456789ab", "vlan@x"} {
		if err := ValidIfName(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "carp1234567890123", "em/0", "em:0", "em 0", "em\t0", "em\n", "\x7f", "é0"} {
		if err := ValidIfName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// What the command line accepts always passes the validator: it runs on
// every line, and refuses in BSD's words what the file would refuse.
func TestIfconfigRefusesWhatCouldNotLoadAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		n := newNode(t, memkernel.NewSegment(), "10.0.0.2/24", dir)
		defer n.stop(t)
		n.ifconfig(t, "carp0", api.Op{Kind: api.OpCreate})
		before, err := os.ReadFile(filepath.Join(dir, configFile))
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		for _, c := range []struct {
			req  api.IfconfigRequest
			want *api.Error
		}{
			{api.IfconfigRequest{Iface: "carp99999999999999999999", Ops: []api.Op{{Kind: api.OpCreate}}}, &api.Error{Reason: api.ReasonCloneNameLong, Name: "carp99999999999999999999"}},
			{api.IfconfigRequest{Iface: "carp0", Ops: []api.Op{{Kind: api.OpVHID, Int: 1}, {Kind: api.OpCarpdev, Str: "em0"}, {Kind: api.OpAddr, Prefix: netip.MustParsePrefix("0.0.0.0/0")}}}, api.Refused(api.StepAddAddr, syscall.EINVAL)},
			{api.IfconfigRequest{Iface: "carp0", Ops: []api.Op{{Kind: api.OpVHID, Int: 1}, {Kind: api.OpCarpdev, Str: "em0"}, {Kind: api.OpAddr, Prefix: netip.MustParsePrefix("10.0.0.1/0")}}}, api.Refused(api.StepAddAddr, syscall.EINVAL)},
			{api.IfconfigRequest{Iface: "carp0", Ops: []api.Op{{Kind: api.OpVHID, Int: 1}, {Kind: api.OpCarpdev, Str: "em0"}, {Kind: api.OpAddr, Prefix: netip.MustParsePrefix("224.0.0.18/32")}}}, api.Refused(api.StepAddAddr, syscall.EINVAL)},
			{api.IfconfigRequest{Iface: "carp0", Ops: []api.Op{{Kind: api.OpVHID, Int: 1}, {Kind: api.OpPass, Str: "a\x00b"}}}, api.Refused(api.StepSetVHID, syscall.EINVAL)},
			{api.IfconfigRequest{Iface: "em0 x", Ops: []api.Op{{Kind: api.OpUp}}}, &api.Error{Reason: api.ReasonNoInterface, Name: "em0 x"}},
			{api.IfconfigRequest{Iface: "carp99999999999999999999", Ops: []api.Op{{Kind: api.OpVHID, Int: 1}}}, &api.Error{Reason: api.ReasonNoInterface, Name: "carp99999999999999999999"}},
		} {
			err := n.e.Ifconfig(ctx, c.req)
			if !refused(err, c.want) {
				t.Errorf("%+v: %v, want %q", c.req, err, c.want)
			}
		}
		// Linux allows a name BSD cannot hold: its plain settings still
		// work, a vhid on it is refused.
		n.k.AddLink(osif.Link{Name: "lané", MTU: 1500, AdminUp: true, Carrier: true, Running: true, Kind: "veth"}, nil)
		synctest.Wait()
		if err := n.e.Ifconfig(ctx, api.IfconfigRequest{Iface: "lané", Ops: []api.Op{{Kind: api.OpMTU, Int: 1400}}}); err != nil {
			t.Errorf("mtu on a link with a non-ASCII name: %v", err)
		}
		err = n.e.Ifconfig(ctx, api.IfconfigRequest{Iface: "lané", Ops: []api.Op{{Kind: api.OpVHID, Int: 3}, {Kind: api.OpAddr, Prefix: netip.MustParsePrefix("10.9.0.1/24")}}})
		if !refused(err, api.Refused(api.StepSetVHID, syscall.EINVAL)) {
			t.Errorf("vhid on a link with a non-ASCII name: %v", err)
		}
		after, err := os.ReadFile(filepath.Join(dir, configFile))
		if err != nil || string(after) != string(before) {
			t.Fatalf("a refused line changed config.json:\n%s\n%v", after, err)
		}
		// The kernel saw only the mtu on lané: not the long name, nothing
		// of a refused line.
		wantOps(t, n.k.Transcript(), []string{"ip link set lané mtu 1400"})
		// A long password is kept to MaxKeyBytes, cut on a character
		// boundary: the protocol's 19 bytes are unchanged and it loads again.
		key := strings.Repeat("é", 200)
		n.ifconfig(t, "carp0", api.Op{Kind: api.OpVHID, Int: 1}, api.Op{Kind: api.OpPass, Str: key}, api.Op{Kind: api.OpCarpdev, Str: "em0"},
			api.Op{Kind: api.OpAddr, Prefix: netip.MustParsePrefix("10.0.0.1/24")})
		st, err := n.e.Status(ctx, api.StatusQuery{ShowKeys: true})
		if err != nil {
			t.Fatal(err)
		}
		if got := st.VHIDs[0].Key; len(got) != 254 || !strings.HasPrefix(key, got) {
			t.Fatalf("kept key of %d bytes", len(got))
		}
		c, err := loadConfig(dir)
		if err != nil {
			t.Fatalf("saved configuration does not load: %v", err)
		}
		if c.Ifaces[0].VHIDs[0].Key != st.VHIDs[0].Key {
			t.Fatal("saved key differs")
		}
	})
}

// Demotion adds up; the sum saturates at a C int so that it loads again.
func TestDemotionSaturatesAndLoadsAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		n := newNode(t, memkernel.NewSegment(), "10.0.0.2/24", dir)
		defer n.stop(t)
		ctx := context.Background()
		for range 3 {
			if _, _, err := n.e.SetSysctl(ctx, api.SysctlPrefix+"demotion", 2147483647); err != nil {
				t.Fatal(err)
			}
		}
		c, err := loadConfig(dir)
		if err != nil {
			t.Fatalf("saved demotion does not load: %v", err)
		}
		if got := c.Knobs["demotion"]; got != 2147483647 {
			t.Fatalf("saved demotion %d", got)
		}
	})
}

func TestIfmapStrict(t *testing.T) {
	good := "# BSD=Linux\n\nem0 = eth0\nem1=enp3s0 # uplink\n"
	m, err := ParseIfmap(strings.NewReader(good), "/etc/carpd/ifmap")
	if err != nil || !maps.Equal(m, map[string]string{"em0": "eth0", "em1": "enp3s0"}) {
		t.Fatalf("ParseIfmap = %v, %v", m, err)
	}
	for _, c := range []struct{ text, want string }{
		{"em0=eth0\nbogus line\n", "F:2: bad interface mapping"},
		{"em0=eth0\nem0=eth1\n", "F:2: em0 is already mapped on line 1"},
		{"em0=eth0\n\nem1=eth0\n", "F:3: eth0 is already the Linux name of em0 on line 1"},
		{"carp0=eth0\n", "F:1: carp0 is a carp interface name"},
		{"em0=averyveryverylongname\n", "F:1: Linux name: interface name of 21 bytes, longer than 15"},
		{"em0=..\n", `F:1: Linux name: ".." is not an interface name`},
		{"em0=eth0:1\n", `F:1: Linux name: interface name "eth0:1" contains ':'`},
		{"em0=eth/0\n", "F:1: Linux name: interface name \"eth/0\" contains '/'"},
		{"em 0=eth0\n", `F:1: BSD name: interface name "em 0" contains ' '`},
		{"=eth0\n", "F:1: bad interface mapping"},
		{"em0=\n", "F:1: bad interface mapping"},
	} {
		_, err := ParseIfmap(strings.NewReader(c.text), "F")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %s", c.text, err, c.want)
		}
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "ifmap")
	if err := os.WriteFile(file, []byte("em0=eth0\nfxp0=eth9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if m, err := LoadIfmap(file, []string{"fxp0=eth1"}); err != nil || m["fxp0"] != "eth1" || m["em0"] != "eth0" {
		t.Fatalf("the flag must win: %v %v", m, err)
	}
	if _, err := LoadIfmap(file, []string{"em1=eth0"}); err == nil || !strings.Contains(err.Error(), "em0 and em1 both map to eth0") {
		t.Fatalf("file and flag with one Linux name: %v", err)
	}
	if _, err := LoadIfmap("", []string{"em0=eth0", "em0=eth1"}); err == nil || !strings.Contains(err.Error(), "--ifmap: em0 is mapped twice") {
		t.Fatalf("flag twice: %v", err)
	}
	if _, err := LoadIfmap(filepath.Join(dir, "missing"), nil); err != nil {
		t.Fatalf("a missing file must be fine: %v", err)
	}
}

// A FIFO in the ifmap's place must not hang carpd's start or its SIGHUP.
func TestIfmapThatIsNotARegularFileIsRefused(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "ifmap")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := LoadIfmap(fifo, nil); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("LoadIfmap(FIFO) = %v, want a refusal", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("LoadIfmap blocked on a FIFO")
	}
}
