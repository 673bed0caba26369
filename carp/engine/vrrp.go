package engine

import (
	"errors"
	"time"

	"github.com/bsdcarp/bsdcarp/carp"
	"github.com/bsdcarp/bsdcarp/carp/api"
	"github.com/bsdcarp/bsdcarp/carp/osif"
)

// This file is the receiving side of FreeBSD 14's VRRPv3 mode (carpver 3)
// and of unicast peers; the sending side is Engine.send.

// hostFor is the vhid vhid of the parent dev that has addresses of the
// packet's family, or nil.
func (e *Engine) hostFor(vhid uint8, dev string, ipv6 bool) *vhost {
	for _, h := range e.hostIdx.byVHID[vhid] {
		v4, v6 := h.cfg.families()
		if h.carpdev == dev && ((ipv6 && v6) || (!ipv6 && v4)) {
			return h
		}
	}
	return nil
}

// inputOtherVersion handles a packet that is not for the CARP path:
// a VRRPv3 advert (version 3), or a CARP advert for a VRRPv3 vhid, which
// FreeBSD counts in badver (carp_input_c). h is the vhid the packet names
// on dev for its family (nil: none). It reports whether it took the packet.
func (e *Engine) inputOtherVersion(now time.Time, p osif.Packet, dev string, h *vhost) bool {
	b := p.Payload
	if p.ShortHeader || len(b) < carp.VRRPHeaderLen {
		return false // the CARP path counts it
	}
	switch b[0] >> 4 {
	case carp.VRRPVersion:
		e.inputVRRP(now, p, dev, h)
		return true
	case carp.Version:
		if h == nil || !h.cfg.isVRRP() || e.knob("allow") == 0 {
			return false
		}
		e.countIn(p)
		e.stats.BadVer++
		e.noteDrop(h, carp.DropBadVer, dev, p)
		e.logDrop(now, carp.DropBadVer, b[1], dev, p)
		return true
	}
	return false
}

// countIn counts a received packet in ipackets or ipackets6.
func (e *Engine) countIn(p osif.Packet) {
	if p.IPv6 {
		e.stats.IPackets6++
	} else {
		e.stats.IPackets++
	}
}

// inputVRRP validates a VRRPv3 advert in FreeBSD's order (carp_input,
// then vrrp_input_c: the vhid, its version, the TTL, the checksum; the
// RFC 9568 checksum or, for IPv4, the one without pseudo-header) and hands
// it to h, the vhid it names (nil: none), for its state machine.
func (e *Engine) inputVRRP(now time.Time, p osif.Packet, dev string, h *vhost) {
	e.countIn(p)
	if e.knob("allow") == 0 {
		return
	}
	vrid := p.Payload[1]
	var drop carp.Drop
	switch {
	case h == nil && p.IPv6 && e.hostIdx.devs[dev] == 0:
		e.stats.BadIf++
		drop = carp.DropBadIf
	case h == nil:
		e.stats.BadVHID++
		drop = carp.DropBadVHID
	case !h.cfg.isVRRP():
		e.stats.BadVer++
		drop = carp.DropBadVer
	case h.cfg.advertDst(p.IPv6).IsMulticast() && p.TTL != carp.TTL:
		// The TTL is the only thing that keeps a VRRPv3 advert (no
		// authentication) from beyond the link: checked for every
		// advert of a vhid in multicast mode, whatever the packet's
		// destination; a vhid with a unicast peer may be routed
		// (FreeBSD decides by the vhid's mode, carp_input_c).
		e.stats.BadTTL++
		drop = carp.DropBadTTL
	}
	if drop != carp.DropNone {
		e.noteDrop(h, drop, dev, p)
		e.logDrop(now, drop, vrid, dev, p)
		return
	}
	a, _, err := carp.ParseVRRP(p.Payload, p.Src, p.Dst)
	if err != nil {
		if errors.Is(err, carp.ErrVRRPShort) {
			e.stats.BadLen++
			e.noteDrop(h, carp.DropBadLen, dev, p)
			e.logDrop(now, carp.DropBadLen, vrid, dev, p)
		} else {
			e.stats.BadSum++
			e.noteDrop(h, carp.DropBadSum, dev, p)
			e.logDrop(now, carp.DropBadSum, vrid, dev, p)
		}
		return
	}
	if !e.fromPeer(now, h, p, dev) {
		return
	}
	if h.draining && a.Priority != 0 {
		e.endDrain(h) // the new MASTER speaks: it has announced the addresses
	}
	e.apply(now, h, h.m.ReceiveVRRP(now, p.IPv6, a.Priority, a.Interval, e.senderWins(h, p)))
	h.noteHeard(now, p.Src)
}

// senderWins is RFC 9568's tie-break between masters of equal priority:
// the sender wins when its address is higher than the one we send from.
func (e *Engine) senderWins(h *vhost, p osif.Packet) bool {
	parent, ok := e.linkByLinuxName(e.linuxName(h.carpdev))
	if !ok {
		return true
	}
	ours := advertSource(parent.Addrs, h.cfg.Addrs, !p.IPv6, h.cfg.advertDst(p.IPv6))
	return p.Src.Unmap().Compare(ours) > 0
}

// fromPeer reports whether an advert for h may be heard: from anyone when
// h advertises to the multicast group, only from the peer when it has a
// unicast peer for the packet's family (FreeBSD accepts any sender; a
// unicast pair is meant to hear only each other). Others are counted in
// badauth and logged at net.inet.carp.log 2.
func (e *Engine) fromPeer(now time.Time, h *vhost, p osif.Packet, dev string) bool {
	peer := h.cfg.advertDst(p.IPv6)
	if peer.IsMulticast() || p.Src.WithZone("") == peer {
		return true
	}
	e.stats.BadAuth++
	h.obs.drops[carp.DropBadAuth]++
	if e.knob("log") >= 2 {
		k := "notpeer" + dev
		if t, ok := e.lastLog[k]; !ok || now.Sub(t) >= time.Second {
			e.lastLog[k] = now
			e.debugf("carp_input: advertisement for VHID %d@%s from %s, not from its peer %s: dropped", h.cfg.VHID, dev, p.Src, peer)
		}
	}
	return false
}

// vrrpStatus adds v's protocol version, VRRPv3 parameters and peers to
// its status.
func vrrpStatus(v *VHIDConfig, vs *api.VHIDStatus) {
	if v.isVRRP() {
		vs.Version, vs.Priority, vs.Interval = carp.VRRPVersion, v.vrrpPrio(), v.vrrpInterval()
	}
	if v.Peer.IsValid() {
		vs.Peer = v.Peer.String()
	}
	if v.Peer6.IsValid() {
		vs.Peer6 = v.Peer6.String()
	}
}
