//go:build linux

// Package etcdcluster runs a throwaway etcd cluster of Debian etcd-server
// processes for the lease tests and benchmark: each member listens on an
// address of its own on loopback (127.0.0.11, .12, ...), keeps its data in
// a scratch directory, and is started and stopped only by the caller. Run
// it inside the network namespace testnet.Isolate makes so nothing meets
// the machine's own network.
package etcdcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/envhooks/envhooks/tests/testenv"
)

// Commands lists what Start needs installed.
var Commands = []string{"etcd"}

// Member is one etcd process.
type Member struct {
	Name, Addr string
	ClientURL  string
	dataDir    string
	log        string
	cmd        *exec.Cmd
	args       []string
	prefix     []string
}

// Cluster is a running etcd cluster.
type Cluster struct {
	Members []*Member
}

// Start starts size members on 127.0.0.11, .12, ... with data under dir
// and waits until the cluster answers. The members send raft heartbeats
// every 25 ms and elect a new leader after 250 ms, so tests that kill a
// leader go on within a fraction of a second.
func Start(dir string, size int) (*Cluster, error) {
	return StartOn(dir, loopback(size), nil)
}

// StartAsDeployed is Start with etcd's own timing (raft heartbeats every
// 100 ms, elections after 1 s), as a site runs it: for benchmarks, whose
// figures would otherwise include the cost of the tests' fast elections.
func StartAsDeployed(dir string, size int) (*Cluster, error) {
	return start(dir, loopback(size), nil, nil)
}

// Shared is the one cluster of size members a test package's tests share,
// with its data in the scratch directory they share; Close stops it.
func Shared(scratch *testenv.Shared[string], size int) *testenv.Shared[*Cluster] {
	return &testenv.Shared[*Cluster]{
		Make: func() (*Cluster, error) {
			dir, err := scratch.Value()
			if err != nil {
				return nil, err
			}
			return Start(filepath.Join(dir, "etcd"), size)
		},
		End: (*Cluster).Stop,
	}
}

func loopback(size int) []string {
	var addrs []string
	for i := 0; i < size; i++ {
		addrs = append(addrs, fmt.Sprintf("127.0.0.%d", 11+i))
	}
	return addrs
}

// StartOn starts one member per address; wrap, when set, gives the argv
// prefix member i runs under (nsenter into the network namespace that
// holds its address).
func StartOn(dir string, addrs []string, wrap func(i int) []string) (*Cluster, error) {
	// Loopback: elections in a fraction of a second, not seconds.
	return start(dir, addrs, wrap, []string{"--heartbeat-interval", "25", "--election-timeout", "250"})
}

func start(dir string, addrs []string, wrap func(i int) []string, timing []string) (*Cluster, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	c := &Cluster{}
	var peers []string
	for i, addr := range addrs {
		m := &Member{Name: fmt.Sprintf("m%d", i+1), Addr: addr, ClientURL: "http://" + addr + ":2379",
			dataDir: filepath.Join(dir, fmt.Sprintf("m%d", i+1)), log: filepath.Join(dir, fmt.Sprintf("m%d.log", i+1))}
		if wrap != nil {
			m.prefix = wrap(i)
		}
		c.Members = append(c.Members, m)
		peers = append(peers, fmt.Sprintf("%s=http://%s:2380", m.Name, addr))
	}
	for _, m := range c.Members {
		m.args = []string{
			"--name", m.Name, "--data-dir", m.dataDir,
			"--listen-client-urls", m.ClientURL, "--advertise-client-urls", m.ClientURL,
			"--listen-peer-urls", "http://" + m.Addr + ":2380", "--initial-advertise-peer-urls", "http://" + m.Addr + ":2380",
			"--initial-cluster", strings.Join(peers, ","), "--initial-cluster-state", "new", "--initial-cluster-token", "envhooks-test",
			"--logger", "zap", "--log-outputs", m.log,
		}
		m.args = append(m.args, timing...)
		if err := m.Start(); err != nil {
			c.Stop()
			return nil, err
		}
	}
	if err := c.WaitHealthy(30 * time.Second); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// Start (re)starts a stopped member with its data directory.
func (m *Member) Start() error {
	if m.cmd != nil {
		return errors.New(m.Name + " runs already")
	}
	argv := append(append(append([]string{}, m.prefix...), "etcd"), m.args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	out, err := os.OpenFile(m.log+".out", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start etcd %s: %v", m.Name, err)
	}
	m.cmd = cmd
	return nil
}

// Pid is the member's process id, 0 when it is stopped.
func (m *Member) Pid() int {
	if m.cmd == nil {
		return 0
	}
	return m.cmd.Process.Pid
}

// Kill ends the member at once (SIGKILL): a crashed node.
func (m *Member) Kill() {
	if m.cmd == nil {
		return
	}
	syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
	m.cmd.Wait()
	m.cmd = nil
}

// Endpoints are the members' client URLs.
func (c *Cluster) Endpoints() []string {
	var out []string
	for _, m := range c.Members {
		out = append(out, m.ClientURL)
	}
	return out
}

// Client connects to every member.
func (c *Cluster) Client() (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
}

// Leader returns the member that leads now.
func (c *Cluster) Leader(ctx context.Context) (*Member, error) {
	cl, err := c.Client()
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	for _, m := range c.Members {
		if m.cmd == nil {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := cl.Status(sctx, m.ClientURL)
		cancel()
		if err == nil && st.Leader == st.Header.MemberId {
			return m, nil
		}
	}
	return nil, errors.New("no member says it leads")
}

// WaitHealthy waits until a write goes through.
func (c *Cluster) WaitHealthy(limit time.Duration) error {
	cl, err := c.Client()
	if err != nil {
		return err
	}
	defer cl.Close()
	deadline := time.Now().Add(limit)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := cl.Put(ctx, "/envhooks-test/health", "ok")
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			var logs []string
			for _, m := range c.Members {
				b, _ := os.ReadFile(m.log)
				o, _ := os.ReadFile(m.log + ".out")
				logs = append(logs, m.Name+": "+lastLines(string(b)+string(o), 5))
			}
			return fmt.Errorf("etcd cluster not healthy after %s: %v\n%s", limit, err, strings.Join(logs, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills every member this cluster started.
func (c *Cluster) Stop() {
	for _, m := range c.Members {
		if m.cmd == nil {
			continue
		}
		done := make(chan struct{})
		go func(cmd *exec.Cmd) { cmd.Wait(); close(done) }(m.cmd)
		syscall.Kill(-m.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		m.cmd = nil
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
