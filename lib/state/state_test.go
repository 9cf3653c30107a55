package state

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/mounttab"
	"github.com/envhooks/envhooks/lib/sysexits"
)

func TestStoreRoundTripAndRemoveWhenEmpty(t *testing.T) {
	s := Store{Dir: filepath.Join(t.TempDir(), "state")}
	r, err := s.Load("web1")
	require.NoError(t, err)
	assert.Nil(t, r)
	rec := &Record{JName: "web1", Backend: "nullfs", Generation: 3, Actions: []Action{
		{ID: "mount:/a", What: "bind /x on /a", Kind: KindUnmount, Target: "/a", Want: mounttab.Want{BindOf: "/x"}, Argv: []string{"umount", "/a"}, Direct: true},
		{ID: "session:t", What: "log in", Kind: KindCommand, Argv: []string{"logout"}, OKExit: []int{21}, Pending: true},
	}}
	require.NoError(t, s.Save(rec))
	fi, err := os.Stat(s.Path("web1"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	got, err := s.Load("web1")
	require.NoError(t, err)
	assert.Equal(t, rec.Actions, got.Actions)
	assert.True(t, got.Has("session:t"))
	assert.False(t, got.Done("session:t"), "pending is not done")
	assert.True(t, got.Done("mount:/a"))
	got.Put(Action{ID: "session:t", What: "log in", Kind: KindCommand, Argv: []string{"logout"}})
	assert.True(t, got.Done("session:t"))
	assert.Len(t, got.Actions, 2, "Put replaces in place")
	got.Remove("session:t")
	got.Remove("mount:/a")
	require.NoError(t, s.Save(got))
	_, err = os.Stat(s.Path("web1"))
	assert.True(t, os.IsNotExist(err), "a record with nothing attached is removed")
}

// Every field survives the file format, whatever characters it holds.
func TestCodecRoundTrip(t *testing.T) {
	rec := &Record{JName: "web1", Backend: "iscsi", Node: "node-a", Generation: 42, Actions: []Action{
		{ID: "session:iqn.2026-01.org.example:web1", What: `log in to "iqn" on 127.0.0.1:3260`, Kind: KindCommand,
			Argv: []string{"iscsiadm", "-m", "node", "--logout"}, OKExit: []int{21, 15}, OKStderr: []string{"no session", "ISCSIS\tREMOVE: No such"}},
		{ID: "mount:/j/a b", What: "bind /dfs/data/a b on /j/a b", Kind: KindUnmount, Target: "/j/a b",
			Want: mounttab.Want{BindOf: "/dfs/data/a b"}, Argv: []string{"umount", "/j/a b"}, Force: []string{"umount", "-f", "/j/a b"}, Direct: true},
		{ID: "mount:/j/n\n", What: "mount nfs", Kind: KindUnmount, Target: "/j/n\n", Want: mounttab.Want{FSType: "nfs4", Source: "[::1]:/x/\"q\""}, Argv: []string{"umount", "/j/n"}, Pending: true},
		{ID: "exec:/usr/local/libexec/hook", What: "run hook start", Kind: KindCommand, Argv: []string{"/usr/local/libexec/hook", "-j", "web1", "stop"},
			Timeout: 90 * time.Second, Configured: true},
	}}
	s := Store{Dir: t.TempDir()}
	require.NoError(t, s.Save(rec))
	got, err := s.Load("web1")
	require.NoError(t, err)
	assert.Equal(t, rec, got)
	raw, _ := os.ReadFile(s.Path("web1"))
	assert.True(t, strings.HasPrefix(string(raw), "{\n  \"format\": \"envhooks-state 2\",\n"), "the format first: %s", raw)
}

// A record written by envhooks 0.1 (the line format, captured from its
// mnt-start) is read: environments attached before an upgrade are
// detached after it.
func TestRecordsOfTheLineFormatAreRead(t *testing.T) {
	raw, err := os.ReadFile("testdata/written-by-0.1.state")
	require.NoError(t, err)
	s := Store{Dir: t.TempDir()}
	require.NoError(t, os.WriteFile(s.Path("web1"), raw, 0o600))
	got, err := s.Load("web1")
	require.NoError(t, err)
	assert.Equal(t, "nullfs", got.Backend)
	require.Len(t, got.Actions, 3)
	assert.Equal(t, Action{ID: "mount:/srv/old/usr/jails/jails-data/web1-data", What: "bind /srv/old/dfs/data/web1 on /srv/old/usr/jails/jails-data/web1-data",
		Kind: KindUnmount, Target: "/srv/old/usr/jails/jails-data/web1-data", Want: mounttab.Want{BindOf: "/srv/old/dfs/data/web1"}, Direct: true,
		Argv: []string{"umount", "/srv/old/usr/jails/jails-data/web1-data"}, Force: []string{"umount", "-f", "/srv/old/usr/jails/jails-data/web1-data"}}, got.Actions[0])
	for _, a := range got.Actions {
		assert.True(t, got.Done(a.ID), "what 0.1 recorded was attached")
	}
	// The next save writes the JSON format.
	require.NoError(t, s.Save(got))
	again, err := s.Load("web1")
	require.NoError(t, err)
	assert.Equal(t, got.Actions, again.Actions)
}

// Damage of any kind is an error naming the file, with exit code 65.
func TestDamagedRecordsAre65AndNamed(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	good, err := Codec.Encode(&Record{JName: "web1", Actions: []Action{{ID: "mount:/a", Kind: KindUnmount, Target: "/a", Argv: []string{"umount", "/a"}}}})
	require.NoError(t, err)
	legacy, err := os.ReadFile("testdata/written-by-0.1.state")
	require.NoError(t, err)
	cases := map[string]string{
		"empty":            "",
		"torn":             string(good[:len(good)/2]),
		"not ours":         "{\"jname\":\"web1\"}\n",
		"another kind":     `{"format": "envhooks-lease 2", "jname": "web1"}`,
		"another jname":    `{"format": "envhooks-state 2", "jname": "web2"}`,
		"no target":        `{"format": "envhooks-state 2", "jname": "web1", "actions": [{"id": "x", "kind": "unmount", "argv": ["umount"]}]}`,
		"no undo":          `{"format": "envhooks-state 2", "jname": "web1", "actions": [{"id": "x", "kind": "command"}]}`,
		"unknown kind":     `{"format": "envhooks-state 2", "jname": "web1", "actions": [{"id": "x", "kind": "reboot", "argv": ["x"]}]}`,
		"no id":            `{"format": "envhooks-state 2", "jname": "web1", "actions": [{"kind": "command", "argv": ["x"]}]}`,
		"wrong type":       `{"format": "envhooks-state 2", "jname": "web1", "actions": "all"}`,
		"binary":           "\x00\x01\x02\xff",
		"line: unknown":    "envhooks-state 1\njname \"web1\"\ncolor \"red\"\n",
		"line: torn quote": "envhooks-state 1\njname \"web1\n",
		"line: orphan":     "envhooks-state 1\njname \"web1\"\nargv \"umount\"\n",
		"line: bad want":   "envhooks-state 1\njname \"web1\"\naction \"x\"\nwant \"a\"\n",
		"line: bad exit":   "envhooks-state 1\njname \"web1\"\naction \"x\"\nok_exit one\n",
		"line: no jname":   "envhooks-state 1\nbackend \"x\"\n",
		"line: torn":       string(legacy[:len(legacy)-40]),
	}
	for name, raw := range cases {
		require.NoError(t, os.WriteFile(s.Path("web1"), []byte(raw), 0o600))
		_, err := s.Load("web1")
		require.Error(t, err, name)
		assert.Equal(t, sysexits.DataErr, sysexits.Code(err), name)
		assert.Contains(t, err.Error(), "state record "+s.Path("web1")+" is damaged", name)
		assert.NotContains(t, err.Error(), "\n", name)
	}
	require.NoError(t, os.Remove(s.Path("web1")))
	require.NoError(t, syscall.Mkfifo(s.Path("web1"), 0o600))
	_, err = s.Load("web1")
	assert.Equal(t, sysexits.DataErr, sysexits.Code(err), "a FIFO: %v", err)
	assert.Contains(t, err.Error(), "FIFO")
}

// FuzzDecode: no content makes the codec panic, or yields a record that
// does not survive being written and read again.
func FuzzDecode(f *testing.F) {
	good, _ := Codec.Encode(&Record{JName: "web1", Actions: []Action{{ID: "mount:/a", Kind: KindUnmount, Target: "/a", Argv: []string{"umount", "/a"}, Pending: true}}})
	legacy, _ := os.ReadFile("testdata/written-by-0.1.state")
	for _, seed := range [][]byte{good, legacy, nil, []byte("{}"), []byte("envhooks-state 1\njname \"web1\"\n")} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var r Record
		if Codec.Decode(raw, &r) != nil || r.check("web1") != nil {
			return
		}
		enc, err := Codec.Encode(&r)
		require.NoError(t, err)
		var again Record
		require.NoError(t, Codec.Decode(enc, &again))
		require.NoError(t, again.check("web1"))
		assert.Equal(t, r.Actions, again.Actions)
	})
}

// A record cut short after an unmount's target (an old line-format record
// torn at any byte) names no way to unmount: it is damaged, never undone
// with an empty command.
func TestUnmountWithoutCommandIsDamaged(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	cut := "envhooks-state 1\njname \"web1\"\nbackend \"nullfs\"\naction \"mount:/j/web1-data\"\nwhat \"bind /d on /j/web1-data\"\nkind \"unmount\"\ntarget \"/j/web1-data\"\n"
	require.NoError(t, os.WriteFile(s.Path("web1"), []byte(cut), 0o600))
	_, err := s.Load("web1")
	require.Error(t, err)
	assert.Equal(t, sysexits.DataErr, sysexits.Code(err))
	assert.Contains(t, err.Error(), "has no unmount command")

	direct := cut + "direct\n"
	require.NoError(t, os.WriteFile(s.Path("web1"), []byte(direct), 0o600))
	_, err = s.Load("web1")
	require.NoError(t, err, "umount(2) itself needs no command")
}
