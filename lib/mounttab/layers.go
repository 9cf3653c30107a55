package mounttab

import "path/filepath"

// Layers returns the mounts that keep target from being unmounted however
// long one waits, in mount order: mounts nested inside target (both
// kernels refuse to unmount a filesystem another one is mounted in), and
// nullfs mounts of a directory inside target (FreeBSD's dounmount() in
// sys/kern/vfs_mount.c answers EBUSY while the lower mount's mnt_uppers
// list is not empty; getfsstat names a nullfs mount's source directory as
// what it is mounted from). A Linux bind mount does not pin the mount it
// was taken from, and mountinfo records it under its filesystem's own type,
// so on Linux only nested mounts are found.
func (t Table) Layers(target string) []Mount {
	target = filepath.Clean(target)
	var out []Mount
	for _, m := range t {
		nested := m.Target != target && within(m.Target, target)
		layered := m.FSType == "nullfs" && m.Target != target && within(filepath.Clean(m.Source), target)
		if nested || layered {
			out = append(out, m)
		}
	}
	return out
}

// Within reports whether path is dir or lies below it (string compare only).
func Within(path, dir string) bool { return within(filepath.Clean(path), filepath.Clean(dir)) }
