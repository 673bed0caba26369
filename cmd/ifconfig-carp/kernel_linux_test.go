package main

import (
	"bytes"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestKernelLinksMatchNetInterfaces checks the rtnetlink reading against
// the standard library's view of the same links.
func TestKernelLinksMatchNetInterfaces(t *testing.T) {
	links, err := kernelLinks()
	if err != nil {
		t.Fatal(err)
	}
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	if len(links) != len(ifs) {
		t.Fatalf("kernelLinks: %d links, net.Interfaces: %d", len(links), len(ifs))
	}
	for i, ni := range ifs {
		l := links[i]
		// The standard library drops an all-zero MAC (lo's); carpd's
		// adapter keeps it, and so does kernelLinks.
		mac := ni.HardwareAddr.String()
		if mac == "" && l.MAC == "00:00:00:00:00:00" {
			mac = l.MAC
		}
		if l.Name != ni.Name || l.Index != ni.Index || l.MTU != ni.MTU || l.MAC != mac {
			t.Errorf("link %d: %+v, net.Interfaces says %+v", i, l, ni)
		}
		if l.Up != (ni.Flags&net.FlagUp != 0) || l.Running != (ni.Flags&net.FlagRunning != 0) ||
			l.Loopback != (ni.Flags&net.FlagLoopback != 0) || l.Multicast != (ni.Flags&net.FlagMulticast != 0) ||
			l.Broadcast != (ni.Flags&net.FlagBroadcast != 0) {
			t.Errorf("%s: flags %+v, net.Interfaces says %v", l.Name, l, ni.Flags)
		}
		as, err := ni.Addrs()
		if err != nil {
			t.Fatal(err)
		}
		var want []netip.Prefix
		for _, a := range as {
			p, err := netip.ParsePrefix(a.String())
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, p)
		}
		got := slices.Clone(l.Addrs)
		cmp := func(a, b netip.Prefix) int { return strings.Compare(a.String(), b.String()) }
		slices.SortFunc(got, cmp)
		slices.SortFunc(want, cmp)
		if !slices.Equal(got, want) {
			t.Errorf("%s: addresses %v, net.Interfaces says %v", l.Name, got, want)
		}
	}
}

// TestLoopbackWithoutCarpd is "ifconfig lo" with no carpd: the kernel's lo
// in FreeBSD's format; a change is refused with a reason.
func TestLoopbackWithoutCarpd(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	var o, e bytes.Buffer
	if code := run([]string{"ifconfig", "--socket", sock, "lo"}, &o, &e); code != 0 || e.Len() != 0 {
		t.Fatalf("ifconfig lo: exit %d, stderr %q", code, e.String())
	}
	if !strings.HasPrefix(o.String(), "lo: flags=") || !strings.Contains(o.String(), "\tinet 127.0.0.1 netmask 0xff000000\n") ||
		!strings.HasSuffix(o.String(), "\tgroups: lo\n") {
		t.Errorf("ifconfig lo without carpd:\n%s", o.String())
	}
	for _, args := range [][]string{{"lo", "mtu", "9000"}, {"carp0"}, {"-l"}} {
		o.Reset()
		e.Reset()
		code := run(append([]string{"ifconfig", "--socket", sock}, args...), &o, &e)
		if code != 1 || o.Len() != 0 || !strings.Contains(e.String(), "carpd is not running") {
			t.Errorf("ifconfig %q without carpd: exit %d, stdout %q, stderr %q", args, code, o.String(), e.String())
		}
	}
	o.Reset()
	e.Reset()
	if code := run([]string{"ifconfig", "--socket", sock, "nosuchif9"}, &o, &e); code != 1 || e.String() != "ifconfig: interface nosuchif9 does not exist\n" {
		t.Errorf("ifconfig nosuchif9 without carpd: exit %d, stderr %q", code, e.String())
	}
}
