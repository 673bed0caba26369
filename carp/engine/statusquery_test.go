package engine

import (
	"context"
	"net/netip"
	"reflect"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bsdcarp/bsdcarp/carp/api"
	"github.com/bsdcarp/bsdcarp/kernelshim/memkernel"
)

// TestStatusQueryBuildsWhatTheNarrowedWholeHolds: the engine builds only
// what a status query wants, and that is exactly what the whole status
// narrowed by api.StatusQuery.Narrow holds.
func TestStatusQueryBuildsWhatTheNarrowedWholeHolds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		node := newNode(t, memkernel.NewSegment(), "10.0.0.2/16", "")
		defer node.stop(t)
		runbook284(t, node, 100)
		node.ifconfig(t, "em0", api.Op{Kind: api.OpVHID, Int: 7}, api.Op{Kind: api.OpPass, Str: "p"},
			api.Op{Kind: api.OpAddr, Prefix: netip.MustParsePrefix("10.0.7.1/32"), Alias: true})
		time.Sleep(5 * time.Second)
		synctest.Wait()
		ctx := context.Background()
		whole, err := node.e.Status(ctx, api.StatusQuery{ShowKeys: true})
		if err != nil || len(whole.VHIDs) != 2 || len(whole.Links) == 0 {
			t.Fatalf("whole status: %+v %v", whole, err)
		}
		for _, q := range []api.StatusQuery{{Iface: "em0"}, {Iface: "carp0", ShowKeys: true}, {Iface: "carp9"}, {NoIfaces: true}, {}} {
			got, err := node.e.Status(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			want := q.Narrow(whole)
			if !q.ShowKeys {
				for i := range want.VHIDs {
					want.VHIDs[i].Key = ""
				}
			}
			if !reflect.DeepEqual(emptyNil(got), emptyNil(want)) {
				t.Errorf("%+v:\n got %+v\nwant %+v", q, got, want)
			}
		}
	})
}

// emptyNil makes the empty lists of st nil, so that statuses compare by
// content.
func emptyNil(st api.Status) api.Status {
	if len(st.Links) == 0 {
		st.Links = nil
	}
	if len(st.Clones) == 0 {
		st.Clones = nil
	}
	if len(st.VHIDs) == 0 {
		st.VHIDs = nil
	}
	return st
}
