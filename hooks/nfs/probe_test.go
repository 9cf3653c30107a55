package nfs

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/sysexits"
)

// nullServer is a minimal NFSv4-only server: it answers every ONC RPC call
// with an accepted, successful, empty reply, which is all a NULL call
// expects. It records the program, version and procedure it was asked for.
func nullServer(t *testing.T) (int, chan [3]uint32) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	calls := make(chan [3]uint32, 16)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				for {
					var mark uint32
					if binary.Read(c, binary.BigEndian, &mark) != nil {
						return
					}
					body := make([]byte, mark&0x7fffffff)
					if _, err := io.ReadFull(c, body); err != nil || len(body) < 24 {
						return
					}
					// xid, CALL, rpcvers, prog, vers, proc
					calls <- [3]uint32{binary.BigEndian.Uint32(body[12:]), binary.BigEndian.Uint32(body[16:]), binary.BigEndian.Uint32(body[20:])}
					reply := make([]byte, 4+24)
					binary.BigEndian.PutUint32(reply, 0x80000000|24)
					copy(reply[4:], body[:4])                // xid
					binary.BigEndian.PutUint32(reply[8:], 1) // REPLY; then MSG_ACCEPTED, AUTH_NULL verifier, SUCCESS: zeros
					if _, err := c.Write(reply); err != nil {
						return
					}
				}
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port, calls
}

func closedPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// A v4-only server (no portmapper) passes the preflight on its NULL answer;
// the MOUNT check is skipped, not failed.
func TestV4OnlyServerPassesOnTheNullCall(t *testing.T) {
	port, calls := nullServer(t)
	b := mustBackend(t, "NFS_SERVER=127.0.0.1\nNFS_SERVER_ROOT_DIR=/nfs\nMOUNT_NFS_OPT=\"-orw -overs=4\"\n")
	b.port, b.portmap = port, closedPort(t)
	require.NoError(t, b.Probe(context.Background(), []string{"/nfs/data/j"}))
	assert.Equal(t, [3]uint32{100003, 4, 0}, <-calls, "an NFSv4 NULL call")
}

// NFSv3 needs the MOUNT service: with no portmapper the preflight fails
// with 69 and says so.
func TestV3WithoutPortmapperFails(t *testing.T) {
	port, _ := nullServer(t)
	b := mustBackend(t, "NFS_SERVER=127.0.0.1\nNFS_SERVER_ROOT_DIR=/nfs\nMOUNT_NFS_OPT=\"-orw -overs=3\"\n")
	b.port = port
	if b.hasPortmapper(context.Background()) {
		// Only outside TestMain's network namespace (not root).
		if os.Getenv("CI") == "true" {
			t.Fatal("a portmapper answers on 127.0.0.1:111 in the test's network namespace: under CI=true this is a failure, not a skip")
		}
		t.Skip("this machine runs a portmapper on 127.0.0.1:111, and without root the test cannot have a network namespace of its own")
	}
	err := b.Probe(context.Background(), []string{"/nfs/data/j"})
	require.Error(t, err)
	assert.Equal(t, sysexits.Unavailable, sysexits.Code(err))
	assert.Contains(t, err.Error(), "NFS server 127.0.0.1: the MOUNT check failed")
	assert.Contains(t, err.Error(), "127.0.0.1:111")
}

// A closed NFS port fails at once with the port in the message.
func TestClosedPortFails(t *testing.T) {
	b := mustBackend(t, "NFS_SERVER=127.0.0.1\nNFS_SERVER_ROOT_DIR=/nfs\n")
	b.port = closedPort(t)
	err := b.Probe(context.Background(), []string{"/nfs/data/j"})
	assert.Equal(t, sysexits.Unavailable, sysexits.Code(err))
	assert.Contains(t, err.Error(), "NFS server 127.0.0.1 port ")
	assert.Contains(t, err.Error(), "connection refused")
}
