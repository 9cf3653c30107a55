package quick

import (
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/envhooks/envhooks/lib/args"
	"github.com/envhooks/envhooks/lib/configpath"
	"github.com/envhooks/envhooks/lib/failures"
	"github.com/envhooks/envhooks/lib/mounttab"
	"github.com/envhooks/envhooks/lib/oneline"
	"github.com/envhooks/envhooks/lib/platform"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// AttachProgram is the full mnt-start, installed beside it.
const AttachProgram = "envhooks-attach"

// InputsOf returns the inputs of a run with these flags.
func InputsOf(o *args.Options) Inputs {
	configFile := o.ConfigFile
	if configFile == "" {
		configFile = os.Getenv(configpath.Env)
	}
	return Inputs{Version: args.Version, ConfigFile: configFile, JName: o.JName,
		Data: o.Data, System: o.System, Fstab: o.Fstab, RCConf: o.RCConf}
}

// Main is mnt-start: the same flags, help and errors as envhooks-attach;
// exit 0 at once when the quick check shows everything in place, and
// otherwise run envhooks-attach in its place with the same arguments.
func Main(argv []string, stdout, stderr io.Writer) int {
	prog := filepath.Base(argv[0])
	opts, err := args.Parse(argv, args.Start)
	if err != nil {
		failures.Record(failures.Dir(Dir()), prog, sysexits.Code(err), "", err.Error(), time.Now())
		return oneline.Fail(stderr, prog, err)
	}
	if opts.HelpOrVersion(stdout) {
		return sysexits.OK
	}
	if err := platform.Check(); err != nil {
		return oneline.Fail(stderr, prog, err)
	}
	// A dry run prints its plan and -v says what is in place: both are
	// the full start's to answer.
	if !opts.DryRun && !opts.Verbose && InPlace(InputsOf(opts), mounttab.Read) {
		return sysexits.OK
	}
	full, err := attachPath()
	if err == nil {
		// argv[0] stays mnt-start's, so messages and syslog name it.
		err = syscall.Exec(full, argv, os.Environ())
	}
	failures.Record(failures.Dir(Dir()), prog, sysexits.Unavailable, opts.JName, "cannot run "+AttachProgram+": "+err.Error(), time.Now())
	return oneline.Fail(stderr, prog, sysexits.New(sysexits.Unavailable, "cannot run %s, the full start, from beside %s: %v", AttachProgram, prog, err))
}

func attachPath() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	return filepath.Join(filepath.Dir(self), AttachProgram), nil
}
