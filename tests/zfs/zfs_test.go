//go:build linux || freebsd

// Package zfs tests the zfs backend end to end against real ZFS: Debian's
// zfs-fuse daemon, started by the test in its private mount namespace with
// its own socket, and pools on file vdevs in temporary directories. The
// real mnt-start and mnt-stop binaries run against it.
package zfs

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/state"
	"github.com/envhooks/envhooks/tests/testenv"
	"github.com/envhooks/envhooks/tests/zfs/zfsfuse"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// sh runs a command the test needs (not the code under test) and fails the
// test if it fails.
func sh(t testing.TB, argv ...string) string {
	t.Helper()
	out, err := zfsfuse.Run(argv...)
	require.NoError(t, err)
	return out
}

func try(argv ...string) (string, error) { return zfsfuse.Run(argv...) }

// startDaemon starts the test's own zfs-fuse and stops it at the end.
func startDaemon(t *testing.T) {
	testenv.Require(t, "zfs-fuse", "zfs", "zpool")
	if _, err := os.Stat("/dev/fuse"); err != nil {
		if testenv.CI() {
			t.Fatalf("zfs-fuse needs /dev/fuse, which is required under CI=true: %v", err)
		}
		t.Skipf("zfs-fuse needs /dev/fuse: %v", err)
	}
	stop, err := zfsfuse.Start()
	require.NoError(t, err)
	t.Cleanup(stop)
}

func uniq(prefix string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// createPool makes a pool on a sparse file vdev in its own directory and
// destroys it at the end of the test.
func createPool(t *testing.T, name string, size string) (vdevDir string) {
	vdevDir = t.TempDir()
	vdev := filepath.Join(vdevDir, "vdev0")
	sh(t, "truncate", "-s", size, vdev)
	sh(t, "zpool", "create", "-m", "none", name, vdev)
	t.Cleanup(func() {
		if _, err := try("zpool", "list", "-H", "-o", "name", name); err != nil {
			try("zpool", "import", "-d", vdevDir, name)
		}
		if out, err := try("zpool", "destroy", "-f", name); err != nil {
			t.Errorf("zpool destroy %s: %v: %s", name, err, out)
		}
	})
	return vdevDir
}

// node is one CBSD node: a workdir, a config file and a state directory.
type node struct {
	t                         *testing.T
	root, workdir, cfg, state string
}

func newNode(t *testing.T, conf string) *node {
	root := t.TempDir()
	n := &node{t: t, root: root, workdir: filepath.Join(root, "usr", "jails"), cfg: filepath.Join(root, "envhooks.conf"), state: filepath.Join(root, "state")}
	testenv.WriteFile(t, n.cfg, fmt.Sprintf("BACKEND=zfs\nSTATE_DIR=%s\nWORKDIR=%s\nSYSLOG=0\nUNMOUNT_TIMEOUT=1\nZFS_MOUNT_LEGACY=0\n%s\n", n.state, n.workdir, conf), 0o644)
	t.Cleanup(func() {
		// Whatever a failed assertion left mounted, children first.
		for i := 0; i < 50; i++ {
			m := testenv.MountsUnder(t, n.root)
			if len(m) == 0 {
				break
			}
			try("umount", strings.Fields(m[len(m)-1])[4]) // bounded: a stuck zfs-fuse fails the test, not hangs it
		}
	})
	return n
}

func (n *node) data(j string) string   { return filepath.Join(n.workdir, "jails-data", j+"-data") }
func (n *node) system(j string) string { return filepath.Join(n.workdir, "jails-system", j) }

// start runs mnt-start as CBSD's bstart does (data and system).
func (n *node) start(j string, env ...string) testenv.Result {
	return n.startWith(j, nil, env...)
}

func (n *node) startWith(j string, flags []string, env ...string) testenv.Result {
	args := append(append([]string{"-c", n.cfg}, flags...), "-d", n.data(j), "-j", j, "-s", n.system(j))
	return testenv.Run(n.t, env, testenv.Bin(n.t, "mnt-start"), args...)
}

func (n *node) stop(j string, env ...string) testenv.Result {
	return testenv.Run(n.t, env, testenv.Bin(n.t, "mnt-stop"), "-c", n.cfg, "-j", j)
}

// mounts lists "source target fstype" under the workdir, in mount order,
// with the mount IDs, so that a remount is a difference too.
func (n *node) mounts() []string {
	var out []string
	for _, line := range testenv.MountsUnder(n.t, n.root) {
		f := strings.Fields(line)
		sep := 0
		for i, w := range f {
			if w == "-" {
				sep = i
				break
			}
		}
		out = append(out, strings.Join([]string{f[0], f[sep+2], f[4], f[sep+1]}, " "))
	}
	return out
}

func (n *node) record(j string) string {
	b, err := os.ReadFile(state.Store{Dir: n.state}.Path(j))
	if os.IsNotExist(err) {
		return ""
	}
	require.NoError(n.t, err)
	return string(b)
}

func ok(t *testing.T, r testenv.Result, what string) {
	t.Helper()
	require.Equal(t, 0, r.Code, "%s: stdout %s\nstderr %s", what, r.Stdout, r.Stderr)
}

// datasets lists every dataset and snapshot of pool with its mountpoint
// and origin: mnt-stop must leave this list exactly as it was.
func datasets(t *testing.T, pool string) string {
	return sh(t, "zfs", "list", "-H", "-t", "filesystem,snapshot", "-o", "name,origin", "-r", pool)
}

func prop(t *testing.T, ds, p string) string {
	return strings.TrimSpace(sh(t, "zfs", "get", "-H", "-o", "value", p, ds))
}

// TestZFS runs every scenario against one daemon, started once and stopped
// at the end, each scenario on datasets (or a pool) of its own.
func TestZFS(t *testing.T) {
	startDaemon(t)
	pool := uniq("ehz")
	createPool(t, pool, "512M")
	sh(t, "zfs", "create", "-o", "canmount=off", pool+"/envs")

	t.Run("TreeWithCanmountAndLegacy", func(t *testing.T) { testTree(t, pool) })
	t.Run("DryRun", func(t *testing.T) { testDryRun(t, pool) })
	t.Run("LegacyMountUnderThisZFS", func(t *testing.T) { testLegacy(t, pool) })
	t.Run("CloneFromImage", func(t *testing.T) { testClone(t, pool) })
	t.Run("MountedElsewhere", func(t *testing.T) { testMountedElsewhere(t, pool) })
	t.Run("BusyUnmount", func(t *testing.T) { testBusy(t, pool) })
	t.Run("BadInput", func(t *testing.T) { testBadInput(t, pool) })
	t.Run("ProvisioningDryRun", func(t *testing.T) { testProvisioningDryRun(t, pool) })
	t.Run("FailedCloneRollsBack", func(t *testing.T) { testFailedCloneRollsBack(t, pool) })
	t.Run("DatasetMadeByAnotherIsLeftAlone", func(t *testing.T) { testDatasetMadeByAnother(t, pool) })
	t.Run("ExportImport", testExportImport)
}

// makeTree creates an environment whose data dataset has children of every
// kind, and one file in data and in data/usr/local.
func makeTree(t *testing.T, pool, j string) {
	e := pool + "/envs/" + j
	sh(t, "zfs", "create", "-o", "canmount=off", e)
	sh(t, "zfs", "create", e+"/data")
	for _, c := range [][]string{
		{e + "/data/usr"},
		{e + "/data/usr/local"},
		{"-o", "canmount=noauto", e + "/data/noauto"},
		{"-o", "canmount=off", e + "/data/off"},
		{e + "/data/off/inner"},
		{"-o", "mountpoint=legacy", e + "/data/.m"},
		{e + "/system"},
	} {
		sh(t, append([]string{"zfs", "create"}, c...)...)
	}
	// Put a file in data, through a temporary mount of the test's own.
	tmp := t.TempDir()
	sh(t, "zfs", "set", "mountpoint="+tmp+"/d", e+"/data")
	testenv.WriteFile(t, tmp+"/d/hello.txt", "hello from "+j+"\n", 0o644)
	testenv.WriteFile(t, tmp+"/d/usr/local/deep.txt", "deep\n", 0o644)
	sh(t, "umount", tmp+"/d/off/inner")
	sh(t, "umount", tmp+"/d/usr/local")
	sh(t, "umount", tmp+"/d/usr")
	sh(t, "umount", tmp+"/d")
	sh(t, "zfs", "set", "mountpoint=none", e+"/data")
}

func testTree(t *testing.T, pool string) {
	n := newNode(t, "ZFS_ROOT="+pool+"/envs")
	makeTree(t, pool, "web1")
	before := datasets(t, pool)
	e := pool + "/envs/web1"

	r := n.start("web1")
	ok(t, r, "mnt-start")
	d, s := n.data("web1"), n.system("web1")
	var got []string
	for _, m := range n.mounts() {
		f := strings.Fields(m)
		got = append(got, f[1]+" "+f[2])
	}
	assert.Equal(t, []string{
		e + "/data " + d,
		e + "/data/off/inner " + d + "/off/inner",
		e + "/data/usr " + d + "/usr",
		e + "/data/usr/local " + d + "/usr/local",
		e + "/system " + s,
	}, got, "parents before children; canmount=off, canmount=noauto and legacy (ZFS_MOUNT_LEGACY=0) not mounted")
	body, err := os.ReadFile(d + "/usr/local/deep.txt")
	require.NoError(t, err)
	assert.Equal(t, "deep\n", string(body))
	assert.Equal(t, d, prop(t, e+"/data", "mountpoint"))

	// A second start changes nothing: same mounts (same mount IDs), same record.
	mounts, rec := n.mounts(), n.record("web1")
	require.NotEmpty(t, rec)
	ok(t, n.start("web1"), "second mnt-start")
	assert.Equal(t, mounts, n.mounts())
	assert.Equal(t, rec, n.record("web1"))

	ok(t, n.stop("web1"), "mnt-stop")
	assert.Empty(t, n.mounts())
	assert.Equal(t, before, datasets(t, pool), "mnt-stop destroys nothing")
	ok(t, n.stop("web1"), "second mnt-stop")

	// canmount=noauto is mounted when asked.
	ok(t, n.start("web1", "ZFS_MOUNT_NOAUTO=1"), "mnt-start with ZFS_MOUNT_NOAUTO=1")
	assert.Contains(t, strings.Join(n.mounts(), "\n"), e+"/data/noauto "+d+"/noauto")
	ok(t, n.stop("web1"), "mnt-stop")
	assert.Empty(t, n.mounts())
	assert.Equal(t, before, datasets(t, pool))
}

// testLegacy: zfs-fuse cannot mount a legacy dataset with mount(8) (there is
// no mount.zfs helper), so there the start must fail with 69, naming the
// dataset, and roll back what it mounted before. Where mount -t zfs works
// (OpenZFS), it must mount it.
func testLegacy(t *testing.T, pool string) {
	n := newNode(t, "ZFS_ROOT="+pool+"/envs\nZFS_MOUNT_LEGACY=1")
	makeTree(t, pool, "leg1")
	before := datasets(t, pool)
	r := n.start("leg1")
	if _, err := exec.LookPath("mount.zfs"); err == nil {
		ok(t, r, "mnt-start")
		assert.Contains(t, strings.Join(n.mounts(), "\n"), pool+"/envs/leg1/data/.m "+n.data("leg1")+"/.m")
		ok(t, n.stop("leg1"), "mnt-stop")
	} else {
		assert.Equal(t, 69, r.Code, "stderr: %s", r.Stderr)
		assert.Contains(t, r.Stderr, "mount legacy ZFS dataset "+pool+"/envs/leg1/data/.m")
		assert.Equal(t, 1, strings.Count(r.Stderr, "error:"), "one error line: %s", r.Stderr)
	}
	assert.Empty(t, n.mounts(), "rolled back")
	assert.Equal(t, before, datasets(t, pool))
}

func testClone(t *testing.T, pool string) {
	img := pool + "/images/base"
	sh(t, "zfs", "create", "-p", "-o", "mountpoint=none", pool+"/images/base")
	sh(t, "zfs", "create", img+"/system")
	tmp := t.TempDir()
	sh(t, "zfs", "set", "mountpoint="+tmp+"/i", img)
	testenv.WriteFile(t, tmp+"/i/etc/motd", "image v1\n", 0o644)
	testenv.WriteFile(t, tmp+"/i/system/rc.conf", "sys v1\n", 0o644)
	sh(t, "umount", tmp+"/i/system")
	sh(t, "umount", tmp+"/i")
	sh(t, "zfs", "set", "mountpoint=none", img)
	sh(t, "zfs", "snapshot", "-r", img+"@v1")

	n := newNode(t, "ZFS_ROOT="+pool+"/envs\nZFS_CLONE_FROM="+img+"@v1")
	ok(t, n.start("cl1"), "mnt-start cloning")
	e := pool + "/envs/cl1"
	assert.Equal(t, img+"@v1", prop(t, e+"/data", "origin"), "data is a clone of the image")
	assert.Equal(t, img+"/system@v1", prop(t, e+"/system", "origin"), "system is a clone of the image's system child")
	body, err := os.ReadFile(n.data("cl1") + "/etc/motd")
	require.NoError(t, err)
	assert.Equal(t, "image v1\n", string(body))
	body, err = os.ReadFile(n.system("cl1") + "/rc.conf")
	require.NoError(t, err)
	assert.Equal(t, "sys v1\n", string(body))
	testenv.WriteFile(t, n.data("cl1")+"/mine.txt", "written by cl1\n", 0o644)

	withClone := datasets(t, pool)
	ok(t, n.stop("cl1"), "mnt-stop")
	assert.Empty(t, n.mounts())
	assert.Equal(t, withClone, datasets(t, pool), "mnt-stop destroys nothing, clones included")

	// The next start mounts the existing clone: it does not clone again.
	ok(t, n.start("cl1"), "mnt-start again")
	body, err = os.ReadFile(n.data("cl1") + "/mine.txt")
	require.NoError(t, err)
	assert.Equal(t, "written by cl1\n", string(body))
	ok(t, n.stop("cl1"), "mnt-stop")
	assert.Equal(t, withClone, datasets(t, pool))
}

func testMountedElsewhere(t *testing.T, pool string) {
	n := newNode(t, "ZFS_ROOT="+pool+"/envs")
	e := pool + "/envs/else1"
	sh(t, "zfs", "create", "-o", "canmount=off", e)
	sh(t, "zfs", "create", e+"/system")
	elsewhere := filepath.Join(t.TempDir(), "elsewhere")
	sh(t, "zfs", "create", "-o", "mountpoint="+elsewhere, e+"/data")
	t.Cleanup(func() { try("umount", elsewhere) })
	before, mp := testenv.MountsUnder(t, "/"), prop(t, e+"/data", "mountpoint")

	r := n.start("else1")
	assert.Equal(t, 73, r.Code, "stderr: %s", r.Stderr)
	assert.Contains(t, r.Stderr, e+"/data is mounted on "+elsewhere)
	assert.Equal(t, before, testenv.MountsUnder(t, "/"), "nothing mounted or unmounted")
	assert.Equal(t, mp, prop(t, e+"/data", "mountpoint"), "mountpoint untouched")
	assert.Equal(t, "", n.record("else1")+"", "nothing recorded")
}

func testBusy(t *testing.T, pool string) {
	n := newNode(t, "ZFS_ROOT="+pool+"/envs")
	e := pool + "/envs/busy1"
	sh(t, "zfs", "create", "-o", "canmount=off", e)
	sh(t, "zfs", "create", e+"/data")
	sh(t, "zfs", "create", e+"/system")
	ok(t, n.start("busy1"), "mnt-start")
	before := datasets(t, pool)

	// A process holding a file open in data keeps it busy.
	testenv.WriteFile(t, n.data("busy1")+"/log", "x\n", 0o644)
	holder := exec.Command("sleep", "300")
	f, err := os.Open(n.data("busy1") + "/log")
	require.NoError(t, err)
	holder.Stdin = f
	require.NoError(t, holder.Start())
	f.Close()
	stopHolder := func() {
		if holder.Process != nil {
			holder.Process.Kill()
			holder.Wait()
			holder.Process = nil
		}
	}
	t.Cleanup(stopHolder)

	r := n.stop("busy1")
	assert.Equal(t, 75, r.Code, "stderr: %s", r.Stderr)
	assert.Contains(t, r.Stderr, fmt.Sprintf("pid %d", holder.Process.Pid))
	assert.Contains(t, r.Stderr, n.data("busy1"))
	assert.Contains(t, strings.Join(n.mounts(), "\n"), e+"/data "+n.data("busy1"), "still mounted")

	stopHolder()
	ok(t, n.stop("busy1"), "mnt-stop once the holder is gone")
	assert.Empty(t, n.mounts())
	assert.Equal(t, before, datasets(t, pool))
}

func testBadInput(t *testing.T, pool string) {
	e := pool + "/envs/bad1"
	sh(t, "zfs", "create", "-o", "canmount=off", e)
	sh(t, "zfs", "create", e+"/data")
	sh(t, "zfs", "create", e+"/system")
	sh(t, "zfs", "snapshot", e+"/data@img")
	for _, c := range []struct {
		name, conf string
		code       int
		says       string
	}{
		{"SpaceInRoot", "ZFS_ROOT=" + pool + "/my envs", 78, "white space"},
		{"AtInRoot", "ZFS_ROOT=" + pool + "/envs@snap", 78, "'@'"},
		{"RootMissing", "ZFS_ROOT=" + pool + "/nosuch", 78, "ZFS_ROOT dataset " + pool + "/nosuch does not exist"},
		{"CloneNotASnapshot", "ZFS_ROOT=" + pool + "/envs\nZFS_CLONE_FROM=" + pool + "/envs/bad1/data", 78, "is not a snapshot"},
		{"CloneSnapshotMissing", "ZFS_ROOT=" + pool + "/envs\nZFS_CLONE_FROM=" + pool + "/envs/bad1/data@nope", 78, "ZFS_CLONE_FROM snapshot " + pool + "/envs/bad1/data@nope does not exist"},
		// Provisioning does not look ZFS_ROOT up first: the creation of the
		// environment's dataset finds it missing, with the same error.
		{"RootMissingWithClone", "ZFS_ROOT=" + pool + "/nosuch\nZFS_CLONE_FROM=" + pool + "/envs/bad1/data@img", 78, "ZFS_ROOT dataset " + pool + "/nosuch does not exist"},
		{"RootAndCloneSnapshotMissing", "ZFS_ROOT=" + pool + "/nosuch\nZFS_CLONE_FROM=" + pool + "/envs/bad1/data@nope", 78, "ZFS_ROOT dataset " + pool + "/nosuch does not exist"},
		{"NoRoot", "", 78, "ZFS_ROOT"},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := newNode(t, c.conf)
			before, mounts := datasets(t, pool), testenv.MountsUnder(t, "/")
			j := "bad1"
			if c.name == "CloneSnapshotMissing" {
				j = "bad2" // missing, so the clone is attempted
			}
			r := n.start(j)
			assert.Equal(t, c.code, r.Code, "stderr: %s", r.Stderr)
			assert.Contains(t, r.Stderr, c.says)
			assert.Equal(t, 1, strings.Count(r.Stderr, "error:"), "one error line: %s", r.Stderr)
			assert.Equal(t, before, datasets(t, pool), "no dataset created or changed")
			assert.Equal(t, mounts, testenv.MountsUnder(t, "/"), "nothing mounted")
			assert.Empty(t, n.record(j), "nothing recorded")
			assert.NoDirExists(t, n.data(j), "no mount point made")
		})
	}
}

// testExportImport: a pool of its own, on a vdev in its own directory (the
// "shared block device"), exported before the start. zfs-fuse's zpool has
// no import -N, hence ZFS_IMPORT_NOMOUNT=0 here.
func testExportImport(t *testing.T) {
	pool := uniq("ehzp")
	vdevs := createPool(t, pool, "256M")
	sh(t, "zfs", "create", "-o", "canmount=off", pool+"/envs")
	sh(t, "zfs", "create", "-o", "canmount=off", pool+"/envs/mig1")
	sh(t, "zfs", "create", pool+"/envs/mig1/data")
	sh(t, "zfs", "create", pool+"/envs/mig1/system")
	sh(t, "zpool", "export", pool)

	n := newNode(t, fmt.Sprintf("ZFS_ROOT=%s/envs\nZFS_POOL=%s\nZFS_IMPORT_DIR=%s\nZFS_IMPORT_NOMOUNT=0", pool, pool, vdevs))

	// A dry run prints the import and stops there: the datasets are not
	// visible before it.
	r := n.startWith("mig1", []string{"-n"})
	ok(t, r, "mnt-start -n")
	assert.Contains(t, r.Stdout, "zpool import -o cachefile=none -d "+vdevs+" "+pool+"\n")
	_, err := try("zpool", "list", "-H", "-o", "name", pool)
	assert.Error(t, err, "a dry run imports nothing")

	// A ZFS_ROOT missing from the pool: 78, and the import is rolled back.
	bad := newNode(t, fmt.Sprintf("ZFS_ROOT=%s/nosuch\nZFS_POOL=%s\nZFS_IMPORT_DIR=%s\nZFS_IMPORT_NOMOUNT=0", pool, pool, vdevs))
	r = bad.start("mig1")
	assert.Equal(t, 78, r.Code, "stderr: %s", r.Stderr)
	assert.Contains(t, r.Stderr, "ZFS_ROOT dataset "+pool+"/nosuch does not exist")
	_, err = try("zpool", "list", "-H", "-o", "name", pool)
	assert.Error(t, err, "the pool this failed start imported is exported again")

	ok(t, n.start("mig1"), "mnt-start importing")
	assert.Equal(t, pool, strings.TrimSpace(sh(t, "zpool", "list", "-H", "-o", "name", pool)))
	assert.Equal(t, "-", prop(t, pool, "origin"))
	poolCache, _ := try("zpool", "get", "cachefile", pool)
	assert.Contains(t, poolCache, "none", "imported without a cache file")
	assert.Contains(t, n.record("mig1"), `"zpool-import:`+pool+`"`, "the import is recorded, for mnt-stop to export")
	testenv.WriteFile(t, n.data("mig1")+"/state.txt", "migrated\n", 0o644)
	before := datasets(t, pool)

	ok(t, n.stop("mig1"), "mnt-stop exporting")
	assert.Empty(t, n.mounts())
	_, err = try("zpool", "list", "-H", "-o", "name", pool)
	assert.Error(t, err, "the pool this start imported is exported")

	// "Another node" imports it: the start, the stop, and the data again.
	ok(t, n.start("mig1"), "mnt-start importing again")
	body, err := os.ReadFile(n.data("mig1") + "/state.txt")
	require.NoError(t, err)
	assert.Equal(t, "migrated\n", string(body))
	assert.Equal(t, before, datasets(t, pool), "nothing destroyed across export and import")
	ok(t, n.stop("mig1"), "mnt-stop")

	// A pool someone else imported is not exported by mnt-stop.
	sh(t, "zpool", "import", "-o", "cachefile=none", "-d", vdevs, pool)
	ok(t, n.start("mig1"), "mnt-start on an imported pool")
	assert.NotContains(t, n.record("mig1"), "zpool-import:")
	ok(t, n.stop("mig1"), "mnt-stop")
	assert.Equal(t, pool, strings.TrimSpace(sh(t, "zpool", "list", "-H", "-o", "name", pool)), "still imported")
}

// testDryRun: -n prints the zfs commands a start would run, from the real
// dataset tree, and changes nothing.
func testDryRun(t *testing.T, pool string) {
	n := newNode(t, "ZFS_ROOT="+pool+"/envs")
	makeTree(t, pool, "dry1")
	before, mounts := datasets(t, pool), testenv.MountsUnder(t, "/")
	e, d := pool+"/envs/dry1", n.data("dry1")
	r := n.startWith("dry1", []string{"-n"})
	ok(t, r, "mnt-start -n")
	for _, line := range []string{
		"zfs set mountpoint=" + d + " " + e + "/data",
		"zfs mount " + e + "/data",
		"zfs mount " + e + "/data/usr/local",
		"zfs mount " + e + "/system",
	} {
		assert.Contains(t, r.Stdout, line+"\n")
	}
	assert.NotContains(t, r.Stdout, e+"/data/noauto")
	assert.NotContains(t, r.Stdout, "zfs get", "queries are run, not printed")
	assert.Equal(t, mounts, testenv.MountsUnder(t, "/"), "nothing mounted")
	assert.Equal(t, "none", prop(t, e+"/data", "mountpoint"), "nothing set")
	assert.Equal(t, before, datasets(t, pool))
	assert.Empty(t, n.record("dry1"))
}

// makeImage makes an image to clone environments from: <pool>/images/<name>
// with a file, a system child with a file, and the snapshot @v1 of both.
func makeImage(t *testing.T, pool, name string) string {
	img := pool + "/images/" + name
	sh(t, "zfs", "create", "-p", "-o", "mountpoint=none", img)
	sh(t, "zfs", "create", img+"/system")
	tmp := t.TempDir()
	sh(t, "zfs", "set", "mountpoint="+tmp+"/i", img)
	testenv.WriteFile(t, tmp+"/i/etc/motd", "image "+name+"\n", 0o644)
	testenv.WriteFile(t, tmp+"/i/system/rc.conf", "sys "+name+"\n", 0o644)
	sh(t, "umount", tmp+"/i/system")
	sh(t, "umount", tmp+"/i")
	sh(t, "zfs", "set", "mountpoint=none", img)
	sh(t, "zfs", "snapshot", "-r", img+"@v1")
	return img
}

// testProvisioningDryRun: -n on an environment to be cloned prints the
// commands in the order a real start runs them (the role datasets last, as
// they start at once), from the real pool, and makes nothing.
func testProvisioningDryRun(t *testing.T, pool string) {
	img := makeImage(t, pool, "dry")
	n := newNode(t, "ZFS_ROOT="+pool+"/envs\nZFS_CLONE_FROM="+img+"@v1")
	before, mounts := datasets(t, pool), testenv.MountsUnder(t, "/")
	e, d, s := pool+"/envs/dr1", n.data("dr1"), n.system("dr1")
	for i := 0; i < 2; i++ {
		r := n.startWith("dr1", []string{"-n"})
		ok(t, r, "mnt-start -n")
		assert.Equal(t, "zfs create -o canmount=off "+e+"\n"+
			"mkdir -p "+d+"\n"+
			"mkdir -p "+s+"\n"+
			"zfs clone -o mountpoint="+d+" "+img+"@v1 "+e+"/data\n"+
			"zfs clone -o mountpoint="+s+" "+img+"/system@v1 "+e+"/system\n", r.Stdout)
	}
	assert.Equal(t, before, datasets(t, pool))
	assert.Equal(t, mounts, testenv.MountsUnder(t, "/"))
	assert.NoDirExists(t, d)
	assert.Empty(t, n.record("dr1"))
}

// testFailedCloneRollsBack: the clone of the image's system snapshot fails
// (zfs-fuse refuses to mount on a non-empty directory, which ALLOW_NONEMPTY
// lets through to it) after the data clone succeeded (they run at once
// only with kernel ZFS; zfs-fuse deadlocks on simultaneous mounts, see
// parallelCreations): the start fails with 73, and the data clone and the
// environment's dataset are unmounted and destroyed again: the pool is as
// it was, nothing is mounted or recorded, the directory's file is intact.
// Once the directory is emptied, the next start provisions normally.
func testFailedCloneRollsBack(t *testing.T, pool string) {
	img := makeImage(t, pool, "rb")
	n := newNode(t, "ZFS_ROOT="+pool+"/envs\nZFS_CLONE_FROM="+img+"@v1\nALLOW_NONEMPTY=1")
	e := pool + "/envs/rb1"
	testenv.WriteFile(t, n.system("rb1")+"/keep.txt", "mine\n", 0o644)
	before, mounts := datasets(t, pool), testenv.MountsUnder(t, "/")

	r := n.start("rb1")
	assert.Equal(t, 73, r.Code, "stderr: %s", r.Stderr)
	assert.Contains(t, r.Stderr, "cannot clone "+img+"/system@v1 as "+e+"/system")
	assert.Contains(t, r.Stderr, "not empty")
	assert.Equal(t, 1, strings.Count(r.Stderr, "error:"), "one error line: %s", r.Stderr)
	assert.Contains(t, r.Stderr, "rolled back: destroyed dataset "+e+"/data")
	assert.Contains(t, r.Stderr, "rolled back: destroyed dataset "+e+"/system,", "made, though not mounted")
	assert.Contains(t, r.Stderr, "rolled back: destroyed dataset "+e+",")
	assert.Equal(t, before, datasets(t, pool), "no dataset of this run is left")
	assert.Equal(t, mounts, testenv.MountsUnder(t, "/"), "nothing left mounted")
	assert.Empty(t, n.record("rb1"))
	body, err := os.ReadFile(n.system("rb1") + "/keep.txt")
	require.NoError(t, err)
	assert.Equal(t, "mine\n", string(body))

	require.NoError(t, os.Remove(n.system("rb1")+"/keep.txt"))
	ok(t, n.start("rb1"), "mnt-start once the directory is empty")
	assert.Equal(t, img+"@v1", prop(t, e+"/data", "origin"))
	assert.Equal(t, img+"/system@v1", prop(t, e+"/system", "origin"))
	ok(t, n.stop("rb1"), "mnt-stop")
	assert.Empty(t, n.mounts())
}

// testDatasetMadeByAnother: the system dataset appears between the plan and
// its creation (a zfs in PATH that makes it first, as another admin might):
// zfs says it exists, so it is not this run's. The data clone this run
// made is destroyed; the system dataset is left, and so is the
// environment's dataset that now holds it, and the error says so.
func testDatasetMadeByAnother(t *testing.T, pool string) {
	img := makeImage(t, pool, "other")
	sh(t, "zfs", "destroy", img+"/system@v1") // system is then created empty
	n := newNode(t, "ZFS_ROOT="+pool+"/envs\nZFS_CLONE_FROM="+img+"@v1")
	e := pool + "/envs/in1"
	realZFS, err := exec.LookPath("zfs")
	require.NoError(t, err)
	bin := t.TempDir()
	testenv.WriteFile(t, bin+"/zfs", "#!/bin/sh\n"+
		"if [ \"$1\" = create ] && [ \"$(eval echo \\${$#})\" = "+e+"/system ]; then "+realZFS+" create -o mountpoint=none "+e+"/system; fi\n"+
		"exec "+realZFS+" \"$@\"\n", 0o755)
	t.Cleanup(func() { try("zfs", "destroy", "-r", e) })
	mounts := testenv.MountsUnder(t, "/")

	r := n.start("in1", "PATH="+bin+":"+os.Getenv("PATH"))
	assert.Equal(t, 73, r.Code, "stderr: %s", r.Stderr)
	assert.Contains(t, r.Stderr, "dataset already exists")
	assert.Contains(t, r.Stderr, "the rollback left what this run created: "+e+" ")
	assert.Contains(t, r.Stderr, "cannot destroy dataset "+e+", which this run created: cannot destroy '"+e+"': filesystem has children")
	assert.Equal(t, 1, strings.Count(r.Stderr, "error:"), "one error line: %s", r.Stderr)
	assert.Equal(t, e+"\n"+e+"/system\n", sh(t, "zfs", "list", "-H", "-o", "name", "-r", e), "the data clone is gone; the system dataset that was not this run's stays")
	assert.Equal(t, mounts, testenv.MountsUnder(t, "/"), "nothing left mounted")
	assert.Empty(t, n.record("in1"))
}
