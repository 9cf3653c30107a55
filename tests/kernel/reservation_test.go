//go:build linux

package kernel_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/hooks/iscsi"
	"github.com/envhooks/envhooks/lib/fence"
	"github.com/envhooks/envhooks/tests/iscsi/tgt"
	"github.com/envhooks/envhooks/tests/kernel/lab"
	"github.com/envhooks/envhooks/tests/kernel/lab/proto"
	"github.com/envhooks/envhooks/tests/lease/etcdcluster"
	"github.com/envhooks/envhooks/tests/testenv"
)

// The reservation scenarios have a tgtd of their own, beside TestISCSI's
// on 3260, and an etcd member as the lease store both nodes share.
const (
	fencePortal = "127.0.0.1:3261"
	etcdPort    = 2379
	leaseTTL    = 4 * time.Second
)

// The LUNs are 32 MiB with ext4 in their first 24 MiB; the writers' marker
// block lies beyond the filesystem, at 28 MiB, so raw writes to it never
// touch what the nodes mount.
const (
	lunSize      = 32 << 20
	fsSize       = "24M"
	markerSector = 28 << 20 / 512
)

// TestISCSIReservationFencesTheOldOwner: two guests are two nodes sharing
// one LUN on tgtd, with etcd leases. Node A registers the environment
// (ISCSI_RESERVE=1: it registers its key and holds WRITE EXCLUSIVE -
// REGISTRANTS ONLY), loses its session and attaches again, and a writer on
// A keeps writing a marker block of the LUN. A's heartbeat then hangs (SIGSTOP) while the writer goes on, which
// is what a paused or half-dead node looks like to the others, and node B
// takes the environment over with envctl jregister --takeover as soon as
// the lease lets it: B's attach preempts A's key, so from then on the
// target refuses A's writes. The same run without reservations
// (ISCSI_RESERVE=0) is the control: A's writes then land after B's.
//
// The writer writes one 512-byte block with O_DIRECT and O_SYNC (dd
// oflag=direct,sync), so each write either reached the target, or failed
// with the target's answer: nothing waits in A's page cache to be written
// later, and each attempt's exit code says what the target did with it.
func TestISCSIReservationFencesTheOldOwner(t *testing.T) {
	t.Parallel()
	testenv.Require(t, "mkfs.ext4", "debugfs")
	testenv.Require(t, etcdcluster.Commands...)
	target := tgt.Start(t, fencePortal)
	luns := map[string]string{}
	for i, name := range []string{"fence1", "plain1"} {
		luns[name] = target.Add(t, i+1, iqnPrefix+name, lunSize)
		mkfsSized(t, luns[name], fsSize)
	}
	etcd, err := etcdcluster.StartOn(t.TempDir(), []string{"127.0.0.1"}, nil)
	require.NoError(t, err)
	t.Cleanup(etcd.Stop)

	cfg := func(name string) lab.Config {
		return lab.Config{Name: name, Forward: []int{portOf(fencePortal), etcdPort}, Modules: []string{"iscsi_tcp", "sd_mod", "ext4"}}
	}
	ns := bootNodes(t, cfg("node-a"), cfg("node-b"))
	for _, n := range ns {
		n.WriteFile(t, "/etc/iscsi/initiatorname.iscsi", []byte("InitiatorName=iqn.2026-01.org.example.lab:"+n.Name+"\n"), 0o644)
		n.Sh(t, "iscsid && /lib/systemd/systemd-udevd --daemon && udevadm trigger --action=add && udevadm settle")
	}
	a, b := ns[0], ns[1]

	t.Run("ISCSI_RESERVE=1", func(t *testing.T) {
		o := takeOver(t, a.in(t), b.in(t), "fence1", luns["fence1"], true)
		t.Logf("A's writes: %d of %d succeeded before B's takeover began, %d of %d failed after B's first write", o.okBefore, o.before, o.failedAfter, o.after)
		assert.Positive(t, o.okBefore, "A wrote while it held the lease")
		assert.Equal(t, o.before, o.okBefore, "every write of A's succeeded while it held the lease")
		assert.Equal(t, o.after, o.failedAfter, "every write A tried after B's first write failed at the target")
		assert.Equal(t, "B 1", o.marker, "the marker block holds B's write: none of A's landed after it")
		assert.Positive(t, o.conflicts, "A's kernel logged the reservation conflicts")
		assert.NotZero(t, o.fsyncA, "A's fsync on its (still mounted) filesystem fails too")
		out, err := exec.Command("debugfs", "-R", "cat /data/from-b", luns["fence1"]).CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Contains(t, string(out), "written by node-b", "B's file is on the LUN")
	})
	t.Run("control: ISCSI_RESERVE=0", func(t *testing.T) {
		o := takeOver(t, a.in(t), b.in(t), "plain1", luns["plain1"], false)
		t.Logf("A's writes without reservations: %d of %d succeeded before B's takeover began, %d of %d succeeded after B's first write", o.okBefore, o.before, o.after-o.failedAfter, o.after)
		assert.Positive(t, o.okBefore)
		assert.Zero(t, o.failedAfter, "without reservations nothing stops A")
		assert.True(t, strings.HasPrefix(o.marker, "A "), "A's writes landed after B's: the marker block says %q", o.marker)
		assert.Zero(t, o.conflicts)
		assert.Zero(t, o.fsyncA, "A's fsync still succeeds")
	})
}

// observed is what one takeover left.
type observed struct {
	before      int    // A's writes before B's takeover began
	okBefore    int    // of those, the ones that succeeded
	after       int    // A's writes begun after B's first write returned
	failedAfter int    // of those, the ones that failed
	marker      string // the marker block, read from the LUN's backing file at the end
	conflicts   int    // reservation conflicts A's kernel logged for the LUN
	fsyncA      int    // exit code of a write and fsync on A's filesystem after B's write
}

// takeOver registers jname (whose LUN's backing file is lun) on a, keeps
// a writer running there, hangs a's heartbeat and lets b take jname over,
// then stops the writer and reports.
func takeOver(t *testing.T, a, b *node, jname, lun string, reserve bool) observed {
	conf := reservationConf(t, reserve)
	a.configure(conf...)
	b.configure(conf...)
	a.WriteFile(t, workdir+"/jails-rcconf/rc.conf_"+jname, []byte(fmt.Sprintf(descriptor, jname)), 0o644)
	dev := "/dev/disk/by-path/ip-" + lab.HostAddr + ":" + strconv.Itoa(portOf(fencePortal)) + "-iscsi-" + iqnPrefix + jname + "-lun-1"

	dmesgBefore := a.Dmesg(t)
	r := a.envctl(nil, "jregister", jname)
	require.Equal(t, 0, r.Code, "A: jregister: %s", r.Stderr)
	genA := ownerGeneration(t, a, jname)
	keyA, err := iscsi.ReservationKey("node-a", genA)
	require.NoError(t, err)
	if reserve {
		keys, holder, kind := a.reservation(dev)
		assert.Equal(t, []uint64{keyA}, keys, "A registered its key (generation %d)", genA)
		assert.Equal(t, keyA, holder, "A holds the reservation")
		assert.Contains(t, kind, "Write Exclusive, registrants only")

		// A loses its session without a word to the target (a crash,
		// a reboot) and its mnt_start runs again at the same
		// generation. tgtd keeps the registration of the old session,
		// so READ KEYS still shows A's key, but the new session is not
		// registered: mnt-start must register it again, or A's own
		// fsck and writes fail with a reservation conflict.
		lunRoot := "/mnt/envhooks-iscsi/" + jname
		a.Sh(t, fmt.Sprintf("umount %s %s/jails-system/%s %s/jails-fstab/%s %s && iscsiadm -m node -T %s -p %s:%d --logout",
			dataDir(jname), workdir, jname, workdir, jname, lunRoot, iqnPrefix+jname, lab.HostAddr, portOf(fencePortal)))
		r = a.mntStart(jname)
		require.Equal(t, 0, r.Code, "A: mnt-start after its session was lost: %s", r.Stderr)
		require.Len(t, a.mounts("ext4", jname), 3)
		keys, holder, _ = a.reservation(dev)
		assert.NotEmpty(t, keys)
		assert.Subset(t, []uint64{keyA}, keys, "only A's key is registered (tgtd lists the old session's registration too)")
		assert.Equal(t, keyA, holder)
	} else {
		keys, _, kind := a.reservation(dev)
		assert.Empty(t, keys)
		assert.Empty(t, kind)
	}

	// The SCSI address (host:channel:target:lun) the kernel logs the
	// LUN's errors under: A's other LUNs must not count.
	hctl := strings.TrimSpace(a.Sh(t, "basename $(readlink -f /sys/block/$(basename $(readlink -f "+dev+"))/device)"))

	hb := a.Start(t, proto.Command{Argv: []string{"envctl", "-c", a.conf, "heartbeat"}})
	defer hb.Signal(t, syscall.SIGKILL)
	require.Eventually(t, func() bool {
		r := b.envctl(nil, "lease", "list")
		return r.Code == 0 && strings.Contains(string(r.Stdout), "alive")
	}, 30*time.Second, 500*time.Millisecond, "A's heartbeat never showed")

	const log = "/tmp/writes"
	a.Sh(t, ": > "+log)
	writer := a.Start(t, proto.Command{Argv: []string{"sh", "-c", writerScript, "writer", dev, log}})
	defer writer.Signal(t, syscall.SIGKILL)
	writes := func() []string {
		return strings.Fields(strings.ReplaceAll(string(a.ReadFile(t, log)), "\n", " "))
	}
	require.Eventually(t, func() bool { return len(writes()) >= 2*3 }, time.Minute, 200*time.Millisecond, "A's writer did not write")

	// A hangs but for its writer: nothing on A renews the lease, nothing
	// stops the writer.
	hb.Signal(t, syscall.SIGSTOP)
	before := writes()
	hung := time.Now()
	for {
		r = b.envctl(nil, "jregister", jname, "--takeover")
		if r.Code == 0 {
			break
		}
		require.Equal(t, 77, r.Code, "B: jregister --takeover: %s", r.Stderr)
		require.Less(t, time.Since(hung), leaseTTL+time.Minute, "the takeover never became possible")
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("B took %s over %s after A's heartbeat hung:\n%s", jname, time.Since(hung).Round(time.Millisecond), r.Stderr)
	genB := ownerGeneration(t, b, jname)
	assert.Greater(t, genB, genA, "B holds a later generation")
	if reserve {
		keyB, err := iscsi.ReservationKey("node-b", genB)
		require.NoError(t, err)
		keys, holder, kind := b.reservation(dev)
		assert.Equal(t, []uint64{keyB}, keys, "B preempted A's key %#x", keyA)
		assert.Equal(t, keyB, holder, "B holds the reservation")
		assert.Contains(t, kind, "Write Exclusive, registrants only")
	}

	b.Sh(t, "printf 'B 1\\n' | dd of="+dev+" bs=512 seek="+strconv.Itoa(markerSector)+" count=1 conv=sync oflag=direct,sync status=none")
	firstB := len(writes())
	b.Sh(t, "echo written by node-b > "+dataDir(jname)+"/from-b && sync "+dataDir(jname)+"/from-b")
	// A's writes from two after the count on: begun after B's returned.
	require.Eventually(t, func() bool { return len(writes()) >= firstB+2*7 }, time.Minute, 200*time.Millisecond, "A's writer stopped trying")
	fsync := a.Run(t, nil, time.Minute, "sh", "-c", "echo written by node-a > "+dataDir(jname)+"/from-a && sync "+dataDir(jname)+"/from-a")
	writer.Signal(t, syscall.SIGKILL)
	if _, ended := writer.Wait(t, 30*time.Second); !ended {
		t.Fatal("A's writer did not end")
	}

	o := observed{fsyncA: fsync.Code}
	for _, line := range strings.Split(strings.TrimPrefix(a.Dmesg(t), dmesgBefore), "\n") {
		if strings.Contains(line, "sd "+hctl+": reservation conflict") {
			o.conflicts++
		}
	}
	for _, w := range pairs(before) {
		o.before++
		if w == "ok" {
			o.okBefore++
		}
	}
	for _, w := range pairs(writes())[firstB/2+1:] {
		o.after++
		if w != "ok" {
			o.failedAfter++
		}
	}
	require.Positive(t, o.after)
	raw, err := os.ReadFile(lun)
	require.NoError(t, err)
	o.marker = strings.TrimRight(string(raw[markerSector*512:markerSector*512+16]), "\x00\n")

	if reserve {
		r = b.envctl(nil, "junregister", jname)
		require.Equal(t, 0, r.Code, "B: junregister: %s", r.Stderr)
		assert.Empty(t, b.mounts("ext4", jname))
	}
	return o
}

// writerScript writes "A <n>" into the marker block of $1 over and over,
// each write direct and synchronous, and logs "<n> ok" or "<n> failed" to
// $2 after each.
var writerScript = `i=0
while :; do
	i=$((i+1))
	if printf 'A %d\n' $i | dd of="$1" bs=512 seek=` + strconv.Itoa(markerSector) + ` count=1 conv=sync oflag=direct,sync status=none 2>/dev/null; then
		echo "$i ok" >> "$2"
	else
		echo "$i failed" >> "$2"
	fi
	sleep 0.2
done`

// pairs reads a writer log's words ("1 ok 2 failed ...") into the outcome
// of each write, in order.
func pairs(words []string) []string {
	var out []string
	for i := 1; i < len(words); i += 2 {
		out = append(out, words[i])
	}
	return out
}

// reservationConf is iscsiConf on this test's portal, with etcd leases
// and ISCSI_RESERVE as given. SELF_FENCE=0: only the storage stops A.
func reservationConf(t *testing.T, reserve bool) []string {
	t.Helper()
	conf := iscsiConf(t, "")
	for i, line := range conf {
		if strings.HasPrefix(line, "ISCSI_PORTAL=") {
			conf[i] = `ISCSI_PORTAL="` + lab.HostAddr + ":" + strconv.Itoa(portOf(fencePortal)) + `"`
		}
	}
	return append(conf,
		"ISCSI_RESERVE="+map[bool]string{true: "1", false: "0"}[reserve],
		"LEASE_BACKEND=etcd",
		fmt.Sprintf("ETCD_ENDPOINTS=http://%s:%d", lab.HostAddr, etcdPort),
		"LEASE_DIR=/envhooks-lab/leases",
		fmt.Sprintf("LEASE_TTL=%d", int(leaseTTL.Seconds())),
		"SELF_FENCE=0",
		"WORKDIR="+workdir,
	)
}

// reservation reads the LUN's registered keys and its reservation (holder
// and type) as the guest's initiator sees them, with sg_persist.
func (n *node) reservation(dev string) (keys []uint64, holder uint64, kind string) {
	n.t.Helper()
	keys = iscsi.ParseKeys(n.Sh(n.t, strings.Join(iscsi.LinuxReadKeysArgv(dev), " ")))
	out := n.Sh(n.t, strings.Join(iscsi.LinuxReadReservationArgv(dev), " "))
	holder, held := iscsi.ParseReservation(out)
	if held {
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "type:") {
				kind = strings.TrimSpace(line)
			}
		}
	}
	return keys, holder, kind
}

// ownerGeneration reads the generation of the owner record mnt-start
// wrote on the node's system directory of jname.
func ownerGeneration(t *testing.T, n *node, jname string) uint64 {
	t.Helper()
	var o fence.Owner
	raw := n.ReadFile(t, fence.OwnerFile(workdir+"/jails-system/"+jname))
	require.NoError(t, json.Unmarshal(raw, &o), "%s", raw)
	require.Equal(t, n.Name, o.Node)
	return o.Generation
}

func mkfsSized(t *testing.T, img, size string) {
	t.Helper()
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", img, size).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4 %s: %v\n%s", img, err, out)
	}
}

func portOf(addr string) int {
	_, p, _ := strings.Cut(addr, ":")
	n, _ := strconv.Atoi(p)
	return n
}
