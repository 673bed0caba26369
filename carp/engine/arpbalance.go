package engine

import (
	"context"
	"encoding/binary"
	"net/netip"
	"slices"

	"github.com/bsdcarp/bsdcarp/carp"
	"github.com/bsdcarp/bsdcarp/carp/osif"
)

// ARP balancing (net.inet.carp.arpbalance), as FreeBSD's carp_iamatch did
// it up to FreeBSD 9:
//
//   - the candidates for an ARP request asking for address A on carpdev D
//     are the vhids on D that carry A and are running (IFF_UP and
//     IFF_DRV_RUNNING on FreeBSD: here, in state BACKUP or MASTER; a vhid
//     in INIT, its carpN down or its parent down, does not count), in
//     ascending vhid order (FreeBSD keeps a carpdev's vhids sorted);
//   - the request's sender IP, in host byte order, modulo their number
//     chooses one; the host answers only if it is MASTER of that vhid, and
//     answers with that vhid's virtual MAC.
//
// Every host of the group counts the same vhids (a BACKUP runs too), so
// exactly one host answers each request. When a host fails, the survivor
// becomes MASTER of its vhids as well: the count is unchanged and every
// choice falls on a vhid the survivor is MASTER of.
//
// On Linux the kernel would answer for a virtual address on every macvlan
// that carries it, so with arpbalance on each vhid's macvlan gets
// arp_ignore=8 (never answer) and carpd answers instead, from one ARP
// listener (kernelshim.ListenARP). With arpbalance 0 none of this exists: no
// listener, the macvlans keep arp_ignore=1. Only IPv4 ARP is balanced (as on
// FreeBSD); IPv6 neighbour discovery is answered by the kernel as always.

// arpIgnoreBalanced is the macvlan's arp_ignore while carpd answers ARP.
const arpIgnoreBalanced = "8"

// arpIgnoreDefault is the macvlan's arp_ignore otherwise (see ensureVlink).
const arpIgnoreDefault = "1"

// balancing reports whether carpd answers ARP for the virtual addresses:
// net.inet.carp.arpbalance is on and the listener runs. Without the
// listener the kernel keeps answering (arp_ignore 1), balanced or not: an
// address nobody answers for would go dark.
func (e *Engine) balancing() bool {
	return e.knob("arpbalance") != 0 && e.arpStop != nil
}

// vlinkArpIgnore is the arp_ignore a new macvlan gets.
func (e *Engine) vlinkArpIgnore() string {
	if e.balancing() {
		return arpIgnoreBalanced
	}
	return arpIgnoreDefault
}

// syncARPBalance starts or stops the ARP listener and sets every macvlan's
// arp_ignore to follow net.inet.carp.arpbalance. With the knob at 0 and
// nothing balanced before, it does nothing.
func (e *Engine) syncARPBalance() {
	on := e.knob("arpbalance") != 0
	if on && e.arpStop == nil && e.shimCtx != nil {
		ctx, stop := context.WithCancel(e.shimCtx)
		if err := e.kern().ListenARP(ctx, e.arpReqs); err != nil {
			stop()
			e.errorf("carpd: arpbalance: %v", err)
		} else {
			e.arpStop = stop
		}
	}
	if !on && e.arpStop != nil {
		e.arpStop()
		e.arpStop = nil
	}
	on = e.balancing()
	if on == e.arpOn && !e.arpStale {
		return // every macvlan has it already: no pass over the vhosts
	}
	e.arpOn, e.arpStale = on, false
	for _, h := range e.hosts {
		if !h.made || h.balanced == on {
			continue
		}
		v := arpIgnoreDefault
		if on {
			v = arpIgnoreBalanced
		}
		e.setKernel("net/ipv4/conf/"+h.vlink+"/arp_ignore", v, false)
		h.balanced = on
	}
}

// arpInput answers one ARP request if this host is the one the
// arpbalance rule chooses.
func (e *Engine) arpInput(r osif.ARPRequest) {
	if e.knob("arpbalance") == 0 || !r.TargetIP.Is4() || !r.SenderIP.Is4() {
		return
	}
	l, ok := e.links[r.IfIndex]
	if !ok {
		return
	}
	// A broadcast is seen on the parent and again on each macvlan: take
	// the parent's copy. A request sent to a virtual MAC (a neighbour
	// re-checking its cache entry) is seen on that vhid's macvlan only.
	dev := ""
	if r.Broadcast {
		if l.Alias == osif.OwnerAlias {
			return
		}
		dev = e.bsdName(l.Name)
	} else {
		for _, h := range e.hostIdx.vlinks[l.Name] {
			if h.made {
				dev = h.carpdev
			}
		}
	}
	if dev == "" {
		return
	}
	h := e.arpChoice(dev, r.TargetIP, r.SenderIP)
	if h == nil || h.m.State() != carp.Master {
		return
	}
	if err := e.kern().ReplyARP(h.vlink, carp.VirtualMAC(h.cfg.VHID), r.TargetIP, r.SenderMAC, r.SenderIP); err != nil {
		e.errorf("carpd: arpbalance: reply for %s to %s: %v", r.TargetIP, r.SenderIP, err)
	}
}

// arpChoice is the vhid that answers a request from sender for target on
// carpdev dev: nil when no running vhid there carries target.
func (e *Engine) arpChoice(dev string, target, sender netip.Addr) *vhost {
	var cands []*vhost
	for _, h := range e.hostIdx.virtual[target] {
		if h.carpdev != dev || h.m.State() == carp.Init {
			continue
		}
		cands = append(cands, h)
	}
	if len(cands) == 0 {
		return nil
	}
	slices.SortStableFunc(cands, func(a, b *vhost) int { return int(a.cfg.VHID) - int(b.cfg.VHID) })
	s := sender.As4()
	return cands[binary.BigEndian.Uint32(s[:])%uint32(len(cands))]
}

// arpBalanced reports whether a is an IPv4 address that ARP balancing
// spreads over several vhids of h's carpdev. A new MASTER does not send a
// gratuitous ARP for such an address: it would rebind every neighbour's
// entry to this one vhid's MAC and undo the balancing (FreeBSD 9 did send
// it, one of the reasons it called arpbalance a proof of concept). The
// neighbours' entries stay right without it: a vhid's virtual MAC moves
// with the vhid, and the switch learns its new port from the advertisement
// the new MASTER sends from that MAC at once.
func (e *Engine) arpBalanced(h *vhost, a netip.Addr) bool {
	if !e.balancing() || !a.Is4() {
		return false
	}
	p := netip.PrefixFrom(a, 32)
	for _, o := range e.hosts {
		if o != h && o.carpdev == h.carpdev && o.cfg.hasAddr(p) >= 0 {
			return true
		}
	}
	return false
}
