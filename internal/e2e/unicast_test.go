package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bsdcarp/bsdcarp/carp"
	"github.com/bsdcarp/bsdcarp/internal/netlab"
)

// dropMulticast makes the LAN's switch drop every IPv4 multicast frame it
// would forward (an nftables bridge filter), as switches with IGMP snooping
// or cloud networks do to VRRP and CARP.
func dropMulticast(t *testing.T, lab *netlab.Lab) {
	t.Helper()
	nft, err := exec.LookPath("nft")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("nft is not installed (CI must run this test: apt-get install nftables)")
		}
		t.Skip("nft is not installed (apt-get install nftables)")
	}
	rules := filepath.Join(lab.Dir, "nomulticast.nft")
	if err := os.WriteFile(rules, []byte("table bridge nomcast {\n\tchain forward {\n\t\ttype filter hook forward priority 0;\n\t\tip daddr 224.0.0.0/4 drop\n\t}\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := lab.Exec("sw", nil, nft, "-f", rules); code != 0 {
		t.Fatalf("nft -f %s: %s%s", rules, out, errOut)
	}
}

// TestUnicastPeersOnASegmentWithoutMulticast: on a LAN that drops
// multicast, two multicast CARP hosts both become MASTER (the failure
// unicast peers exist for); with `peer` set on both they elect one MASTER,
// every advert goes from one peer to the other (captured on the switch
// ports), and a kill -9 of the MASTER fails over within the protocol's
// bound.
func TestUnicastPeersOnASegmentWithoutMulticast(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("tshark is not installed (CI must run this test)")
		}
		t.Skip("tshark is not installed")
	}
	lab := netlab.New(t, bin)
	lab.Bridge("lan")
	fw := [2]*host{newHost(t, lab, "fw1"), newHost(t, lab, "fw2")}
	addrs := [2]string{"172.16.0.1", "172.16.0.2"}
	for i, h := range fw {
		lab.Plug(h.name, "em0", "lan", addrs[i]+"/24")
		h.startCarpd(t)
	}
	dropMulticast(t, lab)
	fw[0].mustSh(t, "ifconfig em0 vhid 1 pass unipass alias 172.16.0.100/32")
	fw[1].mustSh(t, "ifconfig em0 vhid 1 advskew 100 pass unipass alias 172.16.0.100/32")
	for _, h := range fw {
		h.waitState(t, "em0", "MASTER", carp.MasterDown(1, 100)+2*time.Second)
	}

	// -f before the -i options: the filter of every interface.
	capture := lab.Start("sw", "tshark", nil, tshark, "-l", "-n", "-f", "ip proto 112",
		"-i", netlab.SwitchPort("fw1", "em0"), "-i", netlab.SwitchPort("fw2", "em0"),
		"-w", filepath.Join(lab.Dir, "unicast.pcapng"), "-P", "-T", "fields", "-E", "separator=,",
		"-e", "ip.src", "-e", "ip.dst", "-e", "ip.ttl")
	// tshark says nothing when it starts: wait until it has seen the
	// multicast adverts it will see no more.
	if _, ok := netlab.Eventually(10*time.Second, func() bool { return strings.Contains(capture.Output(), "224.0.0.18") }); !ok {
		t.Fatalf("no capture:\n%s", capture.Output())
	}
	fw[1].mustSh(t, "ifconfig em0 vhid 1 peer 172.16.0.1")
	fw[0].mustSh(t, "ifconfig em0 vhid 1 peer 172.16.0.2")
	mark := len(capture.Output())
	fw[1].waitState(t, "em0", "BACKUP", 3*time.Second)
	fw[0].waitState(t, "em0", "MASTER", time.Second)
	out := fw[0].mustSh(t, "ifconfig em0")
	if !strings.Contains(out, "\t      peer 172.16.0.2 peer6 ff02::12\n") {
		t.Errorf("ifconfig em0 on fw1:\n%s", out)
	}
	stays(t, 5*time.Second, "one MASTER", func() bool {
		return fw[0].state("em0") == "MASTER" && fw[1].state("em0") == "BACKUP"
	})
	// Every advert after the switch to unicast goes between the peers, TTL
	// 255 (FreeBSD sends 255 to a peer too).
	lines := strings.Split(strings.TrimSpace(capture.Output()[mark:]), "\n")
	if len(lines) < 4 {
		t.Fatalf("%d adverts captured in 5 s:\n%s", len(lines), capture.Output()[mark:])
	}
	for _, l := range lines {
		if l != "172.16.0.1,172.16.0.2,255" && l != "172.16.0.2,172.16.0.1,255" {
			t.Fatalf("advert %q is not between the peers:\n%s", l, capture.Output()[mark:])
		}
	}
	start := time.Now()
	_ = fw[0].carpd.Kill(syscall.SIGKILL)
	fw[1].waitState(t, "em0", "MASTER", carp.MasterDown(1, 100)+time.Second)
	t.Logf("fw2 MASTER %v after kill -9 of fw1 (bound %v)", time.Since(start), carp.MasterDown(1, 100))
}
