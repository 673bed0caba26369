package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bsdcarp/bsdcarp/carp"
	"github.com/bsdcarp/bsdcarp/internal/netlab"
)

// vhidState returns the state word of vhid on the `carp:` lines of
// `ifconfig iface` ("" when there is none).
func (h *host) vhidState(iface string, vhid int) string {
	out, _, _ := h.sh("ifconfig " + iface)
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[0] == "carp:" {
			for i := 2; i+1 < len(f); i++ {
				if f[i] == "vhid" && f[i+1] == fmt.Sprint(vhid) {
					return f[1]
				}
			}
		}
	}
	return ""
}

func (h *host) waitVHID(t testing.TB, iface string, vhid int, want string, timeout time.Duration) {
	t.Helper()
	if _, ok := netlab.Eventually(timeout, func() bool { return h.vhidState(iface, vhid) == want }); !ok {
		out, _, _ := h.sh("ifconfig " + iface)
		t.Fatalf("%s: vhid %d on %s not %s after %v:\n%s\ncarpd log:\n%s", h.name, vhid, iface, want, timeout, out, h.log())
	}
}

// rcCarp runs scripts/rc.carp on the host with one of the seed's rc.conf
// files, as the boot path does.
func (h *host) rcCarp(t testing.TB, rcconf string) {
	t.Helper()
	script, _ := filepath.Abs(filepath.Join("..", "..", "scripts", "rc.carp"))
	conf, _ := filepath.Abs(filepath.Join("..", "..", "testdata", "rc", rcconf))
	out, errOut, code := h.lab.Exec(h.name, h.env(), "sh", script, "-w", "10", "-f", conf)
	if code != 0 {
		t.Fatalf("%s: rc.carp -f %s exited %d:\n%s%s", h.name, rcconf, code, out, errOut)
	}
}

// TestHandbook3110SeedChapter runs the FreeBSD Handbook's CARP chapter
// (31.10) verbatim: hosta and hostb each MASTER of one address, hostc the
// backup of both, each host configured only by its rc.conf through
// scripts/rc.carp, in the FreeBSD 10+ style (vhids on em0 aliases) and the
// FreeBSD <= 9 style (carp0/carp1 clones on fxp0), each also on hosts whose
// link is called eth0 and mapped to the runbook's name with --ifmap.
func TestHandbook3110SeedChapter(t *testing.T) {
	for _, c := range []struct {
		name   string
		style  string // rc.conf set: handbook10 or handbook9
		dev    string // the runbook's interface name
		mapped bool   // the Linux link is eth0, mapped to dev
	}{
		{"FreeBSD 10+ style", "handbook10", "em0", false},
		{"FreeBSD 10+ style on eth0 mapped to em0", "handbook10", "em0", true},
		{"FreeBSD 9 style", "handbook9", "fxp0", false},
		{"FreeBSD 9 style on eth0 mapped to fxp0", "handbook9", "fxp0", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			lab := netlab.New(t, bin)
			lab.Bridge("lan")
			link := c.dev
			var flags []string
			if c.mapped {
				link = "eth0"
				flags = []string{"--ifmap", c.dev + "=eth0"}
			}
			hosts := map[string]*host{}
			for _, n := range []string{"hosta", "hostb", "hostc"} {
				h := newHost(t, lab, n)
				lab.Plug(n, link, "lan") // no address: rc.conf gives it
				h.startCarpd(t, flags...)
				hosts[n] = h
			}
			a, b, hc := hosts["hosta"], hosts["hostb"], hosts["hostc"]
			for _, n := range []string{"hosta", "hostb", "hostc"} {
				hosts[n].rcCarp(t, c.style+"-"+n+".conf")
			}
			// Where each vhid shows: on the physical interface (10+), or on
			// the clones (<= 9: carp0 on hosta/hostb; carp0 and carp1 on hostc).
			iface := func(h *host, vhid int) string {
				if c.style == "handbook10" {
					return c.dev
				}
				if h == hc && vhid == 2 {
					return "carp1"
				}
				return "carp0"
			}
			down := carp.MasterDown(1, 0) + 2*time.Second
			a.waitVHID(t, iface(a, 1), 1, "MASTER", down)
			b.waitVHID(t, iface(b, 2), 2, "MASTER", down)
			hc.waitVHID(t, iface(hc, 1), 1, "BACKUP", time.Second)
			hc.waitVHID(t, iface(hc, 2), 2, "BACKUP", time.Second)
			if !lab.HasAddr("hosta", "192.168.1.50") || !lab.HasAddr("hostb", "192.168.1.51") || lab.HasAddr("hostc", "192.168.1.50") || lab.HasAddr("hostc", "192.168.1.51") {
				t.Fatal("shared addresses are not where the states say")
			}
			// What the admin sees: FreeBSD 14's physical interface with the
			// vhid suffix and carp lines, or FreeBSD 9's carp clone.
			if c.style == "handbook10" {
				out := hc.mustSh(t, "ifconfig "+c.dev)
				t.Logf("hostc# ifconfig %s\n%s", c.dev, out)
				for _, want := range []string{
					c.dev + ": flags=", "\tinet 192.168.1.5 netmask 0xffffff00 broadcast 192.168.1.255\n",
					"\tinet 192.168.1.50 netmask 0xffffffff broadcast 192.168.1.50 vhid 1\n",
					"\tinet 192.168.1.51 netmask 0xffffffff broadcast 192.168.1.51 vhid 2\n",
					"\tcarp: BACKUP vhid 1 advbase 1 advskew 100\n", "\tcarp: BACKUP vhid 2 advbase 1 advskew 100\n",
					"\tstatus: active\n",
				} {
					if !strings.Contains(out, want) {
						t.Errorf("ifconfig %s on hostc lacks %q", c.dev, want)
					}
				}
			} else {
				out := a.mustSh(t, "ifconfig carp0")
				t.Logf("hosta# ifconfig carp0\n%s", out)
				want := "carp0: flags=49<UP,LOOPBACK,RUNNING> metric 0 mtu 1500\n\tinet 192.168.1.50 netmask 0xffffff00 \n\tcarp: MASTER vhid 1 advbase 1 advskew 0\n"
				if out != want {
					t.Errorf("ifconfig carp0 on hosta:\n%q\nwant FreeBSD 9's\n%q", out, want)
				}
			}
			// Running the boot script again changes nothing.
			before := hc.mustSh(t, "ifconfig -a")
			hc.rcCarp(t, c.style+"-hostc.conf")
			if after := hc.mustSh(t, "ifconfig -a"); after != before {
				t.Errorf("a second rc.carp run changed hostc:\n%s\nbecame\n%s", before, after)
			}
			// Every output uses the admin's name, mapped or not.
			if out := hc.mustSh(t, "ifconfig -l"); !strings.Contains(" "+out, " "+c.dev+" ") && !strings.Contains(" "+out, " "+c.dev+"\n") {
				t.Errorf("ifconfig -l on hostc = %q, want %s in it", out, c.dev)
			}

			// hosta's engine dies: hostc takes 192.168.1.50 within the
			// master-down interval of its advskew 100.
			start := time.Now()
			_ = a.carpd.Kill(syscall.SIGKILL)
			hc.waitVHID(t, iface(hc, 1), 1, "MASTER", carp.MasterDown(1, 100)+2*time.Second)
			took := hc.transitionAt(t, "1@"+c.dev, "MASTER").Sub(start)
			t.Logf("hostc MASTER of vhid 1 %v after hosta's engine was killed", took)
			if limit := carp.MasterDown(1, 100) + 100*time.Millisecond; took > limit {
				t.Errorf("takeover took %v, over %v", took, limit)
			}
			if _, ok := netlab.Eventually(2*time.Second, func() bool { return lab.HasAddr("hostc", "192.168.1.50") && !lab.HasAddr("hosta", "192.168.1.50") }); !ok {
				t.Fatal("192.168.1.50 did not move from hosta's kernel to hostc's")
			}
			if got := b.vhidState(iface(b, 2), 2); got != "MASTER" {
				t.Errorf("hostb's vhid 2 = %s while hosta failed", got)
			}

			// hosta comes back; preemption is off: hostc keeps the address.
			a.startCarpd(t, flags...)
			a.waitVHID(t, iface(a, 1), 1, "BACKUP", 2*time.Second)
			if _, flipped := netlab.Eventually(carp.MasterDown(1, 0)+time.Second, func() bool {
				return hc.vhidState(iface(hc, 1), 1) != "MASTER" || a.vhidState(iface(a, 1), 1) != "BACKUP"
			}); flipped {
				t.Fatalf("without preemption hosta took 192.168.1.50 back:\nhosta %s, hostc %s", a.vhidState(iface(a, 1), 1), hc.vhidState(iface(hc, 1), 1))
			}

			// The handbook's command to give it back.
			giveBack := "ifconfig " + c.dev + " vhid 1 state backup"
			if c.style == "handbook9" {
				giveBack = "ifconfig carp0 down && ifconfig carp0 up"
			}
			hc.mustSh(t, giveBack)
			a.waitVHID(t, iface(a, 1), 1, "MASTER", carp.MasterDown(1, 0)+2*time.Second)
			hc.waitVHID(t, iface(hc, 1), 1, "BACKUP", time.Second)
			if _, ok := netlab.Eventually(2*time.Second, func() bool { return lab.HasAddr("hosta", "192.168.1.50") && !lab.HasAddr("hostc", "192.168.1.50") }); !ok {
				t.Fatal("192.168.1.50 did not go back to hosta")
			}
		})
	}
}
