package record

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/sysexits"
)

type thing struct {
	Name string `json:"name"`
	N    int    `json:"n,omitempty"`
}

var kind = Kind{Format: "test-thing 1", What: "thing record", Max: 1024}

func TestEncodePutsTheFormatFirst(t *testing.T) {
	raw, err := kind.Encode(thing{Name: "a", N: 2})
	require.NoError(t, err)
	assert.Equal(t, "{\n  \"format\": \"test-thing 1\",\n  \"name\": \"a\",\n  \"n\": 2\n}\n", string(raw))
	raw, err = kind.Encode(struct{}{})
	require.NoError(t, err)
	assert.Equal(t, "{\n  \"format\": \"test-thing 1\"\n}\n", string(raw))
	_, err = kind.Encode([]int{1})
	assert.Error(t, err)
	var got thing
	require.NoError(t, kind.Decode([]byte(`{"format": "test-thing 1", "name": "b", "later": true}`), &got))
	assert.Equal(t, thing{Name: "b"}, got, "fields of later versions are ignored")
}

func TestReadAndWrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "r")
	var v thing
	found, err := kind.Read(p, &v)
	require.NoError(t, err)
	assert.False(t, found)
	require.NoError(t, kind.Write(p, thing{Name: "a"}, 0o640))
	found, err = kind.Read(p, &v)
	require.NoError(t, err)
	assert.True(t, found)
	assert.Equal(t, "a", v.Name)
	fi, err := os.Stat(p)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm())
}

// Every way a record can be wrong is one line, names the file, says
// "damaged", never quotes more than a character of the content, and
// carries 65.
func TestDamage(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "r")
	secret := strings.Repeat("SECRET", 10)
	for name, raw := range map[string]string{
		"empty":        "",
		"torn":         `{"format": "test-thing 1", "name": "` + secret,
		"no format":    `{"name": "` + secret + `"}`,
		"other format": `{"format": "other 1", "name": "` + secret + `"}`,
		"long format":  `{"format": "` + secret + `"}`,
		"wrong type":   `{"format": "test-thing 1", "name": ["` + secret + `"]}`,
		"not JSON":     secret + "\n" + secret,
		"binary":       "\x00\x01" + secret,
		"too large":    `{"format": "test-thing 1", "name": "` + strings.Repeat("x", 2000) + `"}`,
	} {
		require.NoError(t, os.WriteFile(p, []byte(raw), 0o600))
		found, err := kind.Read(p, &thing{})
		assert.True(t, found, name)
		require.Error(t, err, name)
		var d *DamagedError
		assert.True(t, errors.As(err, &d), name)
		assert.Equal(t, sysexits.DataErr, sysexits.Code(err), name)
		assert.Contains(t, err.Error(), "thing record "+p+" is damaged: ", name)
		assert.NotContains(t, err.Error(), "SECRETSECRET", name)
		assert.NotContains(t, err.Error(), "\n", name)
	}
	require.NoError(t, os.Remove(p))
	require.NoError(t, syscall.Mkfifo(p, 0o600))
	_, err := kind.Read(p, &thing{})
	assert.Equal(t, sysexits.DataErr, sysexits.Code(err))
	assert.Contains(t, err.Error(), "thing record "+p+" is damaged: not a regular file (a FIFO)")
	_, err = kind.Read("/dev/zero", &thing{})
	assert.Equal(t, sysexits.DataErr, sysexits.Code(err))
	require.NoError(t, os.Chmod(dir, 0o000))
	defer os.Chmod(dir, 0o755)
	if os.Geteuid() != 0 {
		_, err = kind.Read(p, &thing{})
		var d *DamagedError
		assert.False(t, errors.As(err, &d), "a permission problem is not damage")
	}
}

func TestLegacyAndUnversioned(t *testing.T) {
	legacy := Kind{Format: "test-thing 2", What: "thing record", Max: 1024, Legacy: func(raw []byte, v any) error {
		v.(*thing).Name = strings.TrimSpace(string(raw))
		return nil
	}}
	var v thing
	require.NoError(t, legacy.Decode([]byte("old\n"), &v))
	assert.Equal(t, "old", v.Name)
	assert.Error(t, legacy.Decode([]byte(`{"name": "x"}`), &v), "JSON is never legacy")
	unversioned := Kind{Format: "test-thing 2", What: "thing record", Max: 1024, Unversioned: true}
	require.NoError(t, unversioned.Decode([]byte(`{"name": "x"}`), &v))
	assert.Equal(t, "x", v.Name)
	assert.Error(t, unversioned.Decode([]byte(`{"format": "test-thing 3"}`), &v), "a format that is named must match")
}

// FuzzDecode: no content panics the codec, and what decodes encodes back to
// the same value.
func FuzzDecode(f *testing.F) {
	good, _ := kind.Encode(thing{Name: "a", N: 1})
	for _, seed := range [][]byte{good, nil, []byte("{}"), []byte(`{"format": 1}`), []byte("\x00")} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var v thing
		if kind.Decode(raw, &v) != nil {
			return
		}
		enc, err := kind.Encode(v)
		require.NoError(t, err)
		var again thing
		require.NoError(t, kind.Decode(enc, &again))
		assert.Equal(t, v, again)
	})
}
