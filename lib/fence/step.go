package fence

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/envhooks/envhooks/lib/backend"
	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/logging"
	"github.com/envhooks/envhooks/lib/run"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// Request names what a takeover is about to take: environment JName from
// node Victim, which holds its lease at Generation.
type Request struct {
	JName      string
	Victim     string
	Generation uint64
	// Forced: the operator said Victim is down (--force --from); else the
	// takeover found Victim's heartbeat expired (--takeover).
	Forced bool
}

// Step is the fence step every takeover runs before it takes the lease
// from another node; envctl's jregister --takeover and --force run it,
// and so can anything else that moves an environment off a node:
//
//	step, err := fence.NewStep(cfg, backends, runner, log)
//	how, err := step.Fence(ctx, fence.Request{JName: j, Victim: old, Generation: gen})
//
// An error means the victim may still write: the takeover must stop.
type Step struct {
	Hook        string        // FENCE_HOOK; "" none
	HookTimeout time.Duration // FENCE_HOOK_TIMEOUT
	Witness     *Witness      // FENCE_WITNESS_DIR; nil none
	// Storage says how the backend fences at the storage when this node
	// attaches (an iSCSI reservation preempted), "" when it does not.
	Storage  string
	Contract Contract
	Runner   run.Runner
	Log      *logging.Logger
}

// NewStep reads the fence step's configuration: FENCE_HOOK (checked as a
// configured executable), the witness, the timing contract, and whether the
// configured backend fences at the storage.
func NewStep(cfg *config.Config, backends backend.Registry, runner run.Runner, log *logging.Logger) (*Step, error) {
	c, err := Load(cfg)
	if err != nil {
		return nil, err
	}
	s := &Step{Hook: cfg.Get(HookKey), HookTimeout: cfg.Seconds(HookTimeoutKey), Contract: c, Runner: runner, Log: log}
	if s.Hook != "" {
		if err := run.CheckExecutable(s.Hook); err != nil {
			return nil, cfg.Errorf(HookKey, "%v", err)
		}
	}
	if dir := cfg.Get(WitnessKey); dir != "" {
		s.Witness = &Witness{Dir: dir}
	}
	if backends != nil {
		if _, b, err := backends.Open(cfg); err == nil {
			if f, ok := b.(backend.StorageFencer); ok {
				s.Storage = f.StorageFence()
			}
		}
	}
	return s, nil
}

// Fence makes sure r.Victim no longer writes r.JName, and says how:
//
//  1. the witness shows the victim fenced itself out of this generation:
//     done, nothing else is needed;
//  2. the victim is alive on the shared storage (its witness record is
//     fresh) and did not fence itself: a --takeover is refused (77), since
//     the victim is sitting out a lease store outage with its environments
//     running, or is still fencing; only the operator's --force goes on;
//  3. FENCE_HOOK is configured: it runs; its failure stops the takeover;
//  4. a --force of a victim alive on the storage without FENCE_HOOK:
//     refused (77), as in 2;
//  5. otherwise the takeover relies on the backend's storage fence at
//     attach (an iSCSI reservation) or on the victim's self-fencing, which
//     the timing contract guarantees for a victim whose heartbeat expired
//     (--takeover), and nothing for a --force whose victim is still up.
func (s *Step) Fence(ctx context.Context, r Request) (string, error) {
	var rec *Record
	if s.Witness != nil {
		wctx, cancel := context.WithTimeout(ctx, s.Contract.Interval)
		var err error
		rec, err = s.Witness.Read(wctx, r.Victim)
		cancel()
		if err != nil && s.Hook == "" {
			return "", sysexits.New(sysexits.Unavailable, "cannot read %s's witness record in %s: %v; without it nothing says %s stopped writing %s (configure FENCE_HOOK, or --no-fence if you know %s is down)", r.Victim, s.Witness.Dir, err, r.Victim, r.JName, r.Victim)
		}
		if rec != nil && rec.Fenced[r.JName] >= r.Generation && r.Generation > 0 {
			return fmt.Sprintf("%s fenced itself out of %s (generation %d), says its witness record", r.Victim, r.JName, r.Generation), nil
		}
	}
	alive := rec != nil && time.Since(rec.Written) < s.Contract.TakeoverAfter()
	if alive && !r.Forced {
		return "", sysexits.New(sysexits.NoPerm, "refusing to take %s from %s: %s is alive on the shared storage (its witness record in %s is %s old) and did not fence itself: it cannot reach the lease store, or the store was down for everyone, and it still runs %s; wait for it to renew or to fence itself, or use --force --from %s if you know it must go",
			r.JName, r.Victim, r.Victim, s.Witness.Dir, time.Since(rec.Written).Round(time.Second), r.JName, r.Victim)
	}
	if s.Hook != "" {
		argv := []string{s.Hook, r.Victim, r.JName, strconv.FormatUint(r.Generation, 10)}
		s.Log.Action("fencing %s off %s: %s", r.Victim, r.JName, run.Quote(argv))
		if _, err := s.Runner.Run(ctx, run.Cmd{Argv: argv, Timeout: s.HookTimeout, Configured: true}); err != nil {
			return "", sysexits.New(sysexits.Unavailable, "FENCE_HOOK could not fence %s off %s: %v; the takeover stops (it would let two nodes write; use --no-fence only if you know %s is down)", r.Victim, r.JName, err, r.Victim)
		}
		return "FENCE_HOOK fenced " + r.Victim, nil
	}
	if alive {
		return "", sysexits.New(sysexits.NoPerm, "refusing to take %s from %s: %s is alive on the shared storage (its witness record in %s is %s old) and nothing fences it: configure FENCE_HOOK, or use --no-fence if you know %s is down",
			r.JName, r.Victim, r.Victim, s.Witness.Dir, time.Since(rec.Written).Round(time.Second), r.Victim)
	}
	switch {
	case s.Storage != "":
		return s.Storage + " at attach", nil
	case r.Forced:
		s.Log.Warn("no fence is configured (FENCE_HOOK): nothing stops %s if it still writes %s", r.Victim, r.JName)
		return "no fence (--force: the operator says " + r.Victim + " is down)", nil
	}
	return fmt.Sprintf("%s's self-fencing (its heartbeat is over LEASE_TTL + FENCE_MARGIN = %s old)", r.Victim, s.Contract.TakeoverAfter()), nil
}
