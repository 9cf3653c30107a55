package mounttab

import (
	"bytes"
	"path/filepath"

	"github.com/moby/sys/mountinfo"

	"github.com/envhooks/envhooks/lib/safefile"
)

// maxTable bounds one read of the table: far above the 100,000 mounts of a
// very large node (about 20 MB of mountinfo).
const maxTable = 256 << 20

func read() (Table, error) {
	// /proc/self, not moby's /proc/thread-self: envhooks never moves a
	// single thread into another mount namespace, and thread-self pins the
	// goroutine to a fresh OS thread on every read.
	raw, err := safefile.Read("/proc/self/mountinfo", maxTable)
	if err != nil {
		return nil, err
	}
	infos, err := mountinfo.GetMountsFromReader(bytes.NewReader(raw), nil)
	if err != nil {
		return nil, err
	}
	t := make(Table, 0, len(infos))
	for _, i := range infos {
		t = append(t, Mount{
			Source:  i.Source,
			Target:  filepath.Clean(i.Mountpoint),
			FSType:  i.FSType,
			Options: i.Options,
			Dev:     devString(i.Major, i.Minor),
			Root:    i.Root,
		})
	}
	return t, nil
}

// ShowsDir reports whether mount m shows directory dir: the mount was made
// by binding dir onto m.Target. Linux records a bind mount as (filesystem,
// directory within it), so dir is resolved the same way through the mount
// that holds it and the two pairs are compared.
func (t Table) ShowsDir(m Mount, dir string) bool {
	dir = filepath.Clean(dir)
	holder, ok := t.containing(dir)
	if !ok {
		return false
	}
	rel, err := filepath.Rel(holder.Target, dir)
	if err != nil {
		return false
	}
	return m.Dev == holder.Dev && filepath.Clean(m.Root) == filepath.Join(holder.Root, rel)
}

// WithBind returns the table as it is after binding src onto target:
// mountinfo shows the filesystem holding src and the directory within it.
// The engine uses it to keep its copy of the table right without reading
// the whole table again after each mount(2).
func (t Table) WithBind(src, target string) Table {
	src = filepath.Clean(src)
	holder, ok := t.containing(src)
	if !ok {
		return nil
	}
	rel, err := filepath.Rel(holder.Target, src)
	if err != nil {
		return nil
	}
	m := Mount{Source: holder.Source, Target: filepath.Clean(target), FSType: holder.FSType, Options: holder.Options,
		Dev: holder.Dev, Root: filepath.Join(holder.Root, rel)}
	return append(t[:len(t):len(t)], m)
}
