// Package mounttab answers "what is mounted where" from the kernel's mount
// table only: /proc/self/mountinfo on Linux, getfsstat(MNT_NOWAIT) on FreeBSD.
// It never stats or opens a mount target, because that hangs on a dead NFS
// server, which is exactly when a hook must still answer.
package mounttab

import (
	"path/filepath"
	"strings"
)

// Mount is one entry of the mount table.
type Mount struct {
	Source  string // device, server:/export, dataset, or nullfs source directory
	Target  string // the mount point, cleaned
	FSType  string
	Options string
	// Linux only: which filesystem (major:minor) and which directory of it
	// the mount shows. Bind mounts are recognised by these, because
	// mountinfo names a bind mount's device, not the directory it shows.
	Dev  string
	Root string
}

// Table is a snapshot of the mount table, in mount order.
type Table []Mount

// Read returns the current mount table.
func Read() (Table, error) { return read() }

// At returns the mounts whose target is dir, bottom first: more than one
// means mounts are stacked there, and the last one is what dir shows.
func (t Table) At(dir string) []Mount {
	dir = filepath.Clean(dir)
	var out []Mount
	for _, m := range t {
		if m.Target == dir {
			out = append(out, m)
		}
	}
	return out
}

// Top returns what dir shows if something is mounted on it.
func (t Table) Top(dir string) (Mount, bool) {
	at := t.At(dir)
	if len(at) == 0 {
		return Mount{}, false
	}
	return at[len(at)-1], true
}

// Under returns the mounts at dir or below it, in mount order.
func (t Table) Under(dir string) []Mount {
	dir = filepath.Clean(dir)
	var out []Mount
	for _, m := range t {
		if within(m.Target, dir) {
			out = append(out, m)
		}
	}
	return out
}

// Containing returns the mount that holds path (envctl doctor: on what kind
// of file system a directory lies).
func (t Table) Containing(path string) (Mount, bool) { return t.containing(path) }

// containing returns the mount that holds path: the one with the longest
// target that is path or an ancestor of it (the top one when stacked).
func (t Table) containing(path string) (Mount, bool) {
	path = filepath.Clean(path)
	best, found := Mount{}, false
	for _, m := range t {
		if within(path, m.Target) && (!found || len(m.Target) >= len(best.Target)) {
			best, found = m, true
		}
	}
	return best, found
}

// within reports whether path is dir or lies below it (string compare only).
// It allocates nothing: it runs once per mount of tables of thousands.
func within(path, dir string) bool {
	if dir == "/" {
		return strings.HasPrefix(path, "/")
	}
	return strings.HasPrefix(path, dir) && (len(path) == len(dir) || path[len(dir)] == '/')
}
