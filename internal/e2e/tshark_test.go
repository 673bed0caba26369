package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bsdcarp/bsdcarp/carp"
	"github.com/bsdcarp/bsdcarp/internal/netlab"
)

// tshark, an independent decoder, reads our adverts off the wire as CARP v2
// with a good checksum, TTL 255, DSCP 56, the virtual MAC as source and the
// handbook's vhid and advskew; the bow-out of `ifconfig carp0 down` carries
// advbase and advskew 255.
func TestTsharkDecodesOurAdverts(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("tshark is not installed (CI must run this test)")
		}
		t.Skip("tshark is not installed")
	}
	lab := netlab.New(t, bin)
	lab.Bridge("lan")
	fw := newHost(t, lab, "fw")
	lab.Plug("fw", "em0", "lan", "172.16.0.1/24")
	fw.startCarpd(t)
	fw.mustSh(t, "ifconfig carp0 create; ifconfig carp0 vhid 1 pass lanpasswd carpdev em0 advskew 100 172.16.0.100 255.255.255.0")
	fw.waitState(t, "carp0", "MASTER", carp.MasterDown(1, 100)+2*time.Second)

	// -w into the test's directory (and -P to still print): otherwise
	// tshark leaves its capture file in /tmp.
	capture := lab.Start("sw", "tshark", nil, tshark, "-l", "-n", "-i", "lan", "-f", "ip proto 112",
		"-w", filepath.Join(lab.Dir, "carp.pcapng"), "-P",
		"-d", "ip.proto==112,carp", "-T", "fields", "-E", "separator=,",
		"-e", "eth.src", "-e", "ip.ttl", "-e", "ip.dsfield.dscp", "-e", "carp.version", "-e", "carp.type",
		"-e", "carp.vhid", "-e", "carp.advskew", "-e", "carp.adver_int", "-e", "carp.authlen", "-e", "carp.checksum.status")
	// The last field is the checksum status: 1 is Wireshark's "Good".
	want := "00:00:5e:00:01:01,255,56,2,1,1,100,1,7,1"
	if _, ok := netlab.Eventually(10*time.Second, func() bool { return strings.Contains(capture.Output(), want) }); !ok {
		t.Fatalf("tshark never decoded %q; it printed:\n%s", want, capture.Output())
	}
	fw.mustSh(t, "ifconfig carp0 down")
	bowOut := "00:00:5e:00:01:01,255,56,2,1,1,255,255,7,1"
	if _, ok := netlab.Eventually(5*time.Second, func() bool { return strings.Contains(capture.Output(), bowOut) }); !ok {
		t.Fatalf("tshark never saw the bow-out %q; it printed:\n%s", bowOut, capture.Output())
	}
}
