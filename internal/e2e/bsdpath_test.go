package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bsdcarp/bsdcarp/carp"
	"github.com/bsdcarp/bsdcarp/internal/netlab"
)

// TestBSDPathStaysOutOfTheWay puts bin/bsd first on PATH, as the README
// says for runbooks, and checks that the host's own commands keep working
// (sysctl of Linux names, ifconfig of plain interfaces with carpd stopped),
// that the chapters' kldload / kldstat lines paste unchanged, and that
// "service netif restart" and "/etc/rc.d/netif restart" re-apply rc.conf,
// removing a vhid that rc.conf no longer lists without disturbing the
// others.
func TestBSDPathStaysOutOfTheWay(t *testing.T) {
	lab := netlab.New(t, bin)
	lab.Bridge("lan")
	h := newHost(t, lab, "fw")
	lab.Plug("fw", "em0", "lan") // no address: rc.conf gives it

	ipForward := func() string {
		out, _, code := h.sh("cat /proc/sys/net/ipv4/ip_forward")
		if code != 0 {
			t.Fatalf("reading ip_forward in the namespace failed")
		}
		return strings.TrimSpace(out)
	}
	expect := func(script, wantOut string, wantCode int) string {
		t.Helper()
		out, errOut, code := h.sh(script)
		if code != wantCode || (wantOut != "" && out != wantOut) {
			t.Errorf("fw# %s\nexit %d, stdout:\n%s\nstderr:\n%s\nwant exit %d, stdout:\n%s", script, code, out, errOut, wantCode, wantOut)
		}
		return out + errOut
	}

	// carpd is not running yet: the host's commands work, carp's say why not.
	loDown := expect("ifconfig lo", "", 0)
	if !strings.HasPrefix(loDown, "lo: flags=") || !strings.Contains(loDown, "\tinet 127.0.0.1 netmask 0xff000000\n") {
		t.Errorf("ifconfig lo without carpd:\n%s", loDown)
	}
	expect("sysctl net.ipv4.ip_forward", "net.ipv4.ip_forward = "+ipForward()+"\n", 0)
	if msg := expect("kldload carp", "", 1); !strings.Contains(msg, "carpd is not running") {
		t.Errorf("kldload carp without carpd says %q", msg)
	}
	if msg := expect("ifconfig em0 mtu 1400", "", 1); !strings.Contains(msg, "carpd is not running") || !strings.Contains(msg, "em0: not changed") {
		t.Errorf("ifconfig em0 mtu 1400 without carpd says %q", msg)
	}

	h.startCarpd(t)
	// The chapters' lines, verbatim.
	expect("kldload carp", "", 0)
	expect("kldload if_carp", "", 0)
	if out := expect("kldstat", "", 0); !strings.Contains(out, " carp.ko\n") || !strings.HasPrefix(out, "Id Refs Address") {
		t.Errorf("kldstat:\n%s", out)
	}
	expect("kldstat -q -m carp || kldload carp", "", 0)

	// sysctl: the host's names are the host's, carp's are carpd's.
	expect("sysctl net.ipv4.ip_forward", "net.ipv4.ip_forward = "+ipForward()+"\n", 0)
	expect("sysctl -w net.ipv4.ip_forward=1", "net.ipv4.ip_forward = 1\n", 0)
	if got := ipForward(); got != "1" {
		t.Errorf("after sysctl -w net.ipv4.ip_forward=1 the namespace's ip_forward is %s", got)
	}
	expect("sysctl net.inet.carp.preempt=1 net.ipv4.ip_forward=0",
		"net.inet.carp.preempt: 0 -> 1\nnet.ipv4.ip_forward = 0\n", 0)
	all := expect("sysctl -a", "", 0)
	for _, want := range []string{"\nnet.ipv4.ip_forward = 0\n", "\nnet.inet.carp.preempt: 1\n"} {
		if !strings.Contains(all, want) {
			t.Errorf("sysctl -a lacks %q", want)
		}
	}
	if msg := expect("sysctl net.inet.ip.forwarding", "", 1); !strings.Contains(msg, "on Linux it is net.ipv4.ip_forward") {
		t.Errorf("sysctl net.inet.ip.forwarding says %q", msg)
	}
	// ifconfig lo through carpd prints what the kernel reading printed.
	expect("ifconfig lo", loDown, 0)

	// rc.conf, applied by "service netif restart" (RC_CARP_ARGS points
	// rc.carp at the lab's file instead of /etc/rc.conf).
	rcconf := filepath.Join(lab.Dir, "rc.conf")
	write := func(s string) {
		if err := os.WriteFile(rcconf, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const base = `ifconfig_em0="inet 192.168.1.3 netmask 255.255.255.0"
ifconfig_em0_alias0="vhid 1 pass testpass alias 192.168.1.50/32"
`
	write(base + `ifconfig_em0_alias1="vhid 2 pass testpass alias 192.168.1.51/32"
cloned_interfaces="carp0"
ifconfig_carp0="vhid 3 pass testpass 192.168.1.60/24"
`)
	rc := "RC_CARP_ARGS='-f " + rcconf + "' "
	expect(rc+"service netif restart", "", 0)
	h.waitVHID(t, "em0", 1, "MASTER", carp.MasterDown(1, 0)+2*time.Second)
	h.waitVHID(t, "em0", 2, "MASTER", time.Second)
	h.waitVHID(t, "carp0", 3, "MASTER", time.Second)

	// vhid 2 and carp0 leave rc.conf: /etc/rc.d/netif restart (here a link
	// in the lab, as make install-rcd makes) removes them; vhid 1 stays
	// MASTER throughout.
	write(base)
	rcd := filepath.Join(lab.Dir, "etc", "rc.d")
	if err := os.MkdirAll(rcd, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(bin, "carpctl-compat"), filepath.Join(rcd, "netif")); err != nil {
		t.Fatal(err)
	}
	out := expect(rc+rcd+"/netif restart", "", 0)
	t.Logf("fw# /etc/rc.d/netif restart\n%s", out)
	em0 := expect("ifconfig em0", "", 0)
	if strings.Contains(em0, "vhid 2") || !strings.Contains(em0, "\tcarp: MASTER vhid 1 ") {
		t.Errorf("after netif restart without vhid 2:\n%s", em0)
	}
	if msg := expect("ifconfig carp0", "", 1); !strings.Contains(msg, "interface carp0 does not exist") {
		t.Errorf("carp0 after netif restart without it: %q", msg)
	}
	if lab.HasAddr("fw", "192.168.1.51") || lab.HasAddr("fw", "192.168.1.60") || !lab.HasAddr("fw", "192.168.1.50") {
		t.Errorf("kernel addresses after netif restart: %v", lab.Addrs("fw", "em0"))
	}
	if n := strings.Count(h.log(), "carp: 1@em0: BACKUP -> MASTER"); n != 1 {
		t.Errorf("vhid 1 became MASTER %d times (want once: netif restart must not disturb it):\n%s", n, h.log())
	}
	// Nothing left to remove: a second restart prints no removal.
	if out := expect(rc+"service netif restart", "", 0); strings.Contains(out, "not in rc.conf") {
		t.Errorf("second netif restart removed something:\n%s", out)
	}
	expect("service routing restart", "", 0)

	// carpd stops: lo and em0 still show, from the kernel.
	if err := h.carpd.Kill(syscall.SIGTERM); err != nil {
		t.Fatalf("carpd on SIGTERM: %v\n%s", err, h.log())
	}
	expect("ifconfig lo", loDown, 0)
	if out := expect("ifconfig em0", "", 0); !strings.HasPrefix(out, "em0: flags=") || !strings.Contains(out, "\tinet 192.168.1.3 netmask 0xffffff00 broadcast 192.168.1.255\n") {
		t.Errorf("ifconfig em0 with carpd stopped:\n%s", out)
	}
	if out := expect("kldstat", "", 0); strings.Contains(out, " carp.ko\n") {
		t.Errorf("kldstat lists carp.ko with carpd stopped:\n%s", out)
	}
	expect("sysctl -n net.ipv4.ip_forward", "0\n", 0)
}
