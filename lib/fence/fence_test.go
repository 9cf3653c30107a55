package fence

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/logging"
	"github.com/envhooks/envhooks/lib/run"
	"github.com/envhooks/envhooks/lib/sysexits"
)

func load(t *testing.T, lines ...string) (*config.Config, error) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "envhooks.conf")
	require.NoError(t, os.WriteFile(f, []byte(strings.Join(lines, "\n")+"\n"), 0o600))
	return config.LoadFile(f)
}

func contract(t *testing.T, lines ...string) (Contract, error) {
	t.Helper()
	cfg, err := load(t, lines...)
	require.NoError(t, err)
	return Load(cfg)
}

// The defaults keep the contract; each way of breaking it is refused with
// 78 and names the keys to change.
func TestContract(t *testing.T) {
	c, err := contract(t, "LEASE_TTL=30")
	require.NoError(t, err)
	assert.Equal(t, 10*time.Second, c.Interval)
	assert.Equal(t, 22500*time.Millisecond, c.RenewBy())
	assert.Equal(t, 37500*time.Millisecond, c.TakeoverAfter())
	// The holder is done by RenewBy + Fence after its last renewal; the
	// taker starts no earlier than TakeoverAfter - Skew after it.
	assert.Less(t, c.RenewBy()+c.Fence, c.TakeoverAfter()-c.Skew)

	for _, tc := range []struct {
		lines []string
		says  string
	}{
		{[]string{"LEASE_TTL=30", "FENCE_MARGIN=2"}, "must be less than twice FENCE_MARGIN"},
		{[]string{"LEASE_TTL=30", "FENCE_MARGIN=5", "FENCE_TIMEOUT=8", "CLOCK_SKEW=2"}, "must be less than twice FENCE_MARGIN"},
		{[]string{"LEASE_TTL=30", "FENCE_MARGIN=21", "FENCE_TIMEOUT=10"}, "leaves no second try"},
	} {
		_, err := contract(t, tc.lines...)
		assert.Equal(t, sysexits.Config, sysexits.Code(err), "%v: %v", tc.lines, err)
		assert.ErrorContains(t, err, tc.says)
		assert.NotContains(t, err.Error(), "\n")
	}
	_, err = load(t, "FENCE_MARGIN=soon")
	assert.Equal(t, sysexits.Config, sysexits.Code(err))
}

func TestJudge(t *testing.T) {
	c := Contract{TTL: 30 * time.Second, Interval: 10 * time.Second, Margin: 7 * time.Second, Fence: 7 * time.Second, Skew: 3 * time.Second}
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	reached := now.Add(-25 * time.Second) // a's last renewal
	self := Record{Node: "a", Written: now, Reached: reached}

	// b writes its record and reaches the store: a alone is cut off.
	v := Judge([]Record{self, {Node: "b", Written: now.Add(-time.Second), Reached: now.Add(-2 * time.Second)}}, "a", reached, c, now)
	assert.True(t, v.Isolated, v.Why)
	assert.Contains(t, v.Why, "node b reached the lease store")

	// b is alive on the storage but has not reached the store since a
	// did (within an interval and the skew): the store is down for all.
	v = Judge([]Record{self, {Node: "b", Written: now.Add(-time.Second), Reached: reached.Add(12 * time.Second)}}, "a", reached, c, now)
	assert.False(t, v.Isolated, v.Why)
	assert.Contains(t, v.Why, "down for everyone")

	// b reaches the store again, but only since an outage that a went
	// through too: b's run of renewals began after a last renewed, so a
	// may be reconnecting still, not cut off.
	v = Judge([]Record{self, {Node: "b", Written: now.Add(-time.Second), Reached: now.Add(-2 * time.Second), Steady: now.Add(-5 * time.Second)}}, "a", reached, c, now)
	assert.False(t, v.Isolated, v.Why)
	// ... while a b that renewed all along proves a is cut off.
	v = Judge([]Record{self, {Node: "b", Written: now.Add(-time.Second), Reached: now.Add(-2 * time.Second), Steady: now.Add(-time.Hour)}}, "a", reached, c, now)
	assert.True(t, v.Isolated, v.Why)

	// b's record is older than LEASE_TTL + FENCE_MARGIN: b is gone and
	// proves nothing, however recent its last renewal looks.
	v = Judge([]Record{self, {Node: "b", Written: now.Add(-time.Minute), Reached: now.Add(-time.Minute)}}, "a", reached, c, now)
	assert.False(t, v.Isolated, v.Why)
	assert.Contains(t, v.Why, "no other node is alive")

	// A node that never renewed since it started is cut off as soon as
	// another one renews.
	v = Judge([]Record{{Node: "b", Written: now, Reached: now}}, "a", time.Time{}, c, now)
	assert.True(t, v.Isolated, v.Why)
}

func TestWitnessRoundTrip(t *testing.T) {
	ctx := context.Background()
	w := &Witness{Dir: filepath.Join(t.TempDir(), "witness")}
	all, err := w.All(ctx)
	require.NoError(t, err)
	assert.Empty(t, all, "no directory yet: no records")
	now := time.Now().UTC().Round(time.Second)
	require.NoError(t, w.Write(ctx, Record{Node: "b", Written: now, Fenced: map[string]uint64{"web1": 4}}))
	require.NoError(t, w.Write(ctx, Record{Node: "a", Written: now, Reached: now}))
	all, err = w.All(ctx)
	require.NoError(t, err)
	require.Len(t, all, 2)
	assert.Equal(t, "a", all[0].Node)
	assert.Equal(t, uint64(4), all[1].Fenced["web1"])
	r, err := w.Read(ctx, "c")
	require.NoError(t, err)
	assert.Nil(t, r)
	require.NoError(t, os.WriteFile(w.path("c"), []byte("{"), 0o644))
	_, err = w.Read(ctx, "c")
	assert.Error(t, err, "a torn record is an error, not a missing one")
}

func TestOwnerRecord(t *testing.T) {
	ctx := context.Background()
	sys, data := t.TempDir(), t.TempDir()
	o := Owner{JName: "web1", Node: "a", Generation: 3, Written: time.Now().UTC()}
	require.NoError(t, WriteOwner(ctx, o, sys, data))
	for _, dir := range []string{sys, data} {
		got, err := ReadOwner(ctx, dir)
		require.NoError(t, err)
		require.NotNil(t, got)
		assert.Equal(t, uint64(3), got.Generation)
		assert.Equal(t, "a", got.Node)
	}
	// The same owner again leaves the record (and its time) alone.
	before, _ := os.Stat(OwnerFile(sys))
	o.Written = o.Written.Add(time.Hour)
	require.NoError(t, WriteOwner(ctx, o, sys))
	after, _ := os.Stat(OwnerFile(sys))
	assert.Equal(t, before.ModTime(), after.ModTime())
	o.Node, o.Generation = "b", 4
	require.NoError(t, WriteOwner(ctx, o, sys))
	got, _ := ReadOwner(ctx, sys)
	assert.Equal(t, uint64(4), got.Generation)
}

func TestBoundedGivesUp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	release := make(chan struct{})
	defer close(release)
	err := Bounded(ctx, func() error { <-release; return nil })
	assert.ErrorIs(t, err, ErrNoAnswer)
}

func newStep(t *testing.T, lines ...string) (*Step, *run.Recorder) {
	t.Helper()
	cfg, err := load(t, append([]string{"LEASE_TTL=30"}, lines...)...)
	require.NoError(t, err)
	rec := &run.Recorder{}
	s, err := NewStep(cfg, nil, rec, logging.NewTo("envctl", &strings.Builder{}, false))
	require.NoError(t, err)
	return s, rec
}

func TestStep(t *testing.T) {
	ctx := context.Background()
	req := Request{JName: "web1", Victim: "a", Generation: 7}

	// FENCE_HOOK runs as HOOK NODE JNAME GENERATION, as a configured
	// executable (opened and checked again when it runs).
	s, rec := newStep(t, "FENCE_HOOK=/bin/true")
	how, err := s.Fence(ctx, req)
	require.NoError(t, err)
	assert.Contains(t, how, "FENCE_HOOK fenced a")
	require.Len(t, rec.Cmds, 1)
	assert.Equal(t, []string{"/bin/true", "a", "web1", "7"}, rec.Cmds[0].Argv)
	assert.True(t, rec.Cmds[0].Configured)
	assert.Equal(t, 60*time.Second, rec.Cmds[0].Timeout)

	// Its failure stops the takeover.
	rec.Respond = func(c run.Cmd) (run.Result, error) {
		return run.Result{}, &run.Error{Cmd: c, ExitCode: 1, Stderr: "ipmi: no route"}
	}
	_, err = s.Fence(ctx, req)
	assert.Equal(t, sysexits.Unavailable, sysexits.Code(err))
	assert.ErrorContains(t, err, "the takeover stops")

	// Nothing configured: a takeover relies on self-fencing, and a
	// --force says so.
	s, rec = newStep(t)
	how, err = s.Fence(ctx, req)
	require.NoError(t, err)
	assert.Contains(t, how, "self-fencing")
	how, err = s.Fence(ctx, Request{JName: "web1", Victim: "a", Generation: 7, Forced: true})
	require.NoError(t, err)
	assert.Contains(t, how, "no fence")
	assert.Empty(t, rec.Cmds)
}

func TestStepWithWitness(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	w := &Witness{Dir: dir}
	req := Request{JName: "web1", Victim: "a", Generation: 7}

	// The victim writes its record and has not fenced itself: it sits out
	// a lease store outage; without FENCE_HOOK the takeover is refused.
	require.NoError(t, w.Write(ctx, Record{Node: "a", Written: time.Now().UTC()}))
	s, _ := newStep(t, "FENCE_WITNESS_DIR="+dir)
	_, err := s.Fence(ctx, req)
	assert.Equal(t, sysexits.NoPerm, sysexits.Code(err))
	assert.ErrorContains(t, err, "alive on the shared storage")

	// With FENCE_HOOK too: a node sitting out a store outage is not
	// switched off by the first takeover after it; the operator's
	// --force runs the hook.
	s, rec := newStep(t, "FENCE_WITNESS_DIR="+dir, "FENCE_HOOK=/bin/true")
	_, err = s.Fence(ctx, req)
	assert.Equal(t, sysexits.NoPerm, sysexits.Code(err))
	assert.ErrorContains(t, err, "did not fence itself")
	assert.Empty(t, rec.Cmds)
	_, err = s.Fence(ctx, Request{JName: "web1", Victim: "a", Generation: 7, Forced: true})
	require.NoError(t, err)
	assert.Len(t, rec.Cmds, 1)

	// It fenced itself out of this generation: nothing more is needed,
	// the hook is not called.
	require.NoError(t, w.Write(ctx, Record{Node: "a", Written: time.Now().UTC(), Fenced: map[string]uint64{"web1": 7}}))
	rec.Cmds = nil
	how, err := s.Fence(ctx, req)
	require.NoError(t, err)
	assert.Contains(t, how, "fenced itself")
	assert.Empty(t, rec.Cmds)
	// ... but not out of a newer one.
	_, err = s.Fence(ctx, Request{JName: "web1", Victim: "a", Generation: 8, Forced: true})
	require.NoError(t, err)
	assert.Len(t, rec.Cmds, 1)

	// A record gone stale (LEASE_TTL + FENCE_MARGIN) is of a dead node.
	require.NoError(t, w.Write(ctx, Record{Node: "a", Written: time.Now().Add(-time.Hour).UTC()}))
	s, _ = newStep(t, "FENCE_WITNESS_DIR="+dir)
	how, err = s.Fence(ctx, req)
	require.NoError(t, err)
	assert.Contains(t, how, "self-fencing")
}

// FENCE_HOOK obeys the rules of every configured executable: one that
// another user could change is refused with 78 before anything runs.
func TestStepHookMustBeTrusted(t *testing.T) {
	dir, err := os.MkdirTemp("/run", "envhooks-fence-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	hook := filepath.Join(dir, "fence-hook")
	require.NoError(t, os.WriteFile(hook, []byte("#!/bin/sh\nexit 0\n"), 0o755))
	require.NoError(t, os.Chmod(hook, 0o755))
	cfg, err := load(t, "FENCE_HOOK="+hook)
	require.NoError(t, err)
	_, err = NewStep(cfg, nil, &run.Recorder{}, logging.NewTo("envctl", &strings.Builder{}, false))
	require.NoError(t, err)

	require.NoError(t, os.Chmod(hook, 0o777))
	_, err = NewStep(cfg, nil, &run.Recorder{}, logging.NewTo("envctl", &strings.Builder{}, false))
	assert.Equal(t, sysexits.Config, sysexits.Code(err))
	assert.ErrorContains(t, err, "writable by group or others")

	// The real runner checks again when it runs: a hook made writable
	// after the check does not run.
	require.NoError(t, os.Chmod(hook, 0o755))
	s, err := NewStep(cfg, nil, run.New(false, nil), logging.NewTo("envctl", &strings.Builder{}, false))
	require.NoError(t, err)
	_, err = s.Fence(context.Background(), Request{JName: "web1", Victim: "a", Generation: 1})
	require.NoError(t, err)
	require.NoError(t, os.Chmod(hook, 0o777))
	_, err = s.Fence(context.Background(), Request{JName: "web1", Victim: "a", Generation: 1})
	assert.ErrorContains(t, err, "writable by group or others")
}
