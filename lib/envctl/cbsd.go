package envctl

import (
	"context"
	"os"

	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/run"
	"github.com/envhooks/envhooks/lib/safefile"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// cbsdRegister hands the portable descriptor to CBSD, which reads it from
// jails-rcconf and moves it into the system directory itself. jregister is
// used for VMs too: CBSD's bregister runs a file that does not exist.
func (n *Node) cbsdRegister(ctx context.Context, jname string, portable []byte) error {
	if err := safefile.WriteAtomic(n.rcconfPath(jname), portable, 0o644); err != nil {
		return sysexits.New(sysexits.CantCreat, "cannot hand the descriptor to CBSD: %v", err)
	}
	return n.cbsd(ctx, "jregister", jname)
}

// cbsdUnregister lets CBSD write the descriptor from its own database and
// returns it.
func (n *Node) cbsdUnregister(ctx context.Context, jname string) ([]byte, error) {
	if err := n.cbsd(ctx, "junregister", jname); err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(n.rcconfPath(jname))
	if err != nil {
		return nil, sysexits.New(sysexits.DataErr, "cbsd junregister left no descriptor: %v", err)
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
