package engine

import (
	"context"
	"io"
	"net"
	"net/netip"
	"testing"

	"github.com/bsdcarp/bsdcarp/carp/api"
	"github.com/bsdcarp/bsdcarp/carp/osif"
	"github.com/bsdcarp/bsdcarp/internal/loglines"
	"github.com/bsdcarp/bsdcarp/kernelshim/memkernel"
)

// BenchmarkStatus255 is Engine.Status with 255 vhids on aliases of em0:
// what carpd does for every status command, the loop's round trip
// included.
func BenchmarkStatus255(b *testing.B) {
	k := memkernel.NewMemory()
	k.AddLink(osif.Link{Name: "em0", MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, MTU: 1500,
		AdminUp: true, Carrier: true, Running: true, Broadcast: true, Multicast: true, Kind: "veth",
		Addrs: []netip.Prefix{netip.MustParsePrefix("10.99.0.1/16")}}, memkernel.NewSegment())
	e, err := New(Options{Kernel: k, Logger: loglines.New(io.Discard, false)})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}()
	<-e.Ready()
	for i := 1; i <= 255; i++ {
		vip := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 99, byte(i/250 + 1), byte(i%250 + 1)}), 32)
		if err := e.Ifconfig(ctx, api.IfconfigRequest{Iface: "em0", Ops: []api.Op{{Kind: api.OpVHID, Int: i},
			{Kind: api.OpPass, Str: "p"}, {Kind: api.OpAddr, Prefix: vip, Alias: true}}}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		st, err := e.Status(ctx, api.StatusQuery{})
		if err != nil || len(st.VHIDs) != 255 {
			b.Fatal(err, len(st.VHIDs))
		}
	}
}
