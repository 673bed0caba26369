package engine

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bsdcarp/bsdcarp/carp"
	"github.com/bsdcarp/bsdcarp/kernelshim"
)

var simRuns = flag.Int("sim.runs", 150, "seeded simulation runs of TestSimulation")

// TestSimulation runs many seeded scenarios of 2 to 4 engines sharing one
// vhid on an in-memory segment: staggered starts, hosts cut off from the
// segment (as if dead, without a goodbye), partitions into two halves,
// graceful restarts from the saved configuration. After the network heals
// and one master-down interval passes, the invariants must hold:
//   - exactly one MASTER;
//   - with preemption, it is the host the rules choose (lowest advskew);
//   - only the MASTER holds the shared address in its kernel.
//
// A failing seed reproduces with -run 'TestSimulation/seed=N'.
func TestSimulation(t *testing.T) {
	for seed := 0; seed < *simRuns; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { simulate(t, uint64(seed)) })
		})
	}
}

// simNet decides which deliveries the segment drops.
type simNet struct {
	mu       sync.Mutex
	isolated map[*kernelshim.Memory]bool
	group    map[*kernelshim.Memory]int
}

func (s *simNet) drop(from, to *kernelshim.Memory) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.isolated[from] || s.isolated[to] || s.group[from] != s.group[to]
}

func simulate(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	n := 2 + rng.IntN(3)
	preempt := rng.IntN(2) == 1
	advbase := 1 + rng.IntN(2)
	skews := rng.Perm(255)[:n] // distinct advskews in 0..254
	vip := netip.MustParsePrefix("10.0.0.100/24")

	seg := kernelshim.NewSegment()
	sn := &simNet{isolated: map[*kernelshim.Memory]bool{}, group: map[*kernelshim.Memory]int{}}
	seg.SetLoss(sn.drop)
	nodes := make([]*node, n)
	dirs := make([]string, n)
	kernels := make([]*kernelshim.Memory, n)
	for i := range nodes {
		k := kernelshim.NewMemory()
		k.Clock = time.Now
		k.AddLink(kernelshim.Link{Name: "em0", MAC: net.HardwareAddr{2, 0, 0, 0, 0, byte(i + 1)}, AdminUp: true, Carrier: true,
			Addrs: []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), 24)}}, seg)
		kernels[i] = k
		dirs[i] = t.TempDir()
	}
	configure := func(i int) {
		nd := nodes[i]
		if preempt {
			if _, _, err := nd.e.SetSysctl(t.Context(), "net.inet.carp.preempt", 1); err != nil {
				t.Fatal(err)
			}
		}
		nd.ifconfig(t, "carp0", Op{Kind: OpCreate})
		nd.ifconfig(t, "carp0", Op{Kind: OpVHID, Int: 7}, Op{Kind: OpPass, Str: "sim"}, Op{Kind: OpCarpdev, Str: "em0"},
			Op{Kind: OpAdvBase, Int: advbase}, Op{Kind: OpAdvSkew, Int: skews[i]}, Op{Kind: OpAddr, Prefix: vip})
	}
	defer func() {
		for _, nd := range nodes {
			if nd != nil {
				nd.stop(t)
			}
		}
	}()
	for _, i := range rng.Perm(n) {
		nodes[i] = startNode(t, kernels[i], dirs[i])
		configure(i)
		time.Sleep(time.Duration(rng.IntN(3000)) * time.Millisecond)
	}
	var script []string
	for ev := 0; ev < 6; ev++ {
		i := rng.IntN(n)
		switch rng.IntN(4) {
		case 0: // the host vanishes from the segment: no goodbye advert
			sn.mu.Lock()
			sn.isolated[kernels[i]] = !sn.isolated[kernels[i]]
			sn.mu.Unlock()
			script = append(script, fmt.Sprintf("toggle isolation of %d", i))
		case 1:
			sn.mu.Lock()
			for _, k := range kernels {
				sn.group[k] = rng.IntN(2)
			}
			sn.mu.Unlock()
			script = append(script, "partition")
		case 2:
			sn.mu.Lock()
			clear(sn.group)
			sn.mu.Unlock()
			script = append(script, "heal partition")
		case 3: // graceful restart from the saved configuration
			nodes[i].stop(t)
			nodes[i] = nil
			if got := kernels[i].Addrs("carp0"); len(got) != 0 {
				t.Fatalf("seed %d: host %d kept %v after a graceful stop", seed, i, got)
			}
			nodes[i] = startNode(t, kernels[i], dirs[i])
			script = append(script, fmt.Sprintf("restart %d", i))
		}
		time.Sleep(time.Duration(rng.IntN(6000)) * time.Millisecond)
	}
	sn.mu.Lock()
	clear(sn.isolated)
	clear(sn.group)
	sn.mu.Unlock()
	// After the heal: a master-down interval for the worst backup, one
	// advert interval for two masters to hear each other, and the time for
	// a killed engine's address lifetime to run out.
	time.Sleep(carp.MasterDown(uint8(advbase), 254) + carp.AdvInterval(uint8(advbase), 240) + 2*time.Second)
	synctest.Wait()

	var masters []int
	for i, nd := range nodes {
		st := nd.state(t, "carp0")
		addrs := kernels[i].Addrs("carp0")
		if st == "MASTER" {
			masters = append(masters, i)
			if !slices.Equal(addrs, []netip.Prefix{vip}) {
				t.Errorf("seed %d: MASTER %d holds %v", seed, i, addrs)
			}
		} else if len(addrs) != 0 {
			t.Errorf("seed %d: %s host %d holds %v", seed, st, i, addrs)
		}
	}
	if len(masters) != 1 {
		t.Fatalf("seed %d (%d hosts, skews %v, preempt %v, advbase %d, events %v): masters %v",
			seed, n, skews, preempt, advbase, script, masters)
	}
	if preempt {
		// Adverts carry min(advskew, 240): hosts above 240 tie, and a tie
		// never preempts, so any of the best effective skews may be MASTER.
		eff := func(i int) uint8 { return carp.EffectiveSkew(uint8(skews[i]), 0) }
		best := eff(0)
		for i := range skews {
			best = min(best, eff(i))
		}
		if eff(masters[0]) != best {
			t.Fatalf("seed %d (skews %v, events %v): MASTER is %d, the rules choose the effective skew %d", seed, skews, script, masters[0], best)
		}
	}
}
