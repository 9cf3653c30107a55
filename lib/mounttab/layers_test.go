package mounttab

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestLayers: CBSD's jstart leaves, with baserw=0, nullfs mounts of
// directories of the data mount on the jail's root (mountbase, the jail
// fstab) and, with baserw=1, mounts inside the data mount itself.
func TestLayers(t *testing.T) {
	data := "/usr/jails/jails-data/web1-data"
	tab := Table{
		{Source: "srv:/data/web1", Target: data, FSType: "nfs"},
		{Source: "/usr/jails/basejail/base_amd64_14.1", Target: "/usr/jails/jails/web1", FSType: "nullfs"},
		{Source: data + "/etc", Target: "/usr/jails/jails/web1/etc", FSType: "nullfs"},
		{Source: "/usr/ports", Target: data + "/usr/ports", FSType: "nullfs"},
		{Source: "/usr/jails/jails-data/web10-data/etc", Target: "/usr/jails/jails/web10/etc", FSType: "nullfs"},
		{Source: "devfs", Target: data + "/dev", FSType: "devfs"},
		{Source: "srv:/other", Target: data + "-old", FSType: "nfs"},
	}
	got := tab.Layers(data)
	var targets []string
	for _, m := range got {
		targets = append(targets, m.Target)
	}
	assert.Equal(t, []string{"/usr/jails/jails/web1/etc", data + "/usr/ports", data + "/dev"}, targets)
	assert.Empty(t, tab.Layers("/usr/jails/jails-system/web1"))
	assert.True(t, Within("/a/b/", "/a"))
	assert.False(t, Within("/ab", "/a"))
}
