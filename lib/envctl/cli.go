package envctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pborman/getopt/v2"

	"github.com/envhooks/envhooks/lib/args"
	"github.com/envhooks/envhooks/lib/attach"
	"github.com/envhooks/envhooks/lib/backend"
	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/deadline"
	"github.com/envhooks/envhooks/lib/descriptor"
	"github.com/envhooks/envhooks/lib/environment"
	"github.com/envhooks/envhooks/lib/failures"
	"github.com/envhooks/envhooks/lib/inventory"
	"github.com/envhooks/envhooks/lib/lease"
	"github.com/envhooks/envhooks/lib/logging"
	"github.com/envhooks/envhooks/lib/oneline"
	"github.com/envhooks/envhooks/lib/platform"
	"github.com/envhooks/envhooks/lib/quick"
	"github.com/envhooks/envhooks/lib/safefile"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// Wiring is what the envctl program is built with: lib/ knows no backend
// and ships no script, cmd/envctl passes them in.
type Wiring struct {
	Backends backend.Registry
	Poststop HookScript // what install-hook writes for CBSD
}

// HookScript is a script envctl installs into an environment's system
// directory, where CBSD runs it.
type HookScript struct {
	Dir    string // relative to the system directory, e.g. master_poststop.d
	Name   string
	Text   []byte // for a jail
	VMText []byte // for a bhyve VM
}

// Path is where the script goes for the system directory sysdir.
func (h HookScript) Path(sysdir string) string { return sysdir + "/" + h.Dir + "/" + h.Name }

type cliFlags struct {
	configFile, from, textfile, listen   string
	dryRun, verbose, help, version, json bool
	force, takeover, noFence             bool
}

func (f *cliFlags) set(prog string) *getopt.Set {
	s := getopt.New()
	s.SetProgram(prog)
	s.FlagLong(&f.configFile, "config", 'c', "configuration file", "FILE")
	s.FlagLong(&f.dryRun, "dry-run", 'n', "print what would be done, change nothing")
	s.FlagLong(&f.verbose, "verbose", 'v', "say more")
	s.FlagLong(&f.help, "help", 'h', "show this help")
	s.FlagLong(&f.version, "version", 'V', "show the version")
	s.FlagLong(&f.json, "json", 0, "machine-readable output (list, status, lease show)")
	s.FlagLong(&f.force, "force", 0, "take the lease over from the node named by --from")
	s.FlagLong(&f.from, "from", 0, "the node a --force takeover takes from", "NODE")
	s.FlagLong(&f.takeover, "takeover", 0, "take the lease over if its owner's heartbeat is older than LEASE_TTL + FENCE_MARGIN")
	s.FlagLong(&f.noFence, "no-fence", 0, "with --takeover or --force: skip the fence step (FENCE_HOOK, the witness): only when you know the old owner is down")
	s.FlagLong(&f.textfile, "textfile", 0, "metrics: write envhooks.prom into node_exporter's textfile directory DIR", "DIR")
	s.FlagLong(&f.listen, "listen", 0, "heartbeat: also serve the metrics on http://ADDR/metrics", "ADDR")
	return s
}

// call is one run of one command: what it was given and what it works on.
type call struct {
	ctx   context.Context
	flags cliFlags
	ops   map[string]string // operands: jname=, rcfile=
	// configFile is the -c file (or ENVHOOKS_CONFIG), for the per-
	// environment configurations failover reads.
	configFile string
	jname      string
	cfg        *config.Config
	log        *logging.Logger
	node       *Node // nil for commands that need no lease store
	wiring     Wiring
	out        io.Writer
	errOut     io.Writer
}

// command is one envctl subcommand.
type command struct {
	name     string // "jregister", or "lease show" for the lease subcommands
	operands string // for the usage text
	about    string
	// without says what the command runs without: "config" (not even the
	// configuration), "leases" (no lease store: server-side or read-only
	// work that must not need one).
	without string
	run     func(c *call) error
}

// commands is envctl's table of subcommands; the usage text is made from it.
var commands []command

func init() {
	commands = []command{
		{name: "jregister", operands: "jname=NAME|NAME|jname='GLOB' [rcfile=FILE] [--force --from NODE | --takeover] [--no-fence]", about: "take a jail over on this node: lease, attach, descriptor, record", run: registerCmd(Jail)},
		{name: "junregister", operands: "jname=NAME|NAME|jname='GLOB'", about: "give a jail up: descriptor to the shared storage, detach, release the lease", run: unregisterCmd(Jail)},
		{name: "bregister", operands: "(as jregister)", about: "the same for bhyve VMs", run: registerCmd(VM)},
		{name: "bunregister", operands: "(as junregister)", about: "the same for bhyve VMs", run: unregisterCmd(VM)},
		{name: "cregister", operands: "(as jregister)", about: "the same for LXC containers in LXC_PATH", run: registerCmd(Container)},
		{name: "cunregister", operands: "(as junregister)", about: "the same for LXC containers in LXC_PATH", run: unregisterCmd(Container)},
		{name: "move", operands: "jname=NAME|jname='GLOB' to=NODE", about: "move an environment from this node (its owner) to NODE over ssh: preflight there, stop, unregister here, register and start there; journaled, rolled back on any failure", run: moveCmd},
		{name: "recover", operands: "jname=NAME", about: "finish or undo a move that was cut short (a crash, a lost link), from either node", run: recoverCmd},
		{name: "history", operands: "jname=NAME [--json]", about: "every change of the environment's owner: register, unregister, takeover, move, drain, rollback, failover, relocate; and its restarts", run: historyCmd},
		{name: "drain", operands: "to=NODE[,NODE...]", about: "put this node in maintenance (it acquires nothing new) and move every environment it has to the NODEs in turn", run: drainCmd},
		{name: "restore", about: "end this node's maintenance and bring home what drain moved away", run: restoreCmd},
		{name: "start", operands: "jname=NAME [kind=jail|vm|container]", about: "start an environment this node owns with START_COMMAND and check it runs (RUNNING_CHECK)", run: startStopCmd(true)},
		{name: "stop", operands: "jname=NAME [kind=jail|vm|container]", about: "stop an environment with STOP_COMMAND and check it stopped", run: startStopCmd(false)},
		{name: "preflight", operands: "jname=NAME [kind=jail|vm|container]", about: "can this node take NAME? (what move asks the target before it changes anything)", run: preflightCmd},
		{name: "failover", about: "one pass of automatic failover: restart this node's crashed HA=1 environments (HA_MAX_RESTART), take over and start those of nodes whose heartbeat expired or that gave them up (heartbeat does it continuously with FAILOVER=1)", run: failoverCmd},
		{name: "status", operands: "jname=NAME [--json]", about: "what this node finds about one environment", run: statusCmd},
		{name: "list", operands: "[--json]", about: "status of every environment registered here", run: listCmd},
		{name: "lease show", operands: "jname=NAME [--json]", about: "who owns an environment", run: leaseShowCmd},
		{name: "lease acquire", operands: "jname=NAME", about: "take the lease of a new environment before cbsd jcreate/bcreate runs mnt_start for it", run: leaseAcquireCmd},
		{name: "lease release", operands: "jname=NAME [--force --from NODE]", about: "give up a lease (without detaching anything)", run: leaseReleaseCmd},
		{name: "lease list", operands: "[--json]", about: "every lease in the store, with its owner's heartbeat", run: leaseListCmd},
		{name: "lease init", about: "mark LEASE_DIR as the shared lease directory (file leases on the root filesystem need it)", without: "leases", run: leaseInitCmd},
		{name: "heartbeat", operands: "[--listen ADDR]", about: "renew this node's liveness every LEASE_TTL/3 until stopped (a service); --listen also serves /metrics", run: heartbeatCmd},
		{name: "metrics", operands: "[--textfile DIR]", about: "this node's figures in the Prometheus text format, on stdout or atomically into DIR/envhooks.prom", run: metricsCmd},
		{name: "install-hook", operands: "jname=NAME [kind=jail|vm]", about: "install CBSD's master_poststop.d script for NAME (its system directory must be attached)", without: "leases", run: installHookCmd},
		{name: "provision", operands: "jname=NAME", about: "create NAME's directories on the storage server (nothing is mounted)", without: "leases", run: provisionCmd},
		{name: "doctor", operands: "[--json]", about: "check this node's setup (config, kernel, commands, servers, directories, clock, hooks) and say what to fix", without: "config", run: doctorCmd},
		{name: "keys", about: "print every configuration key with its default", without: "config", run: keysCmd},
	}
}

func usage() string {
	var b strings.Builder
	b.WriteString("usage: envctl [-c FILE] [-n] [-v] [--json] COMMAND [OPERANDS]\n\ncommands:\n")
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.operands)
		fmt.Fprintf(tw, "  \t  %s\n", c.about)
	}
	tw.Flush()
	b.WriteString("\nGLOB is a shell pattern ('*', '?', '[...]'), quoted so the shell leaves it.\nSee envctl(8).\n")
	return b.String()
}

func lookupCommand(words []string) (*command, []string) {
	for i := range commands {
		name := strings.Fields(commands[i].name)
		if len(words) >= len(name) && strings.Join(words[:len(name)], " ") == commands[i].name {
			return &commands[i], words[len(name):]
		}
	}
	return nil, nil
}

// usageError is a usage mistake, said with a pointer to the help.
func usageError(format string, a ...any) error {
	return sysexits.New(sysexits.Usage, "%s (see envctl -h)", fmt.Sprintf(format, a...))
}

// alreadySaid is an error whose lines were printed where it happened (a
// batch's failures and summary): Main only exits with its code.
type alreadySaid struct{ error }

func (a alreadySaid) Unwrap() error { return a.error }

// Main runs envctl and returns its exit code.
func Main(argv []string, w Wiring, stdout, stderr io.Writer) int {
	err := dispatch(argv, w, stdout, stderr)
	if err == nil {
		return sysexits.OK
	}
	failures.Record(failures.Dir(quick.Dir()), "envctl", sysexits.Code(err), operandJName(argv), err.Error(), time.Now())
	var said alreadySaid
	if errors.As(err, &said) {
		return sysexits.Code(err)
	}
	return oneline.Fail(stderr, "envctl", err)
}

func dispatch(argv []string, w Wiring, stdout, stderr io.Writer) error {
	f, words, err := parseFlags(argv)
	if err != nil {
		return err
	}
	switch {
	case f.help:
		fmt.Fprint(stdout, usage())
		return nil
	case f.version:
		fmt.Fprintf(stdout, "envctl %s\n", args.Version)
		return nil
	case len(words) == 0:
		return usageError("no command given")
	}
	if err := platform.Check(); err != nil {
		return err
	}
	cmd, operands := lookupCommand(words)
	if cmd == nil {
		if words[0] == "lease" {
			return usageError("lease needs acquire, show, release, list or init")
		}
		return usageError("unknown command %s", oneline.Quote(words[0]))
	}
	for _, only := range []struct{ flag, value, cmd string }{{"--textfile", f.textfile, "metrics"}, {"--listen", f.listen, "heartbeat"}} {
		if only.value != "" && cmd.name != only.cmd {
			return usageError("%s goes with envctl %s, not %s", only.flag, only.cmd, cmd.name)
		}
	}
	c := &call{flags: f, wiring: w, out: stdout, errOut: stderr}
	if c.ops, err = parseOperands(operands); err != nil {
		return err
	}
	c.jname = c.ops["jname"]
	for op, cmds := range map[string][]string{"kind": {"install-hook", "start", "stop", "preflight"}, "to": {"move", "drain"}} {
		if _, ok := c.ops[op]; ok && !slices.Contains(cmds, cmd.name) {
			return usageError("%s= goes with %s only", op, strings.Join(cmds, ", "))
		}
	}
	if cmd.without == "config" {
		return cmd.run(c)
	}
	configFile := f.configFile
	if configFile == "" {
		configFile = os.Getenv("ENVHOOKS_CONFIG")
	}
	c.configFile = configFile
	perEnv := c.jname
	if IsPattern(perEnv) {
		perEnv = ""
	}
	if c.cfg, err = config.Load(config.DefaultSources(configFile, perEnv)); err != nil {
		return err
	}
	c.log = logging.New("envctl", stderr, f.verbose, c.cfg.Bool(config.SyslogTag))
	defer c.log.Close()
	for _, warning := range c.cfg.Warnings {
		c.log.Warn("%s", warning)
	}
	ctx, interrupt := context.WithCancelCause(context.Background())
	defer interrupt(nil)
	defer deadline.CancelOnSignal(interrupt)()
	c.ctx = ctx
	if cmd.without == "leases" {
		return cmd.run(c)
	}
	if c.node, err = NewNode(c.cfg, w.Backends, c.log, f.dryRun, stdout); err != nil {
		return err
	}
	defer lease.Close(c.node.Leases)
	return cmd.run(c)
}

// operandJName is the jname= operand of a command line, for the failure
// record ("" when it has none, or a pattern).
func operandJName(argv []string) string {
	_, words, err := parseFlags(argv)
	if err != nil {
		return ""
	}
	if _, operands := lookupCommand(words); operands != nil {
		if ops, err := parseOperands(operands); err == nil && !IsPattern(ops["jname"]) {
			return ops["jname"]
		}
	}
	return ""
}

// parseFlags reads the flags, which may stand anywhere, also between
// operands (envctl jregister web1 --force --from a): getopt stops at the
// first operand, so take it and parse on from there.
func parseFlags(argv []string) (cliFlags, []string, error) {
	var f cliFlags
	s := f.set("envctl")
	if err := s.Getopt(argv, nil); err != nil {
		return f, nil, usageError("%v", err)
	}
	var words []string
	for remaining := s.Args(); len(remaining) > 0; {
		words = append(words, remaining[0])
		next := f.set("envctl")
		if err := next.Getopt(append([]string{"envctl"}, remaining[1:]...), nil); err != nil {
			return f, nil, usageError("%v", err)
		}
		remaining = next.Args()
	}
	return f, words, nil
}

// parseOperands accepts jname=, rcfile=, kind= and one bare jname.
func parseOperands(operands []string) (map[string]string, error) {
	ops := map[string]string{}
	for _, o := range operands {
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			k, v = "jname", o
		}
		switch k {
		case "jname", "rcfile":
		case "kind":
			if v != Jail && v != VM && v != Container {
				return nil, sysexits.New(sysexits.Usage, "kind=%s: want kind=jail, kind=vm or kind=container", oneline.Quote(v))
			}
		case "to":
			for _, node := range strings.Split(v, ",") {
				if node == "" || config.IsName(node) != nil {
					return nil, sysexits.New(sysexits.Usage, "to=%s: want node names (letters, digits, '_', '.', '-') separated by commas", oneline.Quote(v))
				}
			}
		default:
			return nil, sysexits.New(sysexits.Usage, "unknown operand %s: want jname=NAME, rcfile=FILE, kind=jail|vm|container or to=NODE", oneline.Quote(o))
		}
		if _, dup := ops[k]; dup {
			return nil, sysexits.New(sysexits.Usage, "%s= given twice", k)
		}
		ops[k] = v
	}
	if j := ops["jname"]; j != "" && !IsPattern(j) {
		if err := environment.CheckName(j); err != nil {
			return nil, err
		}
	}
	return ops, nil
}

// oneName returns the single environment the command is about.
func (c *call) oneName(cmd string) (string, error) {
	switch {
	case c.jname == "":
		return "", usageError("%s needs jname=NAME", cmd)
	case IsPattern(c.jname):
		return "", usageError("%s takes one jname, not a pattern", cmd)
	}
	return c.jname, nil
}

func registerCmd(kind string) func(c *call) error {
	return func(c *call) error {
		cmd := verbFor("register", kind)
		f := c.flags
		if c.jname == "" {
			return usageError("%s needs jname=NAME", cmd)
		}
		if f.force && f.from == "" {
			return usageError("--force needs --from NODE")
		}
		if f.takeover && f.force {
			return usageError("--takeover goes with %s alone, without --force", cmd)
		}
		if f.noFence && !f.takeover && !f.force {
			return usageError("--no-fence goes with --takeover or --force")
		}
		opts := RegisterOptions{RCFile: c.ops["rcfile"], Force: f.force, From: f.from, Takeover: f.takeover, NoFence: f.noFence}
		return c.each(cmd, "register", func(ctx context.Context, j string) error {
			return c.node.Register(ctx, j, kind, opts)
		})
	}
}

func unregisterCmd(kind string) func(c *call) error {
	return func(c *call) error {
		cmd := verbFor("unregister", kind)
		if c.jname == "" {
			return usageError("%s needs jname=NAME", cmd)
		}
		if c.flags.takeover {
			return usageError("--takeover goes with %s alone, without --force", verbFor("register", kind))
		}
		return c.each(cmd, "unregister", func(ctx context.Context, j string) error {
			return c.node.Unregister(ctx, j, kind)
		})
	}
}

// each runs one for the jname operand, or for every environment its
// pattern matches, PARALLEL at a time.
func (c *call) each(cmd, op string, one func(ctx context.Context, jname string) error) error {
	if !IsPattern(c.jname) {
		return one(c.ctx, c.jname)
	}
	if c.ops["rcfile"] != "" {
		return usageError("rcfile= names one file: it cannot go with a pattern")
	}
	names, err := c.node.Expand(c.jname, op)
	if err != nil {
		return err
	}
	if err := c.node.Each(c.ctx, cmd, names, one, c.errOut); err != nil {
		return alreadySaid{err}
	}
	return nil
}

func statusCmd(c *call) error {
	jname, err := c.oneName("status")
	if err != nil {
		return err
	}
	st, err := c.node.Status(c.ctx, jname)
	if err != nil {
		return err
	}
	printStatuses(c.out, []*Status{st}, c.flags.json)
	return damagedError([]*Status{st})
}

func listCmd(c *call) error {
	names, strays, err := c.node.Inv.Names()
	if err != nil {
		return err
	}
	c.node.warnStrays(strays)
	m, err := c.node.maintenance(c.ctx, c.node.Name)
	if err != nil {
		return err
	}
	sts, err := c.node.Statuses(c.ctx, names)
	if err != nil {
		return err
	}
	for _, st := range sts {
		st.Maintenance = m
	}
	if m != nil && !c.flags.json {
		fmt.Fprintf(c.out, "# %s is in maintenance since %s (drained to %s): it takes no environment until envctl restore\n", m.Node, m.Since.Format(time.RFC3339), strings.Join(m.Targets, ","))
	}
	printStatuses(c.out, sts, c.flags.json)
	return damagedError(sts)
}

// damagedError is the exit of a status or list that found damaged records
// (65), after printing everything it could read.
func damagedError(sts []*Status) error {
	var damaged []string
	for _, st := range sts {
		damaged = append(damaged, st.Damaged...)
	}
	switch len(damaged) {
	case 0:
		return nil
	case 1:
		return sysexits.New(sysexits.DataErr, "%s", damaged[0])
	}
	return sysexits.New(sysexits.DataErr, "%d damaged records, the first: %s", len(damaged), damaged[0])
}

func leaseShowCmd(c *call) error {
	jname, err := c.oneName("lease show")
	if err != nil {
		return err
	}
	l, err := c.node.Leases.Get(c.ctx, jname)
	if err != nil {
		return sysexits.Wrap(sysexits.Unavailable, err)
	}
	if c.flags.json {
		return json.NewEncoder(c.out).Encode(l)
	}
	if l == nil {
		fmt.Fprintf(c.out, "%s: not owned by any node\n", jname)
		return nil
	}
	fmt.Fprintf(c.out, "%s: owned by %s since %s, generation %d\n", jname, l.Node, l.Since.Format("2006-01-02T15:04:05Z07:00"), l.Generation)
	return nil
}

// leaseAcquireCmd takes the lease of an environment without attaching
// anything: the way to create one under leases, since CBSD's jcreate and
// bcreate run mnt_start (which attaches only what this node owns) before
// any descriptor exists for jregister to read.
func leaseAcquireCmd(c *call) error {
	jname, err := c.oneName("lease acquire")
	if err != nil {
		return err
	}
	if err := c.node.refuseInMaintenance(c.ctx, jname); err != nil {
		return err
	}
	if c.flags.dryRun {
		fmt.Fprintf(c.out, "# acquire the lease of %s for %s\n", jname, c.node.Name)
		return nil
	}
	l, err := c.node.Leases.Acquire(c.ctx, jname, c.node.Name)
	if err != nil {
		return sysexits.Wrap(sysexits.Unavailable, err)
	}
	c.log.Action("%s is owned by %s (generation %d): cbsd jcreate/bcreate may attach it here", jname, l.Node, l.Generation)
	return nil
}

func leaseReleaseCmd(c *call) error {
	jname, err := c.oneName("lease release")
	if err != nil {
		return err
	}
	holder := c.node.Name
	if c.flags.force {
		if c.flags.from == "" {
			return usageError("--force needs --from NODE")
		}
		holder = c.flags.from
	}
	if c.flags.dryRun {
		fmt.Fprintf(c.out, "# release the lease of %s held by %s\n", jname, holder)
		return nil
	}
	if err := c.node.Leases.Release(c.ctx, jname, holder); err != nil {
		return sysexits.Wrap(sysexits.Unavailable, err)
	}
	c.log.Action("released the lease of %s held by %s", jname, holder)
	return nil
}

func leaseListCmd(c *call) error { return c.node.leaseList(c.ctx, c.out, c.flags.json) }

// leaseInitCmd marks the file lease directory, once, while the shared
// storage that holds it is mounted: then a node that does not see the
// marker knows it is not looking at the shared directory (see
// lease.CheckDir).
func leaseInitCmd(c *call) error {
	dir := c.cfg.Get(lease.DirKey)
	switch {
	case dir == "":
		return sysexits.New(sysexits.Config, "lease init needs LEASE_DIR")
	case c.cfg.Get(lease.BackendKey) != "file":
		c.log.Action("LEASE_BACKEND=%s keeps its leases on its server: nothing to initialise", c.cfg.Get(lease.BackendKey))
		return nil
	case c.flags.dryRun:
		fmt.Fprintf(c.out, "# write %s\n", filepath.Join(dir, lease.MarkerName))
		return nil
	}
	already, err := lease.InitDir(dir, attach.NodeName(c.cfg))
	if err != nil {
		return err
	}
	if already {
		c.log.Action("%s is marked as the lease directory already", dir)
		return nil
	}
	c.log.Action("marked %s as the shared lease directory: make sure it is on storage every node mounts", dir)
	return nil
}

func heartbeatCmd(c *call) error {
	if c.flags.listen != "" && !c.flags.dryRun {
		if err := c.node.serveMetrics(c.ctx, c.flags.listen); err != nil {
			return err
		}
	}
	if c.cfg.Bool(failoverKey) && !c.flags.dryRun {
		go c.node.failoverLoop(c.ctx, c.envConfig)
	}
	return c.node.heartbeat(c.ctx)
}

func failoverCmd(c *call) error { return c.node.Failover(c.ctx, c.envConfig) }

// envConfig is jname's own configuration (with its envhooks.d file).
func (c *call) envConfig(jname string) (*config.Config, error) {
	return config.Load(config.DefaultSources(c.configFile, jname))
}

func metricsCmd(c *call) error { return c.node.metrics(c.ctx, c.out, c.flags.textfile) }

// installHookCmd needs no lease: the script is the same whoever owns the
// environment, and it travels with the system directory. That directory
// must be attached, or the script would land in the node-local mount point
// and make the next mnt-start refuse to mount over it.
func installHookCmd(c *call) error {
	jname, err := c.oneName("install-hook")
	if err != nil {
		return err
	}
	kind := c.ops["kind"]
	if kind == Container {
		return usageError("install-hook is for CBSD's jails and VMs (kind=jail or kind=vm); LXC runs the hooks from the container's config")
	}
	if kind == "" {
		kind = installKind(c.cfg, jname)
	}
	env := &environment.Env{Name: jname, Dirs: environment.CBSDDirs(c.cfg.Get(config.Workdir), jname)}
	s := &attach.Session{Env: env, Config: c.cfg}
	sysdir := env.Dir(environment.System)
	attached, err := s.SystemAttached()
	if err != nil {
		return err
	}
	if !attached {
		return sysexits.New(sysexits.Unavailable, "the system directory %s of %s is not attached here: a script written now would stay on this node's disk and make the next mnt-start refuse to mount over it; attach it first (envctl %s %s, or cbsd's mnt_start), then run install-hook again", sysdir, jname, verbFor("register", kind), jname)
	}
	script := c.wiring.Poststop
	text := script.Text
	if kind == VM {
		text = script.VMText
	}
	path := script.Path(sysdir)
	if c.flags.dryRun {
		fmt.Fprintf(c.out, "# write %s (for a %s)\n", path, kind)
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return sysexits.New(sysexits.CantCreat, "cannot install %s: %v", path, err)
	}
	if err := safefile.WriteAtomic(path, text, 0o755); err != nil {
		return sysexits.New(sysexits.CantCreat, "cannot install %s: %v", path, err)
	}
	c.log.Action("installed %s (for a %s)", path, kind)
	return nil
}

// installKind is the kind of environment jname is, from what this node
// knows: its inventory record, else a descriptor, else a jail (kind=
// says it for a VM not registered yet).
func installKind(cfg *config.Config, jname string) string {
	if rec, err := (inventory.Store{Dir: cfg.Get(inventory.DirKey)}).Load(jname); err == nil && rec != nil {
		return rec.Kind
	}
	dirs := environment.CBSDDirs(cfg.Get(config.Workdir), jname)
	for _, p := range []string{filepath.Join(dirs[environment.System], descriptor.FileName(jname)), filepath.Join(dirs[environment.RCConf], descriptor.FileName(jname))} {
		raw, err := safefile.Read(p, maxDescriptor)
		if err != nil {
			continue
		}
		if d, err := descriptor.Parse(raw, jname, p); err == nil {
			if k, err := d.Kind(); err == nil {
				return k
			}
		}
	}
	return Jail
}

// provisionCmd prepares the storage server: no lease, nothing mounted on
// this node.
func provisionCmd(c *call) error {
	jname, err := c.oneName("provision")
	if err != nil {
		return err
	}
	name, b, err := c.wiring.Backends.Open(c.cfg)
	if err != nil {
		return err
	}
	p, ok := b.(backend.Provisioner)
	if !ok {
		return sysexits.New(sysexits.Config, "provision creates an environment's directories on its storage server: the %s backend has none to create (it needs BACKEND=nfs, or NFS_SERVER set)", name)
	}
	return p.Provision(c.ctx, jname, c.log, c.flags.dryRun)
}

func keysCmd(c *call) error {
	keys := config.Keys()
	sort.Slice(keys, func(i, j int) bool { return keys[i].Name < keys[j].Name })
	for _, k := range keys {
		fmt.Fprintf(c.out, "%s=%q\t# %s\n", k.Name, k.Default, k.Doc)
	}
	return nil
}

func printStatuses(w io.Writer, sts []*Status, asJSON bool) {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if sts == nil {
			sts = []*Status{}
		}
		enc.Encode(sts)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JNAME\tKIND\tSTATE\tOWNER\tGEN\tMOUNTED\tADVICE")
	for _, st := range sts {
		owner := st.Owner
		if owner == "" {
			owner = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d/%d\t%s\n", st.JName, st.Kind, st.State, owner, st.Generation, st.Mounted, len(st.Attached), st.Advice)
	}
	tw.Flush()
}
