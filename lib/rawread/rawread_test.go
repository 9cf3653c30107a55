package rawread

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFileReadsWhole(t *testing.T) {
	dir := t.TempDir()
	for _, size := range []int{0, 1, 16 << 10, 16<<10 + 1, 200 << 10} {
		want := bytes.Repeat([]byte("x"), size)
		p := filepath.Join(dir, "f")
		require.NoError(t, os.WriteFile(p, want, 0o644))
		got, err := File(p)
		require.NoError(t, err)
		assert.Equal(t, want, got, "size %d", size)
	}
	_, err := File(filepath.Join(dir, "missing"))
	assert.True(t, errors.Is(err, os.ErrNotExist), "%v", err)
	_, err = File(dir)
	assert.Error(t, err, "a directory")
}
