//go:build linux

package nfs_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/environment"
	"github.com/envhooks/envhooks/tests/testenv"
)

// refusedPort is a loopback port nothing listens on: a server whose NFS
// service is down.
func refusedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	return port
}

// A dry run is what people run before the server is ready. With the server
// hung (it accepts and never answers) or down (the port refuses), mnt-start
// -n and envctl jregister -n still print their whole plan; one line on
// stderr then says that the preflight fails and why, and the code is the
// preflight's (69). Nothing is mounted, recorded or leased.
func TestDryRunShowsThePlanWhenTheServerIsDown(t *testing.T) {
	for _, server := range []struct {
		name string
		port int
		says string
	}{
		{"hung", deadServer(t), "did not answer an NFSv4 NULL call within 1s"},
		{"refused", refusedPort(t), "TCP connect failed"},
	} {
		t.Run(server.name, func(t *testing.T) {
			root := t.TempDir()
			workdir := filepath.Join(root, "usr", "jails")
			conf := serverConf("/export", v4opts) + fmt.Sprintf("NFS_PORT=%d\nPREFLIGHT_TIMEOUT=1\nWORKDIR=%s\n", server.port, workdir)
			n := newNode(t, conf)
			preflight := fmt.Sprintf("dry run: the plan above would not run: preflight: NFS server 127.0.0.1 port %d", server.port)

			r := n.mnt(t, "mnt-start", "jail1", "-n")
			t.Logf("mnt-start -n took %s", r.Took)
			assert.Equal(t, 69, r.Code, "stderr: %s", r.Stderr)
			for _, role := range []string{"data", "system", "fstab"} {
				assert.Contains(t, r.Stdout, "127.0.0.1:/export/"+role+"/jail1 ", "the mount of %s is in the plan", role)
			}
			assertOneLine(t, r.Stderr, preflight, server.says)
			n.assertNothingAttached(t, "jail1")

			// envctl's dry run: the lease it would take, the mounts, and
			// what it would read and write, in that order.
			n = newNode(t, conf+fmt.Sprintf("LEASE_DIR=%s\nINVENTORY_DIR=%s\n", testenv.SharedLeaseDir(t, filepath.Join(root, "leases")), filepath.Join(root, "inventory")))
			r = testenv.Run(t, nil, testenv.Bin(t, "envctl"), "-c", n.conf, "-n", "jregister", "jname=web1")
			t.Logf("envctl -n jregister took %s", r.Took)
			assert.Equal(t, 69, r.Code, "stderr: %s", r.Stderr)
			d := environment.CBSDDirs(workdir, "web1")
			lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
			require.GreaterOrEqual(t, len(lines), 3, "stdout: %s", r.Stdout)
			assert.Contains(t, lines[0], "acquire the lease of web1")
			assert.Contains(t, r.Stdout, "127.0.0.1:/export/data/web1 "+d["data"])
			assert.Contains(t, r.Stdout, "127.0.0.1:/export/system/web1 "+d["system"])
			assert.Contains(t, lines[len(lines)-1], "write the inventory record")
			assertOneLine(t, r.Stderr, preflight, server.says)
			assert.Empty(t, testenv.MountsUnder(t, workdir))
			leases, err := os.ReadDir(filepath.Join(root, "leases"))
			require.NoError(t, err)
			for _, e := range leases {
				assert.NotContains(t, e.Name(), "web1", "no lease taken")
			}
			assert.NoDirExists(t, filepath.Join(root, "inventory"), "nothing registered")
		})
	}
}

// assertOneLine checks that stderr is one line holding every part.
func assertOneLine(t *testing.T, stderr string, parts ...string) {
	t.Helper()
	assert.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %s", stderr)
	for _, p := range parts {
		assert.Contains(t, stderr, p)
	}
}
