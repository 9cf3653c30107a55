//go:build linux

package lab_test

import (
	"bufio"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/tests/kernel/lab"
	"github.com/envhooks/envhooks/tests/kernel/lab/proto"
	"github.com/envhooks/envhooks/tests/testenv"
	"github.com/envhooks/envhooks/tests/testnet"
)

// The guest's forwarded ports are the test's own, on the loopback of a
// network namespace the test made.
func TestMain(m *testing.M) {
	testnet.Isolate()
	testenv.Main(m)
}

// TestGuest checks what the scenarios rely on: the guest runs the host's
// programs on its own kernel, reports exit codes and output, kills a
// command at its deadline, runs one in the background, reaches the host
// ports it forwards and nothing else, and is gone, relays included, when
// killed.
func TestGuest(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				c.Write([]byte("host says " + line))
			}()
		}
	}()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer closed.Close()
	port := echo.Addr().(*net.TCPAddr).Port
	other := closed.Addr().(*net.TCPAddr).Port

	g := lab.Boot(t, lab.Config{Name: "labtest", Forward: []int{port}})
	assert.Equal(t, "labtest\n", g.Sh(t, "hostname"))
	assert.Contains(t, g.Sh(t, "uname -r"), lab.Prepare(t).Version)

	r := g.Exec(t, proto.Command{Argv: []string{"sh", "-c", "cat; echo err >&2; exit 3"}, Stdin: []byte("in\n")})
	assert.Equal(t, 3, r.Code)
	assert.Equal(t, "in\n", string(r.Stdout))
	assert.Equal(t, "err\n", string(r.Stderr))

	r = g.Run(t, nil, time.Second, "sleep", "30")
	assert.True(t, r.TimedOut)
	assert.Equal(t, "killed", r.Signal)
	assert.Less(t, r.Took, 10*time.Second)

	p := g.Start(t, proto.Command{Argv: []string{"sleep", "600"}})
	if _, ok := p.Wait(t, 100*time.Millisecond); ok {
		t.Fatal("a background sleep ended at once")
	}
	p.Signal(t, syscall.SIGTERM)
	r, ok := p.Wait(t, 10*time.Second)
	require.True(t, ok)
	assert.Equal(t, "terminated", r.Signal)

	// busybox nc: the guest's own view of the network.
	dial := func(port int) lab.Result {
		return g.Run(t, nil, 20*time.Second, "sh", "-c", "echo hello | busybox nc -w 3 "+lab.HostAddr+" "+strconv.Itoa(port))
	}
	r = dial(port)
	assert.Equal(t, 0, r.Code, "%s", r.Stderr)
	assert.Equal(t, "host says hello\n", string(r.Stdout), "a forwarded port reaches the host")
	r = dial(other)
	assert.Empty(t, string(r.Stdout), "a port nobody forwarded is closed")
	r = g.Run(t, nil, 20*time.Second, "sh", "-c", "echo hello | busybox nc -w 3 10.0.2.2 "+strconv.Itoa(port))
	assert.Empty(t, string(r.Stdout), "restrict=on: the host's gateway address is closed")

	g.Kill(t)
	r2 := testenv.Run(t, nil, "pgrep", "-f", "relay 127.0.0.1:"+strconv.Itoa(port))
	assert.Empty(t, strings.TrimSpace(r2.Stdout), "no relay outlives its guest")
}

// TestExpose: a port a guest exposes is the host's, and another guest
// that forwards that host port reaches it at HostAddr, the only way two
// guests meet (so two nodes reach each other's sshd).
func TestExpose(t *testing.T) {
	free, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := free.Addr().(*net.TCPAddr).Port
	free.Close() // the test's own network namespace: nobody else takes it
	const guestPort = 7007

	gs := lab.BootAll(t, lab.Config{Name: "server", Expose: []lab.Expose{{Host: port, Guest: guestPort}}},
		lab.Config{Name: "client", Forward: []int{port}})
	server, client := gs[0], gs[1]
	server.WriteFile(t, "/tmp/greet", []byte("#!/bin/sh\nread line\necho \"$(hostname) says $line\"\n"), 0o755)
	server.Start(t, proto.Command{Argv: []string{"busybox", "nc", "-ll", "-p", strconv.Itoa(guestPort), "-e", "/tmp/greet"}})

	require.Eventually(t, func() bool {
		// qemu accepts on the host's side at once; only an answer shows
		// the listener in the guest is up.
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err != nil {
			return false
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		c.Write([]byte("hello\n"))
		line, _ := bufio.NewReader(c).ReadString('\n')
		return line == "server says hello\n"
	}, 30*time.Second, 200*time.Millisecond, "the host never reached the exposed port")

	r := client.Run(t, nil, 20*time.Second, "sh", "-c", "echo hi | busybox nc -w 3 "+lab.HostAddr+" "+strconv.Itoa(port))
	assert.Equal(t, 0, r.Code, "%s", r.Stderr)
	assert.Equal(t, "server says hi\n", string(r.Stdout), "one guest reaches another's exposed port through the host")
	r = server.Run(t, nil, 20*time.Second, "sh", "-c", "echo hi | busybox nc -w 3 "+lab.HostAddr+" "+strconv.Itoa(port))
	assert.Empty(t, string(r.Stdout), "a guest reaches no host port it does not forward, its own exposed one included")
}
