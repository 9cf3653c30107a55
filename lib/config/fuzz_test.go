package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/envhooks/envhooks/lib/sysexits"
)

// FuzzConfigFile feeds the configuration reader hostile files (LoadFile,
// which every program's loading goes through). It never panics; a file it
// refuses is refused with 78 and one line; a file it takes gives values
// that passed their keys' checks.
func FuzzConfigFile(f *testing.F) {
	for _, s := range []string{
		"BACKEND=nullfs\nNULLFS_ROOT=/dfs\n",
		"# comment\nexport STATE_DIR=\"/var/db/envhooks\"\nCOMMAND_TIMEOUT='30'\n",
		"COMMAND_TIMEOUT=soon\n",
		"BACKEND=\"nullfs\n",
		"NODE_NAME=\"a\\nmnt-start: attached j1\"\n",
		"UNKNOWN_KEY=1\nA B=c\n=\n\x00\xff\n",
		"BACKEND=nullfs\nBACKEND=exec",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, raw []byte) {
		p := filepath.Join(dir, "fuzz.conf")
		if err := os.WriteFile(p, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := LoadFile(p)
		if err != nil {
			if code := sysexits.Code(err); code != sysexits.Config {
				t.Fatalf("refused with %d, not 78: %v", code, err)
			}
			return
		}
		for _, k := range Keys() {
			if k.Check != nil && c.IsSet(k.Name) {
				if err := k.Check(c.Get(k.Name)); err != nil {
					t.Fatalf("%s=%q was taken although its check says %v", k.Name, c.Get(k.Name), err)
				}
			}
		}
		for _, w := range c.Warnings {
			if strings.Contains(w, "\x00") {
				t.Fatalf("a warning carries a NUL: %q", w)
			}
		}
	})
}
