package mounttab

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// maxLinks bounds the symbolic links Resolve follows, as the kernels do
// (Linux MAXSYMLINKS, FreeBSD MAXSYMLINKS: 40 and 32).
const maxLinks = 40

// localTypes are filesystems whose lookups are answered by this node
// alone: looking something up in them cannot wait on a server. A type not
// listed (nfs, smbfs, fuse, 9p, nullfs over who knows what) is treated as
// possibly remote.
var localTypes = map[string]bool{
	"ext2": true, "ext3": true, "ext4": true, "xfs": true, "btrfs": true, "f2fs": true, "jfs": true,
	"reiserfs": true, "nilfs2": true, "vfat": true, "exfat": true, "msdosfs": true, "ufs": true,
	"zfs": true, "tmpfs": true, "ramfs": true, "devtmpfs": true, "overlay": true, "squashfs": true,
	"iso9660": true, "rootfs": true, "cd9660": true, "devfs": true, "proc": true, "procfs": true, "sysfs": true,
}

// Resolve returns path with its symbolic links resolved, which is what the
// kernel shows in the mount table once something is mounted there (mount(8)
// and mount_nullfs(8) resolve with realpath; mount(2) follows links).
// Comparing the table with an unresolved path would miss a mount made
// through a link and stack another one on it.
//
// It looks only where looking cannot hang on a dead server: a component
// that is a mount point is a real directory and is not looked at (what is
// mounted there may be that server), and nothing below a mount of a
// filesystem that is not known to be local is looked at either; those
// components, like components that do not exist yet (a mount point made
// later), are kept as they are.
func (t Table) Resolve(path string) string {
	path = filepath.Clean(path)
	if !filepath.IsAbs(path) {
		return path
	}
	relevant := t.ancestors(path)
	resolved, rest := "/", components(path)
	for links := 0; len(rest) > 0; {
		c := rest[0]
		rest = rest[1:]
		if c == ".." {
			resolved = filepath.Dir(resolved)
			continue
		}
		next := filepath.Join(resolved, c)
		if relevant.isTarget(next) {
			resolved = next
			continue
		}
		holder, ok := relevant.containing(resolved)
		if !ok || !localTypes[holder.FSType] {
			return filepath.Join(append([]string{next}, rest...)...)
		}
		fi, err := os.Lstat(next)
		if err != nil || fi.Mode()&os.ModeSymlink == 0 {
			if err != nil {
				return filepath.Join(append([]string{next}, rest...)...)
			}
			resolved = next
			continue
		}
		link, err := os.Readlink(next)
		if links++; err != nil || links > maxLinks {
			return path
		}
		if filepath.IsAbs(link) {
			resolved = "/"
		}
		rest = append(components(link), rest...)
		relevant = t
		if !slices.Contains(rest, "..") {
			// Without "..", the mounts that matter are those above the
			// path the link leads to.
			relevant = t.ancestors(filepath.Join(append([]string{resolved}, rest...)...))
		}
	}
	return resolved
}

func components(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

// ancestors returns the mounts at path or above it, in table order: all
// Resolve needs to know about one path, found in one pass over a table
// that may hold thousands of mounts.
func (t Table) ancestors(path string) Table {
	var out Table
	for _, m := range t {
		if within(path, m.Target) {
			out = append(out, m)
		}
	}
	return out
}

func (t Table) isTarget(dir string) bool {
	for _, m := range t {
		if m.Target == dir {
			return true
		}
	}
	return false
}

// Shows reports whether target shows the wanted mount now: the top mount
// there is w.
func (t Table) Shows(target string, w Want) bool {
	top, ok := t.Top(target)
	return ok && t.Matches(top, w)
}
