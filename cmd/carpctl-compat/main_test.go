package main

import (
	"bufio"
	"bytes"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/bsdcarp/bsdcarp/carp/api"
	"github.com/bsdcarp/bsdcarp/carp/control"
)

// fakeEngine answers the control socket with a fixed status and records
// the ifconfig lines it gets.
type fakeEngine struct {
	mu    sync.Mutex
	st    api.Status
	lines [][]api.Op
	ifs   []string
}

func (f *fakeEngine) Ifconfig(_ context.Context, r api.IfconfigRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ifs = append(f.ifs, r.Iface)
	f.lines = append(f.lines, r.Ops)
	return nil
}

func (f *fakeEngine) Status(context.Context, api.StatusQuery) (api.Status, error) {
	return f.st, nil
}

func (f *fakeEngine) SetSysctl(context.Context, string, int64) (int64, int64, error) {
	return 0, 0, nil
}

// serve runs a control server on a fresh socket; it returns the socket.
func serve(t *testing.T, eng control.Engine) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "carpd.sock")
	s, err := control.Listen(sock, eng)
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() { s.Close() })
	return sock
}

func runCmd(t *testing.T, sock string, argv ...string) (string, string, int) {
	t.Helper()
	var o, e bytes.Buffer
	code := run(append([]string{argv[0], "--socket", sock}, argv[1:]...), &o, &e)
	return o.String(), e.String(), code
}

func TestKldWithCarpd(t *testing.T) {
	sock := serve(t, &fakeEngine{})
	for _, tc := range []struct {
		argv         []string
		stdout, errs string
		code         int
	}{
		{[]string{"kldload", "carp"}, "", "", 0},
		{[]string{"/x/bsd/kldload", "if_carp"}, "", "", 0},
		{[]string{"kldload", "-n", "/boot/kernel/carp.ko"}, "", "", 0},
		{[]string{"carpctl-compat", "kldload", "carp"}, "", "", 0},
		{[]string{"kldload", "pf"}, "", "kldload: can't load pf: No such file or directory\n" +
			"kldload: bsdcarp loads only carp and if_carp (built into carpd); Linux modules are modprobe(8)'s\n", 1},
		{[]string{"kldstat"}, kldHeader + kldKernel + kldCarp, "", 0},
		{[]string{"kldstat", "-n", "carp.ko"}, kldHeader + kldCarp, "", 0},
		{[]string{"kldstat", "-q", "-m", "carp"}, "", "", 0},
		{[]string{"kldstat", "-m", "carp"}, "Id  Refs Name\n  2    1 carp\n", "", 0},
		{[]string{"kldstat", "-m", "pf"}, "", "kldstat: can't find module pf: No such file or directory\n", 1},
		{[]string{"kldstat", "-qn", "pf.ko"}, "", "", 1},
	} {
		o, e, code := runCmd(t, sock, tc.argv...)
		if o != tc.stdout || e != tc.errs || code != tc.code {
			t.Errorf("%q: stdout %q stderr %q exit %d, want %q %q %d", tc.argv, o, e, code, tc.stdout, tc.errs, tc.code)
		}
	}
}

func TestKldWithoutCarpd(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	o, e, code := runCmd(t, sock, "kldload", "carp")
	if o != "" || code != 1 || !strings.HasPrefix(e, "kldload: can't load carp: ") || !strings.Contains(e, "carpd is not running") {
		t.Errorf("kldload carp without carpd: stdout %q stderr %q exit %d", o, e, code)
	}
	o, e, code = runCmd(t, sock, "kldstat")
	if o != kldHeader+kldKernel || code != 0 || !strings.Contains(e, "carpd is not running") {
		t.Errorf("kldstat without carpd: stdout %q stderr %q exit %d", o, e, code)
	}
	if _, _, code = runCmd(t, sock, "kldstat", "-q", "-m", "carp"); code != 1 {
		t.Errorf("kldstat -q -m carp without carpd: exit %d, want 1", code)
	}
}

func TestServicePassesOthersToHost(t *testing.T) {
	p := filepath.Join(t.TempDir(), "service")
	if err := os.WriteFile(p, []byte("#!/bin/sh\necho \"host $*\"\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	old := hostServicePaths
	hostServicePaths = []string{p}
	t.Cleanup(func() { hostServicePaths = old })
	t.Setenv("PATH", "/nonexistent")
	o, e, code := runCmd(t, filepath.Join(t.TempDir(), "none.sock"), "service", "ssh", "restart")
	if o != "host ssh restart\n" || e != "" || code != 3 {
		t.Errorf("service ssh restart: stdout %q stderr %q exit %d", o, e, code)
	}
	o, e, code = runCmd(t, filepath.Join(t.TempDir(), "none.sock"), "service", "routing", "restart")
	if o != "" || code != 0 || !strings.HasPrefix(e, "routing: nothing to do") {
		t.Errorf("service routing restart: stdout %q stderr %q exit %d", o, e, code)
	}
	o, e, code = runCmd(t, filepath.Join(t.TempDir(), "none.sock"), "netif", "restart")
	if code != 1 || o != "" || e == "" {
		t.Errorf("netif restart without carpd: stdout %q stderr %q exit %d", o, e, code)
	}
}

// TestPrune: the vhids rc.conf no longer lists go, from the interfaces it
// names (and those whose carpdev it names); others stay.
func TestPrune(t *testing.T) {
	pfx := netip.MustParsePrefix
	eng := &fakeEngine{st: api.Status{
		Links:  []api.LinkStatus{{Name: "em0", Addrs: []netip.Prefix{pfx("192.168.1.5/24")}}, {Name: "em5", Addrs: []netip.Prefix{pfx("10.0.5.1/24")}}},
		Clones: []api.CloneStatus{{Name: "carp0"}, {Name: "carp1"}, {Name: "carp7"}, {Name: "carp8"}, {Name: "carp9"}},
		VHIDs: []api.VHIDStatus{
			{Iface: "em0", Carpdev: "em0", VHID: 1, Addrs: []netip.Prefix{pfx("192.168.1.50/32")}},
			{Iface: "em0", Carpdev: "em0", VHID: 2, Addrs: []netip.Prefix{pfx("192.168.1.51/32"), pfx("2001:db8::51/64")}},
			{Iface: "carp0", Carpdev: "em1", VHID: 3},
			{Iface: "carp1", Carpdev: "em1", VHID: 4}, // carpdev em1 is named: goes
			{Iface: "carp7", Carpdev: "em5", VHID: 9}, // nothing of it named: stays
			{Iface: "em3", Carpdev: "em3", VHID: 5, Addrs: []netip.Prefix{pfx("10.0.3.5/32")}},
			{Iface: "carp8", VHID: 8, Addrs: []netip.Prefix{pfx("192.168.1.60/24")}}, // FreeBSD 9: parent em0 by subnet: goes
			{Iface: "carp9", VHID: 10, Addrs: []netip.Prefix{pfx("10.0.5.60/24")}},   // parent em5, not named: stays
		},
	}}
	sock := serve(t, eng)
	script := `ifconfig carp0 create
ifconfig em0 inet 192.168.1.5 netmask 255.255.255.0
ifconfig em0 up
ifconfig em0 vhid 1 advskew 100 pass testpass alias 192.168.1.50/32
ifconfig em1 inet 10.0.1.1/24
ifconfig carp0 vhid 3 pass x carpdev em1 10.0.1.100/24
sysctl -f /etc/sysctl.conf
`
	var o, e bytes.Buffer
	w := bufio.NewWriter(&o)
	if ok := prune(control.Client{Path: sock}, script, nil, w, &e); !ok || e.Len() != 0 {
		t.Fatalf("prune: ok %v, stderr %q", ok, e.String())
	}
	w.Flush()
	want := "netif: vhid 2 on em0 is not in rc.conf: ifconfig em0 inet 192.168.1.51 -alias\n" +
		"netif: vhid 2 on em0 is not in rc.conf: ifconfig em0 inet6 2001:db8::51 -alias\n" +
		"netif: vhid 4 on carp1 is not in rc.conf: ifconfig carp1 destroy\n" +
		"netif: vhid 8 on carp8 is not in rc.conf: ifconfig carp8 destroy\n"
	if o.String() != want {
		t.Errorf("prune printed\n%s\nwant\n%s", o.String(), want)
	}
	if want := []string{"em0", "em0", "carp1", "carp8"}; !reflect.DeepEqual(eng.ifs, want) {
		t.Errorf("ifconfig requests on %v, want %v", eng.ifs, want)
	}
	if k := eng.lines[2][0].Kind; k != api.OpDestroy {
		t.Errorf("carp1's request is %v, want destroy", eng.lines[2])
	}

	// "service netif restart em1": only em1 and what runs on it.
	eng.ifs, eng.lines = nil, nil
	o.Reset()
	if ok := prune(control.Client{Path: sock}, script, []string{"em1"}, w, &e); !ok || e.Len() != 0 {
		t.Fatalf("prune em1: ok %v, stderr %q", ok, e.String())
	}
	w.Flush()
	if want := "netif: vhid 4 on carp1 is not in rc.conf: ifconfig carp1 destroy\n"; o.String() != want {
		t.Errorf("prune em1 printed\n%s\nwant\n%s", o.String(), want)
	}
}
