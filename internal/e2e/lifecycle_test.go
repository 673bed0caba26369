package e2e

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bsdcarp/bsdcarp/carp"
	"github.com/bsdcarp/bsdcarp/internal/netlab"
)

// The lifecycle of carpd as an operator meets it: a second engine started
// by mistake, kill -HUP, SIGTERM, a failure after start, and reboots.

const vipMAC = "00:00:5e:00:01:01" // vhid 1

// procSys reads a /proc/sys value inside host's namespace.
func procSys(t *testing.T, lab *netlab.Lab, host, path string) string {
	t.Helper()
	out, errOut, code := lab.Exec(host, nil, "cat", "/proc/sys/"+path)
	if code != 0 {
		t.Fatalf("%s: cat /proc/sys/%s: %s", host, path, errOut)
	}
	return strings.TrimSpace(out)
}

// arpReplies broadcasts one ARP request for vip from host's ifname (sender
// address src) and returns the sender MAC of every reply for vip, in arrival
// order: it waits up to 5 s for the first reply, then window more for any
// other. Every reply is counted, not only
// the one a neighbour table keeps: a parent that answers with its own MAC
// besides the macvlan is caught whichever answer comes first.
func arpReplies(t *testing.T, lab *netlab.Lab, host, ifname, src, vip string, window time.Duration) []string {
	t.Helper()
	fd, mac, err := packetSocketIn(lab.NS(host), ifname)
	if err != nil {
		t.Fatalf("%s: ARP socket on %s: %v", host, ifname, err)
	}
	defer unix.Close(fd)
	srcIP, dstIP := netip.MustParseAddr(src).As4(), netip.MustParseAddr(vip).As4()
	frame := make([]byte, 0, 42)
	frame = append(frame, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	frame = append(frame, mac...)
	frame = append(frame, 0x08, 0x06)                // ARP
	frame = append(frame, 0, 1, 0x08, 0, 6, 4, 0, 1) // Ethernet, IPv4, request
	frame = append(frame, mac...)
	frame = append(frame, srcIP[:]...)
	frame = append(frame, 0, 0, 0, 0, 0, 0)
	frame = append(frame, dstIP[:]...)
	if _, err := unix.Write(fd, frame); err != nil {
		t.Fatalf("%s: send ARP request: %v", host, err)
	}
	var macs []string
	buf := make([]byte, 1500)
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return macs
		}
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if n, err := unix.Poll(pfd, int(left/time.Millisecond)+1); err != nil && err != unix.EINTR {
			t.Fatalf("poll: %v", err)
		} else if n <= 0 {
			continue
		}
		n, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
		if err != nil {
			continue
		}
		b := buf[:n]
		if n < 42 || binary.BigEndian.Uint16(b[12:14]) != 0x0806 || binary.BigEndian.Uint16(b[20:22]) != 2 ||
			!bytes.Equal(b[28:32], dstIP[:]) {
			continue
		}
		if len(macs) == 0 {
			deadline = time.Now().Add(window)
		}
		macs = append(macs, net.HardwareAddr(b[22:28]).String())
	}
}

// packetSocketIn opens an AF_PACKET socket for ARP bound to ifname in the
// named network namespace and returns it with the link's MAC. The socket
// stays in that namespace after the thread switches back.
func packetSocketIn(ns, ifname string) (int, net.HardwareAddr, error) {
	type result struct {
		fd  int
		mac net.HardwareAddr
		err error
	}
	res := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			res <- result{err: err}
			return
		}
		defer unix.Close(orig)
		target, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			res <- result{err: err}
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			res <- result{err: fmt.Errorf("setns %s: %w", ns, err)}
			return
		}
		r := func() result {
			ifi, err := net.InterfaceByName(ifname)
			if err != nil {
				return result{err: err}
			}
			proto := int(htons(unix.ETH_P_ARP))
			fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
			if err != nil {
				return result{err: err}
			}
			if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: ifi.Index}); err != nil {
				unix.Close(fd)
				return result{err: err}
			}
			return result{fd: fd, mac: ifi.HardwareAddr}
		}()
		// A thread that cannot go back stays locked and dies with the
		// goroutine.
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err == nil {
			runtime.UnlockOSThread()
		}
		res <- r
	}()
	r := <-res
	return r.fd, r.mac, r.err
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// onlyVirtualMAC checks that the VIP answers ARP from the client with the
// virtual MAC, and only with it, and that the client's neighbour entry after
// a ping is that MAC.
func onlyVirtualMAC(t *testing.T, lab *netlab.Lab) {
	t.Helper()
	macs := arpReplies(t, lab, "client", "eth0", "172.16.0.10", "172.16.0.100", 500*time.Millisecond)
	if len(macs) == 0 || slices.ContainsFunc(macs, func(m string) bool { return m != vipMAC }) {
		t.Errorf("ARP replies for 172.16.0.100 came from %v, want only %s", macs, vipMAC)
	}
	lab.Exec("client", nil, "ip", "neigh", "flush", "dev", "eth0")
	if _, _, code := lab.Exec("client", nil, "ping", "-n", "-q", "-c", "1", "-W", "2", "172.16.0.100"); code != 0 {
		t.Errorf("client cannot ping 172.16.0.100")
	}
	out, _, _ := lab.Exec("client", nil, "ip", "neigh", "show", "172.16.0.100", "dev", "eth0")
	if !strings.Contains(out, "lladdr "+vipMAC) {
		t.Errorf("client's neighbour entry for 172.16.0.100: %q, want lladdr %s", out, vipMAC)
	}
}

// firstEngine is fw1 of the 28.5 lab running carpd, MASTER of vhid 1 on em0
// with 172.16.0.100; extra are carpd's options.
func firstEngine(t *testing.T, extra ...string) (*netlab.Lab, *host) {
	t.Helper()
	lab := netlab.New(t, bin)
	lab.Handbook285()
	fw1 := labHost(lab, "fw1")
	fw1.startCarpd(t, extra...)
	fw1.mustSh(t, "ifconfig carp0 create; ifconfig carp0 vhid 1 pass lanpasswd carpdev em0 172.16.0.100 255.255.255.0")
	fw1.waitState(t, "carp0", "MASTER", carp.MasterDown(1, 0)+3*time.Second)
	return lab, fw1
}

// untouched checks that fw1's engine still has everything it set up.
func untouched(t *testing.T, lab *netlab.Lab, fw1 *host) {
	t.Helper()
	if fw1.carpd.Exited() {
		t.Fatalf("fw1's carpd ended:\n%s", fw1.log())
	}
	if v := procSys(t, lab, "fw1", "net/ipv4/conf/em0/arp_ignore"); v != "1" {
		t.Errorf("em0 arp_ignore = %s, want 1 as the first engine set it", v)
	}
	if v := procSys(t, lab, "fw1", "net/ipv4/conf/em0/arp_announce"); v != "2" {
		t.Errorf("em0 arp_announce = %s, want 2 as the first engine set it", v)
	}
	if got := lab.Addrs("fw1", "carp0"); len(got) != 1 || got[0] != "172.16.0.100/24" {
		t.Errorf("carp0 addresses = %v, want [172.16.0.100/24]", got)
	}
	if got := fw1.state("carp0"); got != "MASTER" {
		t.Errorf("carp0 = %q, want MASTER", got)
	}
	onlyVirtualMAC(t, lab)
}

// A second carpd, whichever of the first one's state directory, socket or
// network namespace it shares, exits 1 naming what is taken, and the first
// engine keeps its links, addresses, ARP settings and MASTER state: the
// parent never answers ARP for the shared address with its own MAC.
func TestSecondCarpdLeavesTheFirstUntouched(t *testing.T) {
	lab, fw1 := firstEngine(t)
	// The probe sees the failure this test is about: with the parent's
	// arp_ignore put back to 0 (what a second engine restoring "its"
	// originals did), em0 answers for the shared address with its own MAC.
	lab.Exec("fw1", nil, "sh", "-c", "echo 0 >/proc/sys/net/ipv4/conf/em0/arp_ignore")
	macs := arpReplies(t, lab, "client", "eth0", "172.16.0.10", "172.16.0.100", 500*time.Millisecond)
	if !slices.ContainsFunc(macs, func(m string) bool { return m != vipMAC }) {
		t.Fatalf("with arp_ignore 0 on em0 the probe saw only %v: it could not catch the failure", macs)
	}
	lab.Exec("fw1", nil, "sh", "-c", "echo 1 >/proc/sys/net/ipv4/conf/em0/arp_ignore")
	untouched(t, lab, fw1)

	pid := strconv.Itoa(fw1.carpd.Pid())
	other := filepath.Join(lab.Dir, "second.state")
	ino, _, _ := lab.Exec("fw1", nil, "stat", "-L", "-c", "%i", "/proc/self/ns/net")
	for _, tt := range []struct {
		name       string
		sock, dir  string
		wantStderr string
	}{
		{"same socket and state directory", fw1.sock, fw1.stateDir,
			"carpd: another carpd (pid " + pid + ") uses state directory " + fw1.stateDir},
		{"same socket, another state directory", fw1.sock, other,
			"carpd: another carpd (pid " + pid + ") uses control socket " + fw1.sock},
		{"another socket and state directory", filepath.Join(lab.Dir, "second.sock"), other,
			"carpd: another carpd (pid " + pid + ") uses network namespace net:[" + strings.TrimSpace(ino) + "]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := []string{"CARPD_SOCKET=" + tt.sock, "CARPD_STATE_DIR=" + tt.dir}
			// timeout(1): a carpd that did not refuse would run forever.
			out, errOut, code := lab.Exec("fw1", env, "timeout", "20", filepath.Join(bin, "carpd"))
			lines := strings.Split(strings.TrimSpace(errOut), "\n")
			if code != 1 || len(lines) != 1 || !strings.HasSuffix(lines[0], tt.wantStderr) {
				t.Errorf("second carpd exited %d with\n%s%s\nwant status 1 and one line ending %q", code, out, errOut, tt.wantStderr)
			}
			untouched(t, lab, fw1)
			if _, err := os.Stat(filepath.Join(tt.dir, "kernel.json")); tt.dir == other && !os.IsNotExist(err) {
				t.Errorf("the refused engine recorded kernel settings: %v", err)
			}
		})
	}
	if log := fw1.log(); strings.Contains(log, "stopping") || strings.Count(log, " -> ") != 2 {
		t.Errorf("fw1's engine logged more than INIT -> BACKUP -> MASTER:\n%s", log)
	}
}

// kill -HUP reloads the interface map: the vhid stays MASTER with its
// address and macvlan; a new name is picked up; a bad file, or a change for
// the name the vhid uses, is refused and logged, and the old map stays.
func TestSIGHUPReloadsTheInterfaceMapWithoutAStateChange(t *testing.T) {
	dir := t.TempDir()
	ifmap := filepath.Join(dir, "ifmap")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(ifmap, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("# nothing mapped yet\n")
	lab, fw1 := firstEngine(t, "--ifmap-file", ifmap)
	hup := func(wantLog string) {
		t.Helper()
		before := strings.Count(fw1.log(), wantLog)
		if err := fw1.carpd.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		if _, ok := netlab.Eventually(5*time.Second, func() bool { return strings.Count(fw1.log(), wantLog) > before }); !ok {
			t.Fatalf("no %q in the log after SIGHUP:\n%s", wantLog, fw1.log())
		}
	}
	names := func() string { return strings.TrimSpace(fw1.mustSh(t, "ifconfig -l")) }

	write("uplink = em1 # the WAN\n")
	hup("carpd: SIGHUP: reloaded the interface map from " + ifmap + ": uplink=em1 added")
	if got := names(); !strings.Contains(" "+got+" ", " uplink ") || strings.Contains(" "+got+" ", " em1 ") {
		t.Errorf("ifconfig -l after the reload: %q, want uplink instead of em1", got)
	}
	untouched(t, lab, fw1)

	write("uplink=em1\nnot a pair\n")
	hup("carpd: SIGHUP: interface map not reloaded, the old one stays: " + ifmap + ":2: bad interface mapping")
	write("em0=em1\n")
	hup("carpd: SIGHUP: interface map not reloaded, the old one stays: em0 is used by vhid 1 on carp0: its link would change from em0 to em1")
	if got := names(); !strings.Contains(" "+got+" ", " uplink ") {
		t.Errorf("ifconfig -l after refused reloads: %q, want the old map (uplink)", got)
	}
	untouched(t, lab, fw1)
	if log := fw1.log(); strings.Count(log, " -> ") != 2 {
		t.Errorf("SIGHUP changed a state:\n%s", log)
	}
}

// SIGTERM hands over: the log names the signal, the peer takes over at the
// bow-out, and fw1 is left as it was before carpd: no link, no address, ARP
// settings restored, no kernel.json; exit status 0.
func TestSIGTERMHandsOverNamesTheSignalAndLeavesNothing(t *testing.T) {
	lab := netlab.New(t, bin)
	lab.Handbook285()
	fw1, fw2 := labHost(lab, "fw1"), labHost(lab, "fw2")
	origIgnore := procSys(t, lab, "fw1", "net/ipv4/conf/em0/arp_ignore")
	origAnnounce := procSys(t, lab, "fw1", "net/ipv4/conf/em0/arp_announce")
	fw1.startCarpd(t)
	fw2.startCarpd(t)
	fw1.mustSh(t, "ifconfig carp0 create; ifconfig carp0 vhid 1 pass lanpasswd carpdev em0 172.16.0.100 255.255.255.0")
	fw1.waitState(t, "carp0", "MASTER", carp.MasterDown(1, 0)+3*time.Second)
	fw2.mustSh(t, "ifconfig carp0 create; ifconfig carp0 vhid 1 pass lanpasswd carpdev em0 advskew 100 172.16.0.100 255.255.255.0")
	fw2.waitState(t, "carp0", "BACKUP", 3*time.Second)

	start := time.Now()
	if err := fw1.carpd.Kill(syscall.SIGTERM); err != nil {
		t.Fatalf("carpd after SIGTERM: %v\n%s", err, fw1.log())
	}
	fw2.waitState(t, "carp0", "MASTER", 3*time.Second)
	// The bow-out, not the master-down timer, made fw2 MASTER.
	if d := fw2.transitionAt(t, "1@em0", "MASTER").Sub(start); d > carp.MasterDown(1, 100)/2 {
		t.Errorf("fw2 took over %v after the SIGTERM: no bow-out?", d)
	}
	log := fw1.log()
	for _, want := range []string{
		"carpd: SIGTERM: stopping, handing over 1 MASTER vhid\n",
		"carp: 1@em0: MASTER -> INIT (carpd stopping (SIGTERM))\n",
		"carpd: stopped\n",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("fw1's log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, carp.ReasonUser) {
		t.Errorf("the stop is logged as the admin's ifconfig:\n%s", log)
	}
	leftNothingOn(t, lab, fw1, origIgnore, origAnnounce)
	onlyVirtualMAC(t, lab) // now fw2's
}

// leftNothingOn checks that host's kernel has nothing of carpd left.
func leftNothingOn(t *testing.T, lab *netlab.Lab, h *host, origIgnore, origAnnounce string) {
	t.Helper()
	out, _, _ := lab.Exec(h.name, nil, "ip", "-o", "link", "show")
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], "carp") {
			t.Errorf("%s: link left: %s", h.name, line)
		}
	}
	if lab.HasAddr(h.name, "172.16.0.100") {
		t.Errorf("%s: 172.16.0.100 left in the kernel", h.name)
	}
	if v := procSys(t, lab, h.name, "net/ipv4/conf/em0/arp_ignore"); v != origIgnore {
		t.Errorf("%s: em0 arp_ignore = %s, want %s restored", h.name, v, origIgnore)
	}
	if v := procSys(t, lab, h.name, "net/ipv4/conf/em0/arp_announce"); v != origAnnounce {
		t.Errorf("%s: em0 arp_announce = %s, want %s restored", h.name, v, origAnnounce)
	}
	if _, err := os.Stat(filepath.Join(h.stateDir, "kernel.json")); !os.IsNotExist(err) {
		t.Errorf("%s: kernel.json left: %v", h.name, err)
	}
}

// A failure after the engine has set up the saved configuration (here: the
// control socket path is taken by a directory) still removes what the run
// created and exits 1.
func TestFailureAfterStartRemovesWhatTheRunCreated(t *testing.T) {
	lab := netlab.New(t, bin)
	lab.Handbook285()
	fw1 := labHost(lab, "fw1")
	origIgnore := procSys(t, lab, "fw1", "net/ipv4/conf/em0/arp_ignore")
	origAnnounce := procSys(t, lab, "fw1", "net/ipv4/conf/em0/arp_announce")
	fw1.startCarpd(t)
	fw1.mustSh(t, "ifconfig carp0 create; ifconfig carp0 vhid 1 pass lanpasswd carpdev em0 172.16.0.100 255.255.255.0")
	fw1.waitState(t, "carp0", "BACKUP", 3*time.Second)
	if err := fw1.carpd.Kill(syscall.SIGKILL); err == nil {
		t.Fatal("carpd exited cleanly after SIGKILL?")
	}
	// The dead engine's macvlan and ARP settings are still there.
	if v := procSys(t, lab, "fw1", "net/ipv4/conf/em0/arp_ignore"); v != "1" {
		t.Fatalf("arp_ignore after kill -9 = %s, want 1 (the dead engine's)", v)
	}
	if err := os.Remove(fw1.sock); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(fw1.sock, "taken"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := lab.Start("fw1", "fw1-carpd-fail", fw1.env(), filepath.Join(bin, "carpd"))
	code, ok := p.Wait(20 * time.Second)
	if !ok {
		t.Fatalf("carpd did not give up on a socket path that is a directory:\n%s", p.Output())
	}
	if code != 1 || !strings.Contains(p.Output(), "remove stale socket") {
		t.Fatalf("carpd exited %d, want 1 naming the socket:\n%s", code, p.Output())
	}
	// It had brought carp0 back before the socket failed.
	if !strings.Contains(p.Output(), "INIT -> BACKUP") {
		t.Fatalf("the saved vhid never ran, so this proves nothing:\n%s", p.Output())
	}
	leftNothingOn(t, lab, fw1, origIgnore, origAnnounce)
}

// Runtime state lives under /run: kill -9 and a restart within one boot
// bring the configuration back; a reboot (a fresh /run) starts empty, and
// rc.conf alone decides. carpd runs without CARPD_STATE_DIR here, in a mount
// namespace of its own, so the host's /run is never touched.
func TestRuntimeStateSurvivesARestartButNotAReboot(t *testing.T) {
	lab := netlab.New(t, bin)
	lab.Bridge("lan")
	fw := newHost(t, lab, "fw")
	lab.Plug("fw", "em0", "lan", "10.0.0.2/24")
	env := []string{"CARPD_SOCKET=" + fw.sock, "CARPD_DEVD_PIPE=off", "CARPD_DEVD_CONF=off", "PATH=" + filepath.Join(bin, "bsd") + ":" + bin + ":" + os.Getenv("PATH")}
	if os.Getenv("CARPD_STATE_DIR") != "" {
		t.Fatal("CARPD_STATE_DIR is set in the test's environment: this test needs the default")
	}
	start := func(boot []string, name string) *netlab.Proc {
		t.Helper()
		p := lab.Start("fw", name, env, append(boot, filepath.Join(bin, "carpd"))...)
		if _, ok := netlab.Eventually(10*time.Second, func() bool {
			_, _, code := lab.Exec("fw", env, "ifconfig", "-l")
			return code == 0 || p.Exited()
		}); !ok || p.Exited() {
			t.Fatalf("carpd did not become ready:\n%s", p.Output())
		}
		return p
	}
	show := func() (string, int) {
		out, errOut, code := lab.Exec("fw", env, "ifconfig", "carp0")
		return out + errOut, code
	}

	boot1 := lab.FreshRun("fw")
	p := start(boot1, "fw-carpd-1")
	if _, _, code := lab.Exec("fw", env, "sh", "-c", "ifconfig carp0 create && ifconfig carp0 vhid 1 pass lanpasswd carpdev em0 10.0.0.1 255.255.255.0"); code != 0 {
		t.Fatalf("configuring carp0 failed:\n%s", p.Output())
	}
	if _, _, code := lab.Exec("fw", nil, append(boot1, "test", "-s", "/run/carpd/state/config.json")...); code != 0 {
		t.Fatalf("no /run/carpd/state/config.json in the host's /run:\n%s", p.Output())
	}
	if err := p.Kill(syscall.SIGKILL); err == nil {
		t.Fatal("carpd exited cleanly after SIGKILL?")
	}

	p = start(boot1, "fw-carpd-2")
	if out, code := show(); code != 0 || !strings.Contains(out, "vhid 1 ") || !strings.Contains(out, "inet 10.0.0.1 ") {
		t.Fatalf("after kill -9 and a restart in the same boot, ifconfig carp0 exited %d:\n%s\ncarpd log:\n%s", code, out, p.Output())
	}
	if err := p.Kill(syscall.SIGTERM); err != nil {
		t.Fatalf("carpd after SIGTERM: %v\n%s", err, p.Output())
	}

	boot2 := lab.FreshRun("fw")
	p = start(boot2, "fw-carpd-3")
	if out, code := show(); code == 0 || !strings.Contains(out, "interface carp0 does not exist") {
		t.Fatalf("after a reboot, ifconfig carp0 exited %d:\n%s\ncarpd log:\n%s", code, out, p.Output())
	}
	if out, _, _ := lab.Exec("fw", env, "ifconfig", "-l"); strings.Contains(out, "carp") {
		t.Errorf("after a reboot ifconfig -l shows %q", out)
	}
}
