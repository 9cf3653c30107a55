//go:build linux

// Package iscsi_test checks the iSCSI backend against a real target (tgtd
// on 127.0.0.1 of a network namespace of its own, started here) and a real filesystem on a loop device that
// stands in for the LUN. The kernel here has no iSCSI initiator, so
// iscsiadm is answered by a recorder and checked by exact argv; everything
// else (discovery, fsck, mount, bind mounts, busy unmount) runs for real.
package iscsi_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/envhooks/envhooks/hooks"
	hook "github.com/envhooks/envhooks/hooks/iscsi"
	"github.com/envhooks/envhooks/lib/attach"
	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/environment"
	"github.com/envhooks/envhooks/lib/iscsi"
	"github.com/envhooks/envhooks/lib/logging"
	"github.com/envhooks/envhooks/lib/run"
	"github.com/envhooks/envhooks/lib/state"
	"github.com/envhooks/envhooks/lib/sysexits"
	"github.com/envhooks/envhooks/tests/testenv"
	"github.com/envhooks/envhooks/tests/testnet"
)

// The package's tgtd and fake portals live in a network namespace of its
// own: a target or anything else the machine runs on 3260 is never met.
func TestMain(m *testing.M) {
	testnet.Isolate()
	testenv.Main(m)
}

const iqnPrefix = "iqn.2026-01.org.envhooks.test:"

func discover(portal string, timeout time.Duration) ([]iscsi.Target, error) {
	return iscsi.Discover(context.Background(), portal, iscsi.Options{InitiatorName: "iqn.2026-01.org.envhooks.test:initiator", Timeout: timeout})
}

func TestDiscoveryListsWhatTgtdOffers(t *testing.T) {
	g := startTarget(t)
	g.addTarget(t, 1, iqnPrefix+"web1")
	g.addTarget(t, 2, iqnPrefix+"db1")
	ts, err := discover(g.Portal, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	names := iscsi.Names(ts)
	slices.Sort(names)
	if want := []string{iqnPrefix + "db1", iqnPrefix + "web1"}; !slices.Equal(names, want) {
		t.Fatalf("offered %v, want %v", names, want)
	}
	for _, tg := range ts {
		if len(tg.Addresses) == 0 || !strings.HasPrefix(tg.Addresses[0], g.Portal+",") {
			t.Errorf("%s: addresses %v, want %s,<tpgt>", tg.Name, tg.Addresses, g.Portal)
		}
	}
}

func TestSilentPortalFailsAtItsDeadline(t *testing.T) {
	addr := silentPortal(t)
	const deadline = time.Second
	start := time.Now()
	_, err := discover(addr, deadline)
	took := time.Since(start)
	var e *iscsi.Error
	if !errors.As(err, &e) || !e.TimedOut {
		t.Fatalf("got %v, want a timed-out discovery error", err)
	}
	if took < deadline || took > deadline+time.Second {
		t.Fatalf("took %s, want between the deadline %s and %s", took, deadline, deadline+time.Second)
	}
	if !strings.Contains(err.Error(), addr) {
		t.Errorf("error %q does not name the portal", err)
	}
}

func TestRefusedPortal(t *testing.T) {
	addr := "127.0.0.1:" + itoa(freePort(t))
	_, err := discover(addr, 5*time.Second)
	var e *iscsi.Error
	if !errors.As(err, &e) || e.Op != "connect" || e.TimedOut {
		t.Fatalf("got %#v, want a refused connect", err)
	}
}

// fakeInitiator answers iscsiadm (the kernel has no initiator) and runs
// every other command for real, keeping every argv in order.
type fakeInitiator struct {
	mu       sync.Mutex
	argvs    [][]string
	sessions string // what `iscsiadm -m session` prints; "" means none
}

func (f *fakeInitiator) Run(ctx context.Context, c run.Cmd) (run.Result, error) {
	f.mu.Lock()
	f.argvs = append(f.argvs, c.Argv)
	sessions := f.sessions
	f.mu.Unlock()
	if c.Argv[0] != "iscsiadm" {
		return run.New(false, nil).Run(ctx, c)
	}
	if slices.Equal(c.Argv, []string{"iscsiadm", "-m", "session"}) {
		if sessions == "" {
			return run.Result{}, &run.Error{Cmd: c, ExitCode: 21, Stderr: "iscsiadm: No active sessions."}
		}
		return run.Result{Stdout: []byte(sessions)}, nil
	}
	return run.Result{}, nil
}

func (f *fakeInitiator) take() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.argvs
	f.argvs = nil
	return out
}

func (f *fakeInitiator) iscsiadm() [][]string {
	var out [][]string
	for _, a := range f.take() {
		if a[0] == "iscsiadm" {
			out = append(out, a)
		}
	}
	return out
}

type rig struct {
	dir, portal, iqn, byPath string
	env                      *environment.Env
	fake                     *fakeInitiator
	log                      bytes.Buffer
}

// newRig writes a config for jname web1 on portal and returns a session
// builder; extra lines are appended to the config.
func newRig(t *testing.T, portal string, extra ...string) *rig {
	r := &rig{dir: t.TempDir(), portal: portal, iqn: iqnPrefix + "web1", fake: &fakeInitiator{}}
	r.byPath = filepath.Join(r.dir, "by-path")
	if err := os.MkdirAll(r.byPath, 0o755); err != nil {
		t.Fatal(err)
	}
	r.env = &environment.Env{Name: "web1", Dirs: map[environment.Role]string{
		environment.Data:   filepath.Join(r.dir, "jails-data", "web1-data"),
		environment.System: filepath.Join(r.dir, "jails-system", "web1"),
	}}
	lines := append([]string{
		"BACKEND=iscsi",
		"ISCSI_PORTAL=" + portal,
		"ISCSI_TARGET=" + iqnPrefix + "%j",
		"ISCSI_LUN=1",
		"ISCSI_FSTYPE=ext4",
		"ISCSI_DEVICE_DIR=" + r.byPath,
		"ISCSI_MOUNT_ROOT=" + filepath.Join(r.dir, "luns"),
		"ISCSI_DEVICE_TIMEOUT=2",
		"PREFLIGHT_TIMEOUT=2",
		"ISCSI_INITIATOR_NAME=iqn.2026-01.org.envhooks.test:initiator",
		"STATE_DIR=" + filepath.Join(r.dir, "state"),
		"UNMOUNT_TIMEOUT=1",
		"SYSLOG=0",
	}, extra...)
	testenv.WriteFile(t, filepath.Join(r.dir, "envhooks.conf"), strings.Join(lines, "\n")+"\n", 0o644)
	return r
}

func (r *rig) session(t *testing.T) *attach.Session {
	t.Helper()
	cfg, err := config.LoadFile(filepath.Join(r.dir, "envhooks.conf"))
	if err != nil {
		t.Fatal(err)
	}
	return &attach.Session{Env: r.env, Config: cfg, Backends: hooks.Registry(), Log: logging.NewTo("mnt-start", &r.log, true), Runner: r.fake, Out: &r.log}
}

func (r *rig) lunRoot() string { return filepath.Join(r.dir, "luns", "web1") }

func itoa(n int) string { return strconv.Itoa(n) }

func TestFilesystemStageOnALoopDevice(t *testing.T) {
	g := startTarget(t)
	r := newRig(t, g.Portal)
	g.addTarget(t, 1, r.iqn)
	dev := loopDevice(t, 64<<20, "mkfs.ext4", "-q", "-F")
	if err := os.Symlink(dev, filepath.Join(r.byPath, hook.LinuxByPathName(g.Portal, r.iqn, 1))); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	if err := r.session(t).Start(ctx); err != nil {
		t.Fatalf("start: %v\n%s", err, r.log.String())
	}
	argvs := r.fake.take()
	// A node record made by hand, not SendTargets discovery: the portal a
	// target reports may not be the one this node reaches (NAT).
	want := [][]string{
		{"iscsiadm", "-m", "session"},
		{"iscsiadm", "-m", "node", "-o", "new", "-T", r.iqn, "-p", g.Portal},
		{"iscsiadm", "-m", "node", "-T", r.iqn, "-p", g.Portal, "-o", "update", "-n", "node.startup", "-v", "manual", "-n", "node.session.auth.authmethod", "-v", "None"},
		{"iscsiadm", "-m", "node", "-T", r.iqn, "-p", g.Portal, "--login"},
		{"blkid", "-p", "-s", "TYPE", "-o", "value", dev},
		{"fsck.ext4", "-p", dev},
		{"mount", "-t", "ext4", dev, r.lunRoot()},
	}
	if len(argvs) < len(want) {
		t.Fatalf("commands %q, want them to start with %q", argvs, want)
	}
	for i, w := range want {
		if !slices.Equal(argvs[i], w) {
			t.Fatalf("command %d is %q, want %q (all: %q)", i, argvs[i], w, argvs)
		}
	}
	mounts := strings.Join(testenv.MountsUnder(t, r.dir), "\n")
	for _, dir := range []string{r.lunRoot(), r.env.Dir(environment.Data), r.env.Dir(environment.System)} {
		if !strings.Contains(mounts, " "+dir+" ") {
			t.Errorf("%s is not mounted:\n%s", dir, mounts)
		}
	}
	// The data directory shows the LUN's data/ folder.
	testenv.WriteFile(t, filepath.Join(r.env.Dir(environment.Data), "hello"), "on the LUN\n", 0o644)
	if b, err := os.ReadFile(filepath.Join(r.lunRoot(), "data", "hello")); err != nil || string(b) != "on the LUN\n" {
		t.Fatalf("the data directory does not show the LUN's data folder: %q, %v", b, err)
	}

	// A second start finds the session (iscsiadm lists it) and the mounts,
	// and logs in no second time.
	r.fake.sessions = "tcp: [3] " + g.Portal + ",1 " + r.iqn + " (non-flash)\n"
	if err := r.session(t).Start(ctx); err != nil {
		t.Fatalf("second start: %v", err)
	}
	for _, a := range r.fake.take() {
		if slices.Contains(a, "--login") || a[0] == "mount" || a[0] == "fsck.ext4" {
			t.Errorf("second start ran %q", a)
		}
	}

	// Busy: this process holds a file open under the data directory.
	f, err := os.Open(filepath.Join(r.env.Dir(environment.Data), "hello"))
	if err != nil {
		t.Fatal(err)
	}
	err = r.session(t).Stop(ctx)
	if sysexits.Code(err) != sysexits.TempFail || !strings.Contains(err.Error(), "pid "+itoa(os.Getpid())) {
		t.Fatalf("stop while busy: %v (code %d), want 75 naming pid %d", err, sysexits.Code(err), os.Getpid())
	}
	if slices.ContainsFunc(r.fake.iscsiadm(), func(a []string) bool { return slices.Contains(a, "--logout") }) {
		t.Fatal("logged out while the LUN was still mounted")
	}
	f.Close()

	if err := r.session(t).Stop(ctx); err != nil {
		t.Fatalf("stop: %v\n%s", err, r.log.String())
	}
	if m := testenv.MountsUnder(t, r.dir); len(m) != 0 {
		t.Fatalf("still mounted after stop:\n%s", strings.Join(m, "\n"))
	}
	adm := r.fake.iscsiadm()
	if want := []string{"iscsiadm", "-m", "node", "-T", r.iqn, "-p", g.Portal, "--logout"}; len(adm) != 1 || !slices.Equal(adm[0], want) {
		t.Fatalf("stop ran %q, want exactly %q", adm, want)
	}
	if _, err := os.Stat(state.Store{Dir: filepath.Join(r.dir, "state")}.Path("web1")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("state record left after a full stop: %v", err)
	}
	// Stopping again has nothing to do.
	if err := r.session(t).Stop(ctx); err != nil {
		t.Fatalf("second stop: %v", err)
	}
}

func TestXFSOnALoopDevice(t *testing.T) {
	g := startTarget(t)
	r := newRig(t, g.Portal, "ISCSI_FSTYPE=xfs")
	g.addTarget(t, 1, r.iqn)
	dev := loopDevice(t, 320<<20, "mkfs.xfs", "-q", "-f")
	if err := os.Symlink(dev, filepath.Join(r.byPath, hook.LinuxByPathName(g.Portal, r.iqn, 1))); err != nil {
		t.Fatal(err)
	}
	if err := r.session(t).Start(context.Background()); err != nil {
		t.Fatalf("start: %v\n%s", err, r.log.String())
	}
	for _, a := range r.fake.take() {
		if strings.HasPrefix(a[0], "fsck") {
			t.Errorf("ran %q for xfs, which is checked by its log replay at mount", a)
		}
	}
	if !strings.Contains(strings.Join(testenv.MountsUnder(t, r.lunRoot()), "\n"), " xfs ") {
		t.Fatalf("%s does not show xfs", r.lunRoot())
	}
	if err := r.session(t).Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if m := testenv.MountsUnder(t, r.dir); len(m) != 0 {
		t.Fatalf("still mounted after stop:\n%s", strings.Join(m, "\n"))
	}
}

func TestDeviceThatNeverAppearsLogsOut(t *testing.T) {
	g := startTarget(t)
	r := newRig(t, g.Portal, "ISCSI_DEVICE_TIMEOUT=1")
	g.addTarget(t, 1, r.iqn)
	err := r.session(t).Start(context.Background())
	if sysexits.Code(err) != sysexits.Unavailable || !strings.Contains(err.Error(), r.iqn) || !strings.Contains(err.Error(), g.Portal) {
		t.Fatalf("got %v (code %d), want 69 naming %s and %s", err, sysexits.Code(err), r.iqn, g.Portal)
	}
	adm := r.fake.iscsiadm()
	want := [][]string{
		{"iscsiadm", "-m", "session"},
		{"iscsiadm", "-m", "node", "-o", "new", "-T", r.iqn, "-p", g.Portal},
		{"iscsiadm", "-m", "node", "-T", r.iqn, "-p", g.Portal, "-o", "update", "-n", "node.startup", "-v", "manual", "-n", "node.session.auth.authmethod", "-v", "None"},
		{"iscsiadm", "-m", "node", "-T", r.iqn, "-p", g.Portal, "--login"},
		{"iscsiadm", "-m", "session", "--rescan"},
		{"iscsiadm", "-m", "node", "-T", r.iqn, "-p", g.Portal, "--logout"},
	}
	if !slices.EqualFunc(adm, want, slices.Equal) {
		t.Fatalf("iscsiadm ran\n%q\nwant\n%q", adm, want)
	}
	if m := testenv.MountsUnder(t, r.dir); len(m) != 0 {
		t.Fatalf("mounted after a failed start:\n%s", strings.Join(m, "\n"))
	}
	if _, err := os.Stat(state.Store{Dir: filepath.Join(r.dir, "state")}.Path("web1")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("state record left after the rollback: %v", err)
	}
}

func TestTargetNotOfferedListsTheOffered(t *testing.T) {
	g := startTarget(t)
	r := newRig(t, g.Portal)
	g.addTarget(t, 1, iqnPrefix+"other1")
	g.addTarget(t, 2, iqnPrefix+"other2")
	err := r.session(t).Start(context.Background())
	if sysexits.Code(err) != sysexits.Unavailable {
		t.Fatalf("got %v (code %d), want 69", err, sysexits.Code(err))
	}
	for _, s := range []string{r.iqn, iqnPrefix + "other1", iqnPrefix + "other2", g.Portal} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %s", err, s)
		}
	}
	if a := r.fake.take(); len(a) != 0 {
		t.Fatalf("ran %q although the target is not offered", a)
	}
}

// TestHookAgainstDeadPortals runs the real mnt-start's dry run: a portal
// that never answers fails with 69 within its preflight deadline (+1 s), a
// second portal in ISCSI_PORTAL is then tried, and the whole plan is
// printed before the one line that says the preflight failed.
func TestHookAgainstDeadPortals(t *testing.T) {
	silent := silentPortal(t)
	g := startTarget(t)
	r := newRig(t, silent+" "+g.Portal, "PREFLIGHT_TIMEOUT=1")
	g.addTarget(t, 1, iqnPrefix+"db1")
	bin := testenv.Bin(t, "mnt-start")
	res := testenv.Run(t, nil, bin, "-c", filepath.Join(r.dir, "envhooks.conf"), "-n", "-j", "web1", "-d", r.env.Dir(environment.Data), "-s", r.env.Dir(environment.System))
	if res.Code != sysexits.Unavailable {
		t.Fatalf("exit %d, want 69\nstdout: %s\nstderr: %s", res.Code, res.Stdout, res.Stderr)
	}
	if res.Took > 2*time.Second+time.Second {
		t.Errorf("took %s with two portals, one silent (deadline 1s each)", res.Took)
	}
	// The whole plan is printed all the same, with the first portal.
	for _, s := range []string{
		"iscsiadm -m node -T " + r.iqn + " -p " + silent + " --login",
		"mount --bind " + filepath.Join(r.lunRoot(), "data") + " " + r.env.Dir(environment.Data),
		"mount --bind " + filepath.Join(r.lunRoot(), "system") + " " + r.env.Dir(environment.System),
	} {
		if !strings.Contains(res.Stdout, s) {
			t.Errorf("the dry run does not show %q:\n%s", s, res.Stdout)
		}
	}
	if !strings.Contains(res.Stderr, "dry run: the plan above would not run: iSCSI target "+r.iqn+" is not available") {
		t.Errorf("stderr does not say that the plan would not run: %s", res.Stderr)
	}
	for _, s := range []string{silent, "no answer within 1s", g.Portal, iqnPrefix + "db1"} {
		if !strings.Contains(res.Stderr, s) {
			t.Errorf("stderr does not name %q: %s", s, res.Stderr)
		}
	}
	if n := strings.Count(strings.TrimSpace(res.Stderr), "\n"); n != 0 {
		t.Errorf("want one line on stderr, got %d:\n%s", n+1, res.Stderr)
	}
}

const secret = "s3cr3t-never-printed-42"

func TestCHAPFileMustBeRootOnly0600(t *testing.T) {
	bin := testenv.Bin(t, "mnt-start")
	for _, tc := range []struct {
		name string
		mode os.FileMode
		uid  int
	}{{"group-readable", 0o640, 0}, {"world-readable", 0o644, 0}, {"not root's", 0o600, 65534}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			chap := filepath.Join(dir, "chap")
			testenv.WriteFile(t, chap, "CHAP_USER=web\nCHAP_SECRET="+secret+"\n", tc.mode)
			if err := os.Chmod(chap, tc.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(chap, tc.uid, -1); err != nil {
				t.Fatal(err)
			}
			r := newRig(t, "127.0.0.1:9", "ISCSI_CHAP_FILE="+chap)
			for _, extra := range [][]string{{"-n", "-v"}, {"-v"}} {
				args := append(extra, "-c", filepath.Join(r.dir, "envhooks.conf"), "-j", "web1", "-d", r.env.Dir(environment.Data), "-s", r.env.Dir(environment.System))
				res := testenv.Run(t, nil, bin, args...)
				if res.Code != sysexits.Config || !strings.Contains(res.Stderr, chap) {
					t.Fatalf("%v: exit %d, want 78 naming %s\nstderr: %s", extra, res.Code, chap, res.Stderr)
				}
				if strings.Contains(res.Stdout+res.Stderr, secret) {
					t.Fatalf("the secret was printed:\n%s\n%s", res.Stdout, res.Stderr)
				}
			}
		})
	}
}

// TestSecretNeverPrinted runs a verbose dry run with a valid CHAP file
// against the live target: the commands are printed, the secret is not.
func TestSecretNeverPrinted(t *testing.T) {
	g := startTarget(t)
	dir := t.TempDir()
	chap := filepath.Join(dir, "chap")
	testenv.WriteFile(t, chap, "CHAP_USER=web\nCHAP_SECRET="+secret+"\n", 0o600)
	r := newRig(t, g.Portal, "ISCSI_CHAP_FILE="+chap)
	g.addTarget(t, 1, r.iqn)
	bin := testenv.Bin(t, "mnt-start")
	res := testenv.Run(t, nil, bin, "-n", "-v", "-c", filepath.Join(r.dir, "envhooks.conf"), "-j", "web1", "-d", r.env.Dir(environment.Data), "-s", r.env.Dir(environment.System))
	if res.Code != 0 {
		t.Fatalf("dry run exit %d\nstdout: %s\nstderr: %s", res.Code, res.Stdout, res.Stderr)
	}
	for _, s := range []string{
		"iscsiadm -m node -o new -T " + r.iqn + " -p " + g.Portal,
		"iscsiadm -m node -T " + r.iqn + " -p " + g.Portal + " -o update -n node.startup -v manual -n node.session.auth.authmethod -v CHAP -n node.session.auth.username -v web",
		"iscsiadm <arguments hidden: they carry a secret>",
		"iscsiadm -m node -T " + r.iqn + " -p " + g.Portal + " --login",
		"mount --bind " + filepath.Join(r.lunRoot(), "data") + " " + r.env.Dir(environment.Data),
	} {
		if !strings.Contains(res.Stdout, s) {
			t.Errorf("dry run does not show %q:\n%s", s, res.Stdout)
		}
	}
	if strings.Contains(res.Stdout+res.Stderr, secret) {
		t.Fatalf("the secret was printed:\n%s\n%s", res.Stdout, res.Stderr)
	}
	if m := testenv.MountsUnder(t, r.dir); len(m) != 0 {
		t.Fatalf("the dry run mounted:\n%s", strings.Join(m, "\n"))
	}
}
