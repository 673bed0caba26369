package e2e

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bsdcarp/bsdcarp/carp"
	"github.com/bsdcarp/bsdcarp/internal/netlab"
)

// A VRRPv3 interop case between our carpd ("ours", 172.16.0.1,
// 2001:db8::1) and a real keepalived ("peer", .2 and ::2) on one LAN.
type vrrpCase struct {
	name     string
	six      bool
	interval int  // centiseconds
	unicast  bool // ours: peer/peer6; keepalived: unicast_peer
}

// kaConf is keepalived's VRRPv3 instance for c with priority prio.
func (c vrrpCase) kaConf(prio int) string {
	vip := "172.16.0.100/32"
	src, peer := "172.16.0.2", "172.16.0.1"
	if c.six {
		vip, src, peer = "2001:db8::100/64", "2001:db8::2", "2001:db8::1"
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "global_defs {\n\trouter_id interop\n\tvrrp_version 3\n}\n")
	fmt.Fprintf(&sb, "vrrp_instance V1 {\n\tstate BACKUP\n\tinterface em0\n\tvirtual_router_id 1\n\tpriority %d\n\tadvert_int %s\n", prio, strconv.FormatFloat(float64(c.interval)/100, 'f', -1, 64))
	if c.unicast {
		fmt.Fprintf(&sb, "\tunicast_src_ip %s\n\tunicast_ttl 255\n\tunicast_peer {\n\t\t%s\n\t}\n", src, peer)
	}
	fmt.Fprintf(&sb, "\tvirtual_ipaddress {\n\t\t%s dev em0\n\t}\n}\n", vip)
	return sb.String()
}

// ourLine is the ifconfig line of our side with priority prio.
func (c vrrpCase) ourLine(prio int) string {
	peer := ""
	if c.unicast {
		peer = " peer 172.16.0.2"
		if c.six {
			peer = " peer6 2001:db8::2"
		}
	}
	if c.six {
		return fmt.Sprintf("ifconfig em0 inet6 vhid 1 carpver 3 vrrpprio %d vrrpinterval %d%s 2001:db8::100/64 alias", prio, c.interval, peer)
	}
	return fmt.Sprintf("ifconfig em0 vhid 1 carpver 3 vrrpprio %d vrrpinterval %d%s alias 172.16.0.100/32", prio, c.interval, peer)
}

var vrrpCases = []vrrpCase{
	{"ipv4", false, 100, false},
	{"ipv4-10ms", false, 1, false},
	{"ipv6", true, 100, false},
	{"ipv6-10ms", true, 1, false},
	{"ipv4-unicast", false, 100, true},
	{"ipv4-unicast-10ms", false, 1, true},
	{"ipv6-unicast", true, 100, true},
}

// interopHold is how long each side must keep its role without a flap
// (BSDCARP_INTEROP_HOLD, a Go duration, e.g. 60s for the minute
// without a flap: BSDCARP_INTEROP_HOLD=60s go test ./internal/e2e -run Keepalived).
func interopHold(t *testing.T) time.Duration {
	if s := os.Getenv("BSDCARP_INTEROP_HOLD"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("BSDCARP_INTEROP_HOLD: %v", err)
		}
		return d
	}
	return 3 * time.Second
}

var kaInstanceState = regexp.MustCompile(`\(V1\) Entering ([A-Z]+) STATE`)

// kaState is the last state keepalived logged for instance V1.
func kaState(p *netlab.Proc) string {
	m := kaInstanceState.FindAllStringSubmatch(p.Output(), -1)
	if len(m) == 0 {
		return ""
	}
	return m[len(m)-1][1]
}

// kaErrors are keepalived's words for an advert it could not take.
var kaErrors = []string{"Invalid VRRPv3 checksum", "wrong VRRP version", "invalid TTL", "expected", "not a unicast peer", "too short"}

// TestKeepalivedVRRPv3Interop runs our VRRPv3 vhid against keepalived in
// both roles, over IPv4 and IPv6, multicast and unicast, at 1 s and 10 ms:
// each side holds its role under the other without a flap; SIGTERM of
// either hands over in the survivor's skew time (priority 0 advert), kill
// -9 of either in its master-down interval; neither side counts or logs a
// checksum, version or TTL error.
func TestKeepalivedVRRPv3Interop(t *testing.T) {
	exe := requireKeepalived(t)
	for _, c := range vrrpCases {
		t.Run(c.name, func(t *testing.T) { vrrpInterop(t, exe, c) })
	}
}

func vrrpInterop(t *testing.T, exe string, c vrrpCase) {
	lab := netlab.New(t, bin)
	lab.Bridge("lan")
	ours := newHost(t, lab, "ours")
	lab.NewNS("peer")
	lab.Plug("ours", "em0", "lan", "172.16.0.1/24", "2001:db8::1/64")
	lab.Plug("peer", "em0", "lan", "172.16.0.2/24", "2001:db8::2/64")
	for _, h := range []string{"ours", "peer"} {
		// keepalived cannot send from a tentative link-local address
		// (EINVAL): wait for duplicate address detection to end.
		if _, ok := netlab.Eventually(10*time.Second, func() bool {
			out, _, _ := lab.Exec(h, nil, "ip", "-6", "addr", "show", "dev", "em0", "tentative")
			return strings.TrimSpace(out) == ""
		}); !ok {
			t.Fatalf("%s: IPv6 addresses still tentative", h)
		}
	}
	ours.startCarpd(t)
	hold := interopHold(t)
	iv := carp.IntervalDuration(uint16(c.interval))
	runs := 0
	start := func(prio int) *netlab.Proc {
		runs++
		return runKeepalived(t, lab, exe, "peer", fmt.Sprintf("%s-%d", c.name, runs), c.kaConf(prio))
	}

	// 1. keepalived MASTER (150), ours BACKUP (100); SIGTERM of keepalived:
	// ours takes over in its skew time.
	ka := start(150)
	waitKa(t, ka, "MASTER", 10*time.Second)
	ours.mustSh(t, c.ourLine(100))
	ours.waitState(t, "em0", "BACKUP", 2*time.Second)
	holdRoles(t, hold, ours, "BACKUP", ka, "MASTER")
	t0 := time.Now()
	_ = ka.Signal(syscall.SIGTERM)
	d := ours.waitState(t, "em0", "MASTER", carp.VRRPMasterDown(100, uint16(c.interval))+2*time.Second)
	t.Logf("SIGTERM of keepalived: ours MASTER in %v (skew %v, master-down %v)", time.Since(t0), carp.VRRPSkew(100, uint16(c.interval)), carp.VRRPMasterDown(100, uint16(c.interval)))
	if d > carp.VRRPSkew(100, uint16(c.interval))+500*time.Millisecond {
		t.Errorf("ours took %v after keepalived's priority-0 advert", d)
	}
	ka.Wait(10 * time.Second)
	checkKa(t, ka)

	// 2. keepalived back at 150 preempts us; kill -9 of keepalived: ours
	// takes over after its master-down interval.
	ka = start(150)
	waitKa(t, ka, "MASTER", 10*time.Second+10*iv)
	ours.waitState(t, "em0", "BACKUP", 2*time.Second)
	holdRoles(t, hold, ours, "BACKUP", ka, "MASTER")
	_ = ka.Kill(syscall.SIGKILL)
	ours.waitState(t, "em0", "MASTER", carp.VRRPMasterDown(100, uint16(c.interval))+2*time.Second)
	checkKa(t, ka)

	// 3. keepalived at 50 stays BACKUP under us; SIGTERM of carpd:
	// keepalived takes over in its skew time.
	ka = start(50)
	waitKa(t, ka, "BACKUP", 10*time.Second)
	holdRoles(t, hold, ours, "MASTER", ka, "BACKUP")
	checkOurs(t, ours)
	t0 = time.Now()
	_ = ours.carpd.Signal(syscall.SIGTERM)
	waitKa(t, ka, "MASTER", carp.VRRPMasterDown(50, uint16(c.interval))+2*time.Second)
	t.Logf("SIGTERM of carpd: keepalived MASTER within %v (its skew %v)", time.Since(t0), carp.VRRPSkew(50, uint16(c.interval)))
	if _, ok := ours.carpd.Wait(10 * time.Second); !ok {
		t.Fatal("carpd did not stop on SIGTERM")
	}

	// 4. carpd restarts with its saved vhid and preempts keepalived (50);
	// kill -9 of carpd: keepalived takes over after its master-down.
	ours.startCarpd(t)
	ours.mustSh(t, "sysctl net.inet.carp.preempt=1")
	ours.waitState(t, "em0", "MASTER", carp.VRRPMasterDown(100, uint16(c.interval))+2*time.Second)
	waitKa(t, ka, "BACKUP", 2*time.Second+10*iv)
	holdRoles(t, hold, ours, "MASTER", ka, "BACKUP")
	checkOurs(t, ours)
	_ = ours.carpd.Kill(syscall.SIGKILL)
	waitKa(t, ka, "MASTER", carp.VRRPMasterDown(50, uint16(c.interval))+2*time.Second)
	checkKa(t, ka)
}

// waitKa polls until keepalived's instance is in state want.
func waitKa(t *testing.T, ka *netlab.Proc, want string, timeout time.Duration) {
	t.Helper()
	if _, ok := netlab.Eventually(timeout, func() bool { return kaState(ka) == want || ka.Exited() }); !ok || kaState(ka) != want {
		t.Fatalf("keepalived not %s after %v:\n%s", want, timeout, tail(ka.Output(), 30))
	}
}

// holdRoles checks for d that ours stays in oursWant and keepalived in
// kaWant.
func holdRoles(t *testing.T, d time.Duration, ours *host, oursWant string, ka *netlab.Proc, kaWant string) {
	t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if s := ours.state("em0"); s != oursWant {
			t.Fatalf("ours %s, want %s:\n%s\nkeepalived:\n%s", s, oursWant, tail(ours.log(), 20), tail(ka.Output(), 20))
		}
		if s := kaState(ka); s != kaWant {
			t.Fatalf("keepalived %s, want %s:\n%s", s, kaWant, tail(ka.Output(), 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkKa fails when keepalived logged that it could not take one of our
// adverts.
func checkKa(t *testing.T, ka *netlab.Proc) {
	t.Helper()
	for _, e := range kaErrors {
		if strings.Contains(ka.Output(), e) {
			t.Errorf("keepalived logged %q:\n%s", e, tail(ka.Output(), 30))
		}
	}
}

// checkOurs fails when ours counted a checksum, version, length, TTL or
// authentication error, or received nothing. (Bad vhid is left out: a
// unicast keepalived sends to ours before our vhid exists, which FreeBSD
// counts there too.)
func checkOurs(t *testing.T, ours *host) {
	t.Helper()
	out := ours.mustSh(t, "carpctl-sysctl --stats")
	for _, words := range []string{"bad checksum", "bad version", "wrong ttl", "too short", "shorter than header", "bad authentication"} {
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if strings.Contains(strings.ToLower(line), words) && len(f) > 0 && f[0] != "0" {
				t.Errorf("ours counted %q:\n%s", line, out)
			}
		}
	}
	if !regexp.MustCompile(`(?m)^\s+[1-9]\d* packets? received \(IPv[46]\)`).MatchString(out) {
		t.Errorf("ours received no advert:\n%s", out)
	}
}
