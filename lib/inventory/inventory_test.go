package inventory

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/sysexits"
)

func TestStore(t *testing.T) {
	s := Store{Dir: filepath.Join(t.TempDir(), "inv")}
	names, strays, err := s.Names()
	require.NoError(t, err)
	assert.Empty(t, names)
	assert.Empty(t, strays)
	for _, j := range []string{"web2", "web1"} {
		require.NoError(t, s.Save(&Record{JName: j, Kind: "jail", Node: "a", Registered: time.Unix(0, 0).UTC(), Descriptor: "jname=\"" + j + "\";\n"}))
	}
	require.NoError(t, os.WriteFile(filepath.Join(s.Dir, ".web3.json.tmp1"), nil, 0o644))
	names, strays, err = s.Names()
	require.NoError(t, err)
	assert.Equal(t, []string{"web1", "web2"}, names, "sorted, temporary files ignored")
	assert.Empty(t, strays)
	r, err := s.Load("web1")
	require.NoError(t, err)
	assert.Equal(t, "jname=\"web1\";\n", r.Descriptor)
	raw, err := os.ReadFile(s.Path("web1"))
	require.NoError(t, err)
	assert.Contains(t, string(raw), `"format": "envhooks-inventory 2"`)
	require.NoError(t, s.Remove("web1"))
	require.NoError(t, s.Remove("web1"), "removing twice is fine")
	r, err = s.Load("web1")
	require.NoError(t, err)
	assert.Nil(t, r)
}

// A file that cannot be a record is named and skipped; it hides nothing.
func TestStrayFilesAreNamedNotListed(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	require.NoError(t, s.Save(&Record{JName: "web1", Kind: "jail", Node: "a"}))
	for _, stray := range []string{"a b.json", "notes.txt", "-x.json", "web1.json~"} {
		require.NoError(t, os.WriteFile(filepath.Join(s.Dir, stray), []byte("x"), 0o644))
	}
	require.NoError(t, os.Mkdir(filepath.Join(s.Dir, "dir.json"), 0o755))
	require.NoError(t, syscall.Mkfifo(filepath.Join(s.Dir, "fifo.json"), 0o644))
	names, strays, err := s.Names()
	require.NoError(t, err)
	assert.Equal(t, []string{"web1"}, names)
	assert.Len(t, strays, 6)
	assert.Contains(t, strays, filepath.Join(s.Dir, "a b.json"))
}

// Records written before they named their format are read as they are.
func TestUnversionedRecordsAreRead(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	old := `{
  "jname": "web1",
  "kind": "jail",
  "node": "a",
  "registered": "2026-01-02T03:04:05Z",
  "generation": 3,
  "descriptor": "jname=\"web1\";\n"
}
`
	require.NoError(t, os.WriteFile(s.Path("web1"), []byte(old), 0o644))
	r, err := s.Load("web1")
	require.NoError(t, err)
	assert.Equal(t, &Record{JName: "web1", Kind: "jail", Node: "a", Registered: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Generation: 3, Descriptor: "jname=\"web1\";\n"}, r)
}

func TestDamagedRecordsAre65AndNamed(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	for name, content := range map[string]string{
		"torn":        `{"format": "envhooks-inventory 2", "jname": "we`,
		"other kind":  `{"format": "envhooks-state 2", "jname": "web1"}`,
		"wrong types": `{"format": "envhooks-inventory 2", "jname": 7}`,
		"other jname": `{"format": "envhooks-inventory 2", "jname": "web2"}`,
		"binary":      "\x00\x01\x02",
	} {
		require.NoError(t, os.WriteFile(s.Path("web1"), []byte(content), 0o644))
		_, err := s.Load("web1")
		require.Error(t, err, name)
		assert.Equal(t, sysexits.DataErr, sysexits.Code(err), name)
		assert.Contains(t, err.Error(), "inventory record "+s.Path("web1")+" is damaged", name)
	}
}
