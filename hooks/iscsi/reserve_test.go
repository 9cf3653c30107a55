package iscsi_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/hooks/iscsi"
	"github.com/envhooks/envhooks/lib/plan"
	"github.com/envhooks/envhooks/lib/run"
)

// The key carries the generation in its upper 48 bits, so a node tells a
// newer owner's key from an older one; nodes differ in the lower 16.
func TestReservationKey(t *testing.T) {
	a3, err := iscsi.ReservationKey("node-a", 3)
	require.NoError(t, err)
	b4, err := iscsi.ReservationKey("node-b", 4)
	require.NoError(t, err)
	a4, err := iscsi.ReservationKey("node-a", 4)
	require.NoError(t, err)
	assert.Equal(t, uint64(3), iscsi.KeyGeneration(a3))
	assert.Equal(t, uint64(4), iscsi.KeyGeneration(b4))
	assert.Less(t, a3, b4)
	assert.NotEqual(t, a4, b4)
	assert.Equal(t, a3&0xffff, a4&0xffff, "the node part stays")
	for _, bad := range []uint64{0, 1 << 48} {
		_, err := iscsi.ReservationKey("node-a", bad)
		assert.Error(t, err, "generation %d", bad)
	}
}

// What sg_persist(8) and camcontrol(8) print.
func TestParseKeysAndReservation(t *testing.T) {
	assert.Equal(t, []uint64{0x30a1b, 0x4c3d2}, iscsi.ParseKeys("  PR generation=0x2, 2 registered reservation keys follow:\n    0x30a1b\n    0x4c3d2\n"))
	assert.Empty(t, iscsi.ParseKeys("  PR generation=0x0, there are NO registered reservation keys\n"))
	assert.Equal(t, []uint64{0x30a1b}, iscsi.ParseKeys("PR Generation: 0x2\nNumber of keys: 1\n0: 0x30a1b\n"))

	k, ok := iscsi.ParseReservation("  PR generation=0x3, Reservation follows:\n    Key=0x4c3d2\n    scope: LU_SCOPE,  type: Write Exclusive, registrants only\n")
	assert.True(t, ok)
	assert.Equal(t, uint64(0x4c3d2), k)
	_, ok = iscsi.ParseReservation("  PR generation=0x3, there is NO reservation held\n")
	assert.False(t, ok)
	k, ok = iscsi.ParseReservation("PR Generation: 0x3\nReservation Key: 0x4c3d2\nScope address: 0\nReservation Type: Write Exclusive, Registrants Only\n")
	assert.True(t, ok)
	assert.Equal(t, uint64(0x4c3d2), k)
	_, ok = iscsi.ParseReservation("PR Generation: 0x0\nNo reservations.\n")
	assert.False(t, ok)
}

func TestReservationArgv(t *testing.T) {
	assert.Equal(t, []string{"sg_persist", "--no-inquiry", "--out", "--preempt", "--param-rk=0x4c3d2", "--param-sark=0x30a1b", "--prout-type=5", "/dev/sdb"}, iscsi.LinuxPreemptArgv("/dev/sdb", 0x4c3d2, 0x30a1b))
	assert.Equal(t, []string{"camcontrol", "persist", "da3", "-o", "preempt", "-k", "0x4c3d2", "-K", "0x30a1b", "-T", "wr_ex_ro"}, iscsi.FreeBSDPreemptArgv("/dev/da3", 0x4c3d2, 0x30a1b))
}

// prTarget models a target's persistent reservations as tgtd keeps them
// (usr/spc.c): each registration belongs to the session (I_T nexus) that
// made it and outlives it, READ KEYS lists them all, a PREEMPT removes
// every registration under its key (and refuses a key that none has), and
// a write from a session that is not registered fails while a WRITE
// EXCLUSIVE - REGISTRANTS ONLY reservation is held. Sessions of all nodes
// are numbered in one sequence.
type prTarget struct {
	session int // the logged-in session, 0 when none
	last    int
	regs    []prReg
	holder  int // the session whose registration holds the reservation, 0 when none
}

type prReg struct {
	key     uint64
	session int
}

// mine is the index in regs of the logged-in session's registration, -1
// when it has none.
func (p *prTarget) mine() int {
	return slices.IndexFunc(p.regs, func(r prReg) bool { return r.session == p.session })
}

func (p *prTarget) holderKey() uint64 {
	i := slices.IndexFunc(p.regs, func(r prReg) bool { return r.session == p.holder })
	return p.regs[i].key
}

var prConflict = &run.Error{ExitCode: 24, Stderr: "persistent reserve out: scsi status: Reservation Conflict"}

// respond answers iscsiadm's login and session listing, sg_persist, and
// the writes of fsck and mount; handled is false for the rest.
func (p *prTarget) respond(argv []string) (out string, handled bool, err error) {
	line := strings.Join(argv, " ")
	param := func(name string) uint64 {
		for _, a := range argv {
			if v, found := strings.CutPrefix(a, name+"="); found {
				k, _ := strconv.ParseUint(v, 0, 64)
				return k
			}
		}
		return 0
	}
	switch {
	case line == "iscsiadm -m session" && p.session == 0:
		return "", true, &run.Error{ExitCode: 21}
	case line == "iscsiadm -m session":
		return "tcp: [1] 192.0.2.1:3260,1 " + iqn + " (non-flash)\n", true, nil
	case strings.HasSuffix(line, " --login"):
		p.last++
		p.session = p.last
		return "", true, nil
	case argv[0] == "fsck.ext4" || argv[0] == "mount" && argv[1] == "-t":
		if p.holder != 0 && p.mine() < 0 {
			return "", true, &run.Error{ExitCode: 8, Stderr: "reservation conflict"}
		}
		return "", false, nil
	case argv[0] != "sg_persist":
		return "", false, nil
	case slices.Contains(argv, "--read-keys"):
		out := fmt.Sprintf("  PR generation=0x1, %d registered reservation keys follow:\n", len(p.regs))
		for _, r := range p.regs {
			out += fmt.Sprintf("    0x%x\n", r.key)
		}
		return out, true, nil
	case slices.Contains(argv, "--read-reservation"):
		if p.holder == 0 {
			return "  PR generation=0x1, there is NO reservation held\n", true, nil
		}
		return fmt.Sprintf("  PR generation=0x1, Reservation follows:\n    Key=0x%x\n    scope: LU_SCOPE,  type: Write Exclusive, registrants only\n", p.holderKey()), true, nil
	case slices.Contains(argv, "--register-ignore"):
		if i := p.mine(); i >= 0 {
			p.regs[i].key = param("--param-sark")
		} else {
			p.regs = append(p.regs, prReg{key: param("--param-sark"), session: p.session})
		}
		return "", true, nil
	case slices.Contains(argv, "--reserve"):
		i := p.mine()
		if i < 0 || p.regs[i].key != param("--param-rk") || p.holder != 0 && p.holder != p.session {
			return "", true, prConflict
		}
		p.holder = p.session
		return "", true, nil
	case slices.Contains(argv, "--preempt"):
		i, old := p.mine(), param("--param-sark")
		if i < 0 || p.regs[i].key != param("--param-rk") || !slices.ContainsFunc(p.regs, func(r prReg) bool { return r.key == old }) {
			return "", true, prConflict
		}
		if p.holder != 0 && p.holderKey() == old {
			p.holder = p.session
		}
		p.regs = slices.DeleteFunc(p.regs, func(r prReg) bool { return r.key == old && r.session != p.session })
		return "", true, nil
	}
	return "", true, fmt.Errorf("the model does not know %s", line)
}

// A node whose session went away without a word to the target (a crash,
// a reboot) attaches again at the same generation: its key is still listed,
// by the old session's registration, but the new session must register
// again before fsck and mount may write. A node that takes over later
// preempts that key once, though it is listed twice.
func TestReservationAfterTheSessionWasLost(t *testing.T) {
	r := newRig(t, iscsi.Linux, "ext4")
	r.b.Reserve = true
	r.eng.Sys.Owner = plan.Owner{Node: "node-a", Generation: 3}
	dev := filepath.Join(r.dir, "sdx")
	require.NoError(t, os.WriteFile(dev, nil, 0o600))
	require.NoError(t, os.Symlink(dev, filepath.Join(r.b.DeviceDir, iscsi.LinuxByPathName(r.b.Portals[0], iqn, 1))))
	target := &prTarget{}
	respond := r.rec.Respond
	r.rec.Respond = func(c run.Cmd) (run.Result, error) {
		if out, handled, err := target.respond(c.Argv); handled {
			var re *run.Error
			if errors.As(err, &re) {
				e := *re
				e.Cmd = c
				return run.Result{}, &e
			}
			return run.Result{Stdout: []byte(out)}, err
		}
		return respond(c)
	}
	key, err := iscsi.ReservationKey("node-a", 3)
	require.NoError(t, err)

	require.NoError(t, r.attach())
	require.Len(t, target.regs, 1)
	require.Equal(t, 1, target.holder, "the node holds the reservation")

	// The session is gone, and with it every mount on the LUN.
	target.session = 0
	r.table.t = r.table.t[:1]
	require.NoError(t, os.RemoveAll(r.lunRoot())) // what the fake mount showed
	r.take()
	require.NoError(t, r.attach(), "attach again after the session was lost")
	assert.Contains(t, r.take(), iscsi.LinuxRegisterArgv(dev, key), "the new session registered")
	assert.GreaterOrEqual(t, target.mine(), 0)

	// Nothing changed since: a start finds everything in place.
	require.NoError(t, r.attach())
	assert.NotContains(t, r.take(), iscsi.LinuxRegisterArgv(dev, key))

	// Another node takes over: one PREEMPT of node-a's key, listed twice
	// now, removes both of its registrations.
	target.session = 0
	r.table.t = r.table.t[:1]
	require.NoError(t, os.RemoveAll(r.lunRoot()))
	require.NoError(t, os.RemoveAll(r.eng.Store.Dir))
	r.eng.Sys.Owner = plan.Owner{Node: "node-b", Generation: 5}
	keyB, err := iscsi.ReservationKey("node-b", 5)
	require.NoError(t, err)
	require.NoError(t, r.attach(), "take over from node-a")
	assert.Equal(t, []prReg{{key: keyB, session: 3}}, target.regs)
	assert.Equal(t, 3, target.holder)
	var preempts int
	for _, argv := range r.take() {
		if slices.Contains(argv, "--preempt") {
			preempts++
		}
	}
	assert.Equal(t, 1, preempts)
}
