package nfs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/environment"
	"github.com/envhooks/envhooks/lib/mounttab"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// The CBSD sample's MOUNT_NFS_OPT, verbatim.
const sampleOpts = "-orw -overs=4 -ointr -orsize=32768 -owsize=32768 -oacregmax=3 -oacdirmin=3 -oacdirmax=3 -ohard -oproto=tcp -otimeout=300"

func loadConfig(t *testing.T, body string) (*config.Config, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "envhooks.conf")
	require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	cfg, err := config.LoadFile(p)
	if err != nil {
		return nil, p
	}
	return cfg, p
}

func mustBackend(t *testing.T, body string) *Backend {
	t.Helper()
	cfg, p := loadConfig(t, body)
	require.NotNil(t, cfg, "config %s did not load", p)
	b, err := newBackend(cfg)
	require.NoError(t, err)
	return b
}

func TestFreeBSDMountArgvIsMountNFSWithTheSampleWords(t *testing.T) {
	words := strings.Fields(sampleOpts)
	argv := FreeBSDMountArgv(words, "172.16.0.1:/nfs/data/jail1", "/usr/jails/jails-data/jail1-data")
	want := append([]string{"mount_nfs"}, words...)
	want = append(want, "172.16.0.1:/nfs/data/jail1", "/usr/jails/jails-data/jail1-data")
	assert.Equal(t, want, argv)
}

func TestLinuxMountArgvTranslatesTheSampleOptions(t *testing.T) {
	argv, err := LinuxMountArgv(strings.Fields(sampleOpts), "172.16.0.1:/nfs/data/jail1", "/usr/jails/jails-data/jail1-data")
	require.NoError(t, err)
	assert.Equal(t, []string{"mount", "-t", "nfs4", "-o",
		"rw,vers=4,rsize=32768,wsize=32768,acregmax=3,acdirmin=3,acdirmax=3,hard,proto=tcp,timeo=300",
		"172.16.0.1:/nfs/data/jail1", "/usr/jails/jails-data/jail1-data"}, argv)
}

func TestLinuxMountArgvVersions(t *testing.T) {
	for _, tc := range []struct{ opts, fstype, o string }{
		{"-orw -overs=4 -ohard", "nfs4", "rw,vers=4,hard"},
		{"-orw,vers=3", "nfs", "rw,vers=3"},
		{"-onfsv4 -otcp", "nfs4", "proto=tcp,vers=4"},
		{"-orw", "nfs", "rw,vers=3"}, // FreeBSD's default, pinned
		{"-overs=4 -ominorversion=1 -onolockd -oretrycnt=3", "nfs4", "vers=4,minorversion=1,nolock"},
	} {
		argv, err := LinuxMountArgv(strings.Fields(tc.opts), "srv:/x", "/t")
		require.NoError(t, err, tc.opts)
		assert.Equal(t, []string{"mount", "-t", tc.fstype, "-o", tc.o, "srv:/x", "/t"}, argv, tc.opts)
	}
}

func TestSourceAndWant(t *testing.T) {
	assert.Equal(t, "[fd00::1]:/nfs/data/j", Source("fd00::1", "/nfs/data/j/"))
	assert.Equal(t, "[fd00::1]:/nfs/data/j", Source("[fd00::1]", "/nfs//data/j"))
	assert.Equal(t, "nfs.example:/nfs/data/j", Source("nfs.example", "/nfs/data/j"))

	table := mounttab.Table{{Source: "[fd00::1]:/nfs/data/j/", Target: "/t", FSType: "nfs4"}}
	assert.True(t, table.Matches(table[0], LinuxWant(Source("fd00::1", "/nfs/data/j"), 4)))
	assert.False(t, table.Matches(table[0], LinuxWant(Source("fd00::1", "/nfs/data/j"), 3)), "type nfs is not nfs4")
	assert.False(t, table.Matches(table[0], LinuxWant(Source("fd00::1", "/nfs/data/k"), 4)), "another export path")
	assert.False(t, table.Matches(table[0], LinuxWant(Source("fd00::2", "/nfs/data/j"), 4)), "another server")
	bsd := mounttab.Table{{Source: "172.16.0.1:/nfs/data/j", Target: "/t", FSType: "nfs"}}
	assert.True(t, bsd.Matches(bsd[0], FreeBSDWant(Source("172.16.0.1", "/nfs/data/j"))))
}

func TestBadInputIsRefusedWithFileAndLine(t *testing.T) {
	for _, tc := range []struct{ name, body, says string }{
		{"command in options", "NFS_SERVER=10.0.0.1\nNFS_SERVER_ROOT_DIR=/nfs\nMOUNT_NFS_OPT=\"-o 'x; reboot'\"\n", "MOUNT_NFS_OPT"},
		{"semicolon in option", "NFS_SERVER=10.0.0.1\nMOUNT_NFS_OPT=\"-orw;reboot\"\n", "MOUNT_NFS_OPT"},
		{"dollar in value", "NFS_SERVER=10.0.0.1\nMOUNT_NFS_OPT=\"-osec=$(id)\"\n", "MOUNT_NFS_OPT"},
		{"backquote", "NFS_SERVER=10.0.0.1\nMOUNT_NFS_OPT=\"-osec=`id`\"\n", "MOUNT_NFS_OPT"},
		{"not an -o word", "NFS_SERVER=10.0.0.1\nMOUNT_NFS_OPT=\"-orw --exec=/bin/sh\"\n", "MOUNT_NFS_OPT"},
		{"nfsv2", "NFS_SERVER=10.0.0.1\nMOUNT_NFS_OPT=\"-overs=2\"\n", "MOUNT_NFS_OPT"},
		{"server with path", "NFS_SERVER=\"10.0.0.1:/nfs\"\n", "NFS_SERVER"},
		{"server with semicolon", "NFS_SERVER=\"nfs;reboot\"\n", "NFS_SERVER"},
		{"server as option", "NFS_SERVER=\"-oexec\"\n", "NFS_SERVER"},
		{"server with space", "NFS_SERVER=\"nfs server\"\n", "NFS_SERVER"},
		{"bad brackets", "NFS_SERVER=\"[10.0.0.1]\"\n", "NFS_SERVER"},
		{"relative root", "NFS_SERVER=10.0.0.1\nNFS_SERVER_ROOT_DIR=nfs\n", "NFS_SERVER_ROOT_DIR"},
		{"dotdot dir", "NFS_SERVER=10.0.0.1\nNFS_SERVER_DATA_DIR=/nfs/../etc\n", "NFS_SERVER_DATA_DIR"},
		{"bad mode", "NFS_SERVER=10.0.0.1\nNFS_CREATE_MODE=rwx\n", "NFS_CREATE_MODE"},
		{"owner name", "NFS_SERVER=10.0.0.1\nNFS_CREATE_OWNER=root:wheel\n", "NFS_CREATE_OWNER"},
		{"owner too large", "NFS_SERVER=10.0.0.1\nNFS_CREATE_OWNER=4294967296:0\n", "NFS_CREATE_OWNER"},
		{"owner negative", "NFS_SERVER=10.0.0.1\nNFS_CREATE_OWNER=0:-1\n", "NFS_CREATE_OWNER"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "envhooks.conf")
			require.NoError(t, os.WriteFile(p, []byte(tc.body), 0o644))
			_, err := config.LoadFile(p)
			require.Error(t, err)
			assert.Equal(t, sysexits.Config, sysexits.Code(err))
			line := strings.Count(tc.body[:strings.Index(tc.body, tc.says+"=")], "\n") + 1
			assert.Contains(t, err.Error(), fmt.Sprintf("%s:%d", p, line))
			assert.Contains(t, err.Error(), tc.says)
		})
	}
}

func TestGoodServers(t *testing.T) {
	for _, s := range []string{"172.16.0.1", "nfs", "nfs-1.example.org", "fd00::1", "[fd00::1]", "::1"} {
		assert.NoError(t, checkServer(s), s)
	}
	for _, s := range []string{"-x", "a..b", "a_b", "host:/x", "[fd00::1", "a b", strings.Repeat("a", 64) + ".b"} {
		assert.Error(t, checkServer(s), s)
	}
}

// TestOptionChecksAsMountNFS follows sbin/mount_nfs/mount_nfs.c and
// mount_nfs(8): vers= is a whole number (4.1 is minorversion=1), proto=tcp
// and udp are IPv4 only and tcp6 and udp6 IPv6 only, and intr or soft with
// NFSv4 is warned about (BUGS).
func TestOptionChecksAsMountNFS(t *testing.T) {
	err := checkOptions("-orw -overs=4.1")
	if assert.Error(t, err) {
		assert.Contains(t, err.Error(), "-ominorversion=1")
	}
	assert.NoError(t, checkOptions("-orw -overs=4 -ominorversion=1"))
	assert.Error(t, checkOptions("-overs=5"))

	opts, err := parseOptWords([]string{"-oproto=tcp"})
	require.NoError(t, err)
	assert.NoError(t, checkProto(opts, "10.0.0.1"))
	assert.NoError(t, checkProto(opts, "nfs.example.org"))
	for _, server := range []string{"fd00::1", "[fd00::1]"} {
		err := checkProto(opts, server)
		if assert.Error(t, err, server) {
			assert.Contains(t, err.Error(), "-oproto=tcp6")
		}
	}
	opts6, _ := parseOptWords([]string{"-oproto=tcp6"})
	assert.NoError(t, checkProto(opts6, "fd00::1"))
	assert.Error(t, checkProto(opts6, "10.0.0.1"))
	bad, _ := parseOptWords([]string{"-oproto=sctp"})
	assert.Error(t, checkProto(bad, "10.0.0.1"))

	sample, _ := parseOptWords(strings.Fields(sampleOpts))
	w := optionWarnings(sample, 4)
	if assert.Len(t, w, 1) {
		assert.Contains(t, w[0], "intr with NFSv4")
	}
	assert.Empty(t, optionWarnings(sample, 3))
}

// TestForceUnmountArgv: FreeBSD forces an NFS unmount with umount -N, which
// does not ask a server that may be gone (umount(8)).
func TestForceUnmountArgv(t *testing.T) {
	assert.Equal(t, []string{"umount", "-N", "/j/data"}, FreeBSDForceUnmountArgv("/j/data"))
	assert.Equal(t, []string{"umount", "-f", "-l", "/j/data"}, LinuxForceUnmountArgv("/j/data"))
}

// TestJnameWithAColon: CBSD accepts ':' in a jname (validate_jname), an NFS
// source cannot carry it (65 before anything runs).
func TestJnameWithAColon(t *testing.T) {
	b := mustBackend(t, "NFS_SERVER=10.0.0.1\nNFS_SERVER_ROOT_DIR=/nfs\n")
	env := &environment.Env{Name: "a:b", Dirs: environment.CBSDDirs("/usr/jails", "a:b")}
	_, err := b.Steps(env, []environment.Role{environment.Data})
	assert.Equal(t, sysexits.DataErr, sysexits.Code(err))
}
