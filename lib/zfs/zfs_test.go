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

func TestArgvNamingSeveral(t *testing.T) {
	assert.Equal(t, []string{"zfs", "get", "-H", "-o", "name,property,value,source", "-r", "type,mountpoint,canmount", "p/e/j", "p/img@s", "p/img/system@s"},
		TreeArgv("p/e/j", "p/img@s", "p/img/system@s"))
	assert.Equal(t, []string{"zfs", "list", "-H", "-o", "name", "p/e/j", "p/e/j/data"}, ExistsArgv("p/e/j", "p/e/j/data"))
	assert.Equal(t, []string{"zfs", "destroy", "p/e/j/data"}, DestroyArgv("p/e/j/data"))
}

// TestMissing reads what zfs-fuse and OpenZFS print for each name of a
// zfs get or zfs list that does not exist, and refuses anything else.
func TestMissing(t *testing.T) {
	names := []string{"p/e/j", "p/img@s", "p/img/system@s"}
	m, ok := Missing([]byte("cannot open 'p/e/j': dataset does not exist\ncannot open 'p/img/system@s': dataset does not exist\n"), names)
	assert.True(t, ok)
	assert.Equal(t, map[string]bool{"p/e/j": true, "p/img/system@s": true}, m)
	m, ok = Missing(nil, names)
	assert.True(t, ok)
	assert.Empty(t, m)
	for _, bad := range []string{
		"cannot open 'p/other': dataset does not exist\n",     // not asked about
		"cannot open 'p/e/j': permission denied\n",            // another failure
		"internal error: failed to initialize ZFS library\n",  // no daemon
		"cannot open 'p/e/j': dataset does not exist\nboom\n", // one good line is not enough
	} {
		_, ok := Missing([]byte(bad), names)
		assert.False(t, ok, bad)
	}
}

func TestCreateMessages(t *testing.T) {
	assert.True(t, ParentMissing("cannot create 'p/nope/j': parent does not exist"))
	assert.True(t, ParentMissing("cannot create 'nopool/x/j': no such pool 'nopool'"))
	assert.False(t, ParentMissing("cannot create 'p/e/j': dataset already exists"))
	assert.True(t, AlreadyExists("cannot create 'p/e/j': dataset already exists"))
	assert.True(t, IsBusy("cannot destroy 'p/e/j': dataset is busy"))
}
