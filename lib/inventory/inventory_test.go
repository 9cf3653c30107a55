package inventory

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStore(t *testing.T) {
	s := Store{Dir: filepath.Join(t.TempDir(), "inv")}
	names, err := s.Names()
	require.NoError(t, err)
	assert.Empty(t, names)
	for _, j := range []string{"web2", "web1"} {
		require.NoError(t, s.Save(&Record{JName: j, Kind: "jail", Node: "a", Registered: time.Unix(0, 0).UTC(), Descriptor: "jname=\"" + j + "\";\n"}))
	}
	require.NoError(t, os.WriteFile(filepath.Join(s.Dir, ".web3.json.tmp1"), nil, 0o644))
	names, err = s.Names()
	require.NoError(t, err)
	assert.Equal(t, []string{"web1", "web2"}, names, "sorted, temporary files ignored")
	r, err := s.Load("web1")
	require.NoError(t, err)
	assert.Equal(t, "jname=\"web1\";\n", r.Descriptor)
	require.NoError(t, s.Remove("web1"))
	require.NoError(t, s.Remove("web1"), "removing twice is fine")
	r, err = s.Load("web1")
	require.NoError(t, err)
	assert.Nil(t, r)
}
