// The idempotent-path benchmark of issue 2: mnt-start with all four
// directories already bind-mounted, against a POSIX sh hook that decides
// "mounted" the way CBSD's sample does (one df | tail | awk per directory),
// and against the floor (a program that only reads the mount table).
package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/envhooks/envhooks/tests/benchenv"
)

const shHook = `#!/bin/sh
# The sample's way: getopt the CBSD flags, then per directory ask df which
# mount holds it and mount only when it is not the directory itself.
while getopts "d:f:j:r:s:" opt; do
	case "$opt" in
	d) data=$OPTARG ;; f) fstab=$OPTARG ;; j) jname=$OPTARG ;;
	r) rcconf=$OPTARG ;; s) sysdata=$OPTARG ;;
	esac
done
. "$HOOK_CONF"
check_and_mount() {
	_mp=$(df "$2" | tail -n 1 | awk '{print $6}')
	[ "$_mp" = "$2" ] && return 0
	mount --bind "$1" "$2" || exit 1
}
check_and_mount "$NULLFS_ROOT/data/$jname" "$data"
check_and_mount "$NULLFS_ROOT/system/$jname" "$sysdata"
check_and_mount "$NULLFS_ROOT/fstab/$jname" "$fstab"
check_and_mount "$NULLFS_ROOT/rcconf/$jname" "$rcconf"
`

func main() {
	benchenv.PrivateNamespace()
	tmp := benchenv.TempDir("", "envhooks-bench-hook-")
	bin := filepath.Join(tmp, "bin")
	mntStart := benchenv.Build(bin, "cmd/mnt-start")
	mntStop := benchenv.Build(bin, "cmd/mnt-stop")
	floor := benchenv.Build(bin, "tests/bench/hook/floor")

	dfs, work := filepath.Join(tmp, "dfs"), filepath.Join(tmp, "jails")
	for _, role := range []string{"data", "system", "fstab", "rcconf"} {
		must(os.MkdirAll(filepath.Join(dfs, role, "bench1"), 0o755))
	}
	conf := filepath.Join(tmp, "envhooks.conf")
	must(os.WriteFile(conf, []byte(fmt.Sprintf("BACKEND=nullfs\nNULLFS_ROOT=%s\nSTATE_DIR=%s/state\nMOUNT_FSTAB=1\nMOUNT_RCCONF=1\n", dfs, tmp)), 0o644))
	hook := filepath.Join(tmp, "sh-hook")
	must(os.WriteFile(hook, []byte(shHook), 0o755))
	flags := []string{"-d", work + "/jails-data/bench1-data", "-f", work + "/jails-fstab/bench1", "-j", "bench1",
		"-r", work + "/jails-rcconf", "-s", work + "/jails-system/bench1"}

	if out, err := exec.Command(mntStart, append([]string{"-c", conf}, flags...)...).CombinedOutput(); err != nil {
		benchenv.Fatal("first mnt-start: %v\n%s", err, out)
	}
	benchenv.Cleanup(func() { exec.Command(mntStop, "-c", conf, "-j", "bench1").Run() })

	ours := &benchenv.Contender{Name: "mnt-start", Argv: append([]string{mntStart, "-c", conf}, flags...)}
	sh := &benchenv.Contender{Name: "sh hook (df|tail|awk)", Argv: append([]string{hook}, flags...), Env: []string{"HOOK_CONF=" + conf}}
	fl := &benchenv.Contender{Name: "floor (read mount table)", Argv: []string{floor}}
	benchenv.Race(300, 20, ours, sh, fl)

	shRatio := float64(sh.Median()) / float64(ours.Median())
	floorRatio := float64(ours.Median()) / float64(fl.Median())
	fmt.Println("== idempotent mnt-start, 4 directories already mounted (300 interleaved runs each)")
	benchenv.Table([][]string{
		{"contender", "median", "p90"},
		{ours.Name, benchenv.Ms(ours.Median()), benchenv.Ms(ours.P90())},
		{sh.Name, benchenv.Ms(sh.Median()), benchenv.Ms(sh.P90())},
		{fl.Name, benchenv.Ms(fl.Median()), benchenv.Ms(fl.P90())},
	})
	benchenv.Table([][]string{
		{"ratio", "measured", "target", ""},
		{"sh hook / mnt-start", fmt.Sprintf("%.1fx", shRatio), ">= 5x", benchenv.Verdict(shRatio >= 5)},
		{"mnt-start / floor", fmt.Sprintf("%.2fx", floorRatio), "<= 1.5x", benchenv.Verdict(floorRatio <= 1.5)},
	})
	benchenv.Exit(0)
}

func must(err error) {
	if err != nil {
		benchenv.Fatal("%v", err)
	}
}
