package lease

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/sysexits"
)

// Leases, generations and heartbeats written by envhooks 0.1 (key=value
// lines, a bare number, beat=<ns>; captured from its envctl) are read: a
// lease taken before an upgrade stays held after it.
func TestRecordsOf01AreRead(t *testing.T) {
	ctx := context.Background()
	s := &FileStore{Dir: t.TempDir()}
	write := func(p, text string) {
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
	}
	write(s.leasePath("web2"), "node=node-a\nsince=2026-11-30T03:54:53Z\ngeneration=1\n")
	l, err := s.Get(ctx, "web2")
	require.NoError(t, err)
	assert.Equal(t, &Lease{JName: "web2", Node: "node-a", Since: time.Date(2026, 11, 30, 3, 54, 53, 0, time.UTC), Generation: 1}, l)
	_, err = s.Acquire(ctx, "web2", "node-b")
	assert.Equal(t, sysexits.NoPerm, sysexits.Code(err), "still held")

	// A released lease (the same lines) and a takeover's bare number
	// keep the generations growing.
	write(s.genPath("web3"), "node=node-a\nsince=2026-11-30T03:54:53Z\ngeneration=4")
	l, err = s.Acquire(ctx, "web3", "node-b")
	require.NoError(t, err)
	assert.Equal(t, uint64(5), l.Generation)
	write(s.genPath("web4"), "7\n")
	l, err = s.Acquire(ctx, "web4", "node-b")
	require.NoError(t, err)
	assert.Equal(t, uint64(8), l.Generation)

	write(s.heartbeatPath("node-a"), "beat=1796010893385787945\n")
	_, known, last, err := s.Alive(ctx, "node-a", time.Hour)
	require.NoError(t, err)
	assert.True(t, known)
	assert.Equal(t, time.Unix(0, 1796010893385787945), last)
}

func TestRecordsRoundTrip(t *testing.T) {
	l := &Lease{JName: "web1", Node: "a", Since: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Generation: 9}
	raw := formatRecord(l)
	assert.Contains(t, string(raw), `"format": "envhooks-lease 2"`)
	got, err := parseRecord(raw, "web1")
	require.NoError(t, err)
	assert.Equal(t, l, got)
	_, err = parseRecord(raw, "web2")
	assert.ErrorContains(t, err, "not of \"web2\"")

	// The etcd driver's values before they were records: a lease without a
	// format, a last-seen key holding a bare time.
	got, err = parseRecord([]byte(`{"node":"a","since":"2026-01-02T03:04:05Z"}`), "web1")
	require.NoError(t, err)
	assert.Equal(t, "a", got.Node)
	b, ok := ParseBeat([]byte("2026-01-02T03:04:05.123456789Z"))
	require.True(t, ok)
	assert.Equal(t, time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC), b)

	now := time.Now()
	b, ok = ParseBeat(BeatRecord(now))
	require.True(t, ok)
	assert.True(t, b.Equal(now))
	for _, bad := range []string{"", "{", `{"format": "envhooks-heartbeat 2"}`, `{"format": "envhooks-lease 2", "beat": "2026-01-01T00:00:00Z"}`, "beat=x", "\x00", "2026-13-01T00:00:00Z"} {
		_, ok := ParseBeat([]byte(bad))
		assert.False(t, ok, "%q", bad)
	}
}

// A damaged lease is named, with 65, and never read as free.
func TestDamagedLeaseIsNamed(t *testing.T) {
	ctx := context.Background()
	s := &FileStore{Dir: t.TempDir()}
	for name, text := range map[string]string{
		"no node":     "since=2026-11-30T03:54:53Z\ngeneration=1\n",
		"torn":        `{"format": "envhooks-lease 2", "node": "a`,
		"other jname": `{"format": "envhooks-lease 2", "jname": "web9", "node": "a", "generation": 1}`,
		"bad line":    "node=a\ngarbage\n",
		"binary":      "\x00\xff",
	} {
		require.NoError(t, os.WriteFile(s.leasePath("web1"), []byte(text), 0o644))
		_, err := s.Get(ctx, "web1")
		assert.Equal(t, sysexits.DataErr, sysexits.Code(err), name)
		assert.ErrorContains(t, err, "lease record "+s.leasePath("web1")+" is damaged", name)
		_, err = s.Acquire(ctx, "web1", "b")
		assert.Error(t, err, "%s: a damaged lease is not free", name)
	}
	require.NoError(t, os.Remove(s.leasePath("web1")))
	require.NoError(t, syscall.Mkfifo(s.leasePath("web1"), 0o644))
	_, err := s.Get(ctx, "web1")
	assert.Equal(t, sysexits.DataErr, sysexits.Code(err), "a FIFO: %v", err)
}

// A lease directory must exist, and be on another filesystem than / or
// carry the marker lease init writes: otherwise it may be the local disk
// under an unmounted share.
func TestCheckDir(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	err := CheckDir(missing)
	assert.Equal(t, sysexits.Unavailable, sysexits.Code(err))
	assert.ErrorContains(t, err, "LEASE_DIR "+missing+" does not exist")
	_, err = InitDir(missing, "a")
	assert.Equal(t, sysexits.Unavailable, sysexits.Code(err), "lease init creates nothing either")
	_, err = os.Stat(missing)
	assert.True(t, os.IsNotExist(err))

	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	assert.Equal(t, sysexits.Unavailable, sysexits.Code(CheckDir(file)))

	var root, here syscall.Stat_t
	require.NoError(t, syscall.Stat("/", &root))
	require.NoError(t, syscall.Stat(dir, &here))
	if root.Dev != here.Dev {
		assert.NoError(t, CheckDir(dir), "another filesystem than /")
		dir = "/var/tmp"
		require.NoError(t, syscall.Stat(dir, &here))
		if root.Dev != here.Dev {
			if os.Getenv("CI") == "true" {
				t.Fatal("neither the temporary directory nor /var/tmp is on the root filesystem: under CI=true the marker must be tested, not skipped")
			}
			t.Skip("no directory on the root filesystem to test the marker with")
		}
		dir, err = os.MkdirTemp(dir, "envhooks-lease-")
		require.NoError(t, err)
		t.Cleanup(func() { os.RemoveAll(dir) })
	}
	err = CheckDir(dir)
	assert.Equal(t, sysexits.Unavailable, sysexits.Code(err))
	assert.ErrorContains(t, err, "run envctl lease init")
	already, err := InitDir(dir, "a")
	require.NoError(t, err)
	assert.False(t, already)
	assert.NoError(t, CheckDir(dir))
	already, err = InitDir(dir, "b")
	require.NoError(t, err)
	assert.True(t, already)
	require.NoError(t, os.WriteFile(filepath.Join(dir, MarkerName), []byte("{"), 0o644))
	assert.Equal(t, sysexits.DataErr, sysexits.Code(CheckDir(dir)), "a damaged marker is named")
}

// A heartbeat that cannot be read (a FIFO, a huge file) counts as alive,
// like a half-written one: never a reason for a takeover.
func TestUnreadableHeartbeatIsAlive(t *testing.T) {
	ctx := context.Background()
	s := &FileStore{Dir: t.TempDir()}
	require.NoError(t, os.MkdirAll(filepath.Dir(s.heartbeatPath("a")), 0o755))
	require.NoError(t, syscall.Mkfifo(s.heartbeatPath("a"), 0o644))
	alive, known, _, err := s.Alive(ctx, "a", time.Second)
	require.NoError(t, err)
	assert.True(t, alive && known)
}
