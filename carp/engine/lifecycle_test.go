package engine

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bsdcarp/bsdcarp/carp"
	"github.com/bsdcarp/bsdcarp/carp/api"
	"github.com/bsdcarp/bsdcarp/carp/osif"
	"github.com/bsdcarp/bsdcarp/internal/loglines"
	"github.com/bsdcarp/bsdcarp/kernelshim/memkernel"
)

// causeNode is a node whose Run context is canceled with a cause, as carpd
// cancels it on a signal.
type causeNode struct {
	*node
	stopWith context.CancelCauseFunc
}

// newCauseNode makes a host with em0 (addr) and em1 on seg, arp_ignore 0 on
// em0, and starts its engine with ifmap. Call inside a synctest bubble.
func newCauseNode(t *testing.T, seg *memkernel.Segment, addr string, ifmap map[string]string) *causeNode {
	t.Helper()
	k := memkernel.NewMemory()
	k.Clock = time.Now
	for i, name := range []string{"em0", "em1"} {
		l := osif.Link{Name: name, MAC: net.HardwareAddr{2, 0, 0, 0, byte(i), byte(len(addr))}, MTU: 1500,
			AdminUp: true, Carrier: true, Running: true, Broadcast: true, Multicast: true, Kind: "veth"}
		if name == "em0" {
			l.Addrs = []netip.Prefix{netip.MustParsePrefix(addr)}
		}
		k.AddLink(l, seg)
	}
	k.SetSysctlValue("net/ipv4/conf/em0/arp_ignore", "0")
	logs := &syncBuffer{}
	e, err := New(Options{Kernel: k, IfMap: ifmap, Logger: loglines.New(logs, false)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	n := &causeNode{node: &node{k: k, e: e, logs: logs, cancel: func() { cancel(nil) }, done: make(chan error, 1)}, stopWith: cancel}
	go func() { n.done <- e.Run(ctx) }()
	select {
	case <-e.Ready():
	case err := <-n.done:
		t.Fatalf("Run ended before it was ready: %v", err)
	}
	return n
}

// masterNode is a lone host that has become MASTER of carp0 (vhid 1 on em0).
func masterNode(t *testing.T, ifmap map[string]string) *causeNode {
	t.Helper()
	n := newCauseNode(t, memkernel.NewSegment(), "10.0.0.2/24", ifmap)
	runbook284(t, n.node, 0)
	time.Sleep(carp.MasterDown(1, 0) + time.Millisecond)
	synctest.Wait()
	if got := n.state(t, "carp0"); got != "MASTER" {
		t.Fatalf("carp0 = %s, want MASTER\n%s", got, n.logs.String())
	}
	return n
}

// leftNothing checks that carp0, its address and the ARP settings are gone.
func leftNothing(t *testing.T, k *memkernel.Memory) {
	t.Helper()
	if _, err := k.LinkByName("carp0"); !errors.Is(err, osif.ErrNoLink) {
		t.Errorf("carp0 still exists: %v", err)
	}
	if v := k.Sysctl("net/ipv4/conf/em0/arp_ignore"); v != "0" {
		t.Errorf("arp_ignore on em0 = %q, want 0 restored", v)
	}
}

func TestStopNamesItsCauseInTheLogAndTheBowOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := masterNode(t, nil)
		n.stopWith(errors.New("SIGTERM"))
		if err := <-n.done; err != nil {
			t.Fatalf("Run: %v", err)
		}
		logs := n.logs.String()
		for _, want := range []string{
			"carpd: SIGTERM: stopping, handing over 1 MASTER vhid\n",
			"carp: 1@em0: MASTER -> INIT (carpd stopping (SIGTERM))\n",
		} {
			if !strings.Contains(logs, want) {
				t.Errorf("log lacks %q:\n%s", want, logs)
			}
		}
		if strings.Contains(logs, carp.ReasonUser) {
			t.Errorf("a stop is logged as the admin's own command\n%s", logs)
		}
		leftNothing(t, n.k)
	})
}

func TestIfconfigDownKeepsFreeBSDsReason(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := masterNode(t, nil)
		defer n.stop(t)
		n.ifconfig(t, "carp0", api.Op{Kind: api.OpDown})
		synctest.Wait()
		if want := "carp: 1@em0: MASTER -> INIT (user requested via ifconfig)"; !strings.Contains(n.logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, n.logs.String())
		}
	})
}

func TestPanicInTheEngineLoopStillRemovesWhatItCreated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := masterNode(t, nil)
		if len(n.k.Addrs("carp0")) != 1 {
			t.Fatalf("carp0 addresses while MASTER: %v", n.k.Addrs("carp0"))
		}
		err := n.e.call(context.Background(), func() { panic("boom") })
		if !errors.Is(err, ErrStopped) {
			t.Fatalf("call that panicked = %v, want ErrStopped", err)
		}
		if err := <-n.done; err == nil || !strings.Contains(err.Error(), "panic: boom") {
			t.Fatalf("Run after a panic = %v, want the panic as an error", err)
		}
		logs := n.logs.String()
		if !strings.Contains(logs, "carpd: panic in the engine: boom") || !strings.Contains(logs, "MASTER -> INIT (carpd stopping (panic))") {
			t.Errorf("log:\n%s", logs)
		}
		leftNothing(t, n.k)
	})
}

func TestReloadSwapsTheMapWithoutAStateChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := masterNode(t, map[string]string{"old9": "em9"})
		defer n.stop(t)
		before := n.logs.String()
		ctx := context.Background()
		summary, err := n.e.Reload(ctx, map[string]string{"wan0": "em1"})
		if err != nil {
			t.Fatalf("Reload: %v", err)
		}
		if want := "old9=em9 removed, wan0=em1 added"; summary != want {
			t.Errorf("summary %q, want %q", summary, want)
		}
		st, err := n.e.Status(ctx, api.StatusQuery{})
		if err != nil {
			t.Fatal(err)
		}
		names := map[string]bool{}
		for _, l := range st.Links {
			names[l.Name] = true
		}
		if !names["wan0"] || names["em1"] {
			t.Errorf("em1 not shown as wan0 after the reload: %v", names)
		}
		// A map that changes what em0 (carp0's carpdev) means is refused
		// whole: wan0 stays.
		for _, tt := range []struct {
			m    map[string]string
			want string
		}{
			{map[string]string{"em0": "em1"}, "em0 is used by vhid 1 on carp0: its link would change from em0 to em1"},
			{map[string]string{"lan0": "em0", "wan0": "em1"}, "em0 is used by vhid 1 on carp0: lan0=em0 would rename its link em0"},
		} {
			if _, err := n.e.Reload(ctx, tt.m); err == nil || err.Error() != tt.want {
				t.Errorf("Reload(%v) = %v, want %q", tt.m, err, tt.want)
			}
		}
		if got := n.e.linuxName("wan0"); got != "em1" {
			t.Errorf("a refused reload changed the map: wan0 -> %s", got)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if got := n.state(t, "carp0"); got != "MASTER" {
			t.Errorf("carp0 = %s after the reloads, want MASTER", got)
		}
		if after := n.logs.String(); after != before {
			t.Errorf("reloads logged a change:\n%s", strings.TrimPrefix(after, before))
		}
		if len(n.k.Addrs("carp0")) != 1 {
			t.Errorf("carp0 addresses after the reloads: %v", n.k.Addrs("carp0"))
		}
	})
}

func TestForgetEarlierBootDropsOnlyAnotherBootsKernelState(t *testing.T) {
	dir := t.TempDir()
	kj := filepath.Join(dir, kernelFile)
	write := func() {
		t.Helper()
		if err := saveKernelState(dir, map[string]string{"net/ipv4/conf/em0/arp_ignore": "0"}); err != nil {
			t.Fatal(err)
		}
	}
	exists := func() bool { _, err := os.Stat(kj); return err == nil }
	// No boot_id yet (a state directory from before the check): kept.
	write()
	if dropped, err := ForgetEarlierBoot(dir, "boot-a\n"); err != nil || dropped || !exists() {
		t.Fatalf("first call: dropped %v, err %v, kernel.json kept %v", dropped, err, exists())
	}
	// Same boot (a crash and restart): kept.
	if dropped, err := ForgetEarlierBoot(dir, "boot-a"); err != nil || dropped || !exists() {
		t.Fatalf("same boot: dropped %v, err %v, kernel.json kept %v", dropped, err, exists())
	}
	// Another boot: dropped, and New starts from what the kernel has now.
	if dropped, err := ForgetEarlierBoot(dir, "boot-b"); err != nil || !dropped || exists() {
		t.Fatalf("next boot: dropped %v, err %v, kernel.json kept %v", dropped, err, exists())
	}
	if b, _ := os.ReadFile(filepath.Join(dir, bootFile)); string(b) != "boot-b\n" {
		t.Fatalf("boot_id = %q", b)
	}
	orig, err := loadKernelState(dir)
	if err != nil || len(orig) != 0 {
		t.Fatalf("kernel state after a reboot: %v %v", orig, err)
	}
}

// TestStopHandsEveryVHIDOverBeforeDeletingLinks: at SIGTERM every MASTER
// bows out and gives up its addresses before the first link is deleted
// (deleting a link waits for the kernel's RCU readers; one vhid's link
// deleted before the next vhid's bow-out made the last of 1,020 leave 25 s
// after SIGTERM), and the links go in one DeleteLinks.
func TestStopHandsEveryVHIDOverBeforeDeletingLinks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newCauseNode(t, memkernel.NewSegment(), "10.0.0.2/24", nil)
		for i := range 3 {
			name := "carp" + string(rune('0'+i))
			n.ifconfig(t, name, api.Op{Kind: api.OpCreate})
			n.ifconfig(t, name, api.Op{Kind: api.OpVHID, Int: i + 1}, api.Op{Kind: api.OpPass, Str: "p"},
				api.Op{Kind: api.OpCarpdev, Str: "em0"}, api.Op{Kind: api.OpAddr, Prefix: netip.MustParsePrefix("10.0.0." + string(rune('5'+i)) + "/24")})
		}
		time.Sleep(carp.MasterDown(1, 0) + time.Millisecond)
		synctest.Wait()
		for i := range 3 {
			if got := n.state(t, "carp"+string(rune('0'+i))); got != "MASTER" {
				t.Fatalf("carp%d = %s, want MASTER", i, got)
			}
		}
		sent := 0
		n.k.SetSendHook(func(string, osif.Packet) { sent++ })
		n.k.ResetTranscript()
		n.stopWith(errors.New("SIGTERM"))
		if err := <-n.done; err != nil {
			t.Fatalf("Run: %v", err)
		}
		if sent != 3 {
			t.Errorf("%d adverts at stop, want 3 bow-outs", sent)
		}
		firstLinkDel, lastAddrDel, linkDels := -1, -1, 0
		tr := n.k.Transcript()
		for i, line := range tr {
			switch {
			case strings.HasPrefix(line, "ip link del "):
				linkDels++
				if firstLinkDel < 0 {
					firstLinkDel = i
				}
			case strings.HasPrefix(line, "ip addr del 10.0.0."):
				lastAddrDel = i
			}
		}
		if linkDels != 3 || lastAddrDel < 0 || firstLinkDel < lastAddrDel {
			t.Errorf("want every virtual address removed before the first of 3 links is deleted:\n%s", strings.Join(tr, "\n"))
		}
		for i := range 3 {
			if _, err := n.k.LinkByName("carp" + string(rune('0'+i))); !errors.Is(err, osif.ErrNoLink) {
				t.Errorf("carp%d is left: %v", i, err)
			}
		}
	})
}
