// Package hookcli is the whole of mnt-start and mnt-stop: parse the hook
// flags, load the layered config, run the session under the hook deadline,
// and turn any failure into one line on stderr and a sysexits code.
package hookcli

import (
	"context"
	"io"
	"time"

	"github.com/envhooks/envhooks/lib/args"
	"github.com/envhooks/envhooks/lib/attach"
	"github.com/envhooks/envhooks/lib/backend"
	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/configpath"
	"github.com/envhooks/envhooks/lib/crashpoint"
	"github.com/envhooks/envhooks/lib/deadline"
	"github.com/envhooks/envhooks/lib/failures"
	"github.com/envhooks/envhooks/lib/logging"
	"github.com/envhooks/envhooks/lib/oneline"
	"github.com/envhooks/envhooks/lib/platform"
	"github.com/envhooks/envhooks/lib/quick"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// Verb is what a hook program does with a session.
type Verb struct {
	run func(s *attach.Session, ctx context.Context) error
	// notes: the verb leaves mnt-start's quick check a note (see lib/quick)
	notes bool
}

// Start and Stop are the verbs of mnt-start and mnt-stop.
var (
	Start = Verb{run: (*attach.Session).Start, notes: true}
	Stop  = Verb{run: (*attach.Session).Stop}
)

// ConfigEnv names the environment variable that stands in for -c FILE.
const ConfigEnv = configpath.Env

// Main runs a hook program and returns its exit code.
func Main(argv []string, req args.Required, verb Verb, backends backend.Registry, stdout, stderr io.Writer) int {
	prog := "envhooks"
	if len(argv) > 0 {
		prog = baseName(argv[0])
	}
	jname := ""
	fail := func(err error) int {
		failures.Record(failures.Dir(quick.Dir()), prog, sysexits.Code(err), jname, err.Error(), time.Now())
		return oneline.Fail(stderr, prog, err)
	}
	opts, err := args.Parse(argv, req)
	if err != nil {
		return fail(err)
	}
	if opts.HelpOrVersion(stdout) {
		return sysexits.OK
	}
	jname = opts.JName
	if err := platform.Check(); err != nil {
		return fail(err)
	}
	crashpoint.Here("hook:begin")
	in := quick.InputsOf(opts) // -c FILE, or ENVHOOKS_CONFIG from scripts CBSD runs
	var note *quick.Note
	if verb.notes {
		// The fingerprint of the inputs is taken before they are read, so
		// a file changed meanwhile makes the next mnt-start look again.
		keys := config.Names()
		note = &quick.Note{Inputs: quick.Fingerprint(in, keys), Keys: keys}
	}
	cfg, err := config.Load(config.DefaultSources(in.ConfigFile, opts.JName))
	if err != nil {
		return fail(err)
	}
	log := logging.New(prog, stderr, opts.Verbose, cfg.Bool(config.SyslogTag))
	defer log.Close()
	for _, w := range cfg.Warnings {
		log.Warn("%s", w)
	}
	interruptible, interrupt := context.WithCancelCause(context.Background())
	defer interrupt(nil)
	ctx, cancel := deadline.WithTimeout(interruptible, cfg.Seconds(config.HookTimeout), "HOOK_TIMEOUT")
	defer cancel()
	// Until something changed, being killed by a signal loses nothing;
	// from the first change on, a signal cancels the run, which rolls back.
	stopSignals := func() {}
	defer func() { stopSignals() }()
	s := &attach.Session{Env: opts.Env(), Config: cfg, Backends: backends, Log: log, DryRun: opts.DryRun, Out: stdout,
		BeforeChange: func() { stopSignals = deadline.CancelOnSignal(interrupt) }, Quick: note}
	if err := verb.run(s, ctx); err != nil {
		log.Error("%s: %v", opts.JName, err)
		failures.Record(failures.Dir(quick.Dir()), prog, sysexits.Code(err), jname, err.Error(), time.Now())
		return sysexits.Code(err)
	}
	return sysexits.OK
}

func baseName(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[i+1:]
		}
	}
	return p
}
