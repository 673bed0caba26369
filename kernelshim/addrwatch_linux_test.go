//go:build linux

package kernelshim

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/bsdcarp/bsdcarp/carp/osif"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// addrNote is an RTM_NEWADDR notification about ifindex, as the kernel
// sends it (byte order: the host's, or big-endian for the big flag).
func addrNote(index uint32, big bool) []byte {
	order := binary.ByteOrder(binary.LittleEndian)
	if big {
		order = binary.BigEndian
	}
	b := make([]byte, ifaMinLen+8)
	order.PutUint32(b[0:], uint32(len(b)))
	order.PutUint16(b[4:], unix.RTM_NEWADDR)
	b[nlmsgHdrLen] = unix.AF_INET
	order.PutUint32(b[ifaIndexOffset:], index)
	return b
}

func TestIfindexFilter(t *testing.T) {
	ours := []int{7, 3, 4, 5, 300, 70000, 9, 8}
	for _, big := range []bool{false, true} {
		raw, err := ifindexFilter(ours, big)
		if err != nil {
			t.Fatal(err)
		}
		prog := make([]bpf.Instruction, len(raw))
		for i, r := range raw {
			prog[i] = r.Disassemble()
		}
		vm, err := bpf.NewVM(prog)
		if err != nil {
			t.Fatal(err)
		}
		for idx := uint32(0); idx < 70010; idx++ {
			n, err := vm.Run(addrNote(idx, big))
			if err != nil {
				t.Fatal(err)
			}
			if dropped, want := n == 0, slices.Contains(ours, int(idx)); dropped != want {
				t.Fatalf("big-endian %v: ifindex %d dropped = %v, want %v", big, idx, dropped, want)
			}
		}
		if n, _ := vm.Run(addrNote(3, big)[:ifaMinLen-1]); n == 0 {
			t.Errorf("big-endian %v: a short message is dropped", big)
		}
	}
	if got := indexRanges([]int{9, 1, 2, 2, 3, 7, 8}); !slices.Equal(got, [][2]uint32{{1, 3}, {7, 9}}) {
		t.Errorf("indexRanges = %v", got)
	}
	// More runs than the program can hold: the first ones are filtered,
	// the program stays within BPF_MAXINSNS.
	var many []int
	for i := 1; i < 2*2*maxFilterRanges; i += 2 {
		many = append(many, i)
	}
	raw, err := ifindexFilter(many, nativeIsBig())
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) > 4096 {
		t.Errorf("%d instructions, more than BPF_MAXINSNS", len(raw))
	}
}

// TestLinuxWatchOwnAddrNotifications: the lifetime refreshes of our own
// macvlans' addresses are dropped by the socket filter before the watch
// reads them, while a change of someone else's address still makes a
// LinkUpdate. A new macvlan joins the filter when the watch first reads a
// notification of it (its first address), not when it is made.
func TestLinuxWatchOwnAddrNotifications(t *testing.T) {
	requireRoot(t)
	a, _ := vethPair(t)
	ka := kernelIn(t, a)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := make(chan osif.LinkUpdate, 64)
	if err := ka.WatchLinks(ctx, ch); err != nil {
		t.Fatal(err)
	}
	// marker adds p to veth0 and waits for its LinkUpdate: notifications
	// arrive in order, so every one before it has been read or dropped.
	marker := func(p string) {
		t.Helper()
		ipn(t, a, "addr", "add", p, "dev", "veth0")
		deadline := time.After(3 * time.Second)
		for {
			select {
			case u := <-ch:
				if u.Link.Name == "veth0" && slices.Contains(u.Link.Addrs, netip.MustParsePrefix(p)) {
					return
				}
			case <-deadline:
				t.Fatalf("no link update for the address %s added to veth0", p)
			}
		}
	}
	names := []string{"carp0", "carp1"}
	for i, name := range names {
		if err := ka.CreateMACVLAN(name, "veth0", net.HardwareAddr{0, 0, 0x5e, 0, 1, byte(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	// No address yet, so no notification of them: no rebuild either.
	if !ka.filterStale.Load() {
		t.Fatal("macvlans made: the filter is not marked for a rebuild")
	}
	var batch []osif.AddrLifetime
	for i, name := range names {
		for _, p := range []string{"198.51.100.%d/32", "2001:db8:5::%d/128"} {
			al, err := ka.ReplaceAddr(name, netip.MustParsePrefix(fmt.Sprintf(p, 10+i)), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			batch = append(batch, al)
		}
	}
	marker("198.51.100.6/24")
	if ka.filterStale.Load() {
		t.Fatal("the watch read the new links' notifications but did not rebuild its filter")
	}
	if n := ka.ownAddrNotes.Load(); n == 0 || n > 4 {
		t.Errorf("%d notifications of our own addresses before the rebuild, want 1 to 4 (the installs)", n)
	}
	ka.ownAddrNotes.Store(0)
	for range 20 {
		if err := ka.RefreshAddrs(batch); err != nil {
			t.Fatal(err)
		}
	}
	marker("198.51.100.7/24")
	if n := ka.ownAddrNotes.Load(); n != 0 {
		t.Errorf("%d notifications of our own addresses reached the watch, want 0", n)
	}
	if n := ka.addrNotes.Load(); n == 0 {
		t.Error("the watch counted no notification at all")
	}
}
