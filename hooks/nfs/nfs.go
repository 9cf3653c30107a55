// Package nfs attaches an environment's directories from an NFS server:
// NFS_SERVER:<dir>/<jname> for each role, where <dir> is
// NFS_SERVER_<ROLE>_DIR or NFS_SERVER_ROOT_DIR/<role>, exactly as CBSD's
// NFSv4 sample lays them out, so a config written for the sample works
// unchanged. Before anything is mounted a preflight asks the server, with a
// short deadline, whether it answers (TCP, then the MOUNT service or an
// NFSv4 NULL call), so a dead server costs seconds and exit 69 instead of a
// hung hook. With NFS_AUTO_CREATE=1 it also creates the environment's
// directories on the server over NFS RPC, with nothing mounted.
package nfs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/environment"
	"github.com/envhooks/envhooks/lib/logging"
	"github.com/envhooks/envhooks/lib/nfsclient"
	"github.com/envhooks/envhooks/lib/plan"
	"github.com/envhooks/envhooks/lib/sysexits"
)

var (
	serverKey = config.Define(config.Key{Name: "NFS_SERVER", Check: checkServer,
		Doc: "nfs backend: the NFS server: a host name, an IPv4 address or an IPv6 address (setting it selects BACKEND=nfs)"})
	rootKey = config.Define(config.Key{Name: "NFS_SERVER_ROOT_DIR", Check: checkExportPath,
		Doc: "nfs backend: the directory on the server that holds data/ system/ rcconf/ fstab/, one folder per environment in each"})
	dirKeys = map[environment.Role]string{
		environment.Data: config.Define(config.Key{Name: "NFS_SERVER_DATA_DIR", Check: checkExportPath,
			Doc: "nfs backend: the server directory holding each environment's data folder (default NFS_SERVER_ROOT_DIR/data)"}),
		environment.System: config.Define(config.Key{Name: "NFS_SERVER_SYSTEM_DIR", Check: checkExportPath,
			Doc: "nfs backend: the server directory holding each environment's system folder (default NFS_SERVER_ROOT_DIR/system)"}),
		environment.RCConf: config.Define(config.Key{Name: "NFS_SERVER_RCCONF_DIR", Check: checkExportPath,
			Doc: "nfs backend: the server directory holding each environment's rcconf folder (default NFS_SERVER_ROOT_DIR/rcconf)"}),
		environment.Fstab: config.Define(config.Key{Name: "NFS_SERVER_FSTAB_DIR", Check: checkExportPath,
			Doc: "nfs backend: the server directory holding each environment's fstab folder (default NFS_SERVER_ROOT_DIR/fstab)"}),
	}
	optKey = config.Define(config.Key{Name: "MOUNT_NFS_OPT", Default: "-orw -overs=4", Check: checkOptions,
		Doc: "nfs backend: FreeBSD mount_nfs flags, one -oNAME[=VALUE] word each (-orw -overs=4 -ohard); translated to mount -o on Linux"})
	mountTimeoutKey = config.Define(config.Key{Name: "NFS_MOUNT_TIMEOUT", Default: "30", Check: config.IsSeconds,
		Doc: "nfs backend: seconds one mount command may take before its process group is killed (exit 69)"})
	autoCreateKey = config.Define(config.Key{Name: "NFS_AUTO_CREATE", Default: "0", Check: config.IsBool,
		Doc: "nfs backend: 1: mnt-start first creates the environment's missing directories on the server over NFS RPC (as envctl provision does)"})
	modeKey = config.Define(config.Key{Name: "NFS_CREATE_MODE", Default: "0755", Check: checkMode,
		Doc: "nfs backend: octal mode of directories created on the server by provisioning"})
	ownerKey = config.Define(config.Key{Name: "NFS_CREATE_OWNER", Default: "0:0", Check: checkOwner,
		Doc: "nfs backend: numeric UID:GID that owns directories created on the server by provisioning (the server must not squash root)"})
	portKey = config.Define(config.Key{Name: "NFS_PORT", Default: "2049", Check: checkPort,
		Doc: "nfs backend: the server's NFS TCP port the preflight probes (the MOUNT service is found through the portmapper on 111)"})
)

// Backend is the NFS backend.
type Backend struct {
	server     string
	root       string
	dirs       map[environment.Role]string // remote parent directory per role ("" when not configured)
	ownDir     map[environment.Role]bool   // the role has its own NFS_SERVER_<ROLE>_DIR
	words      []string                    // MOUNT_NFS_OPT
	version    int
	warnings   []string // what mount_nfs would warn about the options
	port       int
	portmap    int // where hasPortmapper looks; tests point it at a closed port
	preflight  time.Duration
	mountTO    time.Duration
	autoCreate bool
	mode       fs.FileMode
	owner      nfsclient.Owner

	// Probe is the preflight; exact-argv tests replace it, as they run
	// with no server.
	Probe func(ctx context.Context, paths []string) error
}

// New reads and checks the nfs keys.
func New(cfg *config.Config) (plan.Backend, error) { return newBackend(cfg) }

func newBackend(cfg *config.Config) (*Backend, error) {
	server := cfg.Get(serverKey)
	if server == "" {
		return nil, sysexits.New(sysexits.Config, "BACKEND=nfs needs NFS_SERVER, the NFS server's name or address")
	}
	if err := checkServer(server); err != nil {
		return nil, cfg.Errorf(serverKey, "%v", err)
	}
	opts, err := parseOptWords(cfg.Words(optKey))
	if err != nil {
		return nil, cfg.Errorf(optKey, "%v", err)
	}
	version, err := versionOf(opts)
	if err != nil {
		return nil, cfg.Errorf(optKey, "%v", err)
	}
	if err := checkProto(opts, server); err != nil {
		return nil, cfg.Errorf(optKey, "%v", err)
	}
	b := &Backend{
		server:     server,
		root:       cleanRemote(cfg.Get(rootKey)),
		dirs:       map[environment.Role]string{},
		ownDir:     map[environment.Role]bool{},
		words:      cfg.Words(optKey),
		version:    version,
		warnings:   optionWarnings(opts, version),
		port:       cfg.Int(portKey),
		portmap:    nfsclient.PortmapPort,
		mountTO:    cfg.Seconds(mountTimeoutKey),
		preflight:  cfg.Seconds(config.PreflightTimeout),
		autoCreate: cfg.Bool(autoCreateKey),
	}
	// A probe longer than the mount it guards would defeat its purpose.
	b.preflight = min(b.preflight, b.mountTO)
	mode, _ := strconv.ParseUint(cfg.Get(modeKey), 8, 32)
	b.mode = fs.FileMode(mode)
	uid, gid, _ := parseOwner(cfg.Get(ownerKey))
	b.owner = nfsclient.Owner{UID: uid, GID: gid}
	for _, role := range environment.Roles {
		if d := cfg.Get(dirKeys[role]); d != "" {
			b.dirs[role], b.ownDir[role] = cleanRemote(d), true
		} else if b.root != "" {
			b.dirs[role] = path.Join(b.root, string(role))
		}
	}
	b.Probe = b.probe
	return b, nil
}

func cleanRemote(p string) string {
	if p == "" {
		return ""
	}
	return path.Clean(p)
}

// Remote is the directory on the server that role of jname comes from.
func (b *Backend) Remote(jname string, role environment.Role) (string, error) {
	d := b.dirs[role]
	if d == "" {
		return "", sysexits.New(sysexits.Config, "nfs backend: neither NFS_SERVER_ROOT_DIR nor %s is set, so there is no directory on %s for the %s of %s", dirKeys[role], b.server, role, jname)
	}
	return path.Join(d, jname), nil
}

func (b *Backend) Steps(env *environment.Env, roles []environment.Role) ([]plan.Step, error) {
	if err := environment.CheckName(env.Name); err != nil {
		return nil, err
	}
	// CBSD's jnames may hold ':', which an NFS source cannot: mount_nfs
	// splits server:path at the last ':' (getnfsargs, strrchr).
	if strings.Contains(env.Name, ":") {
		return nil, sysexits.New(sysexits.DataErr, "jname %s holds ':', which the NFS source SERVER:PATH cannot (mount_nfs splits it at the last ':'): the nfs backend cannot hold it", env.Name)
	}
	remotes := make([]string, len(roles))
	for i, role := range roles {
		r, err := b.Remote(env.Name, role)
		if err != nil {
			return nil, err
		}
		remotes[i] = r
	}
	// Without provisioning the environment's own directories must already
	// be offered; with it, they may not exist yet, so the directories that
	// will hold them are checked instead.
	probePaths := remotes
	if b.autoCreate {
		probePaths = b.bases(roles)
	}
	steps := []plan.Step{&plan.Check{
		What:      fmt.Sprintf("check that NFS server %s answers (within %s)", b.server, b.preflight),
		Preflight: true,
		Fn: func(ctx context.Context, _ *plan.System) error {
			return b.Probe(ctx, probePaths)
		},
	}}
	if b.autoCreate {
		name := env.Name
		steps = append(steps, &plan.Check{
			What:    fmt.Sprintf("create the missing directories of %s on %s (NFS_AUTO_CREATE=1)", name, b.server),
			Changes: true,
			Fn: func(ctx context.Context, s *plan.System) error {
				return b.provision(ctx, name, roles, s.Log)
			},
		})
	}
	for i, role := range roles {
		src, target := Source(b.server, remotes[i]), env.Dir(role)
		argv, err := mountArgv(b.words, src, target)
		if err != nil {
			return nil, sysexits.New(sysexits.Config, "MOUNT_NFS_OPT: %v", err)
		}
		steps = append(steps, &plan.Mount{
			Target:      target,
			Want:        want(src, b.version),
			Argv:        argv,
			UnmountArgv: []string{"umount", target},
			ForceArgv:   forceUnmountArgv(target),
			What:        plan.Describe("mount NFS", src, target),
			Timeout:     b.mountTO,
			Warning:     strings.Join(b.warnings, "; "),
		})
	}
	return steps, nil
}

// bases are the directories whose existence provisioning needs: the root
// for roles under it (provisioning creates <root>/<role> too), or the
// role's own directory.
func (b *Backend) bases(roles []environment.Role) []string {
	seen := map[string]bool{}
	var out []string
	for _, role := range roles {
		base := b.root
		if b.ownDir[role] || base == "" {
			base = b.dirs[role]
		}
		if base != "" && !seen[base] {
			seen[base] = true
			out = append(out, base)
		}
	}
	return out
}

// probe is the preflight: TCP to the NFS port, then for NFSv3 the MOUNT
// service must offer every path; for NFSv4 the NFS program must answer a
// NULL call, and the MOUNT check runs as well where the server has a
// portmapper (a v4-only server has none).
func (b *Backend) probe(ctx context.Context, paths []string) error {
	ctx, cancel := context.WithTimeout(ctx, b.preflight)
	defer cancel()
	fail := func(format string, args ...any) error {
		return sysexits.New(sysexits.Unavailable, "preflight: "+format+"; nothing was mounted", args...)
	}
	if err := nfsclient.ProbeTCP(ctx, b.server, b.port); err != nil {
		if nfsclient.IsTimeout(err) {
			return fail("NFS server %s port %d did not accept a TCP connection within %s: is it up and reachable from this node?", b.server, b.port, b.preflight)
		}
		return fail("NFS server %s port %d: TCP connect failed (%v): is the NFS service running and reachable from this node?", b.server, b.port, err)
	}
	if b.version == 4 {
		if err := nfsclient.ProbeNull(ctx, b.server, b.port, 4); err != nil {
			if nfsclient.IsTimeout(err) {
				return fail("NFS server %s port %d accepted a TCP connection but did not answer an NFSv4 NULL call within %s: the server is hung or overloaded", b.server, b.port, b.preflight)
			}
			return fail("NFS server %s port %d accepted a TCP connection but the NFSv4 NULL call failed (%v): is it an NFSv4 server?", b.server, b.port, err)
		}
		if !b.hasPortmapper(ctx) {
			return nil
		}
	}
	if err := nfsclient.ProbeExports(ctx, b.server, paths, nfsclient.Credentials{}); err != nil {
		var ee *nfsclient.ExportError
		if errors.As(err, &ee) {
			return fail("NFS server %s (MOUNT service via portmapper port %d) does not offer %s to this node: %s; export it, create it, or set NFS_AUTO_CREATE=1", b.server, nfsclient.PortmapPort, ee.Path, strings.TrimPrefix(ee.Error(), fmt.Sprintf("the MOUNT service of %s refuses %s: ", ee.Server, ee.Path)))
		}
		if nfsclient.IsTimeout(err) {
			return fail("NFS server %s: the portmapper (port %d) or MOUNT service did not answer within %s: the server is hung or overloaded", b.server, nfsclient.PortmapPort, b.preflight)
		}
		return fail("NFS server %s: the MOUNT check failed (%v): does the server run rpcbind and mountd (for NFSv3)?", b.server, err)
	}
	return nil
}

// hasPortmapper tells a v4-only server (nothing on 111) from one that also
// runs the MOUNT service. It takes at most a third of what is left, so a
// firewall that drops 111 silently does not eat the whole preflight.
func (b *Backend) hasPortmapper(ctx context.Context) bool {
	limit := time.Second
	if d, ok := ctx.Deadline(); ok {
		limit = min(limit, time.Until(d)/3)
	}
	c, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	return nfsclient.ProbeTCP(c, b.server, b.portmap) == nil
}

// Provision creates the per-environment directories of jname on the NFS
// server over NFS RPC (nothing is mounted on this node, no shell runs on
// the server): <dir>/<jname> for each role, and <root>/<role> when missing,
// with NFS_CREATE_MODE and NFS_CREATE_OWNER. Directories that exist are
// left as they are, so running it again changes nothing. In a dry run it
// only says what it would create.
func Provision(ctx context.Context, cfg *config.Config, jname string, roles []environment.Role, log *logging.Logger, dryRun bool) error {
	b, err := newBackend(cfg)
	if err != nil {
		return err
	}
	return b.provisionRoles(ctx, jname, roles, log, dryRun)
}

// Provision is envctl provision: every role's directory (backend.Provisioner).
func (b *Backend) Provision(ctx context.Context, jname string, log *logging.Logger, dryRun bool) error {
	return b.provisionRoles(ctx, jname, nil, log, dryRun)
}

func (b *Backend) provisionRoles(ctx context.Context, jname string, roles []environment.Role, log *logging.Logger, dryRun bool) error {
	if err := environment.CheckName(jname); err != nil {
		return err
	}
	if len(roles) == 0 {
		roles = []environment.Role{environment.Data, environment.System, environment.Fstab, environment.RCConf}
	}
	for _, role := range roles {
		if _, err := b.Remote(jname, role); err != nil {
			return err
		}
	}
	if dryRun {
		for _, role := range roles {
			r, _ := b.Remote(jname, role)
			log.Action("would create %s (mode %04o, owner %d:%d) if missing", Source(b.server, r), b.mode, b.owner.UID, b.owner.GID)
		}
		return nil
	}
	if err := b.Probe(ctx, b.bases(roles)); err != nil {
		return err
	}
	return b.provision(ctx, jname, roles, log)
}

// provision does the work of Provision for an already checked backend.
func (b *Backend) provision(ctx context.Context, jname string, roles []environment.Role, log *logging.Logger) error {
	// Group the directories by the export they are created through.
	byBase := map[string][]string{}
	for _, role := range roles {
		base, rel := b.root, path.Join(string(role), jname)
		if b.ownDir[role] || base == "" {
			base, rel = b.dirs[role], jname
		}
		byBase[base] = append(byBase[base], rel)
	}
	bases := make([]string, 0, len(byBase))
	for base := range byBase {
		bases = append(bases, base)
	}
	sort.Strings(bases)
	for _, base := range bases {
		c, err := nfsclient.Dial(ctx, b.server, base, nfsclient.Options{Timeout: b.mountTO})
		if err != nil {
			return sysexits.New(sysexits.Unavailable, "provisioning: cannot reach %s on NFS server %s: %v", base, b.server, err)
		}
		err = b.createAll(ctx, c, base, byBase[base], log)
		c.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func (b *Backend) createAll(ctx context.Context, c *nfsclient.Client, base string, rels []string, log *logging.Logger) error {
	for _, rel := range rels {
		where := Source(b.server, path.Join(base, rel))
		created, err := c.MkdirAll(ctx, rel, b.mode, b.owner)
		for _, d := range created {
			log.Action("created %s on the NFS server (mode %04o, owner %d:%d)", Source(b.server, path.Join(base, d)), b.mode, b.owner.UID, b.owner.GID)
		}
		if err != nil {
			code := sysexits.CantCreat
			if nfsclient.IsTimeout(err) {
				code = sysexits.Unavailable
			}
			return sysexits.New(code, "provisioning: cannot create %s: %v (does the server squash root, or is the export read-only?)", where, err)
		}
		if len(created) == 0 {
			log.Debug("%s already exists", where)
		}
	}
	return nil
}

func checkMode(v string) error {
	n, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
	if err != nil || n > 0o7777 {
		return errors.New("want an octal mode such as 0755")
	}
	return nil
}

func parseOwner(v string) (int, int, error) {
	// IDs are 32-bit on the wire (NFSv3 fattr3, AUTH_SYS) and on every
	// system here; parsing them as such also keeps 32-bit builds right.
	u, g, ok := strings.Cut(strings.TrimSpace(v), ":")
	uid, err1 := strconv.ParseUint(u, 10, 31)
	gid, err2 := strconv.ParseUint(g, 10, 31)
	if !ok || err1 != nil || err2 != nil {
		return 0, 0, errors.New("want numeric UID:GID such as 0:0 (names cannot be resolved the way the server would)")
	}
	return int(uid), int(gid), nil
}

func checkOwner(v string) error { _, _, err := parseOwner(v); return err }

func checkPort(v string) error {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 1 || n > 65535 {
		return errors.New("want a TCP port between 1 and 65535")
	}
	return nil
}
