package zfs

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCheckNames(t *testing.T) {
	for _, ok := range []string{"tank", "tank/envs", "zroot/poudriere/jails/FreeBSD:14:amd64", "t_1/a.b-c"} {
		assert.NoError(t, CheckDataset(ok), ok)
	}
	for name, why := range map[string]string{
		"":               "empty",
		"tank/my envs":   "white space",
		"tank/envs@snap": "'@'",
		"tank/envs#mark": "'#'",
		"/tank/envs":     "empty component",
		"tank//envs":     "empty component",
		"tank/envs/":     "empty component",
		"tank/../x":      `".."`,
		"tank/a$b":       "character",
		"1tank/envs":     "begin with a letter",
		"mirror0/envs":   "reserved",
		"log/x":          "reserved",
	} {
		err := CheckDataset(name)
		if assert.Error(t, err, name) {
			assert.Contains(t, err.Error(), why, name)
		}
	}
	assert.NoError(t, CheckSnapshot("pool/images/base@2024-05"))
	for _, bad := range []string{"pool/images/base", "pool/images/base@", "pool/a@b@c", "pool/a b@s", "pool/a@s s"} {
		assert.Error(t, CheckSnapshot(bad), bad)
	}
	assert.NoError(t, CheckPool("envpool_web1"))
	assert.Error(t, CheckPool("pool/x"))
}

func TestArgv(t *testing.T) {
	assert.Equal(t, []string{"zpool", "import", "-N", "-o", "cachefile=none", "tank"}, ImportArgv("tank", ImportOptions{NoMount: true}))
	assert.Equal(t, []string{"zpool", "import", "-o", "cachefile=none", "-f", "-d", "/dev/disk/by-id", "-d", "/srv/v", "tank"},
		ImportArgv("tank", ImportOptions{Force: true, Dirs: []string{"/dev/disk/by-id", "/srv/v"}}))
	assert.Equal(t, []string{"zpool", "export", "tank"}, ExportArgv("tank"))
	assert.Equal(t, []string{"zfs", "clone", "-o", "mountpoint=/j/d", "p/img@s", "p/e/web1/data"}, CloneArgv("p/img@s", "p/e/web1/data", "/j/d"))
	assert.Equal(t, []string{"zfs", "create", "-o", "canmount=off", "p/e/web1"}, CreateArgv("p/e/web1", "canmount=off"))
	assert.Equal(t, []string{"zfs", "get", "-H", "-o", "name,property,value,source", "-r", "type,mountpoint,canmount", "p/e"}, TreeArgv("p/e"))
	assert.Equal(t, []string{"zfs", "umount", "-f", "p/e"}, UnmountArgv("p/e", true))
}

func TestParseTree(t *testing.T) {
	out := "p/e\ttype\tfilesystem\t-\n" +
		"p/e\tmountpoint\tnone\tinherited from p\n" +
		"p/e\tcanmount\toff\tlocal\n" +
		"p/e@s\ttype\tsnapshot\t-\n" +
		"p/e@s\tmountpoint\t-\t-\n" +
		"p/e/a\ttype\tfilesystem\t-\n" +
		"p/e/a\tmountpoint\t/x/a\tlocal\n" +
		"p/e/a\tcanmount\ton\tdefault\n"
	ds, err := ParseTree([]byte(out))
	require.NoError(t, err)
	require.Len(t, ds, 3)
	assert.Equal(t, Dataset{Name: "p/e", Type: "filesystem", Mountpoint: "none", CanMount: "off"}, ds[0])
	assert.Equal(t, "snapshot", ds[1].Type)
	assert.Equal(t, Dataset{Name: "p/e/a", Type: "filesystem", Mountpoint: "/x/a", MountpointLocal: true, CanMount: "on"}, ds[2])
	_, err = ParseTree([]byte("p/e mountpoint none local\n"))
	assert.Error(t, err, "space-separated output is not -H output")
}
