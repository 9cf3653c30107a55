// Package zfs builds the zfs(8) and zpool(8) command lines envhooks runs and
// parses their script output (-H: tab-separated, no header). It runs nothing
// itself: callers run the argv through lib/run, which gives every call a
// deadline. mistifyio/go-zfs was not used because it has no pool import or
// export and starts its processes without a deadline; the subset needed here
// is small and its argv is tested exactly.
//
// Only options that the oldest zfs still in use here understands are used:
// Debian's zfs-fuse (ZFS pool version 23) has no -p for list/get, no -t for
// get, and no -N for zpool import (see ImportOptions.NoMount).
package zfs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
)

// component is what ZFS allows between the slashes of a dataset name,
// compiled on first use: every hook start links this package.
var component = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_.:-]+$`) })

// maxNameLen is ZFS_MAX_DATASET_NAME_LEN less the terminating NUL.
const maxNameLen = 255

// reservedPrefixes begin pool names zpool refuses because they are vdev
// keywords ("log" is refused only as the whole name).
var reservedPrefixes = []string{"mirror", "raidz", "draid", "spare"}

// CheckPool accepts a valid pool name.
func CheckPool(name string) error {
	switch {
	case name == "":
		return errors.New("the pool name is empty")
	case strings.ContainsAny(name, " \t\r\n"):
		return fmt.Errorf("pool name %q contains white space, which ZFS does not allow", name)
	case strings.ContainsAny(name, "/@#"):
		return fmt.Errorf("pool name %q may not contain '/', '@' or '#'", name)
	case !component().MatchString(name):
		return fmt.Errorf("pool name %q has a character ZFS does not allow (letters, digits, '_', '-', '.', ':')", name)
	case !(name[0] >= 'a' && name[0] <= 'z' || name[0] >= 'A' && name[0] <= 'Z'):
		return fmt.Errorf("pool name %q must begin with a letter", name)
	}
	if name == "log" {
		return fmt.Errorf("pool name %q is reserved by zpool", name)
	}
	for _, r := range reservedPrefixes {
		if strings.HasPrefix(name, r) {
			return fmt.Errorf("pool name %q is reserved by zpool (names beginning with %q are vdev keywords)", name, r)
		}
	}
	return nil
}

// CheckDataset accepts a filesystem name: pool/a/b, never a snapshot
// (pool/a@s) or a bookmark (pool/a#b).
func CheckDataset(name string) error {
	switch {
	case name == "":
		return errors.New("the dataset name is empty")
	case len(name) > maxNameLen:
		return fmt.Errorf("dataset name %.40q... is longer than %d bytes", name, maxNameLen)
	case strings.ContainsAny(name, " \t\r\n"):
		return fmt.Errorf("dataset name %q contains white space, which ZFS does not allow", name)
	case strings.ContainsAny(name, "@#"):
		return fmt.Errorf("%q is not a dataset name: '@' and '#' name snapshots and bookmarks", name)
	}
	parts := strings.Split(name, "/")
	for _, p := range parts {
		switch {
		case p == "":
			return fmt.Errorf("dataset name %q has an empty component (a leading, trailing or doubled '/')", name)
		case p == "." || p == "..":
			return fmt.Errorf("dataset name %q may not have a %q component", name, p)
		case !component().MatchString(p):
			return fmt.Errorf("dataset name %q has a character ZFS does not allow (letters, digits, '_', '-', '.', ':')", name)
		}
	}
	if err := CheckPool(parts[0]); err != nil {
		return fmt.Errorf("dataset name %q: %v", name, err)
	}
	return nil
}

// CheckSnapshot accepts dataset@snapshot.
func CheckSnapshot(name string) error {
	ds, snap, ok := strings.Cut(name, "@")
	if !ok {
		return fmt.Errorf("%q is not a snapshot: want dataset@snapshot, such as pool/images/base@2024-05", name)
	}
	if err := CheckDataset(ds); err != nil {
		return err
	}
	if snap == "" || strings.Contains(snap, "@") || !component().MatchString(snap) {
		return fmt.Errorf("%q: the snapshot part after '@' must be one word of letters, digits, '_', '-', '.', ':'", name)
	}
	if len(name) > maxNameLen {
		return fmt.Errorf("snapshot name %.40q... is longer than %d bytes", name, maxNameLen)
	}
	return nil
}

// SplitSnapshot returns the dataset and snapshot parts of a checked
// snapshot name.
func SplitSnapshot(name string) (dataset, snap string) {
	dataset, snap, _ = strings.Cut(name, "@")
	return dataset, snap
}

// TreeArgv lists the properties mounting needs for dataset and everything
// below it: one call, whatever the size of the tree. The snapshots named in
// also are looked up in the same call (a snapshot has no tree below it, so
// -r adds nothing for them); zfs reports each missing name on stderr and
// still lists the others (see Missing).
func TreeArgv(dataset string, also ...string) []string {
	return append([]string{"zfs", "get", "-H", "-o", "name,property,value,source", "-r", "type,mountpoint,canmount", dataset}, also...)
}

// ExistsArgv succeeds when the dataset exists. With several names it lists
// those that exist and reports the others on stderr (see Missing).
func ExistsArgv(dataset string, more ...string) []string {
	return append([]string{"zfs", "list", "-H", "-o", "name", dataset}, more...)
}

// SetMountpointArgv points dataset (and the children that inherit it) at dir.
func SetMountpointArgv(dataset, dir string) []string {
	return []string{"zfs", "set", "mountpoint=" + dir, dataset}
}

// MountArgv mounts a dataset at its mountpoint property.
func MountArgv(dataset string) []string { return []string{"zfs", "mount", dataset} }

// UnmountArgv unmounts a dataset mounted by zfs mount.
func UnmountArgv(dataset string, force bool) []string {
	if force {
		return []string{"zfs", "umount", "-f", dataset}
	}
	return []string{"zfs", "umount", dataset}
}

// CloneArgv clones snapshot as dataset, mounted at dir.
func CloneArgv(snapshot, dataset, dir string) []string {
	return []string{"zfs", "clone", "-o", "mountpoint=" + dir, snapshot, dataset}
}

// CreateArgv creates an empty filesystem with the given properties
// ("name=value"), in order.
func CreateArgv(dataset string, props ...string) []string {
	argv := []string{"zfs", "create"}
	for _, p := range props {
		argv = append(argv, "-o", p)
	}
	return append(argv, dataset)
}

// DestroyArgv destroys one dataset: no -r, so it never takes anything below
// it, and no -f, so a dataset something holds or depends on is refused.
func DestroyArgv(dataset string) []string { return []string{"zfs", "destroy", dataset} }

// PoolImportedArgv succeeds when the pool is imported.
func PoolImportedArgv(pool string) []string {
	return []string{"zpool", "list", "-H", "-o", "name", pool}
}

// ImportOptions shape zpool import.
type ImportOptions struct {
	// NoMount passes -N: the import mounts nothing, so only what the
	// environment needs is mounted, by steps that are recorded. zfs-fuse's
	// zpool has no -N.
	NoMount bool
	// Force passes -f, which imports a pool another host may still have
	// imported: only for a node known to be down.
	Force bool
	// Dirs are searched for the pool's devices (-d, repeated).
	Dirs []string
}

// ImportArgv imports pool without recording it in a cache file, so that no
// node imports it again by itself at boot: on shared devices, who imports a
// pool is decided by mnt-start alone.
func ImportArgv(pool string, o ImportOptions) []string {
	argv := []string{"zpool", "import"}
	if o.NoMount {
		argv = append(argv, "-N")
	}
	argv = append(argv, "-o", "cachefile=none")
	if o.Force {
		argv = append(argv, "-f")
	}
	for _, d := range o.Dirs {
		argv = append(argv, "-d", d)
	}
	return append(argv, pool)
}

// ExportArgv exports pool (unmounting its datasets).
func ExportArgv(pool string) []string { return []string{"zpool", "export", pool} }

// Dataset is one filesystem as TreeArgv reports it.
type Dataset struct {
	Name       string
	Type       string // filesystem, volume, snapshot
	Mountpoint string // a path, "legacy" or "none"
	// MountpointLocal is true when the mountpoint is set on this dataset
	// itself rather than inherited or defaulted.
	MountpointLocal bool
	CanMount        string // on, off, noauto
}

// ParseTree reads TreeArgv's output: one line per dataset and property,
// "name<TAB>property<TAB>value<TAB>source". Datasets keep the order zfs
// printed them in (parents before children).
func ParseTree(out []byte) ([]Dataset, error) {
	var order []string
	byName := map[string]*Dataset{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 4 {
			return nil, fmt.Errorf("zfs get output line %d: want 4 tab-separated fields, got %q", n, line)
		}
		d, ok := byName[f[0]]
		if !ok {
			d = &Dataset{Name: f[0]}
			byName[f[0]] = d
			order = append(order, f[0])
		}
		switch f[1] {
		case "type":
			d.Type = f[2]
		case "mountpoint":
			d.Mountpoint = f[2]
			d.MountpointLocal = f[3] == "local" || f[3] == "received"
		case "canmount":
			d.CanMount = f[2]
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	out2 := make([]Dataset, 0, len(order))
	for _, name := range order {
		out2 = append(out2, *byName[name])
	}
	return out2, nil
}

// InUseElsewhere reports whether zpool import's whole stderr says the pool
// may be imported by another host: OpenZFS's zpool import prints "pool was
// previously in use from another system." with "Last accessed by HOST
// (hostid=...)" (the guard -f overrides), and, for a pool with multihost=on
// that another host holds right now, "pool is imported on host 'HOST'
// (hostid=...)". It names that host when the message does ("" if not).
func InUseElsewhere(stderr string) (bool, string) {
	lower := strings.ToLower(stderr)
	for _, sign := range []string{"previously in use from another system", "pool is imported on host", "in use from other system",
		"may be in use", "last accessed by", "currently imported on another system"} {
		if strings.Contains(lower, sign) {
			return true, otherHost(stderr)
		}
	}
	return false, ""
}

// otherHost finds the host in "Last accessed by HOST (hostid=" or
// "imported on host 'HOST' (hostid=".
func otherHost(stderr string) string {
	for _, line := range strings.Split(stderr, "\n") {
		for _, lead := range []string{"Last accessed by ", "imported on host "} {
			i := strings.Index(line, lead)
			if i < 0 {
				continue
			}
			rest := line[i+len(lead):]
			if j := strings.Index(rest, " (hostid="); j >= 0 {
				rest = rest[:j]
			}
			if host := strings.Trim(strings.TrimSpace(rest), "'"); host != "" {
				return host
			}
		}
	}
	return ""
}

// NotExist reports whether a zfs or zpool message says that the dataset,
// snapshot or pool asked about does not exist.
func NotExist(stderr string) bool {
	return strings.Contains(stderr, "does not exist") || strings.Contains(stderr, "no such pool")
}

// Missing reads the stderr of a zfs get or zfs list that named several
// datasets or snapshots: each one that does not exist is reported on a line
// of its own ("cannot open 'NAME': dataset does not exist") while the others
// are still listed. It returns the names reported missing, and ok false when
// stderr says anything else (another failure, or a name not asked about),
// which must then be taken as the failure it is.
func Missing(stderr []byte, names []string) (missing map[string]bool, ok bool) {
	asked := map[string]bool{}
	for _, n := range names {
		asked[n] = true
	}
	missing = map[string]bool{}
	for _, line := range strings.Split(string(stderr), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		rest, found := strings.CutPrefix(line, "cannot open '")
		if !found {
			return nil, false
		}
		name, why, found := strings.Cut(rest, "': ")
		if !found || !asked[name] || !NotExist(why) {
			return nil, false
		}
		missing[name] = true
	}
	return missing, true
}

// ParentMissing reports whether a zfs create message says that the parent
// of the new dataset, or its whole pool, does not exist.
func ParentMissing(stderr string) bool {
	return strings.Contains(stderr, "parent does not exist") || strings.Contains(stderr, "no such pool")
}

// AlreadyExists reports whether a zfs create or clone message says the
// dataset was there already: then the command did not make it.
func AlreadyExists(stderr string) bool { return strings.Contains(stderr, "already exists") }

// IsBusy reports whether a zfs message says the dataset is busy (zfs-fuse
// says so for a moment after an unmount it has not yet processed).
func IsBusy(stderr string) bool { return strings.Contains(stderr, "busy") }
