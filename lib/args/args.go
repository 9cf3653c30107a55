// Package args parses the hook protocol CBSD speaks: getopt flags
// -d DATA -f FSTAB -j JNAME -r RCCONF -s SYSDATA, plus envhooks' own
// -c FILE, -n (dry run), -v, -h and -V, with long forms.
package args

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/pborman/getopt/v2"

	"github.com/envhooks/envhooks/lib/environment"
	"github.com/envhooks/envhooks/lib/oneline"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// Version is set at build time with -ldflags "-X .../lib/args.Version=...".
var Version = "0.1.0-dev"

// Options are the parsed flags of mnt-start and mnt-stop.
type Options struct {
	Data, Fstab, JName, RCConf, System string
	ConfigFile                         string
	DryRun, Verbose, Help, ShowVersion bool

	set *getopt.Set
}

// Required says which directory flags a program insists on.
type Required struct {
	DataAndSystem bool   // mnt-start needs -d and -s; mnt-stop reads them from its record
	LXCHook       string // the LXC hook type the program serves as (see lxc.go)
}

// What mnt-start (and envhooks-attach) and mnt-stop require.
var (
	Start = Required{DataAndSystem: true, LXCHook: "pre-start"}
	Stop  = Required{LXCHook: "post-stop"}
)

// Parse parses argv (argv[0] is the program name). Help and version requests
// are returned with Help/ShowVersion set and no error; everything else that
// is wrong is a usage error (64), or a data error (65) for a bad jname.
// Called as an LXC hook (LXC_NAME set, no -j), it takes the container's
// name and directories from LXC (see lxc.go).
func Parse(argv []string, req Required) (*Options, error) {
	return parse(argv, req, os.LookupEnv)
}

func parse(argv []string, req Required, getenv func(string) (string, bool)) (*Options, error) {
	o := &Options{set: getopt.New()}
	s := o.set
	prog := "hook"
	if len(argv) > 0 {
		prog = filepath.Base(argv[0])
	}
	s.SetProgram(prog)
	s.SetParameters("")
	s.FlagLong(&o.Data, "data", 'd', "the environment's data directory", "DATA")
	s.FlagLong(&o.Fstab, "fstab", 'f', "its fstab directory (jails; CBSD omits it for VMs)", "FSTAB")
	s.FlagLong(&o.JName, "jname", 'j', "the environment's name", "JNAME")
	s.FlagLong(&o.RCConf, "rcconf", 'r', "the node's jails-rcconf directory", "RCCONF")
	s.FlagLong(&o.System, "sysdata", 's', "its system directory", "SYSDATA")
	s.FlagLong(&o.ConfigFile, "config", 'c', "configuration file instead of the global one", "FILE")
	s.FlagLong(&o.DryRun, "dry-run", 'n', "print the commands that would run, change nothing")
	s.FlagLong(&o.Verbose, "verbose", 'v', "say what is already in place too")
	s.FlagLong(&o.Help, "help", 'h', "show this help")
	s.FlagLong(&o.ShowVersion, "version", 'V', "show the version")
	if err := s.Getopt(argv, nil); err != nil {
		return nil, o.usageError("%v", err)
	}
	if o.Help || o.ShowVersion {
		return o, nil
	}
	if isLXCCall(s.IsSet('j'), getenv) {
		if err := o.fromLXC(s.Args(), req, map[rune]bool{'d': s.IsSet('d'), 's': s.IsSet('s')}, getenv); err != nil {
			return nil, err
		}
	} else if s.NArgs() > 0 {
		return nil, o.usageError("unexpected argument %s", oneline.Quote(s.Arg(0)))
	}
	if o.JName == "" && !s.IsSet('j') {
		return nil, o.usageError("-j JNAME is required")
	}
	if err := environment.CheckName(o.JName); err != nil {
		return nil, err
	}
	given := func(flag rune, value string) bool { return s.IsSet(flag) || value != "" }
	if req.DataAndSystem {
		for _, f := range []struct {
			flag  rune
			name  string
			value string
		}{{'d', "DATA", o.Data}, {'s', "SYSDATA", o.System}} {
			if !given(f.flag, f.value) {
				return nil, o.usageError("-%c %s is required", f.flag, f.name)
			}
		}
	}
	for _, d := range []struct {
		flag  rune
		value *string
	}{{'d', &o.Data}, {'f', &o.Fstab}, {'r', &o.RCConf}, {'s', &o.System}} {
		if !given(d.flag, *d.value) {
			continue
		}
		if err := checkDir(*d.value); err != nil {
			return nil, o.usageError("-%c %s: %v", d.flag, oneline.Quote(*d.value), err)
		}
		*d.value = filepath.Clean(*d.value)
	}
	if s.IsSet('c') && o.ConfigFile == "" {
		return nil, o.usageError("-c needs a file name")
	}
	return o, nil
}

func checkDir(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("empty path")
	case !filepath.IsAbs(p):
		return fmt.Errorf("must be an absolute path")
	case strings.ContainsAny(p, "\x00\n\r"):
		return fmt.Errorf("control characters are not allowed")
	case filepath.Clean(p) == "/":
		return fmt.Errorf("refusing to use / as an environment directory")
	}
	return nil
}

func (o *Options) usageError(format string, args ...any) error {
	return sysexits.New(sysexits.Usage, "%s (usage: %s; see %s -h)", fmt.Sprintf(format, args...), o.UsageLine(), o.set.Program())
}

// HelpOrVersion prints the help or the version when the flags asked for
// one and reports whether it did: then the program is done.
func (o *Options) HelpOrVersion(w io.Writer) bool {
	switch {
	case o.Help:
		o.PrintHelp(w)
	case o.ShowVersion:
		fmt.Fprintf(w, "%s %s\n", o.set.Program(), Version)
	default:
		return false
	}
	return true
}

// UsageLine is the one-line synopsis.
func (o *Options) UsageLine() string {
	return o.set.Program() + " -j JNAME -d DATA -s SYSDATA [-f FSTAB] [-r RCCONF] [-c FILE] [-n] [-v]"
}

// PrintHelp writes the full help.
func (o *Options) PrintHelp(w io.Writer) {
	fmt.Fprintf(w, "usage: %s\n\n", o.UsageLine())
	o.set.PrintOptions(w)
	fmt.Fprintf(w, "\nAs LXC's lxc.hook.pre-start (mnt-start) or lxc.hook.post-stop (mnt-stop) it takes\nthe container's name, root file system and system directory from LXC.\n")
}

// Env builds the environment the flags describe.
func (o *Options) Env() *environment.Env {
	e := &environment.Env{Name: o.JName, Dirs: map[environment.Role]string{}}
	for role, dir := range map[environment.Role]string{
		environment.Data: o.Data, environment.Fstab: o.Fstab,
		environment.RCConf: o.RCConf, environment.System: o.System,
	} {
		if dir != "" {
			e.Dirs[role] = dir
		}
	}
	return e
}
