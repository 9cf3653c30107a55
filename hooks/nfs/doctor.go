package nfs

import (
	"context"

	"github.com/envhooks/envhooks/lib/doctor"
	"github.com/envhooks/envhooks/lib/environment"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// Diagnose checks the kernel's NFS client, the mount commands, and that the
// server answers the preflight for the directories every environment's
// data and system come from, within PREFLIGHT_TIMEOUT (backend.Diagnoser).
func (b *Backend) Diagnose(ctx context.Context) []doctor.Finding {
	var out []doctor.Finding
	if ok, how := kernelClient(b.version); ok {
		out = append(out, doctor.Pass("nfs: kernel client", "%s", how))
	} else {
		out = append(out, doctor.Failure(sysexits.Unavailable, "nfs: kernel client", how, kernelClientFix))
	}
	out = append(out, doctor.Commands("nfs: commands", commands...)...)
	bases := b.bases([]environment.Role{environment.Data, environment.System})
	if len(bases) == 0 {
		return append(out, doctor.Failure(sysexits.Config, "nfs: server", "no directory on "+b.server+" is configured for data and system", "set NFS_SERVER_ROOT_DIR"))
	}
	if err := b.Probe(ctx, bases); err != nil {
		return append(out, doctor.FromError("nfs: server", err, "start the NFS service on "+b.server+", export "+bases[0]+" to this node, and let this node reach port 2049 (and 111 for NFSv3)"))
	}
	return append(out, doctor.Pass("nfs: server", "%s answers and offers %v within PREFLIGHT_TIMEOUT (%s)", b.server, bases, b.preflight))
}
