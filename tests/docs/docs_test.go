// Package docs checks that what operators read matches the code: every
// configuration key any program declares is documented in the README and in
// envhooks.conf(5), with its default.
package docs

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	_ "github.com/envhooks/envhooks/hooks" // every backend's keys
	"github.com/envhooks/envhooks/lib/config"
	_ "github.com/envhooks/envhooks/lib/envctl"
	"github.com/envhooks/envhooks/tests/docs/keydoc"
	"github.com/envhooks/envhooks/tests/testenv"
)

func TestEveryKeyIsDocumented(t *testing.T) {
	root := testenv.RepoRoot()
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	man, err := os.ReadFile(filepath.Join(root, "man", "envhooks.conf.5"))
	require.NoError(t, err)
	keys := config.Keys()
	require.NotEmpty(t, keys)
	// strings.Contains, not assert.Contains: a failure names the key, not
	// the whole README.
	for _, k := range keys {
		row := "| `" + k.Name + "` |"
		if !strings.Contains(string(readme), row) {
			t.Errorf("README.md has no row for %s: run make docs", k.Name)
		} else if k.Default != "" && !strings.Contains(string(readme), row+" "+keydoc.MarkdownDefault(k)+" |") {
			t.Errorf("README.md shows another default for %s than %q: run make docs", k.Name, k.Default)
		}
		if !strings.Contains(string(man), ".It Ev "+k.Name+"\n") {
			t.Errorf("envhooks.conf(5) does not document %s: run make docs", k.Name)
		}
		assert.NotEmpty(t, k.Doc, "%s has no Doc string", k.Name)
	}
	for _, a := range config.Aliases() {
		if !strings.Contains(string(readme), keydoc.MarkdownAlias(a)) {
			t.Errorf("README.md has no row for the deprecated %s: run make docs", a.Name)
		}
		if !strings.Contains(string(man), keydoc.ManAlias(a)) {
			t.Errorf("envhooks.conf(5) does not document the deprecated %s: run make docs", a.Name)
		}
	}
	for _, key := range []string{"MOUNT_RCCONF", "LEASE_DIR"} {
		assert.True(t, strings.Contains(string(readme), key))
	}
}

var assignment = regexp.MustCompile(`^[A-Z][A-Z0-9_]*="`)

// The sample configuration the port installs lists every key at its
// default, and it reads back as exactly the defaults.
func TestSampleConfiguration(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), SamplePath))
	require.NoError(t, err)
	assert.Equal(t, Sample(config.Keys()), string(raw), "run make docs")
	// Uncommented, it is a valid configuration with no warnings.
	uncommented := filepath.Join(t.TempDir(), "envhooks.conf")
	var b strings.Builder
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "#"); ok && assignment.MatchString(rest) {
			b.WriteString(rest + "\n")
		}
	}
	require.NoError(t, os.WriteFile(uncommented, []byte(b.String()), 0o644))
	cfg, err := config.LoadFile(uncommented)
	require.NoError(t, err)
	assert.Empty(t, cfg.Warnings)
	for _, k := range config.Keys() {
		assert.True(t, cfg.IsSet(k.Name), "%s is in the sample", k.Name)
		assert.Equal(t, k.Default, cfg.Get(k.Name), k.Name)
	}
}
