package envctl

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/lease"
)

// lease list --json writes one lease at a time, and what it writes is the
// indented array of every lease with its owner's heartbeat.
func TestLeaseListJSON(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "envhooks.conf")
	require.NoError(t, os.WriteFile(cfg, []byte("LEASE_DIR="+filepath.Join(dir, "leases")+"\nSYSLOG=0\nNODE_NAME=a\n"), 0o644))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "leases"), 0o755))
	_, err := lease.InitDir(filepath.Join(dir, "leases"), "test") // as envctl lease init: it is on the root filesystem
	require.NoError(t, err)
	run := func(args ...string) string {
		var out, errs bytes.Buffer
		code := Main(append([]string{"envctl", "-c", cfg}, args...), Wiring{}, &out, &errs)
		require.Equal(t, 0, code, errs.String())
		return out.String()
	}
	assert.Equal(t, "[]\n", run("--json", "lease", "list"))

	ctx := context.Background()
	s := &lease.FileStore{Dir: filepath.Join(dir, "leases")}
	web, err := s.Acquire(ctx, "web1", "a")
	require.NoError(t, err)
	db, err := s.Acquire(ctx, "db1", "b")
	require.NoError(t, err)
	require.NoError(t, s.Beat(ctx, "a", time.Minute))
	want, err := json.MarshalIndent([]listedLease{{Lease: *db, Heartbeat: "never"}, {Lease: *web, Heartbeat: "alive"}}, "", "  ")
	require.NoError(t, err)
	assert.Equal(t, string(want)+"\n", run("--json", "lease", "list"))

	text := strings.Split(strings.TrimSpace(run("lease", "list")), "\n")
	require.Len(t, text, 3)
	assert.Equal(t, []string{"JNAME", "OWNER", "SINCE", "GEN", "HEARTBEAT"}, strings.Fields(text[0]))
	assert.Equal(t, []string{"db1", "b", db.Since.Format(time.RFC3339), "1", "never"}, strings.Fields(text[1]))
	assert.Equal(t, []string{"web1", "a", web.Since.Format(time.RFC3339), "1", "alive"}, strings.Fields(text[2]))
}
