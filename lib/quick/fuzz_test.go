package quick

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/envhooks/envhooks/lib/mounttab"
)

// FuzzQuickNote feeds mnt-start's note reader damaged and hostile notes
// (Load, the one reader of notes: point it at the new reader if the codec
// changes). It never panics, and a note it accepts is one Encode writes
// the same way.
func FuzzQuickNote(f *testing.F) {
	good := Encode("web1", Note{Inputs: "abc", Keys: []string{"BACKEND"}, Mounts: []Mount{{Target: "/j/a b", Want: mounttab.Want{BindOf: "/dfs/\"x\""}}}})
	f.Add(good)
	f.Add([]byte(header + "\ninputs \"x\"\nkeys\nmount \"/t\" \"\" \"\" \"/s\"\n"))
	f.Add([]byte(header + "\nmount \"\\xff\" 1 2 3\n"))
	f.Add([]byte("not a note"))
	dir := f.TempDir()
	os.Setenv(DirEnv, dir)
	f.Fuzz(func(t *testing.T, raw []byte) {
		if err := os.WriteFile(filepath.Join(dir, "web1.quick"), raw, 0o600); err != nil {
			t.Fatal(err)
		}
		n := Load("web1")
		if n == nil {
			return
		}
		if len(n.Mounts) == 0 {
			t.Fatal("a note without mounts was accepted")
		}
		if err := os.WriteFile(filepath.Join(dir, "web1.quick"), Encode("web1", *n), 0o600); err != nil {
			t.Fatal(err)
		}
		again := Load("web1")
		if again == nil || !reflect.DeepEqual(again.Mounts, n.Mounts) || again.Inputs != n.Inputs || len(again.Keys) != len(n.Keys) {
			t.Fatalf("a note read back differs:\n%#v\n%#v", n, again)
		}
	})
}
