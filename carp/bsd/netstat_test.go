package bsd

import (
	"strings"
	"testing"

	"github.com/bsdcarp/bsdcarp/carp/api"
)

func TestNetstatReportUsesFreeBSDWordingAndPlurals(t *testing.T) {
	var b strings.Builder
	err := FormatNetstat(&b, []api.Counter{{Name: "ipackets", Value: 12}, {Name: "ipackets6", Value: 1}, {Name: "badauth", Value: 3}, {Name: "opackets", Value: 0}, {Name: "replay", Value: 5}})
	if err != nil {
		t.Fatal(err)
	}
	want := "carp:\n" +
		"\t12 packets received (IPv4)\n" +
		"\t1 packet received (IPv6)\n" +
		"\t\t0 packets discarded for wrong TTL\n" +
		"\t\t0 packets shorter than header\n" +
		"\t\t0 discarded for bad checksums\n" +
		"\t\t0 discarded packets with a bad version\n" +
		"\t\t0 discarded because packet too short\n" +
		"\t\t3 discarded for bad authentication\n" +
		"\t\t0 discarded for bad vhid\n" +
		"\t\t0 discarded because of a bad address list\n" +
		"\t\t5 discarded as replays\n" +
		"\t0 packets sent (IPv4)\n" +
		"\t0 packets sent (IPv6)\n" +
		"\t\t0 send failed due to mbuf memory error\n"
	if b.String() != want {
		t.Fatalf("got:\n%q\nwant:\n%q", b.String(), want)
	}
}
