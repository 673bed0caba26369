package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/bsdcarp/bsdcarp/internal/netlab"
)

// linkNames lists the links of a host's namespace, with their kinds
// ("em0 veth", "carp0 macvlan"), sorted.
func linkNames(t *testing.T, lab *netlab.Lab, host string) []string {
	t.Helper()
	out, errOut, code := lab.Exec(host, nil, "ip", "-d", "-o", "link", "show")
	if code != 0 {
		t.Fatalf("ip link: %s", errOut)
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		kind := ""
		if strings.Contains(line, " macvlan ") {
			kind = " macvlan"
		}
		names = append(names, name+kind)
	}
	slices.Sort(names)
	return names
}

// runCarpdOnce runs carpd in the foreground, as systemd would, bounded by
// timeout(1): a carpd that accepts the bad file keeps running and the
// bound ends it with status 124.
func (h *host) runCarpdOnce(extra ...string) (string, int) {
	argv := append([]string{"timeout", "10", filepath.Join(bin, "carpd")}, extra...)
	_, errOut, code := h.lab.Exec(h.name, h.env(), argv...)
	return errOut, code
}

// A hand-edited or damaged config.json used to start an advert storm
// (advbase 0: ~8,500 adverts/s) or endless link churn (two clones on one
// vhid of one parent: ~54 retries/s), and accepted dscp 999, unknown knobs,
// 0.0.0.0/0 and 5000-byte keys. Now carpd exits 1 naming the file, the
// field and the reason, before it touches a link or a /proc/sys value.
func TestBadStateFileIsRefusedBeforeAnyKernelChange(t *testing.T) {
	lab := netlab.New(t, bin)
	lab.Bridge("lan")
	fw := newHost(t, lab, "fw")
	lab.Plug("fw", "em0", "lan", "10.0.0.2/24")
	before := linkNames(t, lab, "fw")
	arp := func() string {
		out, _, _ := lab.Exec("fw", nil, "cat", "/proc/sys/net/ipv4/conf/em0/arp_ignore", "/proc/sys/net/ipv4/conf/em0/arp_announce")
		return out
	}
	arpBefore := arp()
	if err := os.MkdirAll(fw.stateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(fw.stateDir, "config.json")
	// clone is a carp clone on em0 as `ifconfig carpN create` and the
	// handbook's line save it.
	clone := func(name string, advbase int, key, addr string) string {
		return `{"name":"` + name + `","clone":true,"vhids":[{"vhid":1,"carpdev":"em0","advbase":` + strconv.Itoa(advbase) +
			`,"advskew":0,"key":"` + key + `","addrs":["` + addr + `"]}]}`
	}
	good := func(name string) string { return clone(name, 1, "lanpasswd", "10.0.0.1/24") }
	for _, c := range []struct{ name, json, want string }{
		{"advbase 0",
			`{"version":1,"ifaces":[` + clone("carp0", 0, "lanpasswd", "10.0.0.1/24") + `]}`,
			path + ": ifaces[0].vhids[0].advbase: 0 is out of range 1..255"},
		{"two clones on one vhid of em0",
			`{"version":1,"ifaces":[` + good("carp0") + `,` + good("carp1") + `]}`,
			path + ": ifaces[1].vhids[0].vhid: vhid 1 on em0 is already configured by ifaces[0].vhids[0]"},
		{"dscp 999",
			`{"version":1,"knobs":{"dscp":999},"ifaces":[` + good("carp0") + `]}`,
			path + ": knobs.dscp: 999 is out of range 0..63"},
		{"unknown knob",
			`{"version":1,"knobs":{"preemt":1}}`,
			path + ": knobs.preemt: unknown knob (not a net.inet.carp leaf)"},
		{"0.0.0.0/0",
			`{"version":1,"ifaces":[` + clone("carp0", 1, "lanpasswd", "0.0.0.0/0") + `]}`,
			path + ": ifaces[0].vhids[0].addrs[0]: 0.0.0.0/0 is the unspecified address"},
		{"5000-byte key",
			`{"version":1,"ifaces":[` + clone("carp0", 1, strings.Repeat("k", 5000), "10.0.0.1/24") + `]}`,
			path + ": ifaces[0].vhids[0].key: 5000 bytes, longer than 255"},
		{"name Linux cannot hold",
			`{"version":1,"ifaces":[` + good("carp99999999999999999999") + `]}`,
			path + ": ifaces[0].name: interface name of 24 bytes, longer than 15"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := os.WriteFile(path, []byte(c.json), 0o600); err != nil {
				t.Fatal(err)
			}
			errOut, code := fw.runCarpdOnce()
			if code != 1 || !strings.Contains(errOut, "carpd: "+c.want+"\n") {
				t.Fatalf("carpd: exit %d, stderr:\n%s\nwant exit 1 and carpd: %s", code, errOut, c.want)
			}
			if strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
				t.Errorf("more than the one refusal line:\n%s", errOut)
			}
			if strings.Contains(errOut, "lanpasswd") || strings.Contains(errOut, "kkkk") {
				t.Errorf("the refusal shows a key:\n%s", errOut)
			}
			if got := linkNames(t, lab, "fw"); !slices.Equal(got, before) {
				t.Errorf("links %v, want %v as before", got, before)
			}
			if got := arp(); got != arpBefore {
				t.Errorf("em0 arp_ignore/arp_announce %q, want %q", got, arpBefore)
			}
			if _, err := os.Stat(filepath.Join(fw.stateDir, "kernel.json")); !os.IsNotExist(err) {
				t.Errorf("kernel.json written: %v", err)
			}
		})
	}

	// A kernel.json that would make carpd write elsewhere under /proc/sys
	// when it restores is refused the same way.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	kpath := filepath.Join(fw.stateDir, "kernel.json")
	if err := os.WriteFile(kpath, []byte(`{"net/ipv4/ip_forward":"1"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	errOut, code := fw.runCarpdOnce()
	want := "carpd: " + kpath + `: "net/ipv4/ip_forward": not a setting carpd changes`
	if code != 1 || !strings.Contains(errOut, want) {
		t.Fatalf("kernel.json: exit %d, stderr:\n%s\nwant exit 1 and %s", code, errOut, want)
	}
	if err := os.Remove(kpath); err != nil {
		t.Fatal(err)
	}

	// An ifmap file with a bad line is refused naming file:line.
	ifmap := filepath.Join(lab.Dir, "ifmap")
	for _, c := range []struct{ text, want string }{
		{"# BSD=Linux\nem0=eth0\nem1=averyveryverylongname\n", ifmap + ":3: Linux name: interface name of 21 bytes, longer than 15"},
		{"em0=eth0\nem0=eth1\n", ifmap + ":2: em0 is already mapped on line 1"},
	} {
		if err := os.WriteFile(ifmap, []byte(c.text), 0o644); err != nil {
			t.Fatal(err)
		}
		errOut, code := fw.runCarpdOnce("--ifmap-file", ifmap)
		if code != 1 || !strings.Contains(errOut, "carpd: "+c.want+"\n") {
			t.Fatalf("ifmap %q: exit %d, stderr:\n%s\nwant exit 1 and carpd: %s", c.text, code, errOut, c.want)
		}
	}
	if got := linkNames(t, lab, "fw"); !slices.Equal(got, before) {
		t.Errorf("links %v, want %v as before", got, before)
	}
}

// At the command line: a clone name Linux cannot hold and a mask it cannot
// hold are refused in BSD's words, and nothing of the line is applied.
func TestCommandLineRefusesLongNamesAndNonContiguousMasks(t *testing.T) {
	lab := netlab.New(t, bin)
	lab.Bridge("lan")
	fw := newHost(t, lab, "fw")
	lab.Plug("fw", "em0", "lan", "10.0.0.2/24")
	fw.startCarpd(t)
	fw.mustSh(t, "ifconfig carp0 create; ifconfig carp0 vhid 1 pass lanpasswd carpdev em0 10.0.0.1/24")
	links := linkNames(t, lab, "fw")
	status := fw.mustSh(t, "ifconfig -k carp0")
	saved, err := os.ReadFile(filepath.Join(fw.stateDir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ cmd, want string }{
		{"ifconfig carp99999999999999999999 create", "ifconfig: carp99999999999999999999: cloning name too long\n"},
		{"ifconfig carp0 vhid 1 pass x 10.0.0.1 netmask 255.0.255.0", "ifconfig: 255.0.255.0: bad value\n"},
		{"ifconfig carp0 vhid 1 pass x 10.0.0.1 netmask 0xff00ff00", "ifconfig: 0xff00ff00: bad value\n"},
		{"ifconfig em0 inet 10.0.0.7 netmask 255.255.0.255 alias", "ifconfig: 255.255.0.255: bad value\n"},
		{"ifconfig carp0 advskew 9 0.0.0.0/0", "ifconfig: ioctl (SIOCAIFADDR): Invalid argument\n"},
	} {
		out, errOut, code := fw.sh(c.cmd)
		if code != 1 || errOut != c.want || out != "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit 1, %q", c.cmd, code, out, errOut, c.want)
		}
	}
	if got := linkNames(t, lab, "fw"); !slices.Equal(got, links) {
		t.Errorf("links %v, want %v as before", got, links)
	}
	if got := fw.mustSh(t, "ifconfig -k carp0"); got != status {
		t.Errorf("status changed:\n%s\nwant:\n%s", got, status)
	}
	if lab.HasAddr("fw", "10.0.0.7") {
		t.Error("10.0.0.7 was added to em0")
	}
	now, err := os.ReadFile(filepath.Join(fw.stateDir, "config.json"))
	if err != nil || string(now) != string(saved) {
		t.Errorf("config.json changed:\n%s\nwas:\n%s (%v)", now, saved, err)
	}
	if out, _, _ := fw.sh("ifconfig -g carp"); out != "carp0\n" {
		t.Errorf("ifconfig -g carp = %q", out)
	}
}
