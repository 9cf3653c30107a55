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
	"strconv"
	"strings"
	"time"

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
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	l := parseRecord(raw, jname)
	if l.Node == "" {
		return nil, fmt.Errorf("lease file %s is damaged (no node)", path)
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
	if err := os.MkdirAll(f.Dir, 0o755); err != nil {
		return nil, err
	}
	l := &Lease{JName: jname, Node: node, Since: time.Now().UTC().Truncate(time.Second), Generation: f.lastGen(jname) + 1}
	tmp := filepath.Join(f.Dir, fmt.Sprintf(".%s.lease.%s.%s", jname, node, randomSuffix()))
	content := fmt.Sprintf("node=%s\nsince=%s\ngeneration=%d\n", l.Node, l.Since.Format(time.RFC3339), l.Generation)
	if err := safefile.WriteAtomic(tmp, []byte(content), 0o644); err != nil {
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

// lastGen reads <jname>.gen: a released lease, or a bare number written
// by a takeover.
func (f *FileStore) lastGen(jname string) uint64 {
	raw, err := os.ReadFile(f.genPath(jname))
	if err != nil {
		return 0
	}
	if l, err := readLease(f.genPath(jname), jname); err == nil && l != nil {
		return l.Generation
	}
	n, _ := strconv.ParseUint(strings.TrimSpace(string(raw)), 10, 64)
	return n
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

func (f *FileStore) saveGen(jname string, gen uint64) error {
	return safefile.WriteAtomic(f.genPath(jname), []byte(strconv.FormatUint(gen, 10)+"\n"), 0o644)
}

func randomSuffix() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}
