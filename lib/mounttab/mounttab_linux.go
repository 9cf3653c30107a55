package mounttab

import (
	"path/filepath"

	"github.com/moby/sys/mountinfo"
)

func read() (Table, error) {
	infos, err := mountinfo.GetMounts(nil)
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
