package iscsi_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/envhooks/envhooks/hooks/iscsi"
	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/environment"
	libiscsi "github.com/envhooks/envhooks/lib/iscsi"
	"github.com/envhooks/envhooks/lib/iscsi/iscsitest"
	"github.com/envhooks/envhooks/lib/logging"
	"github.com/envhooks/envhooks/lib/mounttab"
	"github.com/envhooks/envhooks/lib/plan"
	"github.com/envhooks/envhooks/lib/run"
	"github.com/envhooks/envhooks/lib/state"
	"github.com/envhooks/envhooks/lib/sysexits"
)

const iqn = "iqn.2026-01.org.example:web1"

// fakeTable is a mount table that follows the mount and umount commands
// the recorder sees, so the engine's checks work without mounting.
type fakeTable struct {
	mu sync.Mutex
	t  mounttab.Table
	n  int
}

func (f *fakeTable) read() (mounttab.Table, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.t), nil
}

func (f *fakeTable) follow(argv []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch argv[0] {
	case "mount":
		var typ, src, dst string
		if argv[1] == "--bind" {
			src, dst = argv[2], argv[3]
		} else {
			typ, src, dst = argv[2], argv[3], argv[4]
		}
		if typ == "" || typ == "nullfs" {
			holder := mounttab.Mount{Dev: "0:1", Root: "/", Target: "/"}
			for _, m := range f.t {
				if strings.HasPrefix(src+"/", m.Target+"/") && len(m.Target) >= len(holder.Target) {
					holder = m
				}
			}
			rel, _ := filepath.Rel(holder.Target, src)
			t := typ
			if t == "" {
				t = holder.FSType
			}
			f.t = append(f.t, mounttab.Mount{Source: src, Target: dst, FSType: t, Dev: holder.Dev, Root: filepath.Join(holder.Root, rel)})
			return
		}
		f.n++
		f.t = append(f.t, mounttab.Mount{Source: src, Target: dst, FSType: typ, Dev: "9:" + strconv.Itoa(f.n), Root: "/"})
	case "umount":
		dst := argv[len(argv)-1]
		for i := len(f.t) - 1; i >= 0; i-- {
			if f.t[i].Target == dst {
				f.t = slices.Delete(f.t, i, i+1)
				return
			}
		}
	}
}

type rig struct {
	t     *testing.T
	dir   string
	b     *iscsi.Backend
	env   *environment.Env
	rec   *run.Recorder
	table *fakeTable
	eng   *plan.Engine
	// answers by argv prefix (joined with spaces); the first match wins
	answers []answer
}

type answer struct {
	prefix string
	out    string
	err    *run.Error
}

func newRig(t *testing.T, os iscsi.OS, fstype string) *rig {
	portal := iscsitest.Start(t, &iscsitest.Portal{Targets: []string{"iqn.2026-01.org.example:other", iqn}})
	dir := t.TempDir()
	r := &rig{t: t, dir: dir, table: &fakeTable{t: mounttab.Table{{Source: "/dev/root", Target: "/", FSType: "ext4", Dev: "0:1", Root: "/"}}}}
	r.b = &iscsi.Backend{
		OS:               os,
		Portals:          []string{portal.Addr},
		Target:           "iqn.2026-01.org.example:%j",
		LUN:              1,
		FSType:           fstype,
		Pool:             "%j",
		InitiatorName:    "iqn.2026-01.org.envhooks.test:unit",
		MountRoot:        filepath.Join(dir, "luns"),
		DeviceDir:        filepath.Join(dir, "dev"),
		DeviceTimeout:    2 * time.Second,
		PreflightTimeout: 2 * time.Second,
		Poll:             5 * time.Millisecond,
	}
	if err := mkdir(r.b.DeviceDir); err != nil {
		t.Fatal(err)
	}
	r.env = &environment.Env{Name: "web1", Dirs: map[environment.Role]string{
		environment.Data:   filepath.Join(dir, "jails-data", "web1-data"),
		environment.System: filepath.Join(dir, "jails-system", "web1"),
	}}
	r.rec = &run.Recorder{Respond: func(c run.Cmd) (run.Result, error) {
		line := strings.Join(c.Argv, " ")
		for _, a := range r.answers {
			if strings.HasPrefix(line, a.prefix) {
				if a.err != nil {
					e := *a.err
					e.Cmd = c
					return run.Result{}, &e
				}
				return run.Result{Stdout: []byte(a.out)}, nil
			}
		}
		// Unless a test says otherwise, the LUN holds what ISCSI_FSTYPE names.
		switch c.Argv[0] {
		case "blkid":
			return run.Result{Stdout: []byte(iscsi.LinuxProbeType(r.b.FSType) + "\n")}, nil
		case "fstyp":
			return run.Result{Stdout: []byte(r.b.FSType + "\n")}, nil
		}
		r.table.follow(c.Argv)
		return run.Result{}, nil
	}}
	r.eng = &plan.Engine{
		Sys: &plan.System{
			Run: r.rec, Log: logging.Discard(), Out: &strings.Builder{}, CommandTimeout: 5 * time.Second,
			UnmountTimeout: time.Second, ReadMounts: r.table.read,
		},
		Store: state.Store{Dir: filepath.Join(dir, "state")},
	}
	return r
}

func mkdir(d string) error { return os.MkdirAll(d, 0o755) }

func (r *rig) attach() error {
	r.t.Helper()
	steps, err := r.b.Steps(r.env, []environment.Role{environment.Data, environment.System})
	if err != nil {
		r.t.Fatal(err)
	}
	return r.eng.Attach(context.Background(), state.Record{JName: "web1", Backend: "iscsi"}, steps)
}

func (r *rig) take() [][]string {
	a := r.rec.Argvs()
	r.rec.Cmds = nil
	return a
}

func (r *rig) lunRoot() string { return filepath.Join(r.dir, "luns", "web1") }

func expect(t *testing.T, got, want [][]string) {
	t.Helper()
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("commands:\n%s\nwant:\n%s", lines(got), lines(want))
	}
}

func lines(a [][]string) string {
	var b strings.Builder
	for _, l := range a {
		b.WriteString("  " + run.Quote(l) + "\n")
	}
	return b.String()
}

// freebsdVerbose is iscsictl --libxo=json -L -v as usr.bin/iscsictl
// emits it (iscsictl.c kernel_list, periphs.c print_periphs): the target
// holds LUN 0 on da2, LUN 1 on da3 and LUN 16 on da4, which camcontrol
// devlist would print as "lun 10".
const freebsdVerbose = `{"__version": "2", "iscsictl": {"session": [
 {"sessionId": 1, "initiator": {"name": "iqn.1994-09.org.freebsd:node1", "portal": "", "alias": ""},
  "target": {"name": "iqn.2026-01.org.example:other", "portal": "10.0.0.9", "alias": ""},
  "auth": {"user": "", "secret": "", "mutualUser": "", "mutualSecret": ""}, "type": "Normal", "enable": "Yes",
  "state": "Connected", "failureReason": "",
  "devices": {"lun": [{"lun": 1, "device": "da1"}], "scbus": 7, "bus": 0, "target": 0}},
 {"sessionId": 2, "initiator": {"name": "iqn.2026-01.org.envhooks.test:unit", "portal": "", "alias": ""},
  "target": {"name": "iqn.2026-01.org.example:web1", "portal": "10.0.0.1", "alias": ""},
  "auth": {"user": "web", "secret": "s3cr3t-value", "mutualUser": "", "mutualSecret": ""}, "type": "Normal", "enable": "Yes",
  "state": "Connected", "failureReason": "",
  "devices": {"lun": [{"lun": 0, "device": "da2"}, {"lun": 1, "device": "da3"}, {"lun": 16, "device": "da4"}], "scbus": 8, "bus": 0, "target": 0}}
]}}
`

// loginConf records the iscsi.conf section each FreeBSD login was given,
// read while the login runs, and checks the file's mode.
func (r *rig) loginConf(t *testing.T) *[]string {
	var confs []string
	respond := r.rec.Respond
	r.rec.Respond = func(c run.Cmd) (run.Result, error) {
		if len(c.Argv) == 6 && c.Argv[0] == "iscsictl" && c.Argv[1] == "-A" {
			fi, err := os.Stat(c.Argv[5])
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("the login's iscsi.conf %s is not a mode 0600 file: %v %v", c.Argv[5], fi, err)
			}
			raw, _ := os.ReadFile(c.Argv[5])
			confs = append(confs, string(raw))
		}
		return respond(c)
	}
	return &confs
}

// withoutConf puts FILE for the temporary file's random name.
func withoutConf(argvs [][]string) [][]string {
	for _, a := range argvs {
		if len(a) == 6 && a[0] == "iscsictl" && a[1] == "-A" && a[4] == "-c" {
			a[5] = "FILE"
		}
	}
	return argvs
}

func TestFreeBSDUFSAttachAndDetach(t *testing.T) {
	r := newRig(t, iscsi.FreeBSD, "ufs")
	r.b.CHAP = &libiscsi.Credentials{User: "web", Secret: "s3cr3t-value"}
	da3 := filepath.Join(r.b.DeviceDir, "da3")
	if err := os.WriteFile(da3, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r.answers = []answer{
		{prefix: "iscsictl --libxo=json -L -v", out: freebsdVerbose},
		{prefix: "iscsictl -L", out: "Target name                          Target portal    State\n"},
	}
	confs := r.loginConf(t)
	if err := r.attach(); err != nil {
		t.Fatal(err)
	}
	p := r.b.Portals[0]
	data, sys := r.env.Dir(environment.Data), r.env.Dir(environment.System)
	argvs := r.take()
	expect(t, withoutConf(argvs), [][]string{
		{"iscsictl", "-L"},
		{"iscsictl", "-A", "-n", "envhooks-web1", "-c", "FILE"},
		{"iscsictl", "--libxo=json", "-L", "-v"},
		{"fstyp", da3},
		{"fsck", "-p", "-t", "ufs", da3},
		{"mount", "-t", "ufs", da3, r.lunRoot()},
		{"mount", "-t", "nullfs", filepath.Join(r.lunRoot(), "data"), data},
		{"mount", "-t", "nullfs", filepath.Join(r.lunRoot(), "system"), sys},
	})
	// iscsi.conf(5): the initiator name and CHAP reach the login from
	// the file, and the secret never reaches an argv.
	want := "\"envhooks-web1\" {\n\tTargetAddress = \"" + p + "\"\n\tTargetName = \"" + iqn + "\"\n" +
		"\tInitiatorName = \"iqn.2026-01.org.envhooks.test:unit\"\n\tAuthMethod = \"CHAP\"\n\tchapIName = \"web\"\n\tchapSecret = \"s3cr3t-value\"\n}\n"
	if len(*confs) != 1 || (*confs)[0] != want {
		t.Fatalf("iscsi.conf section:\n%q\nwant:\n%q", *confs, want)
	}
	for _, c := range r.rec.Cmds {
		if strings.Contains(strings.Join(c.Argv, " "), "s3cr3t") {
			t.Fatalf("the secret is on an argv: %q", c.Argv)
		}
	}
	matches, _ := filepath.Glob(filepath.Join(os.TempDir(), "envhooks-iscsi-*.conf"))
	for _, m := range matches {
		for _, a := range argvs {
			if slices.Contains(a, m) {
				t.Fatalf("the temporary iscsi.conf %s was left behind", m)
			}
		}
	}
	rec, _ := r.eng.Store.Load("web1")
	if rec == nil || rec.Actions[0].ID != "iscsi-session:"+iqn || strings.Contains(strings.Join(rec.Actions[0].Argv, " "), "s3cr3t") {
		t.Fatalf("the session is not the first recorded action, or its undo carries the secret: %+v", rec)
	}
	if err := r.eng.Detach(context.Background(), "web1"); err != nil {
		t.Fatal(err)
	}
	expect(t, r.take(), [][]string{
		{"umount", sys},
		{"umount", data},
		{"umount", r.lunRoot()},
		{"iscsictl", "-R", "-p", p, "-t", iqn},
	})
}

// TestFreeBSDLUNIsDecimal: ISCSI_LUN=10 is LUN 10, not the device whose LUN
// camcontrol devlist prints as "lun 10" (hex: LUN 16).
func TestFreeBSDLUNIsDecimal(t *testing.T) {
	r := newRig(t, iscsi.FreeBSD, "ufs")
	r.b.LUN = 10
	r.b.DeviceTimeout = 200 * time.Millisecond
	for _, d := range []string{"da2", "da3", "da4"} {
		if err := os.WriteFile(filepath.Join(r.b.DeviceDir, d), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r.answers = []answer{
		{prefix: "iscsictl --libxo=json -L -v", out: freebsdVerbose},
		{prefix: "iscsictl -L", out: ""},
	}
	err := r.attach()
	if sysexits.Code(err) != sysexits.Unavailable || !strings.Contains(err.Error(), "da4 (LUN 16)") || !strings.Contains(err.Error(), "none is LUN 10") {
		t.Fatalf("got %v, want 69 naming the LUNs the session has", err)
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("the listing's secret reached a message: %v", err)
	}
	r.b.LUN = 16
	r.take()
	if err := r.attach(); err != nil {
		t.Fatal(err)
	}
	for _, a := range r.take() {
		if a[0] == "mount" && a[2] == "ufs" && a[3] != filepath.Join(r.b.DeviceDir, "da4") {
			t.Fatalf("LUN 16 mounted from %s", a[3])
		}
	}
}

func TestFreeBSDLoginAcceptsAnExistingSession(t *testing.T) {
	r := newRig(t, iscsi.FreeBSD, "ufs")
	r.b.CHAP = &libiscsi.Credentials{User: "web", Secret: "s3cr3t-value"}
	if err := os.WriteFile(filepath.Join(r.b.DeviceDir, "da3"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r.answers = []answer{
		{prefix: "iscsictl --libxo=json -L -v", out: freebsdVerbose},
		{prefix: "iscsictl -L", out: ""},
		{prefix: "iscsictl -A", err: &run.Error{ExitCode: 1, Stderr: "iscsictl: ISCSISADD: Device busy"}},
	}
	if err := r.attach(); err != nil {
		t.Fatalf("an existing session must count as logged in: %v", err)
	}
}

// TestFreeBSDConfRefusesWhatItCannotHold: a value with a double quote or a
// line break cannot be written into iscsi.conf(5); the login is not run.
func TestFreeBSDConfRefusesWhatItCannotHold(t *testing.T) {
	r := newRig(t, iscsi.FreeBSD, "ufs")
	r.b.CHAP = &libiscsi.Credentials{User: "web", Secret: "a\"b"}
	r.answers = []answer{{prefix: "iscsictl -L", out: ""}}
	err := r.attach()
	if sysexits.Code(err) != sysexits.Config || strings.Contains(err.Error(), "a\"b") {
		t.Fatalf("got %v, want 78 without the secret", err)
	}
	if n := count(r.take(), "iscsictl -A"); n != 0 {
		t.Fatalf("logged in %d times with an unwritable secret", n)
	}
}

func TestFreeBSDZFSPoolOnTheLUN(t *testing.T) {
	r := newRig(t, iscsi.FreeBSD, "zfs")
	da3 := filepath.Join(r.b.DeviceDir, "da3")
	if err := os.WriteFile(da3, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r.answers = []answer{
		{prefix: "iscsictl --libxo=json -L -v", out: freebsdVerbose},
		{prefix: "iscsictl -L", out: ""},
		{prefix: "zpool list", err: &run.Error{ExitCode: 1, Stderr: "cannot open 'web1': no such pool"}},
	}
	if err := r.attach(); err != nil {
		t.Fatal(err)
	}
	p := r.b.Portals[0]
	data, sys := r.env.Dir(environment.Data), r.env.Dir(environment.System)
	poolRoot := filepath.Join(r.lunRoot(), "web1")
	expect(t, withoutConf(r.take()), [][]string{
		{"iscsictl", "-L"},
		{"iscsictl", "-A", "-n", "envhooks-web1", "-c", "FILE"},
		{"iscsictl", "--libxo=json", "-L", "-v"},
		{"zpool", "list", "-H", "-o", "name", "web1"},
		{"fstyp", da3},
		{"zpool", "list", "-H", "-o", "name", "web1"},
		{"zpool", "import", "-d", da3, "-R", r.lunRoot(), "web1"},
		{"mount", "-t", "nullfs", filepath.Join(poolRoot, "data"), data},
		{"mount", "-t", "nullfs", filepath.Join(poolRoot, "system"), sys},
	})
	if err := r.eng.Detach(context.Background(), "web1"); err != nil {
		t.Fatal(err)
	}
	expect(t, r.take(), [][]string{
		{"umount", sys},
		{"umount", data},
		{"zpool", "export", "web1"},
		{"iscsictl", "-R", "-p", p, "-t", iqn},
	})
}

func TestFreeBSDSessionThatNeverConnects(t *testing.T) {
	r := newRig(t, iscsi.FreeBSD, "ufs")
	r.b.DeviceTimeout = 300 * time.Millisecond
	r.answers = []answer{
		{prefix: "iscsictl --libxo=json -L -v", out: `{"iscsictl": {"session": [{"target": {"name": "` + iqn + `", "portal": "10.0.0.1"}, "state": "Disconnected", "failureReason": "Connection refused", "devices": {"lun": []}}]}}`},
		{prefix: "iscsictl -L", out: ""},
	}
	err := r.attach()
	if sysexits.Code(err) != sysexits.Unavailable || !strings.Contains(err.Error(), "Connection refused") || !strings.Contains(err.Error(), r.b.Portals[0]) {
		t.Fatalf("got %v, want 69 with the failure reason and portal", err)
	}
	argvs := r.take()
	if last := argvs[len(argvs)-1]; !slices.Equal(last, []string{"iscsictl", "-R", "-p", r.b.Portals[0], "-t", iqn}) {
		t.Fatalf("the rollback did not log out last: %s", lines(argvs))
	}
	if n := count(argvs, "camcontrol rescan all"); n != 1 {
		t.Fatalf("rescanned %d times, want once:\n%s", n, lines(argvs))
	}
}

func count(argvs [][]string, line string) int {
	n := 0
	for _, a := range argvs {
		if strings.Join(a, " ") == line {
			n++
		}
	}
	return n
}

func TestLinuxDeviceThatAppearsLate(t *testing.T) {
	r := newRig(t, iscsi.Linux, "ext4")
	p := r.b.Portals[0]
	fakeDev := filepath.Join(r.dir, "sdx")
	if err := os.WriteFile(fakeDev, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r.answers = []answer{{prefix: "iscsiadm -m session", err: &run.Error{ExitCode: 21, Stderr: "iscsiadm: No active sessions."}}}
	link := filepath.Join(r.b.DeviceDir, iscsi.LinuxByPathName(p, iqn, 1))
	go func() {
		time.Sleep(100 * time.Millisecond)
		os.Symlink(fakeDev, link)
	}()
	if err := r.attach(); err != nil {
		t.Fatal(err)
	}
	data, sys := r.env.Dir(environment.Data), r.env.Dir(environment.System)
	expect(t, r.take(), [][]string{
		{"iscsiadm", "-m", "session"},
		{"iscsiadm", "-m", "node", "-o", "new", "-T", iqn, "-p", p},
		{"iscsiadm", "-m", "node", "-T", iqn, "-p", p, "-o", "update", "-n", "node.startup", "-v", "manual", "-n", "node.session.auth.authmethod", "-v", "None"},
		{"iscsiadm", "-m", "node", "-T", iqn, "-p", p, "--login"},
		{"blkid", "-p", "-s", "TYPE", "-o", "value", fakeDev},
		{"fsck.ext4", "-p", fakeDev},
		{"mount", "-t", "ext4", fakeDev, r.lunRoot()},
		{"mount", "--bind", filepath.Join(r.lunRoot(), "data"), data},
		{"mount", "--bind", filepath.Join(r.lunRoot(), "system"), sys},
	})
	if err := r.eng.Detach(context.Background(), "web1"); err != nil {
		t.Fatal(err)
	}
	expect(t, r.take(), [][]string{
		{"umount", sys},
		{"umount", data},
		{"umount", r.lunRoot()},
		{"iscsiadm", "-m", "node", "-T", iqn, "-p", p, "--logout"},
	})
}

func TestLinuxCHAPAndSessionExists(t *testing.T) {
	r := newRig(t, iscsi.Linux, "ext4")
	r.b.CHAP = &libiscsi.Credentials{User: "web", Secret: "s3cr3t-value"}
	r.b.DeviceTimeout = 200 * time.Millisecond
	p := r.b.Portals[0]
	r.answers = []answer{
		{prefix: "iscsiadm -m session", out: "tcp: [1] 10.9.9.9:3260,1 iqn.2026-01.org.example:other (non-flash)\n"},
		{prefix: "iscsiadm -m node -T " + iqn + " -p " + p + " --login", err: &run.Error{ExitCode: 15, Stderr: "iscsiadm: default: 1 session requested, but 1 already present."}},
	}
	err := r.attach() // no device: 69, after logging out
	if sysexits.Code(err) != sysexits.Unavailable {
		t.Fatalf("got %v, want 69", err)
	}
	var secretCmds int
	for _, c := range r.rec.Cmds {
		if strings.Contains(strings.Join(c.Argv, " "), "s3cr3t-value") {
			secretCmds++
			if !c.Secret {
				t.Fatalf("command with the secret not marked secret: %q", c.Argv)
			}
		}
	}
	if secretCmds != 1 {
		t.Fatalf("%d commands carry the secret, want 1 (the node password update)", secretCmds)
	}
	expect(t, r.take(), [][]string{
		{"iscsiadm", "-m", "session"},
		iscsi.LinuxNewNodeArgv(iqn, p),
		iscsi.LinuxUpdateNodeArgv(iqn, p, [2]string{"node.startup", "manual"}, [2]string{"node.session.auth.authmethod", "CHAP"}, [2]string{"node.session.auth.username", "web"}),
		iscsi.LinuxUpdateNodeArgv(iqn, p, [2]string{"node.session.auth.password", "s3cr3t-value"}),
		{"iscsiadm", "-m", "node", "-T", iqn, "-p", p, "--login"},
		{"iscsiadm", "-m", "session", "--rescan"},
		{"iscsiadm", "-m", "node", "-T", iqn, "-p", p, "--logout"},
	})
}

// A target that refuses the CHAP login is a configuration error (78) that
// says where the credentials come from, and leaves nothing logged in.
func TestLinuxCHAPRefused(t *testing.T) {
	for _, chap := range []bool{true, false} {
		r := newRig(t, iscsi.Linux, "ext4")
		if chap {
			r.b.CHAP, r.b.CHAPFile = &libiscsi.Credentials{User: "web", Secret: "wrong-secret"}, "/etc/envhooks.chap"
		}
		r.answers = []answer{
			{prefix: "iscsiadm -m session", err: &run.Error{ExitCode: 21}},
			{prefix: "iscsiadm -m node -T " + iqn + " -p " + r.b.Portals[0] + " --login", err: &run.Error{ExitCode: 24, Stderr: "iscsiadm: Could not log into all portals"}},
		}
		err := r.attach()
		want := "requires CHAP authentication; set ISCSI_CHAP_FILE"
		if chap {
			want = "CHAP authentication failed; check CHAP_USER and CHAP_SECRET in /etc/envhooks.chap"
		}
		if sysexits.Code(err) != sysexits.Config || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "wrong-secret") {
			t.Fatalf("chap=%v: got %v, want 78 saying %q", chap, err, want)
		}
		if rec, _ := r.eng.Store.Load("web1"); rec != nil && len(rec.Actions) > 0 {
			t.Fatalf("a refused login left a record: %+v", rec)
		}
	}
}

// A LUN that holds no filesystem, or another one than ISCSI_FSTYPE, is
// refused with 65 before fsck or mount, never formatted, and the session
// this run opened is logged out again.
func TestLUNWithoutTheFilesystemIsRefused(t *testing.T) {
	for _, tc := range []struct {
		os           iscsi.OS
		fstype, dev  string
		probe        answer
		want, notRun string
	}{
		{iscsi.Linux, "ext4", "sdx", answer{prefix: "blkid", err: &run.Error{ExitCode: 2}}, "holds no ext4 (blkid finds nothing on it): envhooks never formats a LUN; if it is new, prepare it once by hand (mkfs.ext4 ", "fsck.ext4"},
		{iscsi.Linux, "xfs", "sdx", answer{prefix: "blkid", out: "ext4\n"}, "holds ext4, not the xfs that ISCSI_FSTYPE names", "mount"},
		{iscsi.Linux, "zfs", "sdx", answer{prefix: "blkid", err: &run.Error{ExitCode: 2}}, "(zpool create -o cachefile=none web1 ", "zpool"},
		{iscsi.FreeBSD, "ufs", "da3", answer{prefix: "fstyp", err: &run.Error{ExitCode: 1, Stderr: "fstyp: filesystem not recognized"}}, "(newfs -U ", "fsck"},
	} {
		r := newRig(t, tc.os, tc.fstype)
		dev := filepath.Join(r.b.DeviceDir, tc.dev)
		if err := os.WriteFile(dev, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if tc.os == iscsi.Linux {
			if err := os.Symlink(dev, filepath.Join(r.b.DeviceDir, iscsi.LinuxByPathName(r.b.Portals[0], iqn, 1))); err != nil {
				t.Fatal(err)
			}
			r.answers = []answer{tc.probe, {prefix: "iscsiadm -m session", err: &run.Error{ExitCode: 21}}, {prefix: "zpool list", err: &run.Error{ExitCode: 1}}}
		} else {
			r.answers = []answer{tc.probe, {prefix: "iscsictl --libxo=json -L -v", out: freebsdVerbose}, {prefix: "iscsictl -L", out: ""}}
		}
		err := r.attach()
		if sysexits.Code(err) != sysexits.DataErr || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s: got %v, want 65 saying %q", tc.fstype, err, tc.want)
		}
		argvs := r.take()
		for i, a := range argvs {
			if a[0] == tc.notRun && !(a[0] == "zpool" && a[1] == "list") || strings.HasPrefix(a[0], "mkfs") || a[0] == "newfs" {
				t.Fatalf("%s: ran %s after the refusal:\n%s", tc.fstype, run.Quote(a), lines(argvs[i:]))
			}
		}
		if last := argvs[len(argvs)-1]; last[0] != "iscsiadm" && last[0] != "iscsictl" || !slices.Contains(last, "--logout") && !slices.Contains(last, "-R") {
			t.Fatalf("%s: the session was not logged out last:\n%s", tc.fstype, lines(argvs))
		}
	}
}

func TestTargetNotOffered(t *testing.T) {
	r := newRig(t, iscsi.Linux, "ext4")
	r.b.Target = "iqn.2026-01.org.example:nope-%j"
	err := r.attach()
	if sysexits.Code(err) != sysexits.Unavailable || !strings.Contains(err.Error(), "iqn.2026-01.org.example:other, "+iqn) {
		t.Fatalf("got %v, want 69 listing the offered targets", err)
	}
	if len(r.rec.Cmds) != 0 {
		t.Fatalf("ran commands: %s", lines(r.take()))
	}
}

func TestDryRunPrintsAndChangesNothing(t *testing.T) {
	r := newRig(t, iscsi.Linux, "ext4")
	var out strings.Builder
	r.eng.Sys.DryRun = true
	r.eng.Sys.Run = run.DryRun{Out: &out}
	r.eng.Sys.Out = &out
	r.b.CHAP = &libiscsi.Credentials{User: "web", Secret: "s3cr3t-value"}
	if err := r.attach(); err != nil {
		t.Fatal(err)
	}
	p := r.b.Portals[0]
	for _, want := range []string{
		"iscsiadm -m node -T " + iqn + " -p " + p + " --login",
		"# wait up to 2s for " + filepath.Join(r.b.DeviceDir, iscsi.LinuxByPathName(p, iqn, 1)),
		"mount -t ext4 " + filepath.Join(r.b.DeviceDir, iscsi.LinuxByPathName(p, iqn, 1)) + " " + r.lunRoot(),
		"iscsiadm <arguments hidden: they carry a secret>",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dry run lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "s3cr3t") {
		t.Fatalf("dry run printed the secret:\n%s", out.String())
	}
	if _, err := os.Stat(r.lunRoot()); !os.IsNotExist(err) {
		t.Fatalf("dry run created %s", r.lunRoot())
	}
}

func TestParsers(t *testing.T) {
	ss := iscsi.ParseLinuxSessions("tcp: [1] 127.0.0.1:3260,1 iqn.a:b (non-flash)\ntcp: [2] [fd00::1]:3260,1 iqn.a:c (non-flash)\n")
	if want := []iscsi.Session{{Target: "iqn.a:b", Portal: "127.0.0.1:3260"}, {Target: "iqn.a:c", Portal: "[fd00::1]:3260"}}; !slices.Equal(ss, want) {
		t.Errorf("linux sessions: %+v", ss)
	}
	fs := iscsi.ParseFreeBSDSessions("Target name                          Target portal    State\niqn.a:b      10.0.0.1         Connected: da0\n")
	if want := []iscsi.Session{{Target: "iqn.a:b", Portal: "10.0.0.1"}}; !slices.Equal(fs, want) {
		t.Errorf("freebsd sessions: %+v", fs)
	}
	v, err := iscsi.ParseFreeBSDSessionsJSON([]byte(freebsdVerbose))
	if err != nil {
		t.Fatal(err)
	}
	if len(v) != 2 || v[1].Target != iqn || v[1].Portal != "10.0.0.1" || !v[1].Connected ||
		!slices.Equal(v[1].Devices, []iscsi.FreeBSDDevice{{Name: "da2", LUN: 0}, {Name: "da3", LUN: 1}, {Name: "da4", LUN: 16}}) {
		t.Errorf("freebsd verbose: %+v", v)
	}
	if _, err := iscsi.ParseFreeBSDSessionsJSON([]byte("Session ID: 1\n")); err == nil {
		t.Error("text output taken as JSON")
	}
}

func writeConf(t *testing.T, lines ...string) *config.Config {
	t.Helper()
	p := filepath.Join(t.TempDir(), "envhooks.conf")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestNewChecksItsKeys(t *testing.T) {
	if _, err := iscsi.New(writeConf(t, "ISCSI_TARGET=iqn.2026-01.org.example:%j")); sysexits.Code(err) != sysexits.Config {
		t.Errorf("no portal: %v", err)
	}
	if _, err := iscsi.New(writeConf(t, "ISCSI_PORTAL=10.0.0.1")); sysexits.Code(err) != sysexits.Config {
		t.Errorf("no target: %v", err)
	}
	wrong := "ufs"
	if iscsiNative() == iscsi.FreeBSD {
		wrong = "ext4"
	}
	if _, err := iscsi.New(writeConf(t, "ISCSI_PORTAL=10.0.0.1", "ISCSI_TARGET=iqn.2026-01.org.example:%j", "ISCSI_FSTYPE="+wrong)); sysexits.Code(err) != sysexits.Config {
		t.Errorf("%s on this OS: %v", wrong, err)
	}
	b, err := iscsi.New(writeConf(t, "ISCSI_PORTAL=10.0.0.1 [fd00::2]:3261", "ISCSI_TARGET=iqn.2026-01.org.example:%j"))
	if err != nil {
		t.Fatal(err)
	}
	if got := b.(*iscsi.Backend).Portals; !slices.Equal(got, []string{"10.0.0.1:3260", "[fd00::2]:3261"}) {
		t.Errorf("portals %v", got)
	}
	for _, bad := range []string{"ISCSI_PORTAL=host:99999", "ISCSI_TARGET=not-an-iqn", "ISCSI_LUN=-1", "ISCSI_FSTYPE=ntfs", "ISCSI_ZPOOL=bad/pool"} {
		p := filepath.Join(t.TempDir(), "c")
		os.WriteFile(p, []byte(bad+"\n"), 0o644)
		if _, err := config.LoadFile(p); sysexits.Code(err) != sysexits.Config {
			t.Errorf("%s accepted: %v", bad, err)
		}
	}
}

func TestCHAPFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	good := write("good", "CHAP_USER=web\nCHAP_SECRET=\"s3cr3t value\"\n", 0o600)
	c, err := iscsi.ReadCHAPFile(good)
	if os.Geteuid() == 0 {
		if err != nil || c.User != "web" || c.Secret != "s3cr3t value" {
			t.Fatalf("good file: %+v, %v", c, err)
		}
	}
	for name, content := range map[string]string{
		"loose":    "CHAP_USER=web\nCHAP_SECRET=s3cr3t\n",
		"garbled":  "CHAP_USER=web\nCHAP_SECRET='s3cr3t\n",
		"nosecret": "CHAP_USER=web\n",
	} {
		mode := os.FileMode(0o600)
		if name == "loose" {
			mode = 0o604
		}
		_, err := iscsi.ReadCHAPFile(write(name, content, mode))
		if err == nil || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("%s: got %v, want an error without the secret", name, err)
		}
	}
}
