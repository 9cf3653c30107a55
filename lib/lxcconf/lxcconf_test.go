package lxcconf

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/sysexits"
)

// busybox is the config lxc-create -t busybox writes (LXC 5), with the
// network made empty and envhooks' hooks added.
const busybox = `# Template used to create this container: /usr/share/lxc/templates/lxc-busybox
lxc.net.0.type = empty
lxc.rootfs.path = dir:/var/lib/lxc/web1/rootfs
lxc.uts.name = "web1"
lxc.mount.entry = /lib lib none ro,bind 0 0
lxc.mount.entry = /var/lib/lxc/web1/system/srv srv none bind,create=dir 0 0
lxc.mount.entry = /var/lib/lxc/web10/rootfs mnt none bind 0 0
lxc.hook.pre-start = /usr/local/bin/mnt-start -c /etc/envhooks-lxc.conf
lxc.hook.post-stop = /usr/local/bin/mnt-stop
`

func TestParse(t *testing.T) {
	c, err := Parse([]byte(busybox), "config")
	require.NoError(t, err)
	root, err := c.Rootfs("config")
	require.NoError(t, err)
	assert.Equal(t, "/var/lib/lxc/web1/rootfs", root)
	assert.Len(t, c.All("lxc.mount.entry"), 3)
	assert.Equal(t, "empty", c.Get("lxc.net.0.type"))
	assert.True(t, c.Runs(PreStartKey, "mnt-start"))
	assert.True(t, c.Runs(PostStopKey, "mnt-stop"))
	assert.False(t, c.Runs(PostStopKey, "mnt-start"))
	assert.Equal(t, busybox, string(c.Raw))
}

func TestRefusals(t *testing.T) {
	for name, text := range map[string]string{
		"CBSD descriptor": "jname=\"web1\";\n",
		"no equals":       "lxc.rootfs.path\n",
		"shell":           "$(reboot)\n",
	} {
		_, err := Parse([]byte(text), "f")
		if assert.Error(t, err, name) {
			assert.Equal(t, sysexits.DataErr, sysexits.Code(err), name)
			assert.Contains(t, err.Error(), "f:1:", name)
		}
	}
	for _, rootfs := range []string{"", "zfs:tank/web1", "rootfs", "overlay:/a:/b"} {
		c, err := Parse([]byte("lxc.rootfs.path = "+rootfs+"\n"), "f")
		require.NoError(t, err)
		_, err = c.Rootfs("f")
		assert.Equal(t, sysexits.DataErr, sysexits.Code(err), rootfs)
	}
}

func TestRelocate(t *testing.T) {
	got := string(Relocate([]byte(busybox), "/var/lib/lxc/web1", "/srv/lxc/web1"))
	assert.Contains(t, got, "lxc.rootfs.path = dir:/srv/lxc/web1/rootfs\n")
	assert.Contains(t, got, "lxc.mount.entry = /srv/lxc/web1/system/srv srv none bind,create=dir 0 0\n")
	assert.Contains(t, got, "lxc.mount.entry = /var/lib/lxc/web10/rootfs mnt", "a longer name is not a prefix")
	assert.Contains(t, got, "# Template used to create this container: /usr/share/lxc/templates/lxc-busybox\n")
	// And back, byte for byte.
	assert.Equal(t, busybox, string(Relocate([]byte(got), "/srv/lxc/web1", "/var/lib/lxc/web1")))
	assert.Equal(t, busybox, string(Relocate([]byte(busybox), "/var/lib/lxc/web1", "/var/lib/lxc/web1/")))
}
