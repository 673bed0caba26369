package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/bsdcarp/bsdcarp/carp"
	"github.com/bsdcarp/bsdcarp/carp/api"
)

// MaxKeyBytes bounds a saved password. The protocol uses only its first
// carp.MaxKeyLen (19) bytes, as BSD ifconfig cuts it; longer ones are kept
// for `ifconfig -k` up to this size.
const MaxKeyBytes = 255

// FieldError is one refused field of a loaded file: Field is its path in the
// file (ifaces[1].vhids[0].advbase), Reason says what is wrong with it.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// ValidIfName checks an interface name, BSD or Linux, against what both
// systems can hold: 1 to 15 bytes of printable ASCII without '/', ':' or
// white space, and neither "." nor "..". The error is the reason only.
func ValidIfName(name string) error {
	switch {
	case name == "":
		return errors.New("empty interface name")
	case len(name) > api.MaxIfNameLen:
		return fmt.Errorf("interface name of %d bytes, longer than %d", len(name), api.MaxIfNameLen)
	case name == "." || name == "..":
		return fmt.Errorf("%q is not an interface name", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || c == '/' || c == ':' {
			return fmt.Errorf("interface name %q contains %q", name, c)
		}
	}
	return nil
}

// Validate checks a configuration as strictly as the command line checks
// what it is told: every knob known, writable and in range; interface names
// Linux can hold; clone flags that match the names; vhid, advbase, advskew,
// key and addresses in range; one vhid number per parent. The error is a
// *FieldError naming the first bad field.
func (c *Config) Validate() error {
	if c.Version != configVersion {
		return fieldErr("version", "%d is not supported (want %d)", c.Version, configVersion)
	}
	knobs := make([]string, 0, len(c.Knobs))
	for k := range c.Knobs {
		knobs = append(knobs, k)
	}
	slices.Sort(knobs)
	for _, name := range knobs {
		if err := validKnob(name, c.Knobs[name]); err != nil {
			return err
		}
	}
	// Field names are built only for an error: a line validates the
	// whole configuration, and formatting one per vhid cost more than the
	// checks (1,020 vhids).
	type use struct{ i, j int }  // ifaces[i].vhids[j], with i + 1 (0: none)
	seen := map[string]int{}     // interface name -> index
	var parents byIfaceVHID[use] // parent and vhid -> its first use
	var vhids [256]int           // of one interface: vhid -> j + 1
	for i, ifc := range c.Ifaces {
		f := func() string { return "ifaces[" + strconv.Itoa(i) + "]" }
		if err := ValidIfName(ifc.Name); err != nil {
			return fieldErr(f()+".name", "%v", err)
		}
		if j, dup := seen[ifc.Name]; dup {
			return fieldErr(f()+".name", "%s is listed twice (also ifaces[%d])", ifc.Name, j)
		}
		seen[ifc.Name] = i
		if clone := api.IsCloneName(ifc.Name); ifc.Clone != clone {
			if clone {
				return fieldErr(f()+".clone", "false, but %s is a carp clone name", ifc.Name)
			}
			return fieldErr(f()+".clone", "true, but %s is not a carpN name", ifc.Name)
		}
		if ifc.Down && !ifc.Clone {
			return fieldErr(f()+".down", "only a carp clone is set down by carpd")
		}
		if ifc.Clone && len(ifc.VHIDs) > 1 {
			return fieldErr(f()+".vhids", "a carp clone has one vhid, not %d", len(ifc.VHIDs))
		}
		if !ifc.Clone {
			clear(vhids[:])
		}
		for j, v := range ifc.VHIDs {
			if err := validVHID(i, j, ifc, v); err != nil {
				return err
			}
			if !ifc.Clone {
				if k := vhids[v.VHID]; k > 0 {
					return fieldErr(vhidField(i, j)+".vhid", "%d is listed twice on %s (also vhids[%d])", v.VHID, ifc.Name, k-1)
				}
				vhids[v.VHID] = j + 1
			}
			// A clone without carpdev finds its parent by subnet at run
			// time: the engine checks those when it resolves them.
			if v.VHID == 0 || v.Carpdev == "" {
				continue
			}
			if other := parents.get(v.Carpdev, v.VHID); other.i > 0 {
				return fieldErr(vhidField(i, j)+".vhid", "vhid %d on %s is already configured by %s", v.VHID, v.Carpdev, vhidField(other.i-1, other.j))
			}
			parents.set(v.Carpdev, v.VHID, use{i + 1, j})
		}
	}
	return nil
}

// sameBut reports whether c is prev but for interface name: every other
// interface of c is the one of prev (the same vhids array, which no one
// changes in place), in the same order. It returns name's index in c, -1
// when c has none.
func (c *Config) sameBut(prev *Config, name string) (int, bool) {
	at, j := -1, 0
	for i, ifc := range c.Ifaces {
		if ifc.Name == name {
			at = i
			continue
		}
		for j < len(prev.Ifaces) && prev.Ifaces[j].Name == name {
			j++
		}
		if j == len(prev.Ifaces) || !sameArray(prev.Ifaces[j], ifc) {
			return -1, false
		}
		j++
	}
	for j < len(prev.Ifaces) && prev.Ifaces[j].Name == name {
		j++
	}
	return at, j == len(prev.Ifaces)
}

// sameArray reports whether a and b are the same interface holding the
// same vhids array.
func sameArray(a, b IfaceConfig) bool {
	return a.Name == b.Name && a.Clone == b.Clone && a.Down == b.Down && len(a.VHIDs) == len(b.VHIDs) &&
		(len(a.VHIDs) == 0 || &a.VHIDs[0] == &b.VHIDs[0])
}

// validAfter reports whether c, a line's result on interface name of
// prev, is valid because prev is (Validate found nothing wrong with it)
// and what changed is: the knobs, and interface name against itself and
// against the others. It does what Validate does for what may have
// changed, without a pass over every vhid; false means "not shown", and
// Validate decides (and words the error).
func (c *Config) validAfter(prev *Config, name string) bool {
	if !prev.valid || c.Version != configVersion {
		return false
	}
	for k, v := range c.Knobs {
		if validKnob(k, v) != nil {
			return false
		}
	}
	i, ok := c.sameBut(prev, name)
	if !ok {
		return false
	}
	if i < 0 {
		return true // name removed: what is left was valid
	}
	ifc := c.Ifaces[i]
	if ValidIfName(ifc.Name) != nil || ifc.Clone != api.IsCloneName(ifc.Name) || (ifc.Down && !ifc.Clone) ||
		(ifc.Clone && len(ifc.VHIDs) > 1) {
		return false
	}
	// Its vhids, and their parents: one (a clone's carpdev) or name itself.
	var has [256]bool
	dev := ifc.Name
	for j, v := range ifc.VHIDs {
		if validVHID(i, j, ifc, v) != nil || (!ifc.Clone && has[v.VHID]) {
			return false
		}
		if ifc.Clone {
			dev = v.Carpdev
		}
		if v.VHID != 0 {
			has[v.VHID] = true
		}
	}
	for k, o := range c.Ifaces {
		switch {
		case k == i:
		case o.Name == ifc.Name:
			return false
		case dev == "":
		case o.Clone:
			// Valid in prev: at most one vhid.
			if len(o.VHIDs) == 1 && o.VHIDs[0].Carpdev == dev && has[o.VHIDs[0].VHID] {
				return false
			}
		case o.Name == dev:
			// Valid in prev: its vhids run on it.
			for _, v := range o.VHIDs {
				if has[v.VHID] {
					return false
				}
			}
		}
	}
	return true
}

// vhidField is the name of vhid j of interface i in errors.
func vhidField(i, j int) string {
	return "ifaces[" + strconv.Itoa(i) + "].vhids[" + strconv.Itoa(j) + "]"
}

// validKnob checks one saved net.inet.carp value as sysctl(8) would check a
// write of it. FreeBSD's knobs are C ints: nothing outside 32 bits.
func validKnob(name string, v int64) error {
	f := "knobs." + name
	k, ok := knobByName(name)
	if !ok {
		return fieldErr(f, "unknown knob (not a net.inet.carp leaf)")
	}
	if k.opaque || k.readOnly {
		return fieldErr(f, "not writable")
	}
	lo, hi := int64(math.MinInt32), int64(math.MaxInt32)
	if k.min <= k.max {
		lo, hi = k.min, k.max
	}
	if v < lo || v > hi || checkKnob(k, v) != nil {
		return fieldErr(f, "%d is out of range %d..%d", v, lo, hi)
	}
	return nil
}

func validVHID(i, j int, ifc IfaceConfig, v VHIDConfig) error {
	// A clone may still wait for its vhid (`ifconfig carp0 create` then
	// an address first): vhid 0 is how the engine keeps it.
	if v.VHID == 0 && !ifc.Clone {
		return fieldErr(vhidField(i, j)+".vhid", "0 is out of range 1..%d", carp.MaxVHID)
	}
	switch {
	case ifc.Clone && v.Carpdev != "":
		if err := ValidIfName(v.Carpdev); err != nil {
			return fieldErr(vhidField(i, j)+".carpdev", "%v", err)
		}
		if api.IsCloneName(v.Carpdev) {
			return fieldErr(vhidField(i, j)+".carpdev", "%s is a carp clone, not a physical interface", v.Carpdev)
		}
	case !ifc.Clone && v.Carpdev != ifc.Name:
		return fieldErr(vhidField(i, j)+".carpdev", "%q, but a vhid of %s runs on %s itself", v.Carpdev, ifc.Name, ifc.Name)
	}
	if v.AdvBase < 1 {
		return fieldErr(vhidField(i, j)+".advbase", "%d is out of range 1..%d", v.AdvBase, math.MaxUint8)
	}
	if v.AdvSkew > carp.MaxAdvSkew {
		return fieldErr(vhidField(i, j)+".advskew", "%d is out of range 0..%d", v.AdvSkew, carp.MaxAdvSkew)
	}
	if err := validVRRP(i, j, v); err != nil {
		return err
	}
	// Never print the key itself.
	if len(v.Key) > MaxKeyBytes {
		return fieldErr(vhidField(i, j)+".key", "%d bytes, longer than %d", len(v.Key), MaxKeyBytes)
	}
	if strings.IndexByte(v.Key, 0) >= 0 {
		return fieldErr(vhidField(i, j)+".key", "contains a NUL byte")
	}
	for k, p := range v.Addrs {
		if err := validVirtualAddr(p); err != nil {
			return fieldErr(vhidField(i, j)+".addrs["+strconv.Itoa(k)+"]", "%v", err)
		}
		if d := slices.IndexFunc(v.Addrs[:k], func(q netip.Prefix) bool { return q.Addr() == p.Addr() }); d >= 0 {
			return fieldErr(vhidField(i, j)+".addrs["+strconv.Itoa(k)+"]", "%s is listed twice (also addrs[%d])", p.Addr(), d)
		}
	}
	return nil
}

// validVRRP checks the version, the VRRPv3 parameters and the peers of
// vhids[j] of ifaces[i].
func validVRRP(i, j int, v VHIDConfig) error {
	switch {
	case v.Version != 0 && v.Version != carp.Version && v.Version != carp.VRRPVersion:
		return fieldErr(vhidField(i, j)+".carpver", "%d is not 2 or 3", v.Version)
	case v.Prio > carp.VRRPMaxPriority:
		return fieldErr(vhidField(i, j)+".vrrpprio", "%d is out of range 1..%d", v.Prio, carp.VRRPMaxPriority)
	case v.Interval > carp.VRRPMaxInterval:
		return fieldErr(vhidField(i, j)+".vrrpinterval", "%d is out of range 1..%d", v.Interval, carp.VRRPMaxInterval)
	case v.Peer.IsValid() && (!v.Peer.Is4() || !usablePeer(v.Peer)):
		return fieldErr(vhidField(i, j)+".peer", "%s is not a unicast IPv4 address", v.Peer)
	case v.Peer6.IsValid() && (!v.Peer6.Is6() || v.Peer6.Is4In6() || !usablePeer(v.Peer6)):
		return fieldErr(vhidField(i, j)+".peer6", "%s is not a unicast IPv6 address", v.Peer6)
	}
	return nil
}

// usablePeer reports whether a can be a unicast peer: a unicast address
// (the multicast group is kept as no peer at all).
func usablePeer(a netip.Addr) bool {
	return !a.IsMulticast() && !a.IsUnspecified() && a.Zone() == "" && a != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// validVirtualAddr checks an address a vhid may own: a unicast address of
// either family with a prefix that claims a subnet (no /0).
func validVirtualAddr(p netip.Prefix) error {
	if !p.IsValid() {
		return errors.New("not an address/prefix")
	}
	a := p.Addr()
	switch {
	case a.Zone() != "":
		return fmt.Errorf("%s has a zone", p)
	case a.Is4In6():
		return fmt.Errorf("%s is an IPv4-mapped IPv6 address", p)
	case a.IsUnspecified():
		return fmt.Errorf("%s is the unspecified address", p)
	case a.IsMulticast():
		return fmt.Errorf("%s is a multicast address", p)
	case a.IsLoopback():
		return fmt.Errorf("%s is a loopback address", p)
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return fmt.Errorf("%s is the broadcast address", p)
	case p.Bits() == 0:
		return fmt.Errorf("%s: a /0 prefix claims every address", p)
	}
	if a.Is4() && p.Bits() <= 30 {
		// The subnet's broadcast address: every host bit set.
		b := a.As4()
		v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		host := uint32(1)<<(32-p.Bits()) - 1
		if v&host == host {
			return fmt.Errorf("%s is the broadcast address of its subnet", p)
		}
	}
	return nil
}

// decodeConfig parses and validates the bytes of config.json: unknown fields,
// trailing data, values that do not fit and anything Validate refuses are
// errors naming the field.
func decodeConfig(b []byte) (*Config, error) {
	c := &Config{}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		if ferr := badPrefix(b); ferr != nil {
			return nil, ferr
		}
		return nil, jsonErr(err)
	}
	if err := dec.Decode(&json.RawMessage{}); err != io.EOF {
		return nil, errors.New("data after the JSON object")
	}
	if c.Knobs == nil {
		c.Knobs = map[string]int64{}
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c.valid = true
	return c, nil
}

// jsonErr words a decoding error by the field it is about where json says.
func jsonErr(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te) && te.Field != "":
		return fieldErr(te.Field, "%s does not fit (want %s)", te.Value, te.Type)
	case errors.As(err, &te):
		return fmt.Errorf("%s where %s is wanted", te.Value, te.Type)
	case errors.As(err, &se):
		return fmt.Errorf("not JSON (at byte %d): %s", se.Offset, strings.TrimPrefix(se.Error(), "json: "))
	case err == io.EOF:
		return errors.New("empty file")
	case err == io.ErrUnexpectedEOF:
		return errors.New("truncated JSON")
	}
	return errors.New(strings.TrimPrefix(err.Error(), "json: "))
}

// badPrefix finds the address that netip refused while decoding, which
// json reports without its field.
func badPrefix(b []byte) error {
	var doc map[string]any
	if json.Unmarshal(b, &doc) != nil {
		return nil
	}
	ifaces, _ := doc["ifaces"].([]any)
	for i, x := range ifaces {
		ifc, _ := x.(map[string]any)
		vhids, _ := ifc["vhids"].([]any)
		for j, y := range vhids {
			v, _ := y.(map[string]any)
			addrs, _ := v["addrs"].([]any)
			for k, z := range addrs {
				s, ok := z.(string)
				if !ok {
					continue
				}
				if _, err := netip.ParsePrefix(s); err != nil && s != "" {
					return fieldErr(fmt.Sprintf("ifaces[%d].vhids[%d].addrs[%d]", i, j, k), "%q is not an address/prefix", s)
				}
			}
		}
	}
	return nil
}

// kernelKnobs are the /proc/sys leaves setKernel records for restoring.
var kernelKnobs = []string{"arp_ignore", "arp_announce", "accept_local"}

// ValidateKernelState checks the contents of kernel.json: only the
// settings tuneParent changes on a Linux interface (net/ipv4/conf/IF/
// arp_ignore, arp_announce and accept_local), each an integer, as /proc/sys printed it. Anything else
// would make carpd write elsewhere under /proc/sys when it restores them.
func ValidateKernelState(m map[string]string) error {
	paths := make([]string, 0, len(m))
	for p := range m {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		f := strconv.Quote(p)
		parts := strings.Split(p, "/")
		if len(parts) != 5 || parts[0] != "net" || parts[1] != "ipv4" || parts[2] != "conf" || !slices.Contains(kernelKnobs, parts[4]) {
			return fieldErr(f, "not a setting carpd changes (net/ipv4/conf/IF/arp_ignore, arp_announce or accept_local)")
		}
		if err := ValidIfName(parts[3]); err != nil {
			return fieldErr(f, "%v", err)
		}
		v := m[p]
		if n, err := strconv.ParseInt(v, 10, 32); err != nil || strconv.FormatInt(n, 10) != v {
			if !utf8.ValidString(v) || len(v) > 32 {
				return fieldErr(f, "value is not an integer")
			}
			return fieldErr(f, "value %q is not an integer", v)
		}
	}
	return nil
}

// decodeKernelState parses and validates the bytes of kernel.json.
func decodeKernelState(b []byte) (map[string]string, error) {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&raw); err != nil {
		return nil, jsonErr(err)
	}
	if err := dec.Decode(&json.RawMessage{}); err != io.EOF {
		return nil, errors.New("data after the JSON object")
	}
	m := make(map[string]string, len(raw))
	for k, v := range raw {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, fieldErr(strconv.Quote(k), "value is not a string")
		}
		m[k] = s
	}
	if err := ValidateKernelState(m); err != nil {
		return nil, err
	}
	return m, nil
}
