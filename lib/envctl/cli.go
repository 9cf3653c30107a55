package envctl

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/pborman/getopt/v2"

	"github.com/envhooks/envhooks/hooks/cbsd"
	"github.com/envhooks/envhooks/hooks/nfs"
	"github.com/envhooks/envhooks/lib/args"
	"github.com/envhooks/envhooks/lib/attach"
	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/environment"
	"github.com/envhooks/envhooks/lib/lease"
	"github.com/envhooks/envhooks/lib/logging"
	"github.com/envhooks/envhooks/lib/sysexits"
)

const usage = `usage: envctl [-c FILE] [-n] [-v] [--json] COMMAND [OPERANDS]

commands:
  jregister   jname=NAME|NAME|jname='GLOB' [rcfile=FILE] [--force --from NODE | --takeover]
  junregister jname=NAME|NAME|jname='GLOB'
  bregister   (as jregister, for bhyve VMs)
  bunregister (as junregister, for bhyve VMs)
  status      jname=NAME [--json]
  list        [--json]
  lease       show jname=NAME | release jname=NAME | list [--json]
  heartbeat   renew this node's liveness every LEASE_TTL/3 until stopped (a service)
  install-hook jname=NAME      install CBSD's master_poststop.d script for NAME
  provision   jname=NAME      create NAME's directories on the NFS server (nothing is mounted)
  keys        print every configuration key with its default

GLOB is a shell pattern ('*', '?', '[...]'), quoted so the shell leaves it.
See envctl(8).
`

type cliFlags struct {
	configFile, from                     string
	dryRun, verbose, help, version, json bool
	force, takeover                      bool
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
	s.FlagLong(&f.takeover, "takeover", 0, "take the lease over if its owner's heartbeat is older than LEASE_TTL")
	return s
}

// Main runs envctl and returns its exit code.
func Main(argv []string, stdout, stderr io.Writer) int {
	prog := "envctl"
	fail := func(err error) int {
		fmt.Fprintf(stderr, "%s: error: %v\n", prog, err)
		return sysexits.Code(err)
	}
	usageErr := func(format string, a ...any) int {
		return fail(sysexits.New(sysexits.Usage, "%s (see envctl -h)", fmt.Sprintf(format, a...)))
	}
	var f cliFlags
	s := f.set(prog)
	if err := s.Getopt(argv, nil); err != nil {
		return usageErr("%v", err)
	}
	// Flags may stand anywhere, also between operands (envctl jregister
	// web1 --force --from a): getopt stops at the first operand, so take it
	// and parse on from there.
	var rest []string
	for remaining := s.Args(); len(remaining) > 0; {
		rest = append(rest, remaining[0])
		next := f.set(prog)
		if err := next.Getopt(append([]string{prog}, remaining[1:]...), nil); err != nil {
			return usageErr("%v", err)
		}
		remaining = next.Args()
	}
	switch {
	case f.help:
		fmt.Fprint(stdout, usage)
		return 0
	case f.version:
		fmt.Fprintf(stdout, "envctl %s\n", args.Version)
		return 0
	case len(rest) == 0:
		return usageErr("no command given")
	}
	cmd, operands := rest[0], rest[1:]
	if cmd == "keys" {
		printKeys(stdout)
		return 0
	}
	if cmd == "lease" {
		if len(operands) == 0 {
			return usageErr("lease needs show or release")
		}
		cmd, operands = "lease "+operands[0], operands[1:]
	}
	ops, err := parseOperands(operands)
	if err != nil {
		return fail(err)
	}
	configFile := f.configFile
	if configFile == "" {
		configFile = os.Getenv("ENVHOOKS_CONFIG")
	}
	jname := ops["jname"]
	perEnv := jname
	if IsPattern(jname) {
		perEnv = ""
	}
	cfg, err := config.Load(config.DefaultSources(configFile, perEnv))
	if err != nil {
		return fail(err)
	}
	log := logging.New(prog, f.verbose, cfg.Bool(config.SyslogTag))
	defer log.Close()
	for _, w := range cfg.Warnings {
		log.Warn("%s", w)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cmd == "provision" {
		// Server-side preparation: no lease, nothing mounted on this node.
		if jname == "" || IsPattern(jname) {
			return usageErr("provision needs jname=NAME")
		}
		if b, err := attach.BackendName(cfg); err != nil || b != "nfs" {
			return fail(sysexits.New(sysexits.Config, "provision creates directories on an NFS server: it needs BACKEND=nfs (or NFS_SERVER set)"))
		}
		if err := nfs.Provision(ctx, cfg, jname, nil, log, f.dryRun); err != nil {
			return fail(err)
		}
		return 0
	}
	n, err := NewNode(cfg, log, f.dryRun, stdout)
	if err != nil {
		return fail(err)
	}
	defer lease.Close(n.Leases)

	needName := func() bool {
		if jname == "" {
			usageErr("%s needs jname=NAME", cmd)
			return false
		}
		return true
	}
	switch cmd {
	case "jregister", "bregister", "junregister", "bunregister":
		if jname == "" {
			return usageErr("%s needs jname=NAME", cmd)
		}
		kind := Jail
		if cmd[0] == 'b' {
			kind = VM
		}
		op := cmd[1:] // register or unregister
		if f.force && f.from == "" {
			return usageErr("--force needs --from NODE")
		}
		if f.takeover {
			if f.force || op != "register" {
				return usageErr("--takeover goes with %s alone, without --force", verbFor("register", kind))
			}
			n.Leases = expiredTakeover(n.Leases, n.Config)
		}
		one := func(ctx context.Context, j string) error {
			if op == "register" {
				return n.Register(ctx, j, kind, RegisterOptions{RCFile: ops["rcfile"], Force: f.force, From: f.from})
			}
			return n.Unregister(ctx, j, kind)
		}
		if !IsPattern(jname) {
			if err := one(ctx, jname); err != nil {
				return fail(err)
			}
			return 0
		}
		if ops["rcfile"] != "" {
			return usageErr("rcfile= names one file: it cannot go with a pattern")
		}
		names, err := n.Expand(jname, op)
		if err != nil {
			return fail(err)
		}
		if err := n.Each(ctx, cmd, names, one, stderr); err != nil {
			return sysexits.Code(err)
		}
		return 0
	case "status":
		if !needName() {
			return sysexits.Usage
		}
		st, err := n.Status(ctx, jname)
		if err != nil {
			return fail(err)
		}
		return printStatuses(stdout, []*Status{st}, f.json)
	case "list":
		names, err := n.Inv.Names()
		if err != nil {
			return fail(err)
		}
		var sts []*Status
		for _, name := range names {
			st, err := n.Status(ctx, name)
			if err != nil {
				return fail(err)
			}
			sts = append(sts, st)
		}
		return printStatuses(stdout, sts, f.json)
	case "lease show":
		if !needName() {
			return sysexits.Usage
		}
		if err := environment.CheckName(jname); err != nil {
			return fail(err)
		}
		l, err := n.Leases.Get(ctx, jname)
		if err != nil {
			return fail(err)
		}
		if f.json {
			json.NewEncoder(stdout).Encode(l)
			return 0
		}
		if l == nil {
			fmt.Fprintf(stdout, "%s: not owned by any node\n", jname)
			return 0
		}
		fmt.Fprintf(stdout, "%s: owned by %s since %s, generation %d\n", jname, l.Node, l.Since.Format("2006-01-02T15:04:05Z07:00"), l.Generation)
		return 0
	case "lease release":
		if !needName() {
			return sysexits.Usage
		}
		if err := environment.CheckName(jname); err != nil {
			return fail(err)
		}
		holder := n.Name
		if f.force {
			holder = f.from
		}
		if f.dryRun {
			fmt.Fprintf(stdout, "# release the lease of %s held by %s\n", jname, holder)
			return 0
		}
		if err := n.Leases.Release(ctx, jname, holder); err != nil {
			return fail(sysexits.Wrap(sysexits.Unavailable, err))
		}
		log.Action("released the lease of %s held by %s", jname, holder)
		return 0
	case "lease list":
		return n.leaseList(ctx, stdout, f.json, fail)
	case "heartbeat":
		return n.heartbeat(ctx, fail)
	case "install-hook":
		if !needName() {
			return sysexits.Usage
		}
		if err := environment.CheckName(jname); err != nil {
			return fail(err)
		}
		if f.dryRun {
			fmt.Fprintf(stdout, "# write %s\n", cbsd.PoststopPath(n.Workdir, jname))
			return 0
		}
		p, err := cbsd.InstallPoststop(n.Workdir, jname)
		if err != nil {
			return fail(sysexits.Wrap(sysexits.CantCreat, err))
		}
		log.Action("installed %s", p)
		return 0
	}
	return usageErr("unknown command %q", cmd)
}

// parseOperands accepts jname=, rcfile= and one bare jname.
func parseOperands(operands []string) (map[string]string, error) {
	ops := map[string]string{}
	for _, o := range operands {
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			k, v = "jname", o
		}
		switch k {
		case "jname", "rcfile":
		default:
			return nil, sysexits.New(sysexits.Usage, "unknown operand %q: want jname=NAME or rcfile=FILE", o)
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

func printStatuses(w io.Writer, sts []*Status, asJSON bool) int {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if sts == nil {
			sts = []*Status{}
		}
		enc.Encode(sts)
		return 0
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
	return 0
}

func printKeys(w io.Writer) {
	keys := config.Keys()
	sort.Slice(keys, func(i, j int) bool { return keys[i].Name < keys[j].Name })
	for _, k := range keys {
		fmt.Fprintf(w, "%s=%q\t# %s\n", k.Name, k.Default, k.Doc)
	}
}
