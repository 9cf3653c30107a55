package state

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/mounttab"
)

func TestStoreRoundTripAndRemoveWhenEmpty(t *testing.T) {
	s := Store{Dir: filepath.Join(t.TempDir(), "state")}
	r, err := s.Load("web1")
	require.NoError(t, err)
	assert.Nil(t, r)
	rec := &Record{JName: "web1", Backend: "nullfs", Generation: 3, Actions: []Action{
		{ID: "mount:/a", What: "bind /x on /a", Kind: KindUnmount, Target: "/a", Want: mounttab.Want{BindOf: "/x"}, Argv: []string{"umount", "/a"}, Direct: true},
		{ID: "session:t", What: "log in", Kind: KindCommand, Argv: []string{"logout"}, OKExit: []int{21}},
	}}
	require.NoError(t, s.Save(rec))
	fi, err := os.Stat(filepath.Join(s.Dir, "web1.json"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	got, err := s.Load("web1")
	require.NoError(t, err)
	assert.Equal(t, rec.Actions, got.Actions)
	assert.True(t, got.Has("session:t"))
	got.Remove("session:t")
	got.Remove("mount:/a")
	require.NoError(t, s.Save(got))
	_, err = os.Stat(filepath.Join(s.Dir, "web1.json"))
	assert.True(t, os.IsNotExist(err), "a record with nothing attached is removed")
}

func TestDamagedRecordIsAnError(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	require.NoError(t, os.WriteFile(filepath.Join(s.Dir, "web1.json"), []byte("{torn"), 0o600))
	_, err := s.Load("web1")
	assert.ErrorContains(t, err, "damaged")
}

func TestWriteFileAtomicLeavesNoTemporaryFiles(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	require.NoError(t, WriteFileAtomic(p, []byte("one"), 0o644))
	require.NoError(t, WriteFileAtomic(p, []byte("two"), 0o640))
	raw, _ := os.ReadFile(p)
	assert.Equal(t, "two", string(raw))
	entries, _ := os.ReadDir(dir)
	assert.Len(t, entries, 1)
	fi, _ := os.Stat(p)
	assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm())
}
