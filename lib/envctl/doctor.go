package envctl

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/envhooks/envhooks/lib/attach"
	"github.com/envhooks/envhooks/lib/backend"
	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/configpath"
	"github.com/envhooks/envhooks/lib/doctor"
	"github.com/envhooks/envhooks/lib/environment"
	"github.com/envhooks/envhooks/lib/inventory"
	"github.com/envhooks/envhooks/lib/lease"
	"github.com/envhooks/envhooks/lib/logging"
	"github.com/envhooks/envhooks/lib/lxcconf"
	"github.com/envhooks/envhooks/lib/mounttab"
	"github.com/envhooks/envhooks/lib/quick"
	"github.com/envhooks/envhooks/lib/run"
	"github.com/envhooks/envhooks/lib/safefile"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// doctorCmd checks this node's setup and says what to fix. It loads the
// configuration itself, so that a broken one is a finding, not the end.
func doctorCmd(c *call) error {
	fs := c.doctor()
	if c.flags.json {
		enc := json.NewEncoder(c.out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			Code     int              `json:"code"`
			Findings []doctor.Finding `json:"findings"`
		}{doctor.Code(fs), fs}); err != nil {
			return err
		}
	} else {
		printFindings(c, fs)
	}
	if code := doctor.Code(fs); code != sysexits.OK {
		return alreadySaid{sysexits.New(code, "envctl doctor found problems")}
	}
	return nil
}

func printFindings(c *call, fs []doctor.Finding) {
	tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	failed, warned := 0, 0
	for _, f := range fs {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", f.Status, f.Check, f.Detail)
		if f.Fix != "" && f.Status != doctor.OK {
			fmt.Fprintf(tw, "\t\tfix: %s\n", f.Fix)
		}
		switch f.Status {
		case doctor.Fail:
			failed++
		case doctor.Warn:
			warned++
		}
	}
	tw.Flush()
	fmt.Fprintf(c.out, "%d checks: %d failed, %d warnings\n", len(fs), failed, warned)
}

// doctor runs every check in the order an operator fixes things:
// configuration, backend, programs, directories, lease store, hooks.
func (c *call) doctor() []doctor.Finding {
	configFile := c.flags.configFile
	if configFile == "" {
		configFile = os.Getenv(configpath.Env)
	}
	src := config.DefaultSources(configFile, "")
	cfg, err := config.Load(src)
	var out []doctor.Finding
	var read []string
	for _, p := range configpath.For(configFile, "").Paths() {
		if _, err := os.Stat(p); err == nil {
			read = append(read, p)
		}
	}
	switch {
	case err != nil:
		return append(out, doctor.FromError("config", err, "correct the value at the file and line named"))
	case len(read) == 0:
		out = append(out, doctor.Warning("config", "no configuration file ("+strings.Join(configpath.For(configFile, "").Paths(), ", ")+"): built-in defaults and the environment only", "write "+configpath.Global+" (see envhooks.conf(5))"))
	default:
		out = append(out, doctor.Pass("config", "read %s", strings.Join(read, ", ")))
	}
	for _, w := range cfg.Warnings {
		out = append(out, doctor.Warning("config", w, "remove or correct that line"))
	}
	c.cfg = cfg
	c.log = logging.New("envctl", c.errOut, c.flags.verbose, false)
	ctx := c.ctx
	if ctx == nil {
		ctx = context.Background()
	}

	name, b, err := c.wiring.Backends.Open(cfg)
	if err != nil {
		out = append(out, doctor.FromError("backend", err, "set BACKEND and its keys (envhooks.conf(5))"))
	} else {
		out = append(out, doctor.Pass("backend", "BACKEND=%s", name))
		if d, ok := b.(backend.Diagnoser); ok {
			bctx, cancel := context.WithTimeout(ctx, cfg.Seconds(config.CommandTimeout))
			out = append(out, d.Diagnose(bctx)...)
			cancel()
		}
	}
	out = append(out, programs()...)
	out = append(out, doctor.Dir(config.StateDir, cfg.Get(config.StateDir)), doctor.Dir(config.InventoryDir, cfg.Get(config.InventoryDir)))
	out = append(out, c.leaseFindings(ctx)...)
	out = append(out, c.hookFindings(ctx)...)
	return out
}

// programs are the hooks, installed beside envctl as packages and make
// install put them: mnt-start runs envhooks-attach from beside itself.
func programs() []doctor.Finding {
	self, err := os.Executable()
	if err != nil {
		return []doctor.Finding{doctor.Failure(sysexits.OSErr, "programs", err.Error(), "")}
	}
	dir := filepath.Dir(self)
	var out []doctor.Finding
	for _, p := range []string{"mnt-start", quick.AttachProgram, "mnt-stop"} {
		path := filepath.Join(dir, p)
		if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			out = append(out, doctor.Failure(sysexits.Unavailable, "programs", path+" is missing or not executable", "install all four programs together (make install)"))
			continue
		}
		out = append(out, doctor.Pass("programs", "%s", path))
	}
	return out
}

// sharedFSTypes are file systems other nodes can see too (a local one
// makes file leases protect nothing across nodes).
var sharedFSTypes = []string{"nfs", "nfs4", "fuse.glusterfs", "glusterfs", "ceph", "fuse.ceph", "cifs", "smbfs", "9p", "virtiofs", "fuse.sshfs"}

// leaseFindings checks LEASE_DIR, that the store answers within
// LEASE_TIMEOUT, the clock against it, and this node's heartbeat.
func (c *call) leaseFindings(ctx context.Context) []doctor.Finding {
	cfg := c.cfg
	dir := cfg.Get(lease.DirKey)
	if dir == "" {
		return []doctor.Finding{doctor.Warning("leases", "LEASE_DIR is empty: mnt-start does not check ownership, and envctl refuses to run", "set LEASE_DIR (and LEASE_BACKEND) on every node")}
	}
	var out []doctor.Finding
	backendName := cfg.Get(lease.BackendKey)
	if backendName == "file" {
		out = append(out, leaseDirFinding(dir))
	}
	store, err := lease.Open(cfg, run.New(false, nil))
	if err != nil {
		return append(out, doctor.FromError("leases", err, "correct the LEASE_* keys"))
	}
	defer lease.Close(store)
	timeout := cfg.Seconds(lease.TimeoutKey)
	lctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ls, err := store.List(lctx)
	if err != nil {
		return append(out, doctor.Failure(sysexits.Unavailable, "leases: store", fmt.Sprintf("the %s lease store did not answer within LEASE_TIMEOUT (%s): %v", backendName, timeout, err), "start the lease store, or let this node reach it"))
	}
	out = append(out, doctor.Pass("leases: store", "the %s lease store answers within LEASE_TIMEOUT (%s): %d leases", backendName, timeout, len(ls)))
	ttl := cfg.Seconds(lease.TTLKey)
	if clock, ok := store.(lease.Clock); ok {
		before := time.Now()
		theirs, err := clock.Now(lctx)
		after := time.Now()
		if err != nil {
			out = append(out, doctor.Failure(sysexits.Unavailable, "leases: clock", "cannot read the store's time: "+err.Error(), "make LEASE_DIR writable by root"))
		} else {
			out = append(out, clockFinding(theirs.Sub(before.Add(after.Sub(before)/2)), after.Sub(before), ttl))
		}
	} else {
		out = append(out, doctor.Pass("leases: clock", "the %s store decides liveness on its own clock", backendName))
	}
	if lv, ok := store.(lease.Liveness); ok {
		node := attach.NodeName(cfg)
		alive, known, last, err := lv.Alive(lctx, node, ttl)
		switch {
		case err != nil:
			out = append(out, doctor.Failure(sysexits.Unavailable, "leases: heartbeat", err.Error(), ""))
		case !known:
			out = append(out, doctor.Warning("leases: heartbeat", node+" never sent a heartbeat: nothing tells other nodes it is alive, and --takeover of its environments is refused", "run envctl heartbeat as a service (dist/rc.d, dist/systemd)"))
		case !alive:
			out = append(out, doctor.Warning("leases: heartbeat", fmt.Sprintf("%s last beat %s ago, more than LEASE_TTL (%s): other nodes may take its environments over", node, time.Since(last).Round(time.Second), ttl), "start the envhooks heartbeat service"))
		default:
			out = append(out, doctor.Pass("leases: heartbeat", "%s beat %s ago (LEASE_TTL %s)", node, time.Since(last).Round(time.Second), ttl))
		}
	}
	return out
}

// clockFinding judges the skew between this node and the lease store: a
// node whose clock runs ahead looks alive for longer, one behind looks
// dead early. Within a second is fine; beyond a third of LEASE_TTL (the
// heartbeat interval) a live node can be taken for dead.
func clockFinding(skew, uncertainty, ttl time.Duration) doctor.Finding {
	abs := skew
	if abs < 0 {
		abs = -abs
	}
	detail := fmt.Sprintf("the lease store's clock is %s %s this node's (measured to within %s)", abs.Round(time.Millisecond), map[bool]string{true: "ahead of", false: "behind"}[skew >= 0], uncertainty.Round(time.Microsecond))
	switch {
	case abs > ttl/3:
		return doctor.Failure(sysexits.Config, "leases: clock", detail+fmt.Sprintf(": more than LEASE_TTL/3 (%s), so heartbeats are misjudged", ttl/3), "synchronise the clocks of every node and the storage server (ntpd, chrony)")
	case abs > time.Second:
		return doctor.Warning("leases: clock", detail, "synchronise the clocks (ntpd, chrony)")
	}
	return doctor.Pass("leases: clock", "%s", detail)
}

// leaseDirFinding checks a file store's directory: writable, and on a file
// system the other nodes see.
func leaseDirFinding(dir string) doctor.Finding {
	check := "LEASE_DIR"
	if err := lease.CheckDir(dir); err != nil {
		return doctor.Failure(sysexits.Code(err), check, err.Error(), "mount the shared storage that holds it, on every node; if it is mounted and on the root file system, run envctl lease init once")
	}
	tab, err := mounttab.Read()
	if err != nil {
		return doctor.Failure(sysexits.OSErr, check, err.Error(), "")
	}
	m, _ := tab.Containing(dir)
	for _, t := range sharedFSTypes {
		if m.FSType == t {
			return doctor.Pass(check, "%s is on %s from %s: shared", dir, m.FSType, m.Source)
		}
	}
	return doctor.Warning(check, fmt.Sprintf("%s is on a local %s file system (%s): other nodes cannot see these leases", dir, m.FSType, m.Target),
		"put LEASE_DIR on storage every node mounts (NFS), or use LEASE_BACKEND=nfs or etcd; a single node needs no more")
}

// hookFindings checks, for every environment registered here, that the
// tool that starts it will run the hooks: CBSD's master_poststop.d script
// (and its mnt_start setting, when cbsd is installed), LXC's hook lines.
func (c *call) hookFindings(ctx context.Context) []doctor.Finding {
	inv := inventory.Store{Dir: c.cfg.Get(config.InventoryDir)}
	names, strays, err := inv.Names()
	if err != nil {
		return []doctor.Finding{doctor.Failure(sysexits.DataErr, "hooks", err.Error(), "")}
	}
	var out []doctor.Finding
	for _, p := range strays {
		out = append(out, doctor.Warning("hooks", fmt.Sprintf("%q in INVENTORY_DIR is not an inventory record: skipped", p), "move it out of "+inv.Dir))
	}
	for _, name := range names {
		rec, err := inv.Load(name)
		if err != nil || rec == nil {
			continue
		}
		if rec.Kind == Container {
			out = append(out, c.lxcHooks(name))
			continue
		}
		out = append(out, c.poststopFinding(name))
		if rec.Kind == Jail {
			if f, ok := c.cbsdMntStart(ctx, name); ok {
				out = append(out, f)
			}
		}
	}
	if len(names) == 0 {
		out = append(out, doctor.Pass("hooks", "no environment is registered here"))
	}
	return out
}

func (c *call) poststopFinding(jname string) doctor.Finding {
	script := c.wiring.Poststop
	path := script.Path(environment.CBSDDirs(c.cfg.Get(config.Workdir), jname)[environment.System])
	check := "hooks: " + jname
	fix := "envctl install-hook jname=" + jname
	raw, err := safefile.Read(path, maxDescriptor)
	if err != nil {
		// The script lives on the shared system directory: with that not
		// attached here, its absence says nothing.
		sysdir := environment.CBSDDirs(c.cfg.Get(config.Workdir), jname)[environment.System]
		if tab, terr := mounttab.Read(); terr == nil {
			if _, mounted := tab.Top(sysdir); !mounted {
				return doctor.Warning(check, fmt.Sprintf("%s is not attached here, so its master_poststop.d script cannot be seen", sysdir), "envctl jregister "+jname+" attaches it; then run envctl doctor again")
			}
		}
		return doctor.Failure(sysexits.Config, check, fmt.Sprintf("CBSD will not detach %s when it stops: %v", jname, err), fix)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm()&0o111 == 0 {
		return doctor.Failure(sysexits.Config, check, path+" is not executable: CBSD runs only executables in master_poststop.d", fix)
	}
	if !bytes.Equal(raw, script.Text) {
		return doctor.Warning(check, path+" differs from the script this envctl installs", fix)
	}
	return doctor.Pass(check, "%s is installed", path)
}

// cbsdMntStart asks CBSD which mnt_start hook it runs for a jail, when
// CBSD_COMMAND is installed.
func (c *call) cbsdMntStart(ctx context.Context, jname string) (doctor.Finding, bool) {
	cbsd := c.cfg.Get(config.CBSDCommand)
	if fi, err := os.Stat(cbsd); err != nil || fi.Mode().Perm()&0o111 == 0 {
		return doctor.Finding{}, false
	}
	check := "hooks: " + jname
	argv := CBSDMntStartArgv(cbsd, jname)
	res, err := run.New(false, nil).Run(ctx, run.Cmd{Argv: argv, Timeout: c.cfg.Seconds(config.CommandTimeout), ReadOnly: true, Configured: true})
	if err != nil {
		return doctor.Failure(sysexits.Unavailable, check, fmt.Sprintf("%s: %v", run.Quote(argv), err), ""), true
	}
	hook := strings.TrimSpace(string(res.Stdout))
	if filepath.Base(strings.Fields(hook + " x")[0]) != "mnt-start" {
		return doctor.Failure(sysexits.Config, check, fmt.Sprintf("CBSD's mnt_start for %s is %q: nothing attaches its storage or checks its lease when it starts", jname, hook),
			"cbsd jset jname="+jname+" mnt_start=/usr/local/bin/mnt-start"), true
	}
	return doctor.Pass(check, "CBSD runs %s before %s starts", hook, jname), true
}

// CBSDMntStartArgv asks CBSD for a jail's mnt_start setting, the value
// alone (jget mode=quiet).
func CBSDMntStartArgv(cbsd, jname string) []string {
	return []string{cbsd, "jget", "jname=" + jname, "mode=quiet", "mnt_start"}
}

// lxcHooks checks that a container's config runs mnt-start and mnt-stop.
func (c *call) lxcHooks(name string) doctor.Finding {
	path := filepath.Join(c.cfg.Get(config.LXCPath), name, lxcconf.FileName)
	check := "hooks: " + name
	raw, err := safefile.Read(path, maxDescriptor)
	if err != nil {
		return doctor.Failure(sysexits.Config, check, err.Error(), "envctl cregister "+name)
	}
	cfg, err := lxcconf.Parse(raw, path)
	if err != nil {
		return doctor.FromError(check, err, "")
	}
	var missing []string
	if !cfg.Runs(lxcconf.PreStartKey, "mnt-start") {
		missing = append(missing, lxcconf.PreStartKey+" = mnt-start")
	}
	if !cfg.Runs(lxcconf.PostStopKey, "mnt-stop") {
		missing = append(missing, lxcconf.PostStopKey+" = mnt-stop")
	}
	if len(missing) > 0 {
		return doctor.Failure(sysexits.Config, check, path+" lacks "+strings.Join(missing, " and "), "add those lines (with the programs' full paths) to "+path)
	}
	return doctor.Pass(check, "%s runs mnt-start and mnt-stop", path)
}
