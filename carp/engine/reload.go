package engine

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Reload replaces the BSD-to-Linux interface map (carpd's SIGHUP) without
// changing the state of any vhid. A new map that would change what a name
// in use means is refused whole, and the old map stays: a name is in use
// when a configured vhid is on it (a FreeBSD 10 style vhid on em0), names it
// as carpdev, or found it as its parent by subnet. Such a name must keep its
// Linux link, and no other BSD name may take that link. Reload returns what
// changed, for the log ("em2=eth2 added", "no change").
func (e *Engine) Reload(ctx context.Context, ifmap map[string]string) (string, error) {
	var summary string
	var rerr error
	err := e.call(ctx, func() { summary, rerr = e.reload(ifmap) })
	if err != nil {
		return "", err
	}
	return summary, rerr
}

func (e *Engine) reload(ifmap map[string]string) (string, error) {
	next := maps.Clone(ifmap)
	if next == nil {
		next = map[string]string{}
	}
	linuxOf := func(m map[string]string, bsd string) string {
		if l, ok := m[bsd]; ok {
			return l
		}
		return bsd
	}
	used := e.usedNames()
	for _, b := range slices.Sorted(maps.Keys(used)) {
		was, now := linuxOf(e.opts.IfMap, b), linuxOf(next, b)
		if was != now {
			return "", fmt.Errorf("%s is used by %s: its link would change from %s to %s", b, used[b], was, now)
		}
		for _, other := range slices.Sorted(maps.Keys(next)) {
			if other != b && next[other] == was {
				return "", fmt.Errorf("%s is used by %s: %s=%s would rename its link %s", b, used[b], other, was, was)
			}
		}
	}
	summary := describeChange(e.opts.IfMap, next)
	e.opts.IfMap = next
	return summary, nil
}

// usedNames returns every BSD interface name a configured vhid depends on,
// with what uses it ("vhid 1 on carp0").
func (e *Engine) usedNames() map[string]string {
	used := map[string]string{}
	add := func(name, user string) {
		if name != "" && used[name] == "" {
			used[name] = user
		}
	}
	for _, ifc := range e.cfg.Ifaces {
		for _, v := range ifc.VHIDs {
			user := fmt.Sprintf("vhid %d on %s", v.VHID, ifc.Name)
			if !ifc.Clone {
				add(ifc.Name, user)
			}
			add(v.Carpdev, user)
		}
	}
	for _, h := range e.hosts {
		add(h.carpdev, fmt.Sprintf("vhid %d on %s", h.cfg.VHID, h.iface))
	}
	return used
}

// describeChange lists the differences between two maps, sorted by BSD name.
func describeChange(old, next map[string]string) string {
	var parts []string
	names := slices.Sorted(maps.Keys(old))
	for _, b := range slices.Sorted(maps.Keys(next)) {
		if _, ok := old[b]; !ok {
			names = append(names, b)
		}
	}
	slices.Sort(names)
	for _, b := range names {
		o, inOld := old[b]
		n, inNext := next[b]
		switch {
		case !inOld:
			parts = append(parts, fmt.Sprintf("%s=%s added", b, n))
		case !inNext:
			parts = append(parts, fmt.Sprintf("%s=%s removed", b, o))
		case o != n:
			parts = append(parts, fmt.Sprintf("%s=%s (was %s)", b, n, o))
		}
	}
	if len(parts) == 0 {
		return "no change"
	}
	return strings.Join(parts, ", ")
}
