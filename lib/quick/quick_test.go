package quick

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/mounttab"
)

func TestNoteRoundTripAndDamage(t *testing.T) {
	t.Setenv(DirEnv, t.TempDir())
	n := Note{Inputs: "abc", Keys: []string{"BACKEND", "NULLFS_ROOT"}, Mounts: []Mount{
		{Target: "/j/web 1", Want: mounttab.Want{BindOf: "/dfs/data/web \"1\""}},
		{Target: "/j/web1-sys", Want: mounttab.Want{FSType: "nfs4", Source: "srv:/x"}},
	}}
	require.NoError(t, os.MkdirAll(Dir(), 0o700))
	require.NoError(t, os.WriteFile(Path("web1"), Encode("web1", n), 0o600))
	assert.Equal(t, &n, Load("web1"))
	assert.Nil(t, Load("web2"), "no note")

	p := Path("web1")
	raw, err := os.ReadFile(p)
	require.NoError(t, err)
	for name, damaged := range map[string]string{
		"torn":        string(raw[:len(raw)/2]),
		"no header":   string(raw[len(header)+1:]),
		"bad quoting": string(raw) + "mount \"/x\n",
		"unknown":     string(raw) + "later \"x\"\n",
		"no mounts":   header + "\ninputs \"abc\"\nkeys\n",
	} {
		require.NoError(t, os.WriteFile(p, []byte(damaged), 0o600))
		assert.Nil(t, Load("web1"), name)
	}
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
}
