package quick

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/envhooks/envhooks/lib/mounttab"
)

// FuzzQuickNote feeds mnt-start's note reader (Load over Codec, the one
// reader of notes) damaged and hostile notes. It never panics, accepts no
// note that vouches for nothing, and a note it accepts is written and read
// back the same.
func FuzzQuickNote(f *testing.F) {
	good, err := Codec.Encode(Note{Inputs: "abc", Keys: []string{"BACKEND"}, State: "/var/db/envhooks/web1.state", Record: "absent", Done: []string{"mount:/j/a b"},
		Resolved: map[string]string{"/j": "/real/j"}, Mounts: []Mount{{ID: "mount:/j/a b", Target: "/j/a b", Want: mounttab.Want{BindOf: "/dfs/\"x\""}}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"format":"envhooks-note 2","state":"/s","mounts":[]}`))
	f.Add([]byte(`{"format":"envhooks-note 2","state":"/s","mounts":[{"id":1}]}`))
	f.Add([]byte(`{"format":"envhooks-state 2","jname":"web1"}`))
	f.Add([]byte("envhooks-quick 1\ninputs \"x\"\nkeys\nmount \"/t\" \"\" \"\" \"/s\"\n"))
	f.Add([]byte("not a note"))
	dir := f.TempDir()
	f.Setenv(DirEnv, dir)
	f.Fuzz(func(t *testing.T, raw []byte) {
		if err := os.WriteFile(filepath.Join(dir, "web1.quick"), raw, 0o600); err != nil {
			t.Fatal(err)
		}
		n := Load("web1")
		if n == nil {
			return
		}
		if len(n.Mounts) == 0 || n.State == "" {
			t.Fatal("a note that vouches for nothing was accepted")
		}
		if err := Write("web1", *n); err != nil {
			t.Fatal(err)
		}
		again := Load("web1")
		if again == nil || !reflect.DeepEqual(again, n) {
			t.Fatalf("a note read back differs:\n%#v\n%#v", n, again)
		}
	})
}
