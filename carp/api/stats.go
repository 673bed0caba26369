package api

// The carpstats counter names: FreeBSD's carps_ fields of struct carpstats
// (sys/netinet/ip_carp.h) without the prefix, as the net.inet.carp.stats
// sysctl and `netstat -s -p carp` name them, plus bsdcarp's replay counter.
// api.Counter.Name is one of these; every other spelling of a counter
// name in the tree uses them.
const (
	StatIPackets  = "ipackets"
	StatIPackets6 = "ipackets6"
	StatBadIf     = "badif"
	StatBadTTL    = "badttl"
	StatHDrops    = "hdrops"
	StatBadSum    = "badsum"
	StatBadVer    = "badver"
	StatBadLen    = "badlen"
	StatBadAuth   = "badauth"
	StatBadVHID   = "badvhid"
	StatBadAddrs  = "badaddrs"
	StatOPackets  = "opackets"
	StatOPackets6 = "opackets6"
	StatONoMem    = "onomem"
	StatOStates   = "ostates"
	StatPreempt   = "preempt"
	// StatReplay is not in FreeBSD: bsdcarp drops replayed adverts
	// (the protocol core's Counter.Fresh) and counts them here, outside struct carpstats.
	StatReplay = "replay"
)

// CarpstatsNames lists the sixteen counters of FreeBSD's struct carpstats
// in the kernel's order (the order of the net.inet.carp.stats bytes).
var CarpstatsNames = [...]string{
	StatIPackets, StatIPackets6, StatBadIf, StatBadTTL, StatHDrops, StatBadSum, StatBadVer, StatBadLen,
	StatBadAuth, StatBadVHID, StatBadAddrs, StatOPackets, StatOPackets6, StatONoMem, StatOStates, StatPreempt,
}
