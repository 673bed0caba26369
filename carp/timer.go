package carp

import "time"

// Skew returns the time value of a skew of x: x*1000000/256 microseconds in
// integer arithmetic, exactly as FreeBSD fills tv_usec (so Skew(255) is
// 996093µs, not 996093.75µs).
func Skew(x int) time.Duration {
	return time.Duration(x*1000000/256) * time.Microsecond
}

// EffectiveSkew is FreeBSD's DEMOTE_ADVSKEW: advskew plus the global
// net.inet.carp.demotion, clamped to 0..MaxEffectiveSkew. It is what a
// MASTER advertises and what a receiver compares, so an advskew of 241..254
// behaves as 240.
func EffectiveSkew(advskew uint8, demotion int) uint8 {
	// Compare before adding so that no demotion value can overflow.
	switch {
	case demotion >= MaxEffectiveSkew-int(advskew):
		return MaxEffectiveSkew
	case demotion <= -int(advskew):
		return 0
	}
	return uint8(int(advskew) + demotion)
}

// AdvInterval returns advbase seconds plus Skew(effskew): the interval at
// which a MASTER advertises, and the time value FreeBSD compares between
// its own and a received advert. Pass the effective skew for the local side
// and the received advskew as is for a peer.
func AdvInterval(advbase, effskew uint8) time.Duration {
	return time.Duration(advbase)*time.Second + Skew(int(effskew))
}

// MasterDown returns how long a BACKUP waits for an advert before declaring
// the master down: 3*advbase seconds plus Skew(advskew). The skew is not
// tripled and demotion is not applied (FreeBSD's carp_setrun uses the raw
// sc_advskew here).
func MasterDown(advbase, advskew uint8) time.Duration {
	return 3*time.Duration(advbase)*time.Second + Skew(int(advskew))
}
