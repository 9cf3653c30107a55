package lease

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/envhooks/envhooks/lib/nfsclient"
	"github.com/envhooks/envhooks/lib/record"
	"github.com/envhooks/envhooks/lib/safefile"
)

// Records keeps small documents beside the leases, in the same store, so
// that every node reads what any node wrote: move journals, the history of
// ownership changes, maintenance marks, requests to relocate an environment
// its owner gave up. A kind is a folder of records
// ("journal", "history/web1"); a name is one record in it. Every driver
// replaces a record atomically: a reader sees the old value or the new one,
// whole.
type Records interface {
	// PutRecord writes (or replaces) one record.
	PutRecord(ctx context.Context, kind, name string, value []byte) error
	// GetRecord reads one record; nil, nil when there is none.
	GetRecord(ctx context.Context, kind, name string) ([]byte, error)
	// DeleteRecord removes one record; none is success.
	DeleteRecord(ctx context.Context, kind, name string) error
	// ListRecords names the records of kind, sorted.
	ListRecords(ctx context.Context, kind string) ([]string, error)
}

// Wrapper is a store that decorates another (envctl's --takeover): its
// records are the wrapped store's.
type Wrapper interface{ Unwrap() Store }

// RecordsOf returns s's records, or an error saying the store keeps none.
func RecordsOf(s Store) (Records, error) {
	for {
		if r, ok := s.(Records); ok {
			return r, nil
		}
		w, ok := s.(Wrapper)
		if !ok {
			break
		}
		s = w.Unwrap()
	}
	return nil, errors.New("this lease store keeps no records (journals, history, maintenance marks): use LEASE_BACKEND file, nfs or etcd in envctl")
}

// checkRecord refuses kinds and names that could leave the records'
// folder: each part is a plain name.
func checkRecord(kind, name string) error {
	if name == "" {
		return fmt.Errorf("a record of %q without a name", kind)
	}
	return checkRecordPath(kind, name)
}

// checkRecordPath is checkRecord for a kind alone (name "").
func checkRecordPath(kind, name string) error {
	if strings.Contains(name, "/") {
		return fmt.Errorf("bad record name %q", name)
	}
	parts := strings.Split(kind, "/")
	if name != "" {
		parts = append(parts, name)
	}
	for _, p := range parts {
		if p == "" || p == "." || p == ".." || strings.HasPrefix(p, ".") || strings.ContainsAny(p, "\\\x00") {
			return fmt.Errorf("bad record path %q/%q", kind, name)
		}
	}
	return nil
}

// PutJSON writes v as a record, in the one encoding every record uses.
func PutJSON(ctx context.Context, r Records, kind, name string, v any) error {
	raw, err := storedKind(kind).Encode(v)
	if err != nil {
		return err
	}
	return r.PutRecord(ctx, kind, name, raw)
}

// GetJSON reads a record into v; found is false when there is none. One
// that does not decode is a damaged record (65) named by kind and name.
func GetJSON(ctx context.Context, r Records, kind, name string, v any) (found bool, err error) {
	raw, err := r.GetRecord(ctx, kind, name)
	if err != nil || raw == nil {
		return false, err
	}
	k := storedKind(kind)
	if err := k.Decode(raw, v); err != nil {
		return false, k.Damaged(kind+"/"+name, err)
	}
	return true, nil
}

// storedKind is the one codec of the records kept in the lease store
// (record.Kind), by the first element of their kind: "envhooks-journal 1",
// "envhooks-history 1", ... Records written before they named their format
// are still read.
func storedKind(kind string) record.Kind {
	base, _, _ := strings.Cut(kind, "/")
	return record.Kind{Format: "envhooks-" + base + " 1", What: base + " record", Unversioned: true}
}

// Records of a file store live in <LEASE_DIR>/.records/<kind>/<name>.
func (f *FileStore) recordPath(kind, name string) string {
	return filepath.Join(f.Dir, ".records", filepath.FromSlash(kind), name)
}

func (f *FileStore) PutRecord(_ context.Context, kind, name string, value []byte) error {
	if err := checkRecord(kind, name); err != nil {
		return err
	}
	p := f.recordPath(kind, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return safefile.WriteAtomic(p, value, 0o644)
}

func (f *FileStore) GetRecord(_ context.Context, kind, name string) ([]byte, error) {
	if err := checkRecord(kind, name); err != nil {
		return nil, err
	}
	raw, err := safefile.Read(f.recordPath(kind, name), 1<<20)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return raw, err
}

func (f *FileStore) DeleteRecord(_ context.Context, kind, name string) error {
	if err := checkRecord(kind, name); err != nil {
		return err
	}
	err := os.Remove(f.recordPath(kind, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

func (f *FileStore) ListRecords(_ context.Context, kind string) ([]string, error) {
	if err := checkRecordPath(kind, ""); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(f.recordPath(kind, ""))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") && e.Type().IsRegular() {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// Records of an NFS store live in <LEASE_DIR>/.records/<kind>/<name> on
// the server. WRITE truncates first, so a record is written under a
// temporary name and RENAMEd over the old one, which NFS does atomically.
func (n *NFSStore) recordPath(kind, name string) string {
	return n.rel(path.Join(".records", kind, name))
}

func (n *NFSStore) PutRecord(ctx context.Context, kind, name string, value []byte) error {
	if err := checkRecord(kind, name); err != nil {
		return err
	}
	final := n.recordPath(kind, name)
	tmp := path.Join(path.Dir(final), "."+name+".tmp."+randomSuffix())
	write := func(c *nfsclient.Client) error {
		if err := c.WriteFile(ctx, tmp, value, 0o644); err != nil {
			return err
		}
		return c.Rename(ctx, tmp, final)
	}
	err := n.with(ctx, write)
	if errors.Is(err, fs.ErrNotExist) {
		err = n.with(ctx, func(c *nfsclient.Client) error {
			if _, err := c.MkdirAll(ctx, path.Dir(final), 0o755, nfsclient.NoOwner); err != nil {
				return err
			}
			return write(c)
		})
	}
	if err != nil {
		// Best effort: a temporary name left behind is hidden (a dot)
		// and harms nothing.
		undo := context.WithoutCancel(ctx)
		_ = n.with(undo, func(c *nfsclient.Client) error { return c.Remove(undo, tmp) })
	}
	return err
}

func (n *NFSStore) GetRecord(ctx context.Context, kind, name string) ([]byte, error) {
	if err := checkRecord(kind, name); err != nil {
		return nil, err
	}
	var raw []byte
	err := n.with(ctx, func(c *nfsclient.Client) error {
		var err error
		raw, err = c.ReadFile(ctx, n.recordPath(kind, name))
		return err
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return raw, err
}

func (n *NFSStore) DeleteRecord(ctx context.Context, kind, name string) error {
	if err := checkRecord(kind, name); err != nil {
		return err
	}
	err := n.with(ctx, func(c *nfsclient.Client) error { return c.Remove(ctx, n.recordPath(kind, name)) })
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func (n *NFSStore) ListRecords(ctx context.Context, kind string) ([]string, error) {
	if err := checkRecordPath(kind, ""); err != nil {
		return nil, err
	}
	var names []string
	err := n.with(ctx, func(c *nfsclient.Client) error {
		var err error
		names, err = c.ReadDirNames(ctx, n.recordPath(kind, ""))
		return err
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, name := range names {
		if !strings.HasPrefix(name, ".") {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out, nil
}
