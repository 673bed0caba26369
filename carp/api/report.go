package api

import (
	"errors"
	"time"
)

// ReportSchema names the JSON status document (Report) and its version; it
// is the "schema" member of every document and the $id of
// docs/status.schema.json. A change that removes or retypes a member
// bumps the number; new members may be added without one.
const ReportSchema = "https://github.com/bsdcarp/bsdcarp/docs/status.schema.json#v1"

// Report is the machine-readable status that `ifconfig-carp --json`
// prints: every vhid with its state history and counters, the demotion
// and its parts, the host's carpstats and knobs. docs/status.schema.json
// documents it.
type Report struct {
	Schema   string            `json:"schema"`
	Time     time.Time         `json:"time"` // when carpd answered (RFC 3339)
	VHIDs    []ReportVHID      `json:"vhids"`
	Demotion Demotion          `json:"demotion"`
	Stats    map[string]uint64 `json:"stats"` // carpstats by name, and replay
	Knobs    map[string]int64  `json:"knobs"` // net.inet.carp.* by full name
}

// ReportVHID is one vhid of a Report.
type ReportVHID struct {
	Iface   string      `json:"iface"`
	Carpdev string      `json:"carpdev"` // "" while unknown
	VHID    uint8       `json:"vhid"`
	Version uint8       `json:"carpver"`        // 2: CARP, 3: VRRPv3
	CARP    *ReportCARP `json:"carp,omitempty"` // carpver 2
	VRRP    *ReportVRRP `json:"vrrp,omitempty"` // carpver 3
	Peer    string      `json:"peer"`           // where IPv4 adverts go (224.0.0.18: multicast)
	Peer6   string      `json:"peer6"`          // where IPv6 adverts go (ff02::12: multicast)
	Addrs   []string    `json:"addrs"`          // virtual addresses, address/length
	State   string      `json:"state"`          // INIT, BACKUP, MASTER
	// InitReason is set in INIT: one of the api.Init* words.
	InitReason   string             `json:"init_reason,omitempty"`
	Since        time.Time          `json:"since"`
	Transitions  ReportTransitions  `json:"transitions"`
	MasterHeard  *ReportHeard       `json:"master_heard,omitempty"` // BACKUP: the MASTER it follows
	Adverts      ReportAdverts      `json:"adverts"`
	Drops        map[string]uint64  `json:"drops"` // by VHIDDropNames
	Demotion     ReportVHIDDemotion `json:"demotion"`
	AuthMismatch string             `json:"auth_mismatch,omitempty"`
	Key          string             `json:"key,omitempty"` // only for root with -k
}

// ReportCARP are the CARP parameters of a vhid.
type ReportCARP struct {
	AdvBase uint8 `json:"advbase"`
	AdvSkew uint8 `json:"advskew"`
}

// ReportVRRP are the VRRPv3 parameters of a vhid.
type ReportVRRP struct {
	Priority uint8  `json:"vrrpprio"`
	Interval uint16 `json:"vrrpinterval"` // centiseconds
}

// ReportTransitions counts state changes.
type ReportTransitions struct {
	Count    uint64 `json:"count"`
	ToMaster uint64 `json:"to_master"`
}

// ReportHeard is the MASTER a BACKUP last heard.
type ReportHeard struct {
	Addr string    `json:"addr"`
	At   time.Time `json:"at"`
}

// ReportAdverts counts adverts accepted and sent.
type ReportAdverts struct {
	In  uint64 `json:"in"`
	Out uint64 `json:"out"`
}

// ReportVHIDDemotion says which demotions a vhid counts in.
type ReportVHIDDemotion struct {
	IfDown  bool `json:"ifdown"`
	SendErr bool `json:"senderr"`
}

// ErrNoDetail is NewReport's answer to a status without details: a carpd
// that predates them.
var ErrNoDetail = errors.New("carpd sent no detailed status (too old for --json?)")

// NewReport builds the Report of st, a status asked with Detail, answered
// at now. A vhid with number 0 (a clone not configured yet) is no vhid and
// is left out.
func NewReport(st Status, now time.Time) (Report, error) {
	if st.Demotion == nil {
		return Report{}, ErrNoDetail
	}
	r := Report{Schema: ReportSchema, Time: now.UTC(), VHIDs: []ReportVHID{}, Demotion: *st.Demotion,
		Stats: make(map[string]uint64, len(st.Stats)), Knobs: make(map[string]int64, len(st.Knobs))}
	for _, c := range st.Stats {
		r.Stats[c.Name] = c.Value
	}
	for _, k := range st.Knobs {
		r.Knobs[k.Name] = k.Value
	}
	for i := range st.VHIDs {
		v := &st.VHIDs[i]
		if v.VHID == 0 {
			continue
		}
		if v.Detail == nil {
			return Report{}, ErrNoDetail
		}
		d := v.Detail
		rv := ReportVHID{Iface: v.Iface, Carpdev: v.Carpdev, VHID: v.VHID, Version: 2,
			Peer: v.Peer, Peer6: v.Peer6, Addrs: make([]string, len(v.Addrs)),
			State: v.State, InitReason: v.InitReason, Since: d.Since.UTC(),
			Transitions:  ReportTransitions{Count: d.Transitions, ToMaster: d.ToMaster},
			Adverts:      ReportAdverts{In: d.AdvertsIn, Out: d.AdvertsOut},
			Drops:        make(map[string]uint64, len(d.Drops)),
			Demotion:     ReportVHIDDemotion{IfDown: d.IfDown, SendErr: d.SendErr},
			AuthMismatch: v.AuthMismatch, Key: v.Key}
		if v.Version == 3 {
			rv.Version, rv.VRRP = 3, &ReportVRRP{Priority: v.Priority, Interval: v.Interval}
		} else {
			rv.CARP = &ReportCARP{AdvBase: v.AdvBase, AdvSkew: v.AdvSkew}
		}
		if rv.Peer == "" {
			rv.Peer = MulticastPeer
		}
		if rv.Peer6 == "" {
			rv.Peer6 = MulticastPeer6
		}
		for j, p := range v.Addrs {
			rv.Addrs[j] = p.String()
		}
		for j, n := range VHIDDropNames {
			rv.Drops[n] = d.Drops[j]
		}
		if v.State == StateBackup && d.MasterAddr.IsValid() {
			rv.MasterHeard = &ReportHeard{Addr: d.MasterAddr.String(), At: d.MasterAt.UTC()}
		}
		r.VHIDs = append(r.VHIDs, rv)
	}
	return r, nil
}
