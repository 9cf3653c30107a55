package quick

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/mounttab"
	"github.com/envhooks/envhooks/lib/state"
)

func TestNoteRoundTripAndDamage(t *testing.T) {
	t.Setenv(DirEnv, t.TempDir())
	n := Note{Inputs: "abc", Keys: []string{"BACKEND", "NULLFS_ROOT"}, State: "/var/lib/envhooks/web1.state", Record: "r",
		Done: []string{"mount:/j/web 1"}, Resolved: map[string]string{"/j/web 1": "/j/web 1"},
		Mounts: []Mount{
			{ID: "mount:/j/web 1", Target: "/j/web 1", Want: mounttab.Want{BindOf: "/dfs/data/web \"1\""}},
			{ID: "mount:/j/web1-sys", Target: "/j/web1-sys", Want: mounttab.Want{FSType: "nfs4", Source: "srv:/x"}},
		}}
	require.NoError(t, Write("web1", n))
	assert.Equal(t, &n, Load("web1"))
	assert.Nil(t, Load("web2"), "no note")

	p := Path("web1")
	raw, err := os.ReadFile(p)
	require.NoError(t, err)
	for name, damaged := range map[string]string{
		"torn":       string(raw[:len(raw)/2]),
		"not JSON":   "envhooks-quick 1\ninputs \"abc\"\n",
		"other kind": `{"format": "envhooks-state 2", "inputs": "abc"}`,
		"no mounts":  `{"format": "envhooks-note 2", "inputs": "abc", "state": "/x", "keys": []}`,
		"no state":   `{"format": "envhooks-note 2", "inputs": "abc", "mounts": [{"id": "m", "target": "/x"}]}`,
	} {
		require.NoError(t, os.WriteFile(p, []byte(damaged), 0o600))
		assert.Nil(t, Load("web1"), name)
	}
	require.NoError(t, syscall.Mkfifo(p+".fifo", 0o600))
	require.NoError(t, os.Remove(p))
	require.NoError(t, os.Rename(p+".fifo", p))
	assert.Nil(t, Load("web1"), "a FIFO in place of the note")
	require.NoError(t, Remove("web1"))
	require.NoError(t, Remove("web1"), "removing a missing note is fine")
}

func TestFingerprintSeesEveryInput(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "envhooks.conf")
	require.NoError(t, os.WriteFile(cfg, []byte("BACKEND=nullfs\n"), 0o644))
	in := Inputs{Version: "1", ConfigFile: cfg, JName: "web1", Data: "/j/d", System: "/j/s"}
	keys := []string{"ENVHOOKS_TEST_KEY"}
	base := Fingerprint(in, keys)
	assert.Equal(t, base, Fingerprint(in, keys), "stable")

	for name, change := range map[string]func(*Inputs){
		"version": func(i *Inputs) { i.Version = "2" },
		"-d":      func(i *Inputs) { i.Data = "/j/d2" },
		"-s":      func(i *Inputs) { i.System = "/j/s2" },
		"-f":      func(i *Inputs) { i.Fstab = "/j/f" },
		"-r":      func(i *Inputs) { i.RCConf = "/j/r" },
		"-j":      func(i *Inputs) { i.JName = "web2" },
	} {
		changed := in
		change(&changed)
		assert.NotEqual(t, base, Fingerprint(changed, keys), name)
	}
	require.NoError(t, os.WriteFile(cfg, []byte("BACKEND=nullfs \n"), 0o644))
	assert.NotEqual(t, base, Fingerprint(in, keys), "one byte of the config file")
	require.NoError(t, os.WriteFile(cfg, []byte("BACKEND=nullfs\n"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "envhooks.d"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "envhooks.d", "web1.conf"), nil, 0o644))
	assert.NotEqual(t, base, Fingerprint(in, keys), "an empty per-environment file is still a layer")
	require.NoError(t, os.Remove(filepath.Join(dir, "envhooks.d", "web1.conf")))
	assert.Equal(t, base, Fingerprint(in, keys))
	t.Setenv("ENVHOOKS_TEST_OTHER", "x")
	assert.Equal(t, base, Fingerprint(in, keys), "only the keys named count")
	t.Setenv("ENVHOOKS_TEST_KEY", "")
	assert.NotEqual(t, base, Fingerprint(in, keys), "a key set, even empty")

	// A FIFO or /dev/zero as a layer is read as "unreadable", at once.
	fifo := filepath.Join(dir, "fifo.conf")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	assert.NotEmpty(t, Fingerprint(Inputs{ConfigFile: fifo, JName: "web1"}, keys))
	assert.NotEmpty(t, Fingerprint(Inputs{ConfigFile: "/dev/zero", JName: "web1"}, keys))
}

// The build identity names both programs by their files: another build or
// installation of either changes it.
func TestBuildNamesBothPrograms(t *testing.T) {
	self, err := os.Executable()
	require.NoError(t, err)
	dir := filepath.Dir(self)
	before := Build()
	assert.Contains(t, before, "mnt-start:absent;")
	for _, p := range Programs {
		p := filepath.Join(dir, p)
		require.NoError(t, os.WriteFile(p, []byte("a build"), 0o755))
		t.Cleanup(func() { os.Remove(p) })
		now := Build()
		assert.NotEqual(t, before, now, p)
		before = now
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, AttachProgram), []byte("another build"), 0o755))
	assert.NotEqual(t, before, Build(), "rewritten in place")
}

func TestDigest(t *testing.T) {
	p := filepath.Join(t.TempDir(), "web1.state")
	assert.Equal(t, "absent", Digest(p))
	require.NoError(t, os.WriteFile(p, []byte("a"), 0o600))
	a := Digest(p)
	require.NoError(t, os.WriteFile(p, []byte("b"), 0o600))
	assert.NotEqual(t, a, Digest(p))
	require.NoError(t, os.Remove(p))
	require.NoError(t, syscall.Mkfifo(p, 0o600))
	assert.Equal(t, "unreadable", Digest(p))
}

// InPlace answers yes only when note, fingerprint, record digest, resolved
// directories and mount table all agree.
func TestInPlace(t *testing.T) {
	t.Setenv(DirEnv, t.TempDir())
	dir := t.TempDir()
	cfg := filepath.Join(dir, "envhooks.conf")
	require.NoError(t, os.WriteFile(cfg, []byte("BACKEND=nullfs\n"), 0o644))
	statePath := filepath.Join(dir, "web1.state")
	require.NoError(t, os.WriteFile(statePath, []byte(`{"format": "envhooks-state 2"}`), 0o600))
	in := Inputs{ConfigFile: cfg, JName: "web1", Data: "/j/d", System: "/j/s"}
	want := mounttab.Want{FSType: "nfs4", Source: "srv:/d"}
	table := mounttab.Table{{Source: "srv:/d", Target: "/j/d", FSType: "nfs4"}, {Source: "srv:/s", Target: "/j/s", FSType: "nfs4"}}
	read := func() (mounttab.Table, error) { return table, nil }
	note := Note{Inputs: Fingerprint(in, nil), State: statePath, Record: Digest(statePath),
		Done:     []string{"mount:/j/d", "mount:/j/s"},
		Resolved: map[string]string{"/j/d": "/j/d", "/j/s": "/j/s"},
		Mounts: []Mount{{ID: "mount:/j/d", Target: "/j/d", Want: want},
			{ID: "mount:/j/s", Target: "/j/s", Want: mounttab.Want{FSType: "nfs4", Source: "srv:/s"}}}}
	require.NoError(t, Write("web1", note))
	assert.True(t, InPlace(in, read))

	for name, change := range map[string]func(n *Note){
		"record changed":    func(n *Note) { n.Record = "other" },
		"not recorded":      func(n *Note) { n.Done = n.Done[:1] },
		"resolved apart":    func(n *Note) { n.Resolved["/j/d"] = "/real/d" },
		"another mount":     func(n *Note) { n.Mounts[0].Want.Source = "srv:/x" },
		"other fingerprint": func(n *Note) { n.Inputs = "x" },
	} {
		n := note
		n.Done = append([]string(nil), note.Done...)
		n.Mounts = append([]Mount(nil), note.Mounts...)
		n.Resolved = map[string]string{"/j/d": "/j/d", "/j/s": "/j/s"}
		change(&n)
		require.NoError(t, Write("web1", n))
		assert.False(t, InPlace(in, read), name)
	}
	require.NoError(t, Write("web1", note))
	require.NoError(t, os.Remove(statePath))
	assert.False(t, InPlace(in, read), "the state record is lost")
	require.NoError(t, os.WriteFile(statePath, []byte(`{"format": "envhooks-state 2"}`), 0o600))
	assert.True(t, InPlace(in, read), "the same record back")
	require.NoError(t, os.WriteFile(statePath, []byte(`{"format": "envhooks-state 2"`), 0o600))
	assert.False(t, InPlace(in, read), "the state record is damaged")
}

// mnt-start does not link lib/state, so it keeps the record's size bound
// itself: the two must agree, or a record the full start reads would be
// "unreadable" here.
func TestDigestReadsWhatTheStateCodecReads(t *testing.T) {
	assert.Equal(t, state.Codec.Max, int64(maxRecord))
}
