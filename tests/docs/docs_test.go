// Package docs checks that what operators read matches the code: every
// configuration key any program declares is documented in the README and in
// envhooks.conf(5), with its default.
package docs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	_ "github.com/envhooks/envhooks/hooks" // every backend's keys
	"github.com/envhooks/envhooks/lib/config"
	_ "github.com/envhooks/envhooks/lib/envctl"
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
	for _, k := range keys {
		row := "| `" + k.Name + "` |"
		if assert.Contains(t, string(readme), row, "README.md has no row for %s: regenerate the key table from envctl keys", k.Name) && k.Default != "" {
			assert.Contains(t, string(readme), row+" `"+k.Default+"` |", "README.md shows another default for %s", k.Name)
		}
		assert.Contains(t, string(man), ".It Ev "+k.Name+"\n", "envhooks.conf(5) does not document %s", k.Name)
		assert.NotEmpty(t, k.Doc, "%s has no Doc string", k.Name)
	}
	for _, key := range []string{"MOUNT_RCCONF", "LEASE_DIR"} {
		assert.True(t, strings.Contains(string(readme), key))
	}
}
