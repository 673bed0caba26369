package engine

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bsdcarp/bsdcarp/carp"
	"github.com/bsdcarp/bsdcarp/carp/api"
	"github.com/bsdcarp/bsdcarp/carp/osif"
	"github.com/bsdcarp/bsdcarp/kernelshim/memkernel"
)

// memoryKernel is what kernelOps uses of the in-memory kernel.
type memoryKernel interface {
	Transcript() []string
	ResetTranscript()
	SetSendHook(func(out string, p osif.Packet))
}

// newMemoryKernel is the in-memory kernel of the transcript tests, on the
// synctest clock, with links each on a segment of its own. It is the one
// place that names the in-memory kernel's package.
func newMemoryKernel(links ...osif.Link) *memkernel.Memory {
	k := memkernel.NewMemory()
	k.Clock = time.Now
	for _, l := range links {
		k.AddLink(l, memkernel.NewSegment())
	}
	return k
}

// kernelOps records every kernel operation of a Memory kernel in order: its
// transcript, with the adverts it sends interleaved ("advert vhid 1 advbase
// 1 advskew 0 demote 0 dev carp0 10.0.0.2 > 224.0.0.18"; the counter and
// HMAC are left out). The engine makes all of these calls from its event
// loop, so under synctest the order is exact.
type kernelOps struct {
	mu    sync.Mutex
	k     memoryKernel
	lines []string
	seen  int // transcript lines already copied
}

func recordKernelOps(k memoryKernel) *kernelOps {
	r := &kernelOps{k: k}
	k.ResetTranscript()
	k.SetSendHook(func(out string, p osif.Packet) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.catchUp()
		r.lines = append(r.lines, fmt.Sprintf("advert vhid %d advbase %d advskew %d demote %d dev %s %s > %s",
			p.Payload[1], p.Payload[5], p.Payload[2], p.Payload[4], out, p.Src, p.Dst))
	})
	return r
}

// catchUp copies the transcript lines not seen yet; r.mu must be held.
func (r *kernelOps) catchUp() {
	tr := r.k.Transcript()
	r.lines = append(r.lines, tr[r.seen:]...)
	r.seen = len(tr)
}

func (r *kernelOps) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.catchUp()
	return slices.Clone(r.lines)
}

// wantOps fails the test unless got is exactly want, showing both in full
// and the first line where they part.
func wantOps(t *testing.T, got, want []string) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	line := func(s []string) string {
		if i < len(s) {
			return fmt.Sprintf("%q", s[i])
		}
		return "(end)"
	}
	t.Errorf("kernel operations differ at line %d: got %s, want %s\ngot:\n\t%s\nwant:\n\t%s",
		i+1, line(got), line(want), strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
}

// tstep is one thing a row does: an ifconfig line (iface and ops), a sysctl
// (knob), time passing (wait) or a stop of the engine.
type tstep struct {
	iface   string
	ops     []api.Op
	knob    string
	value   int64
	wait    time.Duration
	stop    bool
	refused *api.Error // the refusal the line must get; nil: it succeeds
}

func cmdIfconfig(iface string, ops ...api.Op) tstep { return tstep{iface: iface, ops: ops} }
func cmdSysctl(knob string, value int64) tstep      { return tstep{knob: knob, value: value} }
func cmdWait(d time.Duration) tstep                 { return tstep{wait: d} }
func (s tstep) refusedWith(err *api.Error) tstep    { s.refused = err; return s }
func opCreate() api.Op                              { return api.Op{Kind: api.OpCreate} }
func opDestroy() api.Op                             { return api.Op{Kind: api.OpDestroy} }
func opVHID(v int) api.Op                           { return api.Op{Kind: api.OpVHID, Int: v} }
func opPass(s string) api.Op                        { return api.Op{Kind: api.OpPass, Str: s} }
func opCarpdev(s string) api.Op                     { return api.Op{Kind: api.OpCarpdev, Str: s} }
func opAdvSkew(v int) api.Op                        { return api.Op{Kind: api.OpAdvSkew, Int: v} }
func opAdvBase(v int) api.Op                        { return api.Op{Kind: api.OpAdvBase, Int: v} }
func opState(s string) api.Op                       { return api.Op{Kind: api.OpState, Str: s} }
func opMTU(v int) api.Op                            { return api.Op{Kind: api.OpMTU, Int: v} }
func opUp() api.Op                                  { return api.Op{Kind: api.OpUp} }
func opDown() api.Op                                { return api.Op{Kind: api.OpDown} }
func opAddr(p string) api.Op                        { return api.Op{Kind: api.OpAddr, Prefix: netip.MustParsePrefix(p)} }
func opAlias(p string) api.Op {
	return api.Op{Kind: api.OpAddr, Prefix: netip.MustParsePrefix(p), Alias: true}
}
func opDelAddr(p string) api.Op { return api.Op{Kind: api.OpDelAddr, Prefix: netip.MustParsePrefix(p)} }
func cmdStop() tstep            { return tstep{stop: true} }
func prefixes(ps ...string) (out []netip.Prefix) {
	for _, p := range ps {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}

func (s tstep) String() string {
	switch {
	case s.stop:
		return "stop"
	case s.wait > 0:
		return "wait " + s.wait.String()
	case s.knob != "":
		return fmt.Sprintf("sysctl %s=%d", s.knob, s.value)
	}
	return fmt.Sprintf("ifconfig %s %v", s.iface, s.ops)
}

// run carries out a step on n.
func (s tstep) run(t *testing.T, n *node) {
	t.Helper()
	var err error
	switch {
	case s.stop:
		n.stop(t)
	case s.wait > 0:
		time.Sleep(s.wait)
	case s.knob != "":
		_, _, err = n.e.SetSysctl(context.Background(), s.knob, s.value)
	default:
		err = n.e.Ifconfig(context.Background(), api.IfconfigRequest{Iface: s.iface, Ops: s.ops})
	}
	switch {
	case s.refused == nil && err != nil:
		t.Fatalf("%v: %v", s, err)
	case s.refused != nil && !refused(err, s.refused):
		t.Fatalf("%v: err = %v, want %v", s, err, s.refused)
	}
	// Let the link updates the step caused reach the engine before the
	// next step, as they would before an admin's next command.
	synctest.Wait()
}

// The master-down interval of vhid 1 at advbase 1 with advskew 0: a lone
// host's vhid becomes MASTER at the end of it.
var masterDown0 = carp.MasterDown(1, 0) + time.Millisecond

// runbookA is `ifconfig carp0 create` and `ifconfig carp0 vhid 1 pass
// lanpasswd carpdev em0 advskew N 10.0.0.1/24`.
func runbookA(advskew int) []tstep {
	return []tstep{
		cmdIfconfig("carp0", opCreate()),
		cmdIfconfig("carp0", opVHID(1), opPass("lanpasswd"), opCarpdev("em0"), opAdvSkew(advskew), opAddr("10.0.0.1/24")),
	}
}

// What a vhid's first configuration does to the kernel: em0 tuned for the
// virtual MAC, the macvlan made and tuned, the CARP group joined on em0.
var setupCarp0 = []string{
	"mcast join em0",
	"sysctl net/ipv4/conf/em0/arp_ignore=1",
	"sysctl net/ipv4/conf/em0/arp_announce=2",
	"ip link add carp0 link em0 type macvlan address 00:00:5e:00:01:01",
	"sysctl net/ipv4/conf/carp0/arp_ignore=1",
	"sysctl net/ipv4/conf/carp0/arp_announce=2",
}

// Lines of carp0 (vhid 1, 10.0.0.1/24 on em0 10.0.0.2) as MASTER: the
// address (re)installed with a short lifetime, the refresh tick that keeps
// it fresh (every 500 ms, one batch for all addresses, with the flags of
// the install: em0 routes 10.0.0.0/24 already), and its adverts.
const (
	carp0Addr     = "ip addr replace 10.0.0.1/24 dev carp0 lft 1s"
	carp0Refresh  = "ip addr refresh 10.0.0.1/24 dev carp0 lft 1s noprefixroute"
	carp0Announce = "arp announce 10.0.0.1 dev carp0 lladdr 00:00:5e:00:01:01"
	carp0Advert   = "advert vhid 1 advbase 1 advskew 0 demote 0 dev carp0 10.0.0.2 > 224.0.0.18"
	carp0BowOut   = "advert vhid 1 advbase 255 advskew 255 demote 0 dev carp0 10.0.0.2 > 224.0.0.18"
	carp0AddrGone = "ip addr del 10.0.0.1/24 dev carp0"
)

// concat is the concatenation of its arguments, each a line or a []string.
func concat(parts ...any) []string {
	var out []string
	for _, p := range parts {
		switch p := p.(type) {
		case string:
			out = append(out, p)
		case []string:
			out = append(out, p...)
		default:
			panic(fmt.Sprintf("lines: %T", p))
		}
	}
	return out
}

// repeat is n copies of line.
func repeat(n int, line string) []string { return slices.Repeat([]string{line}, n) }

// transcriptEm0 is the host's em0 of the transcript rows.
var transcriptEm0 = osif.Link{Name: "em0", MAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, MTU: 1500, AdminUp: true, Carrier: true,
	Running: true, Broadcast: true, Multicast: true, Kind: "veth", Addrs: prefixes("10.0.0.2/24")}

// em0At is transcriptEm0 with other addresses.
func em0At(addrs ...string) osif.Link {
	l := transcriptEm0
	l.Addrs = prefixes(addrs...)
	return l
}

// transcriptRow is one row of TestKernelOperationsOfCommandSequences.
type transcriptRow struct {
	name   string
	links  []osif.Link // nil: em0 with 10.0.0.2/24
	before []tstep
	fail   memkernel.Op // a kernel operation that refuses with EINVAL during steps
	steps  []tstep
	want   []string
}

// transcriptRows are the command sequences and the complete kernel
// operations each must cause.
var transcriptRows = []transcriptRow{
	{
		name: "two vhids take over in one round: each advert before the next vhid's install",
		before: []tstep{
			cmdIfconfig("em0", opVHID(1), opPass("p"), opAlias("10.0.0.50/32")),
			cmdIfconfig("em0", opVHID(2), opPass("p"), opAlias("10.0.0.51/32")),
		},
		steps: []tstep{cmdWait(masterDown0)},
		// The adverts of a round are sent together, but never after a
		// kernel change the engine made later (see Engine.kern).
		want: []string{
			"ip addr replace 10.0.0.50/32 dev carpv1.1 lft 1s",
			"arp announce 10.0.0.50 dev carpv1.1 lladdr 00:00:5e:00:01:01",
			"advert vhid 1 advbase 1 advskew 0 demote 0 dev carpv1.1 10.0.0.2 > 224.0.0.18",
			"ip addr replace 10.0.0.51/32 dev carpv1.2 lft 1s",
			"arp announce 10.0.0.51 dev carpv1.2 lladdr 00:00:5e:00:01:02",
			"advert vhid 2 advbase 1 advskew 0 demote 0 dev carpv1.2 10.0.0.2 > 224.0.0.18",
		},
	},
	{
		name:  "dialect A: create, vhid with address, destroy",
		steps: append(runbookA(100), cmdIfconfig("carp0", opDestroy())),
		want: concat(setupCarp0,
			"ip link del carp0",
			"mcast leave em0"),
	},
	{
		name:  "dialect B: the parent found by subnet",
		links: []osif.Link{em0At("192.168.1.3/24")},
		steps: []tstep{
			cmdIfconfig("carp0", opCreate()),
			cmdIfconfig("carp0", opVHID(1), opPass("testpass"), opAddr("10.7.7.7/24")).refusedWith(api.Refused(api.StepAddAddr, syscall.EADDRNOTAVAIL)),
			cmdIfconfig("carp0", opVHID(1), opAdvSkew(100), opPass("testpass"), opAddr("192.168.1.50/24")),
		},
		// The refused line leaves nothing; the accepted one runs on em0.
		want: []string{
			"mcast join em0",
			"sysctl net/ipv4/conf/em0/arp_ignore=1",
			"sysctl net/ipv4/conf/em0/arp_announce=2",
			"ip link add carp0 link em0 type macvlan address 00:00:5e:00:01:01",
			"sysctl net/ipv4/conf/carp0/arp_ignore=1",
			"sysctl net/ipv4/conf/carp0/arp_announce=2",
		},
	},
	{
		name:  "dialect C: vhid on an em0 alias, a second vhid, -alias of the last address",
		links: []osif.Link{em0At("192.168.1.3/24")},
		steps: []tstep{
			cmdIfconfig("em0", opVHID(1), opAdvSkew(100), opPass("testpass"), opAlias("192.168.1.50/32")),
			cmdWait(carp.MasterDown(1, 100) + time.Millisecond),
			cmdIfconfig("em0", opVHID(5), opAdvSkew(10)),
			cmdIfconfig("em0", opDelAddr("192.168.1.50/32")),
		},
		// The vhid runs on a hidden macvlan carpv<em0's index>.<vhid>;
		// vhid 5 has no address and touches nothing; -alias of vhid
		// 1's last address bows out and removes the macvlan, and em0
		// stays in the group (vhid 5 is on it).
		want: []string{
			"mcast join em0",
			"sysctl net/ipv4/conf/em0/arp_ignore=1",
			"sysctl net/ipv4/conf/em0/arp_announce=2",
			"ip link add carpv1.1 link em0 type macvlan address 00:00:5e:00:01:01",
			"sysctl net/ipv4/conf/carpv1.1/arp_ignore=1",
			"sysctl net/ipv4/conf/carpv1.1/arp_announce=2",
			"ip addr replace 192.168.1.50/32 dev carpv1.1 lft 1s",
			"arp announce 192.168.1.50 dev carpv1.1 lladdr 00:00:5e:00:01:01",
			"advert vhid 1 advbase 1 advskew 100 demote 0 dev carpv1.1 192.168.1.3 > 224.0.0.18",
			"advert vhid 1 advbase 255 advskew 255 demote 0 dev carpv1.1 192.168.1.3 > 224.0.0.18",
			"ip addr del 192.168.1.50/32 dev carpv1.1",
			"ip link del carpv1.1",
		},
	},
	{
		name: "em0: address replaced without alias, added with alias, removed with -alias",
		steps: []tstep{
			cmdIfconfig("em0", opAddr("10.0.0.3/24")),
			cmdIfconfig("em0", opAddr("10.0.0.3/24")),
			cmdIfconfig("em0", opAlias("10.0.0.9/24")),
			cmdIfconfig("em0", opAddr("10.0.0.4/24")),
			cmdIfconfig("em0", opDelAddr("10.0.0.9/32")),
			cmdIfconfig("em0", opDelAddr("10.9.9.9/32")).refusedWith(api.Refused(api.StepDelAddr, syscall.EADDRNOTAVAIL)),
		},
		// An address without alias replaces the first one (once: the
		// same line again changes nothing); -alias matches the address
		// whatever its mask.
		want: []string{
			"ip addr del 10.0.0.2/24 dev em0",
			"ip addr replace 10.0.0.3/24 dev em0 lft forever",
			"ip addr replace 10.0.0.9/24 dev em0 lft forever",
			"ip addr del 10.0.0.3/24 dev em0",
			"ip addr replace 10.0.0.4/24 dev em0 lft forever",
			"ip addr del 10.0.0.9/24 dev em0",
		},
	},
	{
		name: "em0: mtu, down, up; a refused mtu changes nothing",
		steps: []tstep{
			cmdIfconfig("em0", opMTU(9000), opDown()),
			cmdIfconfig("em0", opUp(), opMTU(20)).refusedWith(api.Refused(api.StepSetMTU, syscall.EINVAL)),
			cmdIfconfig("em0", opUp()),
			cmdIfconfig("em0", opMTU(1500)),
		},
		want: []string{
			"ip link set em0 mtu 9000",
			"ip link set em0 down",
			"ip link set em0 up",
			"ip link set em0 mtu 1500",
		},
	},
	{
		name:   "carp0 down of a MASTER: bow-out, addresses kept until the drain ends, then link down",
		before: append(runbookA(0), cmdWait(masterDown0)),
		steps: []tstep{
			cmdIfconfig("carp0", opDown()),
			cmdWait(masterDown0),
		},
		// The bow-out goes first; the address stays, kept fresh, while a
		// backup could still take over, then goes, then the link.
		want: concat(carp0BowOut, repeat(6, carp0Refresh), carp0AddrGone, "ip link set carp0 down"),
	},
	{
		name:   "state backup of a lone MASTER: bow-out, drain, MASTER again after the master-down interval",
		before: append(runbookA(0), cmdWait(masterDown0)),
		steps: []tstep{
			cmdIfconfig("carp0", opState("backup")),
			cmdWait(masterDown0),
		},
		// The address stays, kept fresh, through the drain; with no
		// other host the master-down timer ends it by taking the
		// address back (installed, announced) rather than removing it.
		want: concat(carp0BowOut, repeat(6, carp0Refresh), carp0Addr, carp0Announce, carp0Advert),
	},
	{
		name:   "a vhid becomes MASTER at the master-down interval and stays",
		before: runbookA(0),
		steps:  []tstep{cmdWait(masterDown0), cmdWait(carp.AdvInterval(1, 0))},
		// Address, announcement, first advert; then the address kept
		// fresh (twice a second, the tick after an advert due at the
		// same instant) and one advert per interval.
		want: concat(carp0Addr, carp0Announce, carp0Advert, carp0Refresh, carp0Advert, carp0Refresh),
	},
	{
		name:   "refused lines touch nothing",
		before: runbookA(100),
		steps: []tstep{
			cmdIfconfig("carp0", opPass("new"), opAdvSkew(255)).refusedWith(api.Refused(api.StepSetVHID, syscall.EINVAL)),
			cmdIfconfig("carp0", opAdvBase(0)).refusedWith(api.Refused(api.StepSetVHID, syscall.EINVAL)),
			cmdIfconfig("carp0", opCarpdev("em9")).refusedWith(api.Refused(api.StepSetVHID, syscall.EINVAL)),
			cmdIfconfig("carp0", opCreate()).refusedWith(api.Refused(api.StepCreate, syscall.EEXIST)),
			cmdIfconfig("carp7", opVHID(300)).refusedWith(api.Refused(api.StepSetVHID, syscall.EINVAL)),
			cmdIfconfig("carp1", opCreate(), opVHID(1), opCarpdev("em0"), opAddr("10.0.0.9/24")).refusedWith(api.Refused(api.StepSetVHID, syscall.EEXIST)),
			cmdIfconfig("em0", opUp(), opMTU(20)).refusedWith(api.Refused(api.StepSetMTU, syscall.EINVAL)),
		},
		want: []string{},
	},
	{
		name: "a line the kernel refuses half-way is undone in reverse",
		fail: memkernel.OpReplaceAddr,
		steps: []tstep{
			cmdIfconfig("em0", opMTU(9000), opDown(), opAlias("10.0.0.4/24")).refusedWith(api.Refused(api.StepAddAddr, syscall.EINVAL)),
		},
		want: []string{
			"ip link set em0 mtu 9000",
			"ip link set em0 down",
			"ip link set em0 up",
			"ip link set em0 mtu 1500",
		},
	},
	{
		name:   "net.inet.carp.allow=0 then 1 on a MASTER",
		before: append(runbookA(0), cmdWait(masterDown0)),
		steps: []tstep{
			cmdSysctl("net.inet.carp.allow", 0),
			cmdSysctl("net.inet.carp.allow", 1),
		},
		// allow=0: a last advert carrying the demotion, the address
		// removed; allow=1: BACKUP again, which touches nothing.
		want: []string{
			"advert vhid 1 advbase 1 advskew 240 demote 0 dev carp0 10.0.0.2 > 224.0.0.18",
			carp0AddrGone,
		},
	},
	{
		name:   "stop of the engine with a MASTER",
		before: append(runbookA(0), cmdWait(masterDown0)),
		steps:  []tstep{cmdStop()},
		// Bow-out, address and link removed, em0's settings restored.
		want: []string{
			carp0BowOut,
			carp0AddrGone,
			"ip link del carp0",
			"sysctl net/ipv4/conf/em0/arp_announce=0",
			"sysctl net/ipv4/conf/em0/arp_ignore=0",
		},
	},
}

// TestKernelOperationsOfCommandSequences runs transcriptRows on one host
// each and compares the whole sequence of kernel operations they cause (the
// Memory kernel's transcript, adverts interleaved) with the expected one.
// The before steps set the row up and are not recorded.
func TestKernelOperationsOfCommandSequences(t *testing.T) {
	for _, row := range transcriptRows {
		t.Run(row.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				links := row.links
				if links == nil {
					links = []osif.Link{transcriptEm0}
				}
				k := newMemoryKernel(links...)
				n := startNode(t, k, "")
				stopped := false
				defer func() {
					if !stopped {
						n.stop(t)
					}
				}()
				for _, s := range row.before {
					s.run(t, n)
				}
				synctest.Wait()
				rec := recordKernelOps(k)
				if row.fail != (memkernel.Op{}) {
					k.Fail(row.fail, syscall.EINVAL)
				}
				for _, s := range row.steps {
					s.run(t, n)
					stopped = stopped || s.stop
				}
				wantOps(t, rec.all(), row.want)
			})
		})
	}
}
