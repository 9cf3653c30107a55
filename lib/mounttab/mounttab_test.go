package mounttab

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSameSource(t *testing.T) {
	same := [][2]string{
		{"10.0.0.1:/nfs/data/web1", "10.0.0.1:/nfs/data/web1/"},
		{"nas:/nfs//data/./web1", "nas:/nfs/data/web1"},
		{"[fd00::1]:/nfs/data", "fd00::1:/nfs/data"},
		{"[FD00::1]:/nfs/data/", "[fd00::1]:/nfs/data"},
		{"/srv/dfs/data/web1/", "/srv/dfs/data/web1"},
		{"tank/envs/web1/data", "tank/envs/web1/data"},
	}
	for _, p := range same {
		assert.True(t, SameSource(p[0], p[1]), "%q == %q", p[0], p[1])
	}
	differ := [][2]string{
		{"10.0.0.1:/nfs/data/web1", "10.0.0.2:/nfs/data/web1"},
		{"10.0.0.1:/nfs/data/web1", "10.0.0.1:/nfs/data/web2"},
		{"tank/envs/web1/data", "tank/envs/web1/system"},
		{"/dev/da0", "/dev/da1"},
	}
	for _, p := range differ {
		assert.False(t, SameSource(p[0], p[1]), "%q != %q", p[0], p[1])
	}
}

func TestAtTopUnder(t *testing.T) {
	tab := Table{
		{Source: "/dev/vda", Target: "/", FSType: "ext4"},
		{Source: "a", Target: "/j/web1", FSType: "nfs4"},
		{Source: "b", Target: "/j/web1", FSType: "nfs4"},
		{Source: "c", Target: "/j/web1/sub", FSType: "tmpfs"},
		{Source: "d", Target: "/j/web10", FSType: "tmpfs"},
	}
	assert.Len(t, tab.At("/j/web1/"), 2, "stacked mounts are all reported, path cleaned")
	top, ok := tab.Top("/j/web1")
	assert.True(t, ok)
	assert.Equal(t, "b", top.Source)
	_, ok = tab.Top("/j/web2")
	assert.False(t, ok)
	assert.Len(t, tab.Under("/j/web1"), 3, "/j/web10 is not under /j/web1")
}

func TestWantMatchesSourceAndType(t *testing.T) {
	tab := Table{}
	m := Mount{Source: "10.0.0.1:/nfs/data/web1", Target: "/j/web1-data", FSType: "nfs4"}
	assert.True(t, tab.Matches(m, Want{FSType: "nfs4", Source: "10.0.0.1:/nfs/data/web1/"}))
	assert.False(t, tab.Matches(m, Want{FSType: "nfs", Source: "10.0.0.1:/nfs/data/web1"}))
	assert.False(t, tab.Matches(m, Want{FSType: "nfs4", Source: "10.0.0.1:/nfs/data/web2"}))
	assert.True(t, tab.Matches(m, Want{Source: "10.0.0.1:/nfs/data/web1"}), "empty type matches any")
}

func TestReadRealTable(t *testing.T) {
	tab, err := Read()
	assert.NoError(t, err)
	_, ok := tab.Top("/")
	assert.True(t, ok, "the root filesystem is always mounted")
}
