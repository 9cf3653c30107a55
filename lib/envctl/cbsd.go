package envctl

import (
	"context"
	"errors"
	"os"
	"strings"

	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/run"
	"github.com/envhooks/envhooks/lib/safefile"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// delegate says whether envctl runs cbsd jregister/junregister too
// (CBSD_DELEGATE). "auto", the default, is yes when CBSD_COMMAND is an
// executable file: on a CBSD node a migration must reach CBSD's own
// database, or cbsd jstart on the new node says "No such jail".
func (n *Node) delegate() bool {
	v := strings.ToLower(strings.TrimSpace(n.Config.Get(config.CBSDDelegate)))
	if v != "auto" {
		return n.Config.Bool(config.CBSDDelegate)
	}
	fi, err := os.Stat(n.Config.Get(cbsdKey))
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// cbsdRegister hands the portable descriptor to CBSD. Its jregister reads
// it from jails-rcconf, rewrites CBSDROOT to its workdir, sources it, fills
// its database and moves the file into the system directory
// (sudoexec/jregister). jregister is used for VMs too: CBSD's bregister
// runs a file that does not exist.
func (n *Node) cbsdRegister(ctx context.Context, jname string, portable []byte) error {
	if err := safefile.WriteAtomic(n.rcconfPath(jname), portable, 0o644); err != nil {
		return sysexits.New(sysexits.CantCreat, "cannot hand the descriptor to CBSD: %v", err)
	}
	return n.cbsd(ctx, "jregister", jname)
}

// cbsdUnregister lets CBSD write the descriptor from its own database into
// jails-rcconf (sudoexec/junregister: jmkrcconf, replacewdir to CBSDROOT,
// and the jail's fstab rewritten the same way) and returns it. A copy
// already there means CBSD did so in an earlier run that did not finish
// (CBSD's junregister would now say "Already unregistered").
func (n *Node) cbsdUnregister(ctx context.Context, jname string) ([]byte, error) {
	if raw, err := safefile.Read(n.rcconfPath(jname), maxDescriptor); err == nil {
		n.Log.Action("using %s, left by an earlier cbsd junregister", n.rcconfPath(jname))
		return raw, nil
	}
	if err := n.cbsd(ctx, "junregister", jname); err != nil {
		return nil, err
	}
	raw, err := safefile.Read(n.rcconfPath(jname), maxDescriptor)
	if errors.Is(err, os.ErrNotExist) {
		return nil, sysexits.New(sysexits.DataErr, "cbsd junregister left no descriptor in %s", n.rcconfPath(jname))
	}
	if err != nil {
		return nil, sysexits.New(sysexits.DataErr, "cannot read the descriptor cbsd junregister left: %v", err)
	}
	return raw, nil
}

func (n *Node) cbsd(ctx context.Context, verb, jname string) error {
	cmd := run.Cmd{Argv: []string{n.Config.Get(cbsdKey), verb, "jname=" + jname}, Timeout: n.Config.Seconds(config.CommandTimeout), Configured: true}
	if _, err := n.runner().Run(ctx, cmd); err != nil {
		return sysexits.New(sysexits.Unavailable, "cbsd %s for %s failed: %v", verb, jname, err)
	}
	return nil
}
