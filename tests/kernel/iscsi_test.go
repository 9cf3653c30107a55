//go:build linux

package kernel_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/tests/iscsi/tgt"
	"github.com/envhooks/envhooks/tests/kernel/lab"
	"github.com/envhooks/envhooks/tests/testenv"
)

const iqnPrefix = "iqn.2026-01.org.example.san:"

// TestISCSI boots one guest with open-iscsi and runs the iSCSI scenarios
// against tgtd on the host. tgtd listens on, and announces, 127.0.0.1:3260,
// which the guest cannot reach: it reaches the target at 10.0.2.100:3260,
// as an initiator behind NAT does.
func TestISCSI(t *testing.T) {
	t.Parallel()
	testenv.Require(t, "mkfs.ext4", "debugfs")
	target := tgt.Start(t, "127.0.0.1:3260")
	luns := map[string]string{}
	for i, name := range []string{"web1", "chap1", "blank1"} {
		luns[name] = target.Add(t, i+1, iqnPrefix+name, 32<<20)
		if name != "blank1" {
			mkfs(t, luns[name])
		}
	}
	target.RequireCHAP(t, 2, "node-web", "right-secret-42")

	n := bootNode(t, lab.Config{Name: "iscsi-node", Forward: []int{3260}, Modules: []string{"iscsi_tcp", "sd_mod", "ext4"}})
	n.WriteFile(t, "/etc/iscsi/initiatorname.iscsi", []byte("InitiatorName=iqn.2026-01.org.example.lab:iscsi-node\n"), 0o644)
	n.Sh(t, "iscsid && /lib/systemd/systemd-udevd --daemon && udevadm trigger --action=add && udevadm settle")
	n.configure(iscsiConf(t, "")...)

	t.Run("NAT portal", func(t *testing.T) { testISCSIBehindNAT(t, n.in(t), luns["web1"]) })
	t.Run("20 start-stop cycles", func(t *testing.T) { testISCSICycles(t, n.in(t)) })
	t.Run("CHAP", func(t *testing.T) { testISCSICHAP(t, n.in(t)) })
	t.Run("unformatted LUN", func(t *testing.T) { testISCSIUnformatted(t, n.in(t), luns["blank1"]) })
}

func mkfs(t *testing.T, img string) {
	t.Helper()
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4 %s: %v\n%s", img, err, out)
	}
}

// iscsiConf is examples/iscsi/linux-ext4.conf with the lab's portal, LUN 1
// (tgt keeps LUN 0 for its controller) and the CHAP file, if any.
func iscsiConf(t *testing.T, chapFile string) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "examples", "iscsi", "linux-ext4.conf"))
	require.NoError(t, err)
	var out []string
	for _, line := range strings.Split(string(raw), "\n") {
		switch {
		case strings.HasPrefix(line, "ISCSI_PORTAL="):
			line = `ISCSI_PORTAL="` + lab.HostAddr + `:3260"`
		case strings.HasPrefix(line, "ISCSI_LUN="):
			line = `ISCSI_LUN="1"`
		case strings.HasPrefix(line, "ISCSI_CHAP_FILE="):
			line = `ISCSI_CHAP_FILE="` + chapFile + `"`
		}
		out = append(out, line)
	}
	return append(out, "SYSLOG=0")
}

// sessions lists the guest's iSCSI sessions (iscsiadm exits 21 when there
// are none).
func (n *node) sessions() string {
	n.t.Helper()
	r := n.Run(n.t, nil, time.Minute, "iscsiadm", "-m", "session")
	if r.Code != 0 && r.Code != 21 {
		n.t.Fatalf("iscsiadm -m session: %d %s", r.Code, r.Stderr)
	}
	return strings.TrimSpace(string(r.Stdout))
}

func (n *node) assertDetached(jname string) {
	n.t.Helper()
	assert.Empty(n.t, n.sessions(), "no session is left")
	assert.Empty(n.t, n.mounts("ext4", jname), "nothing is left mounted")
	assert.NotContains(n.t, string(n.ReadFile(n.t, "/proc/self/mountinfo")), "/mnt/envhooks-iscsi/"+jname)
}

func testISCSIBehindNAT(t *testing.T, n *node, lun string) {
	// What the target announces is its own listening address, which the
	// guest cannot reach.
	r := n.Run(t, nil, time.Minute, "iscsiadm", "-m", "discovery", "-t", "sendtargets", "-p", lab.HostAddr+":3260", "-o", "nonpersistent")
	require.Equal(t, 0, r.Code, "discovery: %s", r.Stderr)
	require.Contains(t, string(r.Stdout), "127.0.0.1:3260,1 "+iqnPrefix+"web1")

	want := []string{
		"/dev/sda " + dataDir("web1"),
		"/dev/sda " + workdir + "/jails-fstab/web1",
		"/dev/sda " + workdir + "/jails-system/web1",
	}
	r = n.mntStart("web1")
	require.Equal(t, 0, r.Code, "mnt-start: %s", r.Stderr)
	assert.Contains(t, n.sessions(), lab.HostAddr+":3260,1 "+iqnPrefix+"web1", "logged in to the configured portal")
	require.Equal(t, want, n.mounts("ext4", "web1"))

	r = n.mntStart("web1")
	require.Equal(t, 0, r.Code, "second mnt-start: %s", r.Stderr)
	assert.Equal(t, want, n.mounts("ext4", "web1"), "a second start changes nothing")
	assert.Equal(t, 1, strings.Count(n.sessions(), iqnPrefix+"web1"), "one session")

	n.Sh(t, "echo on-the-lun > "+dataDir("web1")+"/hello")
	r = n.mntStop("web1")
	require.Equal(t, 0, r.Code, "mnt-stop: %s", r.Stderr)
	n.assertDetached("web1")

	out, err := exec.Command("debugfs", "-R", "cat /data/hello", lun).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "on-the-lun", "the LUN holds the file after the logout")
}

// testISCSICycles runs 20 starts and stops in a row: every login, device
// wait, fsck, mount, unmount and logout must succeed.
func testISCSICycles(t *testing.T, n *node) {
	start := time.Now()
	for i := 1; i <= 20; i++ {
		r := n.mntStart("web1")
		require.Equal(t, 0, r.Code, "cycle %d: mnt-start: %s", i, r.Stderr)
		require.Len(t, n.mounts("ext4", "web1"), 3, "cycle %d", i)
		r = n.mntStop("web1")
		require.Equal(t, 0, r.Code, "cycle %d: mnt-stop: %s", i, r.Stderr)
	}
	t.Logf("20 cycles in %s", time.Since(start).Round(time.Millisecond))
	n.assertDetached("web1")
	assert.Equal(t, "on-the-lun\n", func() string {
		require.Equal(t, 0, n.mntStart("web1").Code)
		defer n.mntStop("web1")
		return n.Sh(t, "cat "+dataDir("web1")+"/hello")
	}())
}

// testISCSICHAP: the target requires CHAP; the right secret logs in, a
// wrong one is refused with 78 and one line that names the CHAP file,
// never the secret, and leaves nothing behind.
func testISCSICHAP(t *testing.T, n *node) {
	const chapFile = "/etc/envhooks.chap"
	n.configure(iscsiConf(t, chapFile)...)
	defer n.configure(iscsiConf(t, "")...)

	n.WriteFile(t, chapFile, []byte("CHAP_USER=node-web\nCHAP_SECRET=wrong-secret-99\n"), 0o600)
	r := n.mntStart("chap1")
	assert.Equal(t, 78, r.Code, "a wrong CHAP secret: %s", r.Stderr)
	line := oneLine(t, r)
	assert.Contains(t, line, "CHAP authentication failed")
	assert.Contains(t, line, chapFile)
	assert.NotContains(t, string(r.Stdout)+string(r.Stderr), "wrong-secret-99")
	n.assertDetached("chap1")

	n.WriteFile(t, chapFile, []byte("CHAP_USER=node-web\nCHAP_SECRET=right-secret-42\n"), 0o600)
	r = n.mntStart("chap1")
	require.Equal(t, 0, r.Code, "the right CHAP secret: %s", r.Stderr)
	assert.Contains(t, n.sessions(), iqnPrefix+"chap1")
	assert.Len(t, n.mounts("ext4", "chap1"), 3)
	r = n.mntStop("chap1")
	require.Equal(t, 0, r.Code, "mnt-stop: %s", r.Stderr)
	n.assertDetached("chap1")
}

// testISCSIUnformatted: a LUN with no filesystem is refused with 65 before
// fsck or mount, logged out again, and never written to.
func testISCSIUnformatted(t *testing.T, n *node, lun string) {
	r := n.mntStart("blank1")
	assert.Equal(t, 65, r.Code, "an unformatted LUN: %s", r.Stderr)
	assert.Contains(t, oneLine(t, r), "holds no ext4")
	n.assertDetached("blank1")
	raw, err := os.ReadFile(lun)
	require.NoError(t, err)
	assert.True(t, bytes.Count(raw, []byte{0}) == len(raw), "the LUN was written to (%s)", fmt.Sprint(len(raw)))
}
