package mounttab

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	must := func(err error) { require.NoError(t, err) }
	must(os.MkdirAll(filepath.Join(dir, "usr", "home", "jails"), 0o755))
	must(os.Symlink(filepath.Join(dir, "usr", "home"), filepath.Join(dir, "home")))
	must(os.Symlink("../usr/home/jails", filepath.Join(dir, "usr", "rel")))
	must(os.Symlink("loop2", filepath.Join(dir, "loop1")))
	must(os.Symlink("loop1", filepath.Join(dir, "loop2")))
	// "nfs" stands for a network filesystem: a link below it must not be
	// looked at (lstat would hang on a dead server).
	must(os.MkdirAll(filepath.Join(dir, "net", "x"), 0o755))
	must(os.Symlink(filepath.Join(dir, "usr"), filepath.Join(dir, "net", "link")))
	// A mount point is taken as it is: it is never looked at.
	local := Table{{Source: "/dev/vda", Target: "/", FSType: "ext4"}, {Source: "srv:/x", Target: filepath.Join(dir, "net"), FSType: "nfs4"}}

	for in, want := range map[string]string{
		filepath.Join(dir, "home", "jails", "jails-data", "web1-data"): filepath.Join(dir, "usr", "home", "jails", "jails-data", "web1-data"),
		filepath.Join(dir, "usr", "rel", "x"):                          filepath.Join(dir, "usr", "home", "jails", "x"),
		filepath.Join(dir, "home", "..", "home", "jails"):              filepath.Join(dir, "usr", "home", "jails"),
		filepath.Join(dir, "missing", "a"):                             filepath.Join(dir, "missing", "a"),
		filepath.Join(dir, "loop1", "a"):                               filepath.Join(dir, "loop1", "a"),
		filepath.Join(dir, "net", "link", "home"):                      filepath.Join(dir, "net", "link", "home"),
		"relative/path": "relative/path",
	} {
		assert.Equal(t, want, local.Resolve(in), in)
	}
	// With no mount known to be local, nothing is looked at.
	nfsRoot := Table{{Source: "srv:/", Target: "/", FSType: "nfs"}}
	p := filepath.Join(dir, "home", "jails")
	assert.Equal(t, p, nfsRoot.Resolve(p))
	assert.Equal(t, p, Table{}.Resolve(p))
}

// Resolve of a table with thousands of mounts looks at each once per path,
// without allocating: it is in every start of envctl's batches, and costs
// what Top costs.
func BenchmarkResolveLargeTable(b *testing.B) {
	t := Table{{Source: "/dev/vda", Target: "/", FSType: "ext4"}}
	for i := 0; i < 10000; i++ {
		t = append(t, Mount{Source: "/dev/vda", Target: filepath.Join("/usr/jails/jails-data", string(rune('a'+i%26))+"-data"), FSType: "ext4"})
	}
	for b.Loop() {
		t.Resolve("/usr/jails/jails-system/web1")
	}
}
