package safefile

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestWriteAtomicReplacesAndLeavesNoTemporaryFiles(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "rec")
	require.NoError(t, WriteAtomic(p, []byte("one"), 0o644))
	require.NoError(t, WriteAtomic(p, []byte("two"), 0o600))
	raw, err := os.ReadFile(p)
	require.NoError(t, err)
	require.Equal(t, "two", string(raw))
	fi, err := os.Stat(p)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1)
}

func TestReadRefusesWhatIsNotASmallRegularFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	big := filepath.Join(dir, "big")
	require.NoError(t, os.WriteFile(big, make([]byte, 2048), 0o600))
	small := filepath.Join(dir, "small")
	require.NoError(t, os.WriteFile(small, []byte("k=v\n"), 0o600))

	done := make(chan error, 1)
	go func() { _, err := Read(fifo, 1024); done <- err }()
	select {
	case err := <-done:
		require.ErrorIs(t, err, ErrNotRegular)
		require.Contains(t, err.Error(), "FIFO")
	case <-time.After(5 * time.Second):
		t.Fatal("Read of a FIFO with no writer blocked")
	}
	_, err := Read("/dev/zero", 1024)
	require.ErrorIs(t, err, ErrNotRegular)
	require.Contains(t, err.Error(), "character device")
	_, err = Read(dir, 1024)
	require.ErrorIs(t, err, ErrNotRegular)
	_, err = Read(big, 1024)
	require.ErrorIs(t, err, ErrTooLarge)
	_, err = Read(filepath.Join(dir, "missing"), 1024)
	require.True(t, errors.Is(err, os.ErrNotExist))
	raw, err := Read(small, 1024)
	require.NoError(t, err)
	require.Equal(t, "k=v\n", string(raw))
}

func TestReadNamesASocket(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sock")
	l, err := net.Listen("unix", p)
	require.NoError(t, err)
	defer l.Close()
	_, err = Read(p, 1024)
	require.ErrorIs(t, err, ErrNotRegular)
	require.Contains(t, err.Error(), "socket")
}
