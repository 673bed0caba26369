package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bsdcarp/bsdcarp/carp"
	"github.com/bsdcarp/bsdcarp/internal/netlab"
)

// requireUcarp fails in CI (which installs it) and skips elsewhere.
func requireUcarp(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("ucarp")
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatal("ucarp is not installed (CI must run the interop tests: apt-get install ucarp)")
	}
	t.Skip("ucarp is not installed (apt-get install ucarp)")
	return ""
}

// ucarpPeer runs a real ucarp on host with the same vhid, password and
// address as our carp0; its scripts add and remove the address like ours.
func startUcarp(t testing.TB, lab *netlab.Lab, hostName, src string, advskew int) *netlab.Proc {
	t.Helper()
	ucarp := requireUcarp(t)
	up := filepath.Join(lab.Dir, hostName+"-up.sh")
	down := filepath.Join(lab.Dir, hostName+"-down.sh")
	if err := os.WriteFile(up, []byte("#!/bin/sh\nip addr add \"$2\"/24 dev \"$1\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(down, []byte("#!/bin/sh\nip addr del \"$2\"/24 dev \"$1\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return lab.Start(hostName, hostName+"-ucarp", nil, "stdbuf", "-oL", "-eL", ucarp,
		"-i", "em0", "-s", src, "-v", "1", "-p", "lanpasswd", "-a", "172.16.0.100",
		"-b", "1", "-k", strconv.Itoa(advskew), "-u", up, "-d", down, "-z")
}

// badauth returns our carpstats badauth counter, from the netstat-style
// stats, after checking that packets from the peer did arrive (otherwise
// zero bad-auth packets would prove nothing).
func badauth(t testing.TB, h *host) string {
	st, _, _ := h.lab.Exec(h.name, h.env(), "carpctl-sysctl", "--stats")
	received, bad := "", ""
	for _, line := range strings.Split(st, "\n") {
		switch {
		case strings.Contains(line, "received (IPv4)"):
			received = strings.Fields(line)[0]
		case strings.Contains(line, "bad authentication"):
			bad = strings.Fields(line)[0]
		}
	}
	if received == "" || bad == "" {
		t.Fatalf("counters missing in carpctl-sysctl --stats:\n%s", st)
	}
	if received == "0" {
		t.Fatalf("no CARP packet received from the ucarp peer:\n%s", st)
	}
	return bad
}

func newInteropLab(t *testing.T) (*netlab.Lab, *host) {
	requireUcarp(t)
	lab := netlab.New(t, bin)
	lab.Bridge("lan")
	ours := newHost(t, lab, "ours")
	lab.Plug("ours", "em0", "lan", "172.16.0.1/24")
	lab.NewNS("peer")
	lab.Plug("peer", "em0", "lan", "172.16.0.2/24")
	ours.startCarpd(t)
	return lab, ours
}

func TestUcarpInteropOursBackup(t *testing.T) {
	lab, ours := newInteropLab(t)
	peer := startUcarp(t, lab, "peer", "172.16.0.2", 0)
	if _, ok := netlab.Eventually(10*time.Second, func() bool { return lab.HasAddr("peer", "172.16.0.100") }); !ok {
		t.Fatalf("ucarp did not become MASTER alone:\n%s", peer.Output())
	}
	ours.mustSh(t, "ifconfig carp0 create; ifconfig carp0 vhid 1 pass lanpasswd carpdev em0 advskew 100 172.16.0.100 255.255.255.0")
	// Well past our master-down interval: we must stay BACKUP under ucarp.
	ours.waitState(t, "carp0", "BACKUP", time.Second)
	deadline := time.Now().Add(carp.MasterDown(1, 100) + time.Second)
	for time.Now().Before(deadline) {
		if s := ours.state("carp0"); s != "BACKUP" {
			t.Fatalf("ours became %s under a ucarp MASTER:\n%s\nucarp:\n%s", s, ours.log(), peer.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := badauth(t, ours); n != "0" {
		t.Errorf("ours counted %s bad-auth packets from ucarp", n)
	}
	start := time.Now()
	_ = peer.Kill(syscall.SIGKILL)
	d := ours.waitState(t, "carp0", "MASTER", carp.MasterDown(1, 100)+2*time.Second)
	t.Logf("ours MASTER %v after kill -9 of the ucarp master (%v polling)", time.Since(start), d)
	if strings.Contains(peer.Output(), "Bad digest") {
		t.Errorf("ucarp rejected our adverts:\n%s", peer.Output())
	}
}

func TestUcarpInteropOursMaster(t *testing.T) {
	lab, ours := newInteropLab(t)
	ours.mustSh(t, "ifconfig carp0 create; ifconfig carp0 vhid 1 pass lanpasswd carpdev em0 172.16.0.100 255.255.255.0")
	ours.waitState(t, "carp0", "MASTER", carp.MasterDown(1, 0)+2*time.Second)
	peer := startUcarp(t, lab, "peer", "172.16.0.2", 100)
	// ucarp must stay BACKUP: it never adds the address.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if lab.HasAddr("peer", "172.16.0.100") {
			t.Fatalf("ucarp took the address from our MASTER:\n%s", peer.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := ours.state("carp0"); got != "MASTER" {
		t.Fatalf("ours is %s next to a ucarp backup", got)
	}
	// ucarp stayed BACKUP through several of its master-down intervals, so
	// it accepted our HMAC; it must not have logged a bad one either. (A
	// backup sends nothing, so our own counters have nothing to judge here;
	// TestUcarpInteropOursBackup checks them against a ucarp master.)
	if strings.Contains(peer.Output(), "Bad digest") {
		t.Errorf("ucarp rejected our adverts:\n%s", peer.Output())
	}
	start := time.Now()
	_ = ours.carpd.Kill(syscall.SIGKILL)
	d, ok := netlab.Eventually(10*time.Second, func() bool { return lab.HasAddr("peer", "172.16.0.100") })
	if !ok {
		t.Fatalf("ucarp did not take over after kill -9 of our MASTER:\n%s", peer.Output())
	}
	t.Logf("ucarp MASTER %v after kill -9 of ours (%v polling)", time.Since(start), d)
	if lab.HasAddr("ours", "172.16.0.100") {
		t.Error("our dead engine's address is still in its kernel")
	}
}
