package nfsclient

import (
	"context"
	"github.com/envhooks/envhooks/tests/testnet"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// deadServer accepts connections and never answers: a hung NFS server.
func deadServer(t *testing.T) int {
	t.Helper()
	addr, stop, err := testnet.Silent()
	require.NoError(t, err)
	t.Cleanup(stop)
	return addr.Port
}

func TestProbeNullGivesUpAtTheDeadline(t *testing.T) {
	port := deadServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := ProbeNull(ctx, "127.0.0.1", port, 4)
	took := time.Since(start)
	require.Error(t, err)
	assert.True(t, IsTimeout(err), "%v", err)
	assert.Contains(t, err.Error(), "NFSv4 NULL call on 127.0.0.1 port ")
	assert.Less(t, took, 1300*time.Millisecond, "the deadline plus one second")
}

func TestProbeTCPRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	err = ProbeTCP(context.Background(), "127.0.0.1", port)
	require.Error(t, err)
	assert.False(t, IsTimeout(err))
	assert.True(t, strings.Contains(err.Error(), "refused"), "%v", err)
}

func TestProbeTCPAnswersWithBracketedIPv6(t *testing.T) {
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no IPv6 loopback: under CI=true this is a failure, not a skip: %v", err)
		}
		t.Skip("no IPv6 loopback here")
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	assert.NoError(t, ProbeTCP(context.Background(), "[::1]", port))
	assert.NoError(t, ProbeTCP(context.Background(), "::1", port))
}

func TestLibHost(t *testing.T) {
	assert.Equal(t, "[::1]", libHost("::1"))
	assert.Equal(t, "[::1]", libHost("[::1]"))
	assert.Equal(t, "10.0.0.1", libHost("10.0.0.1"))
	assert.Equal(t, "nfs.example", libHost("nfs.example"))
}

func TestTrackerClosesLateConnections(t *testing.T) {
	tr := &tracker{}
	a, b := net.Pipe()
	defer b.Close()
	tr.expire()
	tr.add(a)
	_, err := a.Write([]byte("x"))
	assert.Error(t, err, "a connection registered after the deadline is closed at once")
}
