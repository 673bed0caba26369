package api

import "strings"

// ifNameSize is IFNAMSIZ, the size of an interface name buffer with its
// terminating NUL, 16 bytes in both Linux (include/uapi/linux/if.h) and
// FreeBSD (sys/net/if.h).
const ifNameSize = 16

// MaxIfNameLen is the longest interface name Linux can hold (IFNAMSIZ - 1);
// FreeBSD's ifconfig cuts a longer one with strlcpy into IFNAMSIZ.
const MaxIfNameLen = ifNameSize - 1

// SysctlPrefix is the node under which every carp sysctl lives.
const SysctlPrefix = "net.inet.carp."

// IsCloneName reports whether name is a carp pseudo-interface name (carpN):
// the cloned interfaces of dialects A and B. As FreeBSD's ifc_name2unit,
// a unit number with a leading zero (carp00, carp01) is not one: with
// clones made on demand, such a typo must not become a second interface.
func IsCloneName(name string) bool {
	rest, ok := strings.CutPrefix(name, "carp")
	if !ok || rest == "" || (rest[0] == '0' && len(rest) > 1) {
		return false
	}
	for _, r := range rest {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
