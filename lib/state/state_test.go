package state

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/mounttab"
)

func TestStoreRoundTripAndRemoveWhenEmpty(t *testing.T) {
	s := Store{Dir: filepath.Join(t.TempDir(), "state")}
	r, err := s.Load("web1")
	require.NoError(t, err)
	assert.Nil(t, r)
	rec := &Record{JName: "web1", Backend: "nullfs", Generation: 3, Actions: []Action{
		{ID: "mount:/a", What: "bind /x on /a", Kind: KindUnmount, Target: "/a", Want: mounttab.Want{BindOf: "/x"}, Argv: []string{"umount", "/a"}, Direct: true},
		{ID: "session:t", What: "log in", Kind: KindCommand, Argv: []string{"logout"}, OKExit: []int{21}},
	}}
	require.NoError(t, s.Save(rec))
	fi, err := os.Stat(s.Path("web1"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	got, err := s.Load("web1")
	require.NoError(t, err)
	assert.Equal(t, rec.Actions, got.Actions)
	assert.True(t, got.Has("session:t"))
	got.Remove("session:t")
	got.Remove("mount:/a")
	require.NoError(t, s.Save(got))
	_, err = os.Stat(s.Path("web1"))
	assert.True(t, os.IsNotExist(err), "a record with nothing attached is removed")
}

func TestDamagedRecordIsAnError(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	require.NoError(t, os.WriteFile(s.Path("web1"), []byte("{torn"), 0o600))
	_, err := s.Load("web1")
	assert.ErrorContains(t, err, "damaged")
}

// Every field survives the file format, whatever characters it holds.
func TestCodecRoundTrip(t *testing.T) {
	rec := &Record{JName: "web1", Backend: "iscsi", Node: "node-a", Generation: 42, Actions: []Action{
		{ID: "session:iqn.2026-01.org.example:web1", What: `log in to "iqn" on 127.0.0.1:3260`, Kind: KindCommand,
			Argv: []string{"iscsiadm", "-m", "node", "--logout"}, OKExit: []int{21, 15}, OKStderr: []string{"no session", "ISCSIS\tREMOVE: No such"}},
		{ID: "mount:/j/a b", What: "bind /dfs/data/a b on /j/a b", Kind: KindUnmount, Target: "/j/a b",
			Want: mounttab.Want{BindOf: "/dfs/data/a b"}, Argv: []string{"umount", "/j/a b"}, Force: []string{"umount", "-f", "/j/a b"}, Direct: true},
		{ID: "mount:/j/n", What: "mount nfs", Kind: KindUnmount, Target: "/j/n", Want: mounttab.Want{FSType: "nfs4", Source: "[::1]:/x/\"q\""}, Argv: []string{"umount", "/j/n"}},
		{ID: "exec:/usr/local/libexec/hook", What: "run hook start", Kind: KindCommand, Argv: []string{"/usr/local/libexec/hook", "-j", "web1", "stop"},
			Timeout: 90 * time.Second, Configured: true},
	}}
	s := Store{Dir: t.TempDir()}
	require.NoError(t, s.Save(rec))
	got, err := s.Load("web1")
	require.NoError(t, err)
	assert.Equal(t, rec, got)
	raw, _ := os.ReadFile(s.Path("web1"))
	assert.Contains(t, string(raw), "action \"mount:/j/a b\"\n", "readable by an operator")
}

func TestCodecRejectsDamage(t *testing.T) {
	for name, raw := range map[string]string{
		"not ours":        "{\"jname\":\"web1\"}\n",
		"unknown field":   "envhooks-state 1\njname \"web1\"\ncolor \"red\"\n",
		"torn quote":      "envhooks-state 1\njname \"web1\n",
		"field no action": "envhooks-state 1\njname \"web1\"\nargv \"umount\"\n",
		"bad want":        "envhooks-state 1\njname \"web1\"\naction \"x\"\nwant \"a\"\n",
		"bad exit":        "envhooks-state 1\njname \"web1\"\naction \"x\"\nok_exit one\n",
		"no jname":        "envhooks-state 1\nbackend \"x\"\n",
	} {
		_, err := decode([]byte(raw))
		assert.Error(t, err, name)
	}
}
