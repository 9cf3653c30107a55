//go:build linux

package lease_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/history"
	"github.com/envhooks/envhooks/lib/journal"
	"github.com/envhooks/envhooks/lib/lease"
)

// TestRecords runs the records contract (journal, history) against every
// driver, each record written on one node and read on another.
func TestRecords(t *testing.T) {
	for _, driver := range []string{"file", "nfs", "etcd"} {
		t.Run(driver, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			ss := stores(t, driver, 3)
			recs := make([]lease.Records, len(ss))
			for i, s := range ss {
				r, err := lease.RecordsOf(s)
				require.NoError(t, err)
				recs[i] = r
			}
			// A journal written by one node, replaced, read by another.
			for _, step := range []string{journal.Begun, journal.Stopped, journal.Released, journal.Registered} {
				require.NoError(t, journal.Save(ctx, recs[0], &journal.Journal{JName: "web1", From: "node0", To: "node1", Step: step, Direction: journal.Forward}))
				j, err := journal.Load(ctx, recs[1], "web1")
				require.NoError(t, err)
				require.NotNil(t, j)
				assert.Equal(t, step, j.Step)
			}
			open, err := journal.Open(ctx, recs[2])
			require.NoError(t, err)
			assert.Equal(t, []string{"web1"}, open)
			require.NoError(t, journal.Close(ctx, recs[1], "web1"))
			j, err := journal.Load(ctx, recs[0], "web1")
			require.NoError(t, err)
			assert.Nil(t, j)
			// History: three nodes append at once, nothing is lost, the
			// bound holds, the leases are not disturbed.
			var wg sync.WaitGroup
			for i, r := range recs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for k := range 5 {
						assert.NoError(t, history.Append(ctx, r, history.Event{JName: "web1", Event: "register", Node: fmt.Sprintf("node%d", i), By: fmt.Sprintf("node%d-%d", i, k)}, 100))
					}
				}()
			}
			wg.Wait()
			evs, err := history.List(ctx, recs[2], "web1")
			require.NoError(t, err)
			assert.Len(t, evs, 15)
			require.NoError(t, history.Append(ctx, recs[0], history.Event{JName: "web1", Event: "move", By: "node0"}, 4))
			evs, err = history.List(ctx, recs[1], "web1")
			require.NoError(t, err)
			require.Len(t, evs, 4)
			assert.Equal(t, "move", evs[3].Event, "the newest kept last")
			_, err = ss[0].Acquire(ctx, "web1", "node0")
			require.NoError(t, err)
			ls, err := ss[1].List(ctx)
			require.NoError(t, err)
			require.Len(t, ls, 1, "records are not leases")
			assert.Equal(t, "node0", ls[0].Node)
		})
	}
}
