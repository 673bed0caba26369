package bsd

import (
	"fmt"
	"io"

	"github.com/bsdcarp/bsdcarp/carp"
	"github.com/bsdcarp/bsdcarp/carp/engine"
)

// netstatLines are the lines of FreeBSD's `netstat -s -p carp`, in its order,
// keyed by carpstats field. plural marks the lines whose noun takes an "s"
// unless the count is 1.
var netstatLines = []struct {
	field  string
	format string
	plural bool
}{
	{carp.StatIPackets, "\t%d packet%s received (IPv4)\n", true},
	{carp.StatIPackets6, "\t%d packet%s received (IPv6)\n", true},
	{carp.StatBadTTL, "\t\t%d packet%s discarded for wrong TTL\n", true},
	{carp.StatHDrops, "\t\t%d packet%s shorter than header\n", true},
	{carp.StatBadSum, "\t\t%d discarded for bad checksum%s\n", true},
	{carp.StatBadVer, "\t\t%d discarded packet%s with a bad version\n", true},
	{carp.StatBadLen, "\t\t%d discarded because packet too short\n", false},
	{carp.StatBadAuth, "\t\t%d discarded for bad authentication\n", false},
	{carp.StatBadVHID, "\t\t%d discarded for bad vhid\n", false},
	{carp.StatBadAddrs, "\t\t%d discarded because of a bad address list\n", false},
	// Not in FreeBSD: bsdcarp drops replayed adverts (carp.Counter.Fresh).
	{carp.StatReplay, "\t\t%d discarded as replays\n", false},
	{carp.StatOPackets, "\t%d packet%s sent (IPv4)\n", true},
	{carp.StatOPackets6, "\t%d packet%s sent (IPv6)\n", true},
	{carp.StatONoMem, "\t\t%d send failed due to mbuf memory error\n", false},
}

// FormatNetstat prints the carpstats counters as `netstat -s -p carp` does.
func FormatNetstat(w io.Writer, stats []engine.Counter) error {
	vals := map[string]uint64{}
	for _, c := range stats {
		vals[c.Name] = c.Value
	}
	if _, err := io.WriteString(w, "carp:\n"); err != nil {
		return err
	}
	for _, l := range netstatLines {
		v := vals[l.field]
		var err error
		if l.plural {
			s := "s"
			if v == 1 {
				s = ""
			}
			_, err = fmt.Fprintf(w, l.format, v, s)
		} else {
			_, err = fmt.Fprintf(w, l.format, v)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
