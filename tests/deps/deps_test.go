// Package deps checks what each program links: the hooks, whose every start
// is benchmarked, link neither the etcd client (gRPC) nor the Prometheus
// client; envctl links both.
package deps

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/tests/testenv"
)

func deps(t *testing.T, pkg string) []string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", pkg)
	cmd.Dir = testenv.RepoRoot()
	out, err := cmd.Output()
	require.NoError(t, err, "go list -deps %s", pkg)
	return strings.Fields(string(out))
}

func linksAny(list []string, prefixes ...string) []string {
	var out []string
	for _, p := range list {
		for _, prefix := range prefixes {
			if strings.HasPrefix(p, prefix) {
				out = append(out, p)
			}
		}
	}
	return out
}

var heavy = []string{"github.com/prometheus/", "go.etcd.io/", "google.golang.org/grpc"}

func TestHooksLinkNeitherPrometheusNorEtcd(t *testing.T) {
	for _, prog := range []string{"mnt-start", "envhooks-attach", "mnt-stop"} {
		assert.Empty(t, linksAny(deps(t, "./cmd/"+prog), heavy...), "%s must stay light", prog)
	}
	got := deps(t, "./cmd/envctl")
	assert.NotEmpty(t, linksAny(got, "github.com/prometheus/client_golang/"), "envctl exposes metrics")
	assert.NotEmpty(t, linksAny(got, "go.etcd.io/etcd/client/v3"), "envctl drives etcd leases")
}
