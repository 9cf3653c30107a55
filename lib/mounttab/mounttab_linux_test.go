package mounttab

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// mountinfo names a bind mount's filesystem and the directory inside it, not
// the source path: /srv/dfs/data/web1 bound on /j/web1 where /srv is its own
// filesystem shows up as root /dfs/data/web1 of device 8:1.
func TestShowsDirResolvesBindMounts(t *testing.T) {
	tab := Table{
		{Source: "/dev/vda", Target: "/", FSType: "ext4", Dev: "254:0", Root: "/"},
		{Source: "/dev/sdb1", Target: "/srv", FSType: "xfs", Dev: "8:1", Root: "/"},
		{Source: "/dev/sdb1", Target: "/j/web1", FSType: "xfs", Dev: "8:1", Root: "/dfs/data/web1"},
		{Source: "/dev/vda", Target: "/j/web2", FSType: "ext4", Dev: "254:0", Root: "/tmp/dfs/data/web2"},
	}
	web1, _ := tab.Top("/j/web1")
	assert.True(t, tab.ShowsDir(web1, "/srv/dfs/data/web1"))
	assert.True(t, tab.ShowsDir(web1, "/srv/dfs/data/web1/"))
	assert.False(t, tab.ShowsDir(web1, "/srv/dfs/data/web2"))
	assert.False(t, tab.ShowsDir(web1, "/dfs/data/web1"), "same root on another device")
	web2, _ := tab.Top("/j/web2")
	assert.True(t, tab.ShowsDir(web2, "/tmp/dfs/data/web2"))
	assert.True(t, tab.Matches(web2, Want{BindOf: "/tmp/dfs/data/web2"}))
	assert.False(t, tab.Matches(web2, Want{BindOf: "/tmp/dfs/data/web1"}))
}

func TestWithBindMatchesWhatTheKernelShows(t *testing.T) {
	tab := Table{
		{Source: "/dev/vda", Target: "/", FSType: "ext4", Dev: "254:0", Root: "/"},
		{Source: "/dev/sdb1", Target: "/srv", FSType: "xfs", Dev: "8:1", Root: "/"},
	}
	after := tab.WithBind("/srv/dfs/data/web1/", "/j/web1/")
	assert.Len(t, tab, 2, "the original is not changed")
	top, ok := after.Top("/j/web1")
	assert.True(t, ok)
	assert.Equal(t, Mount{Source: "/dev/sdb1", Target: "/j/web1", FSType: "xfs", Dev: "8:1", Root: "/dfs/data/web1"}, top)
	assert.True(t, after.Matches(top, Want{BindOf: "/srv/dfs/data/web1"}))
}
