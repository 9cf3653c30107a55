package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/envhooks/envhooks/lib/record"
	"github.com/envhooks/envhooks/lib/safefile"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// FileStore keeps one lease file per environment in a directory on shared
// storage. A lease is created by link(2) of a complete temporary file onto
// <jname>.lease: link fails if the name exists, atomically, on local
// filesystems and on NFS alike, and readers never see a half-written lease.
// A released lease is renamed to <jname>.gen, which so keeps the last
// generation handed out: numbers keep growing across owners at the cost of
// one rename.
type FileStore struct {
	Dir string
}

func (f *FileStore) leasePath(jname string) string { return filepath.Join(f.Dir, jname+".lease") }
func (f *FileStore) genPath(jname string) string   { return filepath.Join(f.Dir, jname+".gen") }

func (f *FileStore) Get(_ context.Context, jname string) (*Lease, error) {
	return readLease(f.leasePath(jname), jname)
}

func readLease(path, jname string) (*Lease, error) {
	raw, found, err := Codec.ReadFile(path)
	if !found || err != nil {
		return nil, err
	}
	l, err := parseRecord(raw, jname)
	if err == nil && l.Node == "" {
		err = errors.New("it names no node")
	}
	if err != nil {
		return nil, Codec.Damaged(path, err)
	}
	return l, nil
}

func (f *FileStore) Acquire(ctx context.Context, jname, node string) (*Lease, error) {
	if cur, err := f.Get(ctx, jname); err != nil {
		return nil, err
	} else if cur != nil {
		if cur.Node == node {
			return cur, nil
		}
		return nil, sysexits.Wrap(sysexits.NoPerm, &HeldError{Lease: *cur})
	}
	l := &Lease{JName: jname, Node: node, Since: time.Now().UTC().Truncate(time.Second), Generation: f.lastGen(jname) + 1}
	tmp := filepath.Join(f.Dir, fmt.Sprintf(".%s.lease.%s.%s", jname, node, randomSuffix()))
	if err := safefile.WriteAtomic(tmp, formatRecord(l), 0o644); errors.Is(err, os.ErrNotExist) {
		// Gone since Open checked it (the share was unmounted?): never
		// made here, see CheckDir.
		return nil, sysexits.New(sysexits.Unavailable, "LEASE_DIR %s does not exist: mount the shared storage that holds it", f.Dir)
	} else if err != nil {
		return nil, err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, f.leasePath(jname)); err != nil {
		if errors.Is(err, os.ErrExist) {
			if cur, gerr := f.Get(ctx, jname); gerr == nil && cur != nil {
				if cur.Node == node {
					return cur, nil
				}
				return nil, sysexits.Wrap(sysexits.NoPerm, &HeldError{Lease: *cur})
			}
		}
		return nil, err
	}
	return l, nil
}

func (f *FileStore) Release(ctx context.Context, jname, node string) error {
	cur, err := f.Get(ctx, jname)
	if err != nil || cur == nil {
		return err
	}
	if cur.Node != node {
		return sysexits.Wrap(sysexits.NoPerm, &HeldError{Lease: *cur})
	}
	// The lease becomes the record of the last generation, atomically.
	err = os.Rename(f.leasePath(jname), f.genPath(jname))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err == nil {
		syncDir(f.Dir)
	}
	return err
}

func (f *FileStore) Takeover(ctx context.Context, jname, node, from string) (*Lease, error) {
	cur, err := f.Get(ctx, jname)
	if err != nil {
		return nil, err
	}
	if cur != nil && cur.Node != node {
		if cur.Node != from {
			return nil, sysexits.Wrap(sysexits.NoPerm, fmt.Errorf("refusing the takeover: %s is held by %s, not by %s as you said", jname, cur.Node, from))
		}
		// Move the old lease aside under a name of our own, then check we
		// moved the lease we meant to: a concurrent takeover may have
		// replaced it in between.
		tomb := filepath.Join(f.Dir, fmt.Sprintf(".%s.lease.taken.%s", jname, randomSuffix()))
		if err := os.Rename(f.leasePath(jname), tomb); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		defer os.Remove(tomb)
		if moved, _ := readLease(tomb, jname); moved != nil && (moved.Node != cur.Node || moved.Generation != cur.Generation) {
			if err := os.Link(tomb, f.leasePath(jname)); err != nil {
				return nil, fmt.Errorf("a concurrent takeover of %s interfered; the lease of %s was moved to %s: inspect %s", jname, moved.Node, tomb, f.Dir)
			}
			return nil, sysexits.Wrap(sysexits.NoPerm, &HeldError{Lease: *moved})
		}
		if err := f.saveGen(jname, max(cur.Generation, f.lastGen(jname))); err != nil {
			return nil, err
		}
	}
	return f.Acquire(ctx, jname, node)
}

func (f *FileStore) List(ctx context.Context) ([]Lease, error) {
	paths, err := filepath.Glob(filepath.Join(f.Dir, "*.lease"))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	var out []Lease
	for _, p := range paths {
		jname := strings.TrimSuffix(filepath.Base(p), ".lease")
		if l, err := readLease(p, jname); err == nil && l != nil {
			out = append(out, *l)
		}
	}
	return out, nil
}

// lastGen reads <jname>.gen: a released lease, or the generation alone,
// written by a takeover.
func (f *FileStore) lastGen(jname string) uint64 {
	raw, err := safefile.Read(f.genPath(jname), Codec.Max)
	if err != nil {
		return 0
	}
	if l, err := parseRecord(raw, jname); err == nil {
		return l.Generation
	}
	return 0
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

func (f *FileStore) saveGen(jname string, gen uint64) error {
	return safefile.WriteAtomic(f.genPath(jname), formatRecord(&Lease{JName: jname, Generation: gen}), 0o644)
}

func randomSuffix() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// MarkerName is the file envctl lease init writes into a file lease
// directory that shares a filesystem with / (see CheckDir).
const MarkerName = ".envhooks-lease-dir"

var markerCodec = record.Kind{Format: "envhooks-lease-dir 1", What: "lease directory marker", Max: 4 << 10}

type marker struct {
	Node  string    `json:"initialised_by"`
	Since time.Time `json:"since"`
}

// CheckDir refuses (69) a file lease directory that may be the local disk
// rather than the shared storage: when the storage is not mounted, a lease
// taken in its empty mount point, or in a directory created there, would
// let every node own every environment. The directory must exist (envhooks
// never creates it) and lie on another filesystem than /, or carry the
// marker envctl lease init writes while the shared storage is mounted.
func CheckDir(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return sysexits.New(sysexits.Unavailable, "LEASE_DIR %s does not exist: mount the shared storage that holds it (envhooks never creates it: a lease directory made on the local disk would let every node own every environment)", dir)
	case err != nil:
		return sysexits.New(sysexits.Unavailable, "cannot use LEASE_DIR %s: %v", dir, err)
	case !fi.IsDir():
		return sysexits.New(sysexits.Unavailable, "LEASE_DIR %s is not a directory", dir)
	}
	if root, err := os.Stat("/"); err == nil && !sameDevice(fi, root) {
		return nil
	}
	var m marker
	found, err := markerCodec.Read(filepath.Join(dir, MarkerName), &m)
	if err != nil {
		return err
	}
	if !found {
		return sysexits.New(sysexits.Unavailable, "LEASE_DIR %s is on the root filesystem and carries no marker: if the shared storage is not mounted, mount it; if it is (or / itself is shared), run envctl lease init once", dir)
	}
	return nil
}

func sameDevice(a, b os.FileInfo) bool {
	sa, ok1 := a.Sys().(*syscall.Stat_t)
	sb, ok2 := b.Sys().(*syscall.Stat_t)
	return ok1 && ok2 && sa.Dev == sb.Dev
}

// InitDir writes the marker into dir, which must exist; already is true
// when it was there.
func InitDir(dir, node string) (already bool, err error) {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return false, sysexits.New(sysexits.Unavailable, "LEASE_DIR %s does not exist: create it on the shared storage, with that storage mounted, then run envctl lease init", dir)
	case err != nil:
		return false, sysexits.New(sysexits.Unavailable, "cannot use LEASE_DIR %s: %v", dir, err)
	case !fi.IsDir():
		return false, sysexits.New(sysexits.Unavailable, "LEASE_DIR %s is not a directory", dir)
	}
	p := filepath.Join(dir, MarkerName)
	if found, err := markerCodec.Read(p, &marker{}); found && err == nil {
		return true, nil
	}
	return false, markerCodec.Write(p, marker{Node: node, Since: time.Now().UTC().Truncate(time.Second)}, 0o644)
}
