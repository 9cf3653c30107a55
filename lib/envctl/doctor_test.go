package envctl

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/envhooks/envhooks/lib/doctor"
)

// The clock check's thresholds: within a second is fine, beyond a third of
// LEASE_TTL (the heartbeat interval) heartbeats are misjudged; either way
// round.
func TestClockFinding(t *testing.T) {
	ttl := 30 * time.Second
	for _, c := range []struct {
		skew   time.Duration
		status string
	}{{0, doctor.OK}, {900 * time.Millisecond, doctor.OK}, {-900 * time.Millisecond, doctor.OK}, {2 * time.Second, doctor.Warn},
		{-9 * time.Second, doctor.Warn}, {11 * time.Second, doctor.Fail}, {-11 * time.Second, doctor.Fail}} {
		f := clockFinding(c.skew, time.Millisecond, ttl)
		assert.Equal(t, c.status, f.Status, "%s: %+v", c.skew, f)
		if c.skew < 0 {
			assert.Contains(t, f.Detail, "behind")
		} else if c.skew > 0 {
			assert.Contains(t, f.Detail, "ahead of")
		}
		if f.Status == doctor.Fail {
			assert.Equal(t, 78, f.Code)
		}
	}
}
