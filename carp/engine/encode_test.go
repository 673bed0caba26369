package engine

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"slices"
	"testing"
)

// The saver's incremental encoding is json.Marshal of the whole
// configuration, byte for byte, after every kind of change.
func TestSaverEncodeMatchesMarshal(t *testing.T) {
	var s saver
	c := &Config{Version: configVersion, Knobs: map[string]int64{}}
	check := func(what string) {
		t.Helper()
		want, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.encode(c)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s:\n got %s\nwant %s", what, got, want)
		}
	}
	check("empty")
	c = c.clone()
	c.Ifaces = append(c.Ifaces, IfaceConfig{Name: "em0", VHIDs: []VHIDConfig{
		{VHID: 1, Carpdev: "em0", AdvBase: 1, AdvSkew: 100, Key: "k<&>\u00e9", Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.5/32")}}}})
	check("one vhid")
	c = c.clone()
	c.Ifaces = append(c.Ifaces, IfaceConfig{Name: "carp0", Clone: true, Down: true, VHIDs: []VHIDConfig{{AdvBase: 1}}})
	c.Knobs["preempt"] = 1
	check("a clone and a knob")
	c = c.clone()
	c.Ifaces[0].VHIDs[0].AdvSkew = 5
	check("advskew")
	c = c.clone()
	c.Ifaces[0].VHIDs[0].Addrs[0] = netip.MustParsePrefix("10.0.0.6/32")
	check("an address changed in place in a copy")
	c = c.clone()
	c.Ifaces[0].VHIDs = append(c.Ifaces[0].VHIDs, VHIDConfig{VHID: 2, Carpdev: "em0", AdvBase: 2})
	check("a second vhid")
	c = c.cloneFor("em0")
	c.Ifaces[0].VHIDs = append(c.Ifaces[0].VHIDs, VHIDConfig{VHID: 3, Carpdev: "em0", AdvBase: 1, Key: "three"})
	check("a third vhid, the other interface shared")
	c = c.cloneFor("em0")
	c.Ifaces[0].VHIDs = slices.Delete(c.Ifaces[0].VHIDs, 0, 1)
	check("the first vhid removed")
	c = c.cloneFor("em0")
	c.Ifaces[0].VHIDs[0], c.Ifaces[0].VHIDs[1] = c.Ifaces[0].VHIDs[1], c.Ifaces[0].VHIDs[0]
	c.Ifaces[0].VHIDs[1].AdvSkew = 7
	check("two vhids swapped, one changed")
	c = c.cloneFor("carp0")
	c.Ifaces[1].Down = false
	check("a clone up")
	c = c.cloneFor("em0")
	c.Ifaces[0].VHIDs = nil
	check("no vhids left")
	c = c.cloneFor("em0")
	c.Ifaces[0].VHIDs = []VHIDConfig{{VHID: 3, Carpdev: "em0", AdvBase: 1, Key: "three"}}
	check("a vhid again")
	c = c.clone()
	c.Ifaces = c.Ifaces[1:]
	delete(c.Knobs, "preempt")
	check("interface removed")
	c = c.clone()
	c.Ifaces = nil
	check("nothing")
}
