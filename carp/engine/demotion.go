package engine

// demotionFacts are what the effective net.inet.carp.demotion is made of.
// FreeBSD keeps one counter, V_carp_demotion, to which carp_demote_adj()
// (sys/netinet/ip_carp.c) adds the sysctl writes, ifdown_demotion_factor
// while a vhid's parent is down (sc_suppress) and senderr_demotion_factor
// while a vhid cannot send; carpd keeps the facts and derives the counter.
type demotionFacts struct {
	knob          int64 // what sysctl (and carpdemote) wrote, saturated to a C int when written
	ifdown        int   // vhids counted as having their parent down (vhost.suppressed)
	senderr       int   // vhids demoted for send errors (vhost.senderr)
	ifdownFactor  int64 // net.inet.carp.ifdown_demotion_factor
	senderrFactor int64 // net.inet.carp.senderr_demotion_factor
}

// effective is the demotion every vhid advertises (added to its advskew,
// clamped by carp.EffectiveSkew) and `sysctl net.inet.carp.demotion` shows.
// The parts counted per vhid follow the factor in force: changing a factor
// changes what is already counted, so nothing is left over when the vhids
// recover. Only the written part saturates; the sum is not clamped.
func (f demotionFacts) effective() int {
	return int(f.knob) + f.ifdown*int(f.ifdownFactor) + f.senderr*int(f.senderrFactor)
}

// demotion is the effective net.inet.carp.demotion now: the one place it
// is computed.
func (e *Engine) demotion() int {
	return e.demotionFacts().effective()
}

// demotionFacts are the facts the demotion is made of now.
func (e *Engine) demotionFacts() demotionFacts {
	return demotionFacts{
		knob:          e.cfg.Knobs["demotion"],
		ifdown:        e.nSuppressed,
		senderr:       e.nSenderr,
		ifdownFactor:  e.knob("ifdown_demotion_factor"),
		senderrFactor: e.knob("senderr_demotion_factor"),
	}
}
