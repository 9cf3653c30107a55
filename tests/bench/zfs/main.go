// The ZFS benchmark of issue 4, against real ZFS (a private zfs-fuse daemon):
//
//  1. Provisioning a new environment: mnt-start cloning the image snapshot
//     (ZFS_CLONE_FROM), against creating a dataset and copying the same
//     200 MiB image directory into it (zfs create + cp -a). Target: the
//     clone at least 20x faster.
//  2. The idempotent mnt-start on an environment whose 5 datasets are
//     already mounted.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/envhooks/envhooks/tests/benchenv"
	"github.com/envhooks/envhooks/tests/zfs/zfsfuse"
)

const (
	imageMiB       = 200
	provisionRound = 5
)

func main() {
	benchenv.PrivateNamespace()
	for _, c := range []string{"zfs-fuse", "zfs", "zpool", "cp"} {
		if _, err := exec.LookPath(c); err != nil {
			benchenv.Fatal("%s is not installed (tests/install-deps installs zfs-fuse)", c)
		}
	}
	tmp, err := os.MkdirTemp("", "envhooks-bench-zfs-")
	must(err)
	defer os.RemoveAll(tmp)
	stopDaemon, err := zfsfuse.Start()
	must(err)
	defer stopDaemon()

	b := make([]byte, 4)
	rand.Read(b)
	pool := "ehzb" + hex.EncodeToString(b)
	vdev := filepath.Join(tmp, "vdev0")
	run("truncate", "-s", "2G", vdev)
	run("zpool", "create", "-m", "none", pool, vdev)
	defer zfsfuse.Run("zpool", "destroy", "-f", pool)
	run("zfs", "create", "-o", "canmount=off", pool+"/envs")

	bin := filepath.Join(tmp, "bin")
	mntStart := benchenv.Build(bin, "cmd/mnt-start")
	mntStop := benchenv.Build(bin, "cmd/mnt-stop")
	work := filepath.Join(tmp, "jails")
	conf := filepath.Join(tmp, "envhooks.conf")
	image := pool + "/images/base"
	must(os.WriteFile(conf, []byte(fmt.Sprintf("BACKEND=zfs\nZFS_ROOT=%s/envs\nZFS_CLONE_FROM=%s@v1\nSTATE_DIR=%s/state\nSYSLOG=0\n", pool, image, tmp)), 0o644))
	flags := func(j string) []string {
		return []string{"-c", conf, "-d", filepath.Join(work, "jails-data", j+"-data"), "-j", j, "-s", filepath.Join(work, "jails-system", j)}
	}

	// The image: 200 files of 1 MiB of random data (incompressible), as a
	// dataset with a snapshot for the clone and as a directory for the copy.
	imageDir := filepath.Join(tmp, "image")
	run("zfs", "create", "-p", "-o", "mountpoint="+imageDir, image)
	buf := make([]byte, 1<<20)
	for i := 0; i < imageMiB; i++ {
		rand.Read(buf)
		must(os.WriteFile(filepath.Join(imageDir, fmt.Sprintf("blob%03d", i)), buf, 0o644))
	}
	run("sync")
	run("zfs", "snapshot", image+"@v1")

	// 1. Provisioning, interleaved: clone by mnt-start; the same clone by zfs
	// alone (what ZFS itself costs); copy until cp returns; and copy until
	// the copy is on the pool's disk (sync -f), as a clone is when zfs clone
	// returns.
	var clone, bare, copying, copySynced []time.Duration
	for i := 0; i < provisionRound+1; i++ {
		j := fmt.Sprintf("clone%d", i)
		start := time.Now()
		run(append([]string{mntStart}, flags(j)...)...)
		took := time.Since(start)
		run(mntStop, "-c", conf, "-j", j)
		destroy(pool + "/envs/" + j)

		bareDS := fmt.Sprintf("%s/envs/bare%d", pool, i)
		start = time.Now()
		run("zfs", "clone", "-o", "mountpoint="+filepath.Join(tmp, "bare", j), image+"@v1", bareDS)
		tookBare := time.Since(start)
		run("zfs", "umount", bareDS)
		destroy(bareDS)

		tookCopy := copyProvision(tmp, pool, imageDir, fmt.Sprintf("copy%d", i), false)
		tookSynced := copyProvision(tmp, pool, imageDir, fmt.Sprintf("copysync%d", i), true)
		if i > 0 { // the first round warms up
			clone, copying = append(clone, took), append(copying, tookCopy)
			bare, copySynced = append(bare, tookBare), append(copySynced, tookSynced)
		}
	}
	cloneMed, copyMed, syncMed := benchenv.Quantile(clone, 0.5), benchenv.Quantile(copying, 0.5), benchenv.Quantile(copySynced, 0.5)
	ratio, syncRatio := float64(copyMed)/float64(cloneMed), float64(syncMed)/float64(cloneMed)

	// 2. The idempotent start on a mounted tree of 5 datasets.
	e := pool + "/envs/idem"
	run("zfs", "create", "-o", "canmount=off", e)
	for _, ds := range []string{"data", "data/usr", "data/usr/local", "data/var", "system"} {
		run("zfs", "create", "-o", "mountpoint=none", e+"/"+ds)
		if ds != "data" && ds != "system" {
			run("zfs", "inherit", "mountpoint", e+"/"+ds)
		}
	}
	run(append([]string{mntStart}, flags("idem")...)...)
	defer exec.Command(mntStop, "-c", conf, "-j", "idem").Run()
	mounted := 0
	for _, ds := range []string{"data", "data/usr", "data/usr/local", "data/var", "system"} {
		if out, _ := zfsfuse.Run("zfs", "get", "-H", "-o", "value", "mounted", e+"/"+ds); out == "yes\n" {
			mounted++
		}
	}
	if mounted != 5 {
		benchenv.Fatal("the idempotent tree has %d of 5 datasets mounted", mounted)
	}
	idem := &benchenv.Contender{Name: "mnt-start (5 datasets mounted)", Argv: append([]string{mntStart}, flags("idem")...)}
	benchenv.Race(100, 10, idem)

	fmt.Printf("== provisioning a new environment from a %d MiB image (%d rounds each, interleaved, after 1 warm-up)\n", imageMiB, provisionRound)
	benchenv.Table([][]string{
		{"contender", "median", "p90"},
		{"mnt-start, ZFS_CLONE_FROM (clone data, create system, mount both)", benchenv.Ms(cloneMed), benchenv.Ms(benchenv.Quantile(clone, 0.9))},
		{"zfs clone alone (data only, no mnt-start)", benchenv.Ms(benchenv.Quantile(bare, 0.5)), benchenv.Ms(benchenv.Quantile(bare, 0.9))},
		{"the same datasets, data by cp -a of the image directory", benchenv.Ms(copyMed), benchenv.Ms(benchenv.Quantile(copying, 0.9))},
		{"the same, then sync -f (the copy on disk)", benchenv.Ms(syncMed), benchenv.Ms(benchenv.Quantile(copySynced, 0.9))},
	})
	benchenv.Table([][]string{
		{"ratio", "measured", "target", ""},
		{"copy / mnt-start clone", fmt.Sprintf("%.1fx", ratio), ">= 20x", benchenv.Verdict(ratio >= 20)},
		{"copy on disk / mnt-start clone", fmt.Sprintf("%.1fx", syncRatio), ">= 20x", benchenv.Verdict(syncRatio >= 20)},
		{"copy / zfs clone alone (data only)", fmt.Sprintf("%.1fx", float64(copyMed)/float64(benchenv.Quantile(bare, 0.5))), "(for scale)", ""},
	})
	fmt.Println("== idempotent mnt-start, data (+usr, usr/local, var) and system mounted (100 runs)")
	benchenv.Table([][]string{
		{"contender", "median", "p90"},
		{idem.Name, benchenv.Ms(idem.Median()), benchenv.Ms(idem.P90())},
	})
}

func run(argv ...string) {
	if _, err := zfsfuse.Run(argv...); err != nil {
		benchenv.Fatal("%v", err)
	}
}

// copyProvision provisions environment j the way it is done without clones,
// doing the same ZFS work as mnt-start's clone path except the clone: the
// environment's parent dataset, its system dataset, and a data dataset that
// the image directory is copied into. With synced, it ends when the copy is
// on the pool's disk (sync -f), as a clone is when zfs clone returns.
func copyProvision(tmp, pool, imageDir, j string, synced bool) time.Duration {
	e, data, sys := pool+"/envs/"+j, filepath.Join(tmp, "copy", j, "data"), filepath.Join(tmp, "copy", j, "system")
	start := time.Now()
	run("zfs", "create", "-o", "canmount=off", e)
	run("zfs", "create", "-o", "mountpoint="+data, e+"/data")
	run("cp", "-a", imageDir+"/.", data+"/")
	run("zfs", "create", "-o", "mountpoint="+sys, e+"/system")
	if synced {
		run("sync", "-f", data)
	}
	took := time.Since(start)
	run("zfs", "umount", e+"/system")
	run("zfs", "umount", e+"/data")
	destroy(e)
	return took
}

// destroy removes a dataset the benchmark made, retrying while zfs-fuse,
// which learns of unmounts asynchronously, still calls it busy.
func destroy(ds string) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := zfsfuse.Run("zfs", "destroy", "-r", ds)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			benchenv.Fatal("%v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func must(err error) {
	if err != nil {
		benchenv.Fatal("%v", err)
	}
}
