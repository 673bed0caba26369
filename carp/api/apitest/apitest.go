// Package apitest holds test data of the status the BSD commands get from
// carpd, for the tests and benchmarks of several packages.
package apitest

import (
	"net/netip"

	"github.com/bsdcarp/bsdcarp/carp/api"
)

// Status is a host with lo and em0 and n vhids: n-1 on aliases of em0
// (dialect C) and one on the clone carp0 (dialect A), as a firewall with
// 255 vhids reports itself.
func Status(n int) api.Status {
	st := api.Status{
		Links: []api.LinkStatus{
			{Name: "lo", Index: 1, MTU: 65536, Up: true, Running: true, Loopback: true, Multicast: true,
				Addrs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8"), netip.MustParsePrefix("::1/128")}},
			{Name: "em0", Index: 2, MAC: "76:5c:4b:11:e5:2a", MTU: 1500, Up: true, Running: true, Carrier: true,
				Broadcast: true, Multicast: true, Kind: "veth",
				Addrs: []netip.Prefix{netip.MustParsePrefix("10.99.0.1/16"), netip.MustParsePrefix("fe80::745c:4bff:fe11:e52a/64")}},
		},
		Clones: []api.CloneStatus{{Name: "carp0", Up: true, MTU: 1500}},
	}
	for i := 1; i < n; i++ {
		st.VHIDs = append(st.VHIDs, api.VHIDStatus{Iface: "em0", Carpdev: "em0", VHID: uint8(i), AdvBase: 1, State: api.StateMaster,
			Addrs: []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 99, byte(i/250 + 1), byte(i%250 + 1)}), 32)}})
	}
	st.VHIDs = append(st.VHIDs, api.VHIDStatus{Iface: "carp0", Carpdev: "em0", VHID: uint8(n), AdvBase: 1, State: api.StateBackup,
		Addrs: []netip.Prefix{netip.MustParsePrefix("10.99.200.1/24")}})
	for _, k := range []string{"ifdown_demotion_factor", "senderr_demotion_factor", "demotion", "log", "preempt", "dscp", "allow", "arpbalance", "suppress_preempt"} {
		st.Knobs = append(st.Knobs, api.Knob{Name: api.SysctlPrefix + k, Value: 1, Description: "a description of " + k})
	}
	for _, c := range api.CarpstatsNames {
		st.Stats = append(st.Stats, api.Counter{Name: c, Value: 12345})
	}
	st.Stats = append(st.Stats, api.Counter{Name: api.StatReplay})
	return st
}
