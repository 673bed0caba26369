package kernelshim

import (
	"testing"

	"github.com/bsdcarp/bsdcarp/carp"
)

// TestTTLMatchesTheProtocol keeps the adapter's send TTL equal to the
// protocol core's CARP_DFLTTL.
func TestTTLMatchesTheProtocol(t *testing.T) {
	if carpTTL != carp.TTL {
		t.Errorf("carpTTL = %d, carp.TTL = %d", carpTTL, carp.TTL)
	}
}
