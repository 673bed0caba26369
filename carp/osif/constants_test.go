package osif

import (
	"testing"

	"github.com/bsdcarp/bsdcarp/carp"
)

// TestConstantsMatchTheProtocol keeps the adapter's copies of protocol
// constants (it does not import the protocol core) equal to the core's.
func TestConstantsMatchTheProtocol(t *testing.T) {
	if Protocol != carp.ProtoNumber {
		t.Errorf("Protocol = %d, carp.ProtoNumber = %d", Protocol, carp.ProtoNumber)
	}
	if GroupV4 != carp.GroupV4 || GroupV6 != carp.GroupV6 {
		t.Errorf("groups %v %v, carp %v %v", GroupV4, GroupV6, carp.GroupV4, carp.GroupV6)
	}
}
