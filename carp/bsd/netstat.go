package bsd

import (
	"fmt"
	"io"

	"github.com/bsdcarp/bsdcarp/carp/api"
)

// netstatLines are the lines of FreeBSD's `netstat -s -p carp`, in its order,
// keyed by carpstats field. plural marks the lines whose noun takes an "s"
// unless the count is 1.
var netstatLines = []struct {
	field  string
	format string
	plural bool
}{
	{api.StatIPackets, "\t%d packet%s received (IPv4)\n", true},
	{api.StatIPackets6, "\t%d packet%s received (IPv6)\n", true},
	{api.StatBadTTL, "\t\t%d packet%s discarded for wrong TTL\n", true},
	{api.StatHDrops, "\t\t%d packet%s shorter than header\n", true},
	{api.StatBadSum, "\t\t%d discarded for bad checksum%s\n", true},
	{api.StatBadVer, "\t\t%d discarded packet%s with a bad version\n", true},
	{api.StatBadLen, "\t\t%d discarded because packet too short\n", false},
	{api.StatBadAuth, "\t\t%d discarded for bad authentication\n", false},
	{api.StatBadVHID, "\t\t%d discarded for bad vhid\n", false},
	{api.StatBadAddrs, "\t\t%d discarded because of a bad address list\n", false},
	// Not in FreeBSD: bsdcarp drops replayed adverts (the protocol core's Counter.Fresh).
	{api.StatReplay, "\t\t%d discarded as replays\n", false},
	{api.StatOPackets, "\t%d packet%s sent (IPv4)\n", true},
	{api.StatOPackets6, "\t%d packet%s sent (IPv6)\n", true},
	{api.StatONoMem, "\t\t%d send failed due to mbuf memory error\n", false},
}

// FormatNetstat prints the carpstats counters as `netstat -s -p carp` does.
func FormatNetstat(w io.Writer, stats []api.Counter) error {
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
