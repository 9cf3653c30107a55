//go:build linux

// Package metrics checks envctl metrics and envctl heartbeat --listen
// against a node that really registered environments (bind mounts in a
// private mount namespace, file leases) and whose hooks really failed,
// reading the output back with the Prometheus text parser.
package metrics

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/environment"
	"github.com/envhooks/envhooks/lib/lease"
	"github.com/envhooks/envhooks/tests/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type node struct {
	t                                    *testing.T
	root, dfs, workdir, cfg, run, leases string
}

func newNode(t *testing.T) *node {
	root := t.TempDir()
	n := &node{t: t, root: root, dfs: filepath.Join(root, "dfs"), workdir: filepath.Join(root, "jails"), cfg: filepath.Join(root, "envhooks.conf"),
		run: filepath.Join(root, "run"), leases: filepath.Join(root, "dfs", "leases")}
	require.NoError(t, os.MkdirAll(filepath.Join(n.workdir, "jails-rcconf"), 0o755))
	testenv.SharedLeaseDir(t, n.leases)
	testenv.WriteFile(t, n.cfg, fmt.Sprintf("BACKEND=nullfs\nNULLFS_ROOT=%s\nLEASE_DIR=%s\nNODE_NAME=a\nWORKDIR=%s\nSTATE_DIR=%s/state\nINVENTORY_DIR=%s/inventory\nSYSLOG=0\nRUNNING_CHECK=test -e %s/running-%%j\n",
		n.dfs, n.leases, n.workdir, root, root, root), 0o644)
	t.Cleanup(func() {
		for _, m := range testenv.MountsUnder(t, root) {
			syscall.Unmount(strings.Fields(m)[4], syscall.MNT_DETACH)
		}
	})
	return n
}

func (n *node) env() []string {
	return []string{"ENVHOOKS_CONFIG=" + n.cfg, "ENVHOOKS_RUNDIR=" + n.run}
}

func (n *node) create(jname string) {
	for _, role := range []string{"data", "system", "fstab", "rcconf"} {
		require.NoError(n.t, os.MkdirAll(filepath.Join(n.dfs, role, jname), 0o755))
	}
	testenv.WriteFile(n.t, filepath.Join(n.workdir, "jails-rcconf", "rc.conf_"+jname), fmt.Sprintf("jname=\"%s\";\nemulator=\"jail\";\n", jname), 0o644)
}

func (n *node) envctl(args ...string) testenv.Result {
	return testenv.Run(n.t, n.env(), testenv.Bin(n.t, "envctl"), args...)
}

func (n *node) mntStart(jname string) testenv.Result {
	d := environment.CBSDDirs(n.workdir, jname)
	return testenv.Run(n.t, n.env(), testenv.Bin(n.t, "mnt-start"), "-j", jname, "-d", d[environment.Data], "-s", d[environment.System])
}

func ok(t *testing.T, r testenv.Result) {
	t.Helper()
	require.Equal(t, 0, r.Code, "stdout: %s\nstderr: %s", r.Stdout, r.Stderr)
}

// parse reads the text format back; a malformed exposition fails here.
func parse(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(text))
	require.NoError(t, err, text)
	return mfs
}

// value is the value of the series of family name with exactly these
// labels; found is false when there is none.
func value(mfs map[string]*dto.MetricFamily, name string, labels map[string]string) (v float64, found bool) {
	mf := mfs[name]
	if mf == nil {
		return 0, false
	}
	for _, m := range mf.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		if fmt.Sprint(got) == fmt.Sprint(labels) {
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

func mustValue(t *testing.T, mfs map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	t.Helper()
	v, found := value(mfs, name, labels)
	require.True(t, found, "no %s%v in the output", name, labels)
	return v
}

func TestMetricsOfARealNode(t *testing.T) {
	n := newNode(t)
	n.create("web1")
	n.create("web2")
	ok(t, n.envctl("jregister", "web1"))
	// Another node holds web2 and beats; this node beat a while ago.
	other := &lease.FileStore{Dir: n.leases}
	_, err := other.Acquire(context.Background(), "web2", "b")
	require.NoError(t, err)
	require.NoError(t, other.Beat(context.Background(), "b", time.Minute))
	require.NoError(t, other.Beat(context.Background(), "a", time.Minute))
	// A hook that failed: mnt-start for web2, owned by b, is refused (77).
	r := n.mntStart("web2")
	require.Equal(t, 77, r.Code, r.Stderr)
	failedAt := time.Now()
	// And one that failed before it knew a jname (64).
	require.Equal(t, 64, testenv.Run(t, n.env(), testenv.Bin(t, "mnt-stop")).Code)

	r = n.envctl("metrics")
	ok(t, r)
	mfs := parse(t, r.Stdout)
	web1 := map[string]string{"jname": "web1", "kind": "jail"}
	assert.Equal(t, 1.0, mustValue(t, mfs, "envhooks_environment_attached", web1))
	assert.Equal(t, 1.0, mustValue(t, mfs, "envhooks_environment_owned", web1))
	assert.Equal(t, 1.0, mustValue(t, mfs, "envhooks_environment_registered", web1))
	assert.Equal(t, 0.0, mustValue(t, mfs, "envhooks_environment_running", web1))
	owned := map[string]string{"jname": "web1", "kind": "jail", "owner": "a"}
	assert.Equal(t, 1.0, mustValue(t, mfs, "envhooks_environment_generation", owned))
	age := mustValue(t, mfs, "envhooks_environment_lease_age_seconds", owned)
	assert.True(t, age >= 0 && age < 300, "lease age %v", age)
	_, found := value(mfs, "envhooks_environment_owned", map[string]string{"jname": "web2", "kind": "jail"})
	assert.False(t, found, "another node's environment is that node's to report")
	for _, node := range []string{"a", "b"} {
		beat := mustValue(t, mfs, "envhooks_node_heartbeat_age_seconds", map[string]string{"node": node})
		assert.True(t, beat >= 0 && beat < 300, "heartbeat age of %s: %v", node, beat)
	}
	assert.Equal(t, 1.0, mustValue(t, mfs, "envhooks_lease_store_up", map[string]string{"backend": "file"}))
	assert.Equal(t, 30.0, mustValue(t, mfs, "envhooks_lease_ttl_seconds", map[string]string{}))
	when := mustValue(t, mfs, "envhooks_last_failure_timestamp_seconds", map[string]string{"program": "mnt-start", "code": "77", "jname": "web2"})
	assert.InDelta(t, float64(failedAt.Unix()), when, 120)
	mustValue(t, mfs, "envhooks_last_failure_timestamp_seconds", map[string]string{"program": "mnt-stop", "code": "64", "jname": ""})

	// Running: mnt-stop refuses to pull the storage from under it (75),
	// and the figures say running and attached.
	running := filepath.Join(n.root, "running-web1")
	testenv.WriteFile(t, running, "", 0o644)
	require.Equal(t, 75, testenv.Run(t, n.env(), testenv.Bin(t, "mnt-stop"), "-j", "web1").Code)
	mfs = parse(t, n.envctl("metrics").Stdout)
	assert.Equal(t, 1.0, mustValue(t, mfs, "envhooks_environment_attached", web1))
	assert.Equal(t, 1.0, mustValue(t, mfs, "envhooks_environment_running", web1))
	mustValue(t, mfs, "envhooks_last_failure_timestamp_seconds", map[string]string{"program": "mnt-stop", "code": "75", "jname": "web1"})

	// Stopped, then detached by mnt-stop: the figures follow.
	require.NoError(t, os.Remove(running))
	ok(t, testenv.Run(t, n.env(), testenv.Bin(t, "mnt-stop"), "-j", "web1"))
	mfs = parse(t, n.envctl("metrics").Stdout)
	assert.Equal(t, 0.0, mustValue(t, mfs, "envhooks_environment_attached", web1))
	assert.Equal(t, 0.0, mustValue(t, mfs, "envhooks_environment_running", web1))
	assert.Equal(t, 1.0, mustValue(t, mfs, "envhooks_environment_owned", web1), "still owned: it is registered here")
}

// node_exporter's textfile collector reads every *.prom file in its
// directory: the file is replaced whole, never seen half written.
func TestTextfile(t *testing.T) {
	n := newNode(t)
	n.create("web1")
	ok(t, n.envctl("jregister", "web1"))
	dir := filepath.Join(n.root, "textfile")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for i := 0; i < 3; i++ {
		r := n.envctl("metrics", "--textfile", dir)
		ok(t, r)
		assert.Empty(t, r.Stdout)
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "one file, no temporary ones left")
	assert.Equal(t, "envhooks.prom", entries[0].Name())
	raw, err := os.ReadFile(filepath.Join(dir, "envhooks.prom"))
	require.NoError(t, err)
	mfs := parse(t, string(raw))
	assert.Equal(t, 1.0, mustValue(t, mfs, "envhooks_environment_attached", map[string]string{"jname": "web1", "kind": "jail"}))
	fi, err := os.Stat(filepath.Join(dir, "envhooks.prom"))
	require.NoError(t, err)
	assert.NotZero(t, fi.Mode().Perm()&0o004, "node_exporter, not root, reads it")

	r := n.envctl("metrics", "--textfile", filepath.Join(n.root, "missing"))
	assert.Equal(t, 73, r.Code, r.Stderr)
	r = n.envctl("status", "web1", "--textfile", dir)
	assert.Equal(t, 64, r.Code, "--textfile belongs to metrics")
}

// What the node can still say with the lease store gone: the local
// figures, and that the store did not answer. The store is an NFS server
// on 127.0.0.1 seen from a network namespace of its own whose loopback is
// down: unreachable at once, whatever the host runs.
func TestLeaseStoreDown(t *testing.T) {
	testenv.Require(t, "unshare")
	n := newNode(t)
	n.create("web1")
	ok(t, n.envctl("jregister", "web1"))
	env := append(n.env(), "LEASE_BACKEND=nfs", "LEASE_NFS_SERVER=127.0.0.1", "LEASE_DIR=/export/leases", "LEASE_TIMEOUT=2")
	r := testenv.Run(t, env, "unshare", "--net", testenv.Bin(t, "envctl"), "metrics")
	ok(t, r)
	mfs := parse(t, r.Stdout)
	assert.Equal(t, 0.0, mustValue(t, mfs, "envhooks_lease_store_up", map[string]string{"backend": "nfs"}))
	assert.Equal(t, 1.0, mustValue(t, mfs, "envhooks_environment_attached", map[string]string{"jname": "web1", "kind": "jail"}))
	assert.Equal(t, 1.0, mustValue(t, mfs, "envhooks_environment_registered", map[string]string{"jname": "web1", "kind": "jail"}))
	_, found := value(mfs, "envhooks_environment_owned", map[string]string{"jname": "web1", "kind": "jail"})
	assert.False(t, found, "unknown, not 0, when the store does not answer")
	_, found = value(mfs, "envhooks_node_heartbeat_age_seconds", map[string]string{"node": "a"})
	assert.False(t, found)
}

// envctl heartbeat --listen serves the same figures on /metrics while it
// beats, and stops serving when it is stopped.
func TestHeartbeatServesMetrics(t *testing.T) {
	n := newNode(t)
	n.create("web1")
	ok(t, n.envctl("jregister", "web1"))
	cmd := exec.Command(testenv.Bin(t, "envctl"), "heartbeat", "--listen", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), n.env()...)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var url string
	deadline := time.After(time.Minute)
	for url == "" {
		select {
		case line, more := <-lines:
			require.True(t, more, "envctl heartbeat exited before serving")
			if _, rest, found := strings.Cut(line, "serving metrics on "); found {
				url = rest
			}
		case <-deadline:
			t.Fatal("envctl heartbeat --listen never said where it serves")
		}
	}
	require.True(t, strings.HasPrefix(url, "http://127.0.0.1:"), url)
	var body string
	require.Eventually(t, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		body = string(raw)
		return resp.StatusCode == 200 && strings.Contains(body, `envhooks_node_heartbeat_age_seconds{node="a"}`)
	}, 30*time.Second, 100*time.Millisecond, "the heartbeat shows in its own metrics")
	mfs := parse(t, body)
	assert.Equal(t, 1.0, mustValue(t, mfs, "envhooks_environment_owned", map[string]string{"jname": "web1", "kind": "jail"}))

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), "stopped cleanly")
	_, err = http.Get(url)
	assert.Error(t, err, "nothing listens once it stopped")

	r := n.envctl("heartbeat", "--listen", "256.0.0.1:1")
	assert.Equal(t, 69, r.Code, r.Stderr)
}
