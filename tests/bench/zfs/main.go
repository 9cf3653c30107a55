//go:build linux || freebsd

// The ZFS benchmark of issue 4, against real ZFS (a private zfs-fuse daemon):
//
//  1. Provisioning a new environment from a 200 MiB image: mnt-start
//     cloning the image snapshot (ZFS_CLONE_FROM), against creating the
//     same datasets and copying the image directory into the data one
//     (zfs create + cp -a). Target: the clone at least 20x faster. The
//     target is measured on an image shaped like an operating system
//     (writeOSImage: thousands of files, most of them small), which is what
//     a jail's image is; 200 files of 1 MiB, the easiest tree there is to
//     copy, are measured beside it for scale.
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
	"strconv"
	"time"

	"github.com/envhooks/envhooks/tests/benchenv"
	"github.com/envhooks/envhooks/tests/zfs/zfsfuse"
)

const (
	imageMiB       = 200
	provisionRound = 5
)

// image is one image both provisioning ways start from: a dataset with a
// snapshot for the clone, and the same files as a directory for the copy.
type image struct {
	name, dataset, dir, conf string
	files                    int
	clone, copying, synced   []time.Duration
}

func main() {
	benchenv.PrivateNamespace()
	for _, c := range []string{"zfs-fuse", "zfs", "zpool", "cp"} {
		if _, err := exec.LookPath(c); err != nil {
			benchenv.Fatal("%s is not installed (tests/install-deps installs zfs-fuse)", c)
		}
	}
	tmp := benchenv.TempDir("", "envhooks-bench-zfs-")
	stopDaemon, err := zfsfuse.Start()
	must(err)
	benchenv.Cleanup(stopDaemon)

	b := make([]byte, 4)
	rand.Read(b)
	pool := "ehzb" + hex.EncodeToString(b)
	vdev := filepath.Join(tmp, "vdev0")
	run("truncate", "-s", "3G", vdev)
	run("zpool", "create", "-m", "none", pool, vdev)
	benchenv.Cleanup(func() { zfsfuse.Run("zpool", "destroy", "-f", pool) })
	run("zfs", "create", "-o", "canmount=off", pool+"/envs")

	bin := filepath.Join(tmp, "bin")
	mntStart := benchenv.Build(bin, "cmd/mnt-start")
	mntStop := benchenv.Build(bin, "cmd/mnt-stop")
	work := filepath.Join(tmp, "jails")
	flags := func(conf, j string) []string {
		return []string{"-c", conf, "-d", filepath.Join(work, "jails-data", j+"-data"), "-j", j, "-s", filepath.Join(work, "jails-system", j)}
	}

	osImage, blobs := makeImages(tmp, pool)

	// 1. Provisioning, interleaved: the clone by mnt-start from each image;
	// the same clone by zfs alone (what ZFS itself costs); and the copy of
	// each image, timed when cp returns and again when the copy is on the
	// pool's disk (sync -f), as a clone is when zfs clone returns. Each
	// contender starts on a settled pool, so none pays for what the one
	// before it left: a property change waits for its transaction group to
	// sync, and so for everything written before it; the second one also
	// for the blocks whose freeing ZFS defers to the next group; the pause
	// lets zfs-fuse finish the unmounts it learns of asynchronously.
	settle := 0
	settled := func() {
		for range 2 {
			settle++
			run("zfs", "set", "envhooks:bench-settle="+strconv.Itoa(settle), pool)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var bare []time.Duration
	for i := 0; i < provisionRound+1; i++ {
		warm := i == 0 // the first round warms up
		for _, im := range []*image{osImage, blobs} {
			j := fmt.Sprintf("%s%d", im.name, i)
			settled()
			start := time.Now()
			run(append([]string{mntStart}, flags(im.conf, j)...)...)
			took := time.Since(start)
			run(mntStop, "-c", im.conf, "-j", j)
			destroy(pool + "/envs/" + j)
			if !warm {
				im.clone = append(im.clone, took)
			}
		}

		bareDS := fmt.Sprintf("%s/envs/bare%d", pool, i)
		settled()
		start := time.Now()
		run("zfs", "clone", "-o", "mountpoint="+filepath.Join(tmp, "bare", strconv.Itoa(i)), osImage.dataset+"@v1", bareDS)
		tookBare := time.Since(start)
		run("zfs", "umount", bareDS)
		destroy(bareDS)
		if !warm {
			bare = append(bare, tookBare)
		}

		for _, im := range []*image{osImage, blobs} {
			settled()
			copied, synced := copyProvision(tmp, pool, im.dir, fmt.Sprintf("copy%s%d", im.name, i))
			if !warm {
				im.copying, im.synced = append(im.copying, copied), append(im.synced, synced)
			}
		}
	}

	idem := idempotentStart(pool, osImage.conf, append([]string{mntStart}, flags(osImage.conf, "idem")...), mntStop)

	med := func(ts []time.Duration) time.Duration { return benchenv.Quantile(ts, 0.5) }
	row := func(name string, ts []time.Duration) []string {
		return []string{name, benchenv.Ms(med(ts)), benchenv.Ms(benchenv.Quantile(ts, 0.9))}
	}
	ratio := func(a, b []time.Duration) float64 { return float64(med(a)) / float64(med(b)) }
	osName := fmt.Sprintf("OS-shaped image (%d files)", osImage.files)
	blobName := fmt.Sprintf("%d files of 1 MiB", blobs.files)
	fmt.Printf("== provisioning a new environment from a %d MiB image (%d rounds each, interleaved, after 1 warm-up)\n", imageMiB, provisionRound)
	benchenv.Table([][]string{
		{"contender", "median", "p90"},
		row("mnt-start, ZFS_CLONE_FROM "+osName+" (clone data, create system, mount both)", osImage.clone),
		row("mnt-start, ZFS_CLONE_FROM "+blobName, blobs.clone),
		row("zfs clone alone (data only, no mnt-start)", bare),
		row("the same datasets, data by cp -a of the "+osName, osImage.copying),
		row("  then sync -f (the copy on disk)", osImage.synced),
		row("the same datasets, data by cp -a of the "+blobName, blobs.copying),
		row("  then sync -f (the copy on disk)", blobs.synced),
	})
	r, rSynced := ratio(osImage.copying, osImage.clone), ratio(osImage.synced, osImage.clone)
	benchenv.Table([][]string{
		{"ratio", "measured", "target", ""},
		{"copy / mnt-start clone, " + osName, fmt.Sprintf("%.1fx", r), ">= 20x", benchenv.Verdict(r >= 20)},
		{"copy on disk / mnt-start clone, " + osName, fmt.Sprintf("%.1fx", rSynced), ">= 20x", benchenv.Verdict(rSynced >= 20)},
		{"copy / mnt-start clone, " + blobName, fmt.Sprintf("%.1fx", ratio(blobs.copying, blobs.clone)), "(the easiest copy, for scale)", ""},
		{"copy / zfs clone alone, " + osName, fmt.Sprintf("%.1fx", ratio(osImage.copying, bare)), "(for scale)", ""},
	})
	fmt.Println("== idempotent mnt-start, data (+usr, usr/local, var) and system mounted (100 runs)")
	benchenv.Table([][]string{
		{"contender", "median", "p90"},
		{idem.Name, benchenv.Ms(idem.Median()), benchenv.Ms(idem.P90())},
	})
	benchenv.Exit(0)
}

func run(argv ...string) {
	if _, err := zfsfuse.Run(argv...); err != nil {
		benchenv.Fatal("%v", err)
	}
}

// copyProvision provisions environment j the way it is done without clones,
// doing the same ZFS work as mnt-start's clone path except the clone: the
// environment's parent dataset, its system dataset, and a data dataset that
// the image directory is copied into. It returns the time until cp returned
// and the time until the copy was on the pool's disk (sync -f), as a clone
// is when zfs clone returns.
func copyProvision(tmp, pool, imageDir, j string) (copied, synced time.Duration) {
	e, data, sys := pool+"/envs/"+j, filepath.Join(tmp, "copy", j, "data"), filepath.Join(tmp, "copy", j, "system")
	start := time.Now()
	run("zfs", "create", "-o", "canmount=off", e)
	run("zfs", "create", "-o", "mountpoint="+data, e+"/data")
	run("cp", "-a", imageDir+"/.", data+"/")
	run("zfs", "create", "-o", "mountpoint="+sys, e+"/system")
	copied = time.Since(start)
	run("sync", "-f", data)
	synced = time.Since(start)
	run("zfs", "umount", e+"/system")
	run("zfs", "umount", e+"/data")
	destroy(e)
	return copied, synced
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

// makeImages makes the two images to provision from, each a dataset with
// a snapshot @v1 and a config file that clones from it.
func makeImages(tmp, pool string) (osImage, blobs *image) {
	osImage = &image{name: "os", dataset: pool + "/images/os"}
	blobs = &image{name: "blobs", dataset: pool + "/images/blobs"}
	for _, im := range []*image{osImage, blobs} {
		im.dir = filepath.Join(tmp, "images", im.name)
		run("zfs", "create", "-p", "-o", "mountpoint="+im.dir, im.dataset)
		im.conf = filepath.Join(tmp, im.name+".conf")
		must(os.WriteFile(im.conf, []byte(fmt.Sprintf("BACKEND=zfs\nZFS_ROOT=%s/envs\nZFS_CLONE_FROM=%s@v1\nSTATE_DIR=%s/state\nSYSLOG=0\n", pool, im.dataset, tmp)), 0o644))
	}
	var err error
	osImage.files, err = writeOSImage(osImage.dir, imageMiB<<20)
	must(err)
	buf := make([]byte, 1<<20)
	for i := 0; i < imageMiB; i++ {
		rand.Read(buf)
		must(os.WriteFile(filepath.Join(blobs.dir, fmt.Sprintf("blob%03d", i)), buf, 0o644))
	}
	blobs.files = imageMiB
	run("sync")
	for _, im := range []*image{osImage, blobs} {
		run("zfs", "snapshot", im.dataset+"@v1")
	}

	return osImage, blobs
}

// idempotentStart measures the idempotent start (argv start) on a mounted
// tree of 5 datasets.
func idempotentStart(pool, conf string, start []string, mntStop string) *benchenv.Contender {
	e := pool + "/envs/idem"
	run("zfs", "create", "-o", "canmount=off", e)
	for _, ds := range []string{"data", "data/usr", "data/usr/local", "data/var", "system"} {
		run("zfs", "create", "-o", "mountpoint=none", e+"/"+ds)
		if ds != "data" && ds != "system" {
			run("zfs", "inherit", "mountpoint", e+"/"+ds)
		}
	}
	run(start...)
	benchenv.Cleanup(func() { exec.Command(mntStop, "-c", conf, "-j", "idem").Run() })
	mounted := 0
	for _, ds := range []string{"data", "data/usr", "data/usr/local", "data/var", "system"} {
		if out, _ := zfsfuse.Run("zfs", "get", "-H", "-o", "value", "mounted", e+"/"+ds); out == "yes\n" {
			mounted++
		}
	}
	if mounted != 5 {
		benchenv.Fatal("the idempotent tree has %d of 5 datasets mounted", mounted)
	}
	idem := &benchenv.Contender{Name: "mnt-start (5 datasets mounted)", Argv: start}
	benchenv.Race(100, 10, idem)
	return idem
}
