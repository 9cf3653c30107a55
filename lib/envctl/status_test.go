package envctl

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/envhooks/envhooks/lib/inventory"
	"github.com/envhooks/envhooks/lib/lease"
	"github.com/envhooks/envhooks/lib/state"
)

// The decision table of envctl status, row by row: what this node's
// inventory, the lease and the state record say, and the state named.
func TestClassify(t *testing.T) {
	owned := func(node string, gen uint64) *lease.Lease {
		return &lease.Lease{JName: "web1", Node: node, Generation: gen}
	}
	reg := func(gen uint64) *inventory.Record {
		return &inventory.Record{JName: "web1", Kind: Jail, Generation: gen}
	}
	att := func(gen uint64, actions int) *state.Record {
		return &state.Record{JName: "web1", Generation: gen, Actions: make([]state.Action, actions)}
	}
	cases := []struct {
		name    string
		f       facts
		state   string
		advises string // a piece of the advice; "" for none
	}{
		{"nothing anywhere", facts{}, "free", ""},
		{"registered, owned, all mounted", facts{inventory: reg(3), lease: owned("a", 3), attached: att(3, 3), mounts: 3, mounted: 3}, "registered-here", ""},
		{"registered, owned, one mount gone", facts{inventory: reg(3), lease: owned("a", 3), attached: att(3, 3), mounts: 3, mounted: 2}, "interrupted", "envctl jregister web1 again"},
		{"registered, owned, nothing attached", facts{inventory: reg(3), lease: owned("a", 3)}, "interrupted", "not fully attached"},
		{"registered under an older generation", facts{inventory: reg(2), lease: owned("a", 3), attached: att(0, 3), mounted: 3}, "stale", "lost ownership once; run envctl jregister web1"},
		{"attached under an older generation", facts{inventory: reg(3), lease: owned("b", 5), attached: att(3, 3), mounted: 3}, "stale", "run mnt-stop -j web1 before anything else"},
		{"registered here, owned by another", facts{inventory: reg(3), lease: owned("b", 3)}, "stale", "b owns it now"},
		{"owned by another, nothing here", facts{lease: owned("b", 4)}, "owned-elsewhere", ""},
		{"owned by another, storage still attached", facts{lease: owned("b", 4), attached: att(0, 2), mounted: 2}, "interrupted", "b owns it but storage is still attached here"},
		{"owned here, not registered", facts{lease: owned("a", 1)}, "interrupted", "stopped half way"},
		{"attached, no lease, no record", facts{attached: att(0, 1), mounted: 1}, "interrupted", "envctl jregister web1 or envctl junregister web1"},
		{"a VM half way", facts{kind: VM, lease: owned("a", 1)}, "interrupted", "envctl bregister web1 or envctl bunregister web1"},
		// An iSCSI environment's record holds a login (a command) besides its
		// mount: all its mounts in place is registered-here all the same.
		// A record that cannot be read is read as absent: what the others
		// say must not pass for the whole truth.
		{"a damaged record beside a free-looking rest", facts{damaged: true}, "damaged", "cannot be read"},
		{"a damaged record beside a full registration", facts{damaged: true, inventory: reg(3), lease: owned("a", 3), attached: att(3, 3), mounts: 3, mounted: 3}, "damaged", "move it aside"},
		{"a login and its mount in place", facts{inventory: reg(3), lease: owned("a", 3), attached: att(3, 2), mounts: 1, mounted: 1}, "registered-here", ""},
	}
	for _, tc := range cases {
		tc.f.node, tc.f.jname = "a", "web1"
		if tc.f.kind == "" {
			tc.f.kind = Jail
		}
		got, advice := classify(tc.f)
		assert.Equal(t, tc.state, got, tc.name)
		if tc.advises == "" {
			assert.Empty(t, advice, tc.name)
		} else {
			assert.Contains(t, advice, tc.advises, tc.name)
		}
	}
}
