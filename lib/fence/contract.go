package fence

import (
	"time"

	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/lease"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// Contract is the timing every node must keep so that a holder that lost
// its lease has stopped writing before anyone else starts:
//
//	a holder renews every Interval (LEASE_TTL/3);
//	a holder whose last successful renewal began RenewBy (LEASE_TTL -
//	  FENCE_MARGIN) ago fences itself, within Fence (FENCE_TIMEOUT);
//	another node takes over only once the holder's heartbeat is
//	  TakeoverAfter (LEASE_TTL + FENCE_MARGIN) old by its own clock;
//	clocks differ by at most Skew (CLOCK_SKEW).
//
// The holder is done by RenewBy + Fence after its last renewal (by its
// clock); the taker starts no earlier than TakeoverAfter - Skew after it.
// So the contract holds when Fence + Skew < 2 * FENCE_MARGIN, and a holder
// gets a second try at renewing before it fences when Interval < RenewBy.
// A configuration that breaks either is refused (78).
type Contract struct {
	TTL, Interval, Margin, Fence, Skew time.Duration
}

// RenewBy is how long a holder may go without a successful renewal.
func (c Contract) RenewBy() time.Duration { return c.TTL - c.Margin }

// TakeoverAfter is how old a holder's heartbeat must be before another
// node takes its environments.
func (c Contract) TakeoverAfter() time.Duration { return c.TTL + c.Margin }

// Load reads the contract from the configuration and checks it.
func Load(cfg *config.Config) (Contract, error) {
	ttl := cfg.Seconds(lease.TTLKey)
	c := Contract{TTL: ttl, Interval: ttl / 3, Margin: ttl / 4, Fence: ttl / 4, Skew: ttl / 10}
	if cfg.Get(MarginKey) != "" {
		c.Margin = cfg.Seconds(MarginKey)
	}
	if cfg.Get(TimeoutKey) != "" {
		c.Fence = cfg.Seconds(TimeoutKey)
	}
	if cfg.Get(SkewKey) != "" {
		c.Skew = cfg.Seconds(SkewKey)
	}
	if c.Fence+c.Skew >= 2*c.Margin {
		return c, sysexits.New(sysexits.Config, "the fencing timing contract is broken: FENCE_TIMEOUT (%s) + CLOCK_SKEW (%s) must be less than twice FENCE_MARGIN (%s), or another node may start before this one has stopped; raise FENCE_MARGIN or lower FENCE_TIMEOUT", c.Fence, c.Skew, c.Margin)
	}
	if c.Interval >= c.RenewBy() {
		return c, sysexits.New(sysexits.Config, "the fencing timing contract is broken: a holder renews every LEASE_TTL/3 (%s) and fences after LEASE_TTL - FENCE_MARGIN (%s) without a renewal, which leaves no second try; lower FENCE_MARGIN below two thirds of LEASE_TTL (%s)", c.Interval, c.RenewBy(), c.TTL)
	}
	return c, nil
}
