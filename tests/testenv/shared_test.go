package testenv

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSharedMakesOnceAndEndsOnce(t *testing.T) {
	made, ended := 0, 0
	s := Shared[int]{Make: func() (int, error) { made++; return 42, nil }, End: func(v int) { ended += v }}
	assert.Equal(t, 42, s.Get(t))
	assert.Equal(t, 42, s.Get(t))
	s.Close()
	s.Close()
	assert.Equal(t, 1, made)
	assert.Equal(t, 42, ended)
}

func TestSharedNeverMadeIsNotEnded(t *testing.T) {
	s := Shared[int]{Make: func() (int, error) { t.Fatal("made at Close"); return 0, nil }, End: func(int) { t.Fatal("ended") }}
	s.Close()
	_, err := s.Value() // Close settles it: nothing is made after the teardown
	require.NoError(t, err)
}

func TestSharedFailureReachesEveryCaller(t *testing.T) {
	calls := 0
	s := Shared[string]{Make: func() (string, error) { calls++; return "", errors.New("no ganesha") }, End: func(string) { t.Fatal("ended a failed make") }}
	for range 2 {
		_, err := s.Value()
		assert.EqualError(t, err, "no ganesha")
	}
	s.Close()
	assert.Equal(t, 1, calls)
}

func TestMountPointsUnderADirectory(t *testing.T) {
	info := "22 1 0:21 / /w rw - tmpfs tmpfs rw\n" +
		"23 22 0:22 / /w/jails-data/web1-data rw - nullfs /dfs rw\n" +
		"24 1 0:23 / /w2/x rw - tmpfs tmpfs rw\n" +
		"25 22 0:24 / /w/jails-system/web1 rw - nfs4 srv:/s rw\n"
	assert.Equal(t, []string{"/w/jails-data/web1-data", "/w/jails-system/web1"}, MountPoints(info, "/w"))
	assert.Empty(t, MountPoints("", "/w"))
}
