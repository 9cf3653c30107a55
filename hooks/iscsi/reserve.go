package iscsi

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/envhooks/envhooks/lib/plan"
	"github.com/envhooks/envhooks/lib/run"
	"github.com/envhooks/envhooks/lib/state"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// SCSI-3 persistent reservations fence the LUN at the target. The owner
// registers a key and holds a WRITE EXCLUSIVE - REGISTRANTS ONLY
// reservation: only registered initiators may write. A node that takes an
// environment over registers its own key and preempts every other key
// before the filesystem is checked or mounted, so the target refuses the
// old owner's writes (RESERVATION CONFLICT) from then on, whatever that
// node still believes. The key carries the lease generation (the fencing
// token) in its upper 48 bits, so a node can tell a newer owner's key and
// never preempts it; the lower 16 bits tell nodes apart.

// typeWriteExclusiveRegistrantsOnly is the reservation type (SPC-4 6.16.2).
const typeWriteExclusiveRegistrantsOnly = 5

// ReservationKey is the key node registers while it holds the lease at
// generation gen.
func ReservationKey(node string, gen uint64) (uint64, error) {
	if gen == 0 || gen >= 1<<48 {
		return 0, fmt.Errorf("lease generation %d does not fit a reservation key", gen)
	}
	h := fnv.New32a()
	h.Write([]byte(node))
	return gen<<16 | uint64(h.Sum32()&0xffff), nil
}

// KeyGeneration is the lease generation a reservation key carries.
func KeyGeneration(key uint64) uint64 { return key >> 16 }

func hexKey(k uint64) string { return "0x" + strconv.FormatUint(k, 16) }

// LinuxReadKeysArgv is sg3_utils' sg_persist on Linux (sg_persist(8));
// --no-inquiry skips the INQUIRY it would print first.
func LinuxReadKeysArgv(dev string) []string {
	return []string{"sg_persist", "--no-inquiry", "--in", "--read-keys", dev}
}

func LinuxReadReservationArgv(dev string) []string {
	return []string{"sg_persist", "--no-inquiry", "--in", "--read-reservation", dev}
}

// LinuxRegisterArgv registers key for this initiator, replacing any key it
// had (REGISTER AND IGNORE EXISTING KEY); key 0 unregisters it, which also
// releases a reservation it holds.
func LinuxRegisterArgv(dev string, key uint64) []string {
	return []string{"sg_persist", "--no-inquiry", "--out", "--register-ignore", "--param-sark=" + hexKey(key), dev}
}

func LinuxReserveArgv(dev string, key uint64) []string {
	return []string{"sg_persist", "--no-inquiry", "--out", "--reserve", "--param-rk=" + hexKey(key), "--prout-type=" + strconv.Itoa(typeWriteExclusiveRegistrantsOnly), dev}
}

// LinuxPreemptArgv removes the registrations of old (and takes its
// reservation, if it holds one) for this initiator's key.
func LinuxPreemptArgv(dev string, key, old uint64) []string {
	return []string{"sg_persist", "--no-inquiry", "--out", "--preempt", "--param-rk=" + hexKey(key), "--param-sark=" + hexKey(old), "--prout-type=" + strconv.Itoa(typeWriteExclusiveRegistrantsOnly), dev}
}

// sg_persist's exit statuses (sg3_utils(8)).
const (
	linuxPRUnitAttention = 6  // a unit attention (after a login, a preemption): try again
	linuxPRNoDevice      = 15 // cannot open the device: the session is gone
	linuxPRConflict      = 24 // reservation conflict: this initiator is not registered
)

// FreeBSDReadKeysArgv is camcontrol persist on FreeBSD (camcontrol(8));
// the device is its peripheral name (da3), right after the verb.
func FreeBSDReadKeysArgv(dev string) []string {
	return []string{"camcontrol", "persist", filepath.Base(dev), "-i", "read_keys"}
}

func FreeBSDReadReservationArgv(dev string) []string {
	return []string{"camcontrol", "persist", filepath.Base(dev), "-i", "read_reservation"}
}

func FreeBSDRegisterArgv(dev string, key uint64) []string {
	return []string{"camcontrol", "persist", filepath.Base(dev), "-o", "register_ignore", "-K", hexKey(key)}
}

func FreeBSDReserveArgv(dev string, key uint64) []string {
	return []string{"camcontrol", "persist", filepath.Base(dev), "-o", "reserve", "-k", hexKey(key), "-T", "wr_ex_ro"}
}

func FreeBSDPreemptArgv(dev string, key, old uint64) []string {
	return []string{"camcontrol", "persist", filepath.Base(dev), "-o", "preempt", "-k", hexKey(key), "-K", hexKey(old), "-T", "wr_ex_ro"}
}

var (
	keyWord        = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(?:\d+:\s*)?(0x[0-9a-fA-F]+|\d+)$`) })
	reservationKey = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`(?i)(?:^|\s)(?:reservation\s+)?key\s*[=:]\s*(0x[0-9a-f]+|\d+)`)
	})
)

// ParseKeys reads the registered keys from sg_persist --read-keys
//
//	PR generation=0x2, 2 registered reservation keys follow:
//	  0x30a1b
//	  0x4c3d2
//
// or camcontrol persist -i read_keys ("0: 0x30a1b" lines).
func ParseKeys(out string) []uint64 {
	var keys []uint64
	for _, line := range strings.Split(out, "\n") {
		m := keyWord().FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		if k, err := strconv.ParseUint(m[1], 0, 64); err == nil {
			keys = append(keys, k)
		}
	}
	return keys
}

// ParseReservation reads the key holding the reservation from sg_persist
// --read-reservation ("Key=0x30a1b"; "there is NO reservation held") or
// camcontrol persist -i read_reservation ("Reservation Key: 0x30a1b";
// "No reservations."); ok is false when none is held.
func ParseReservation(out string) (key uint64, ok bool) {
	m := reservationKey().FindStringSubmatch(out)
	if m == nil {
		return 0, false
	}
	k, err := strconv.ParseUint(m[1], 0, 64)
	return k, err == nil
}

// reserveStep holds the reservation for the lease this run attaches
// under; see the comment at the top of this file. Without a lease there is
// no owner to hold it, and the step does nothing.
type reserveStep struct {
	a     *attachment
	owner plan.Owner // learnt when the plan runs
}

func (r *reserveStep) String() string {
	return fmt.Sprintf("hold the SCSI-3 reservation (write exclusive, registrants only) on LUN %d of %s for %s, generation %d", r.a.b.LUN, r.a.target, r.owner.Node, r.owner.Generation)
}

// Done says whether this initiator holds the reservation already. A
// registration belongs to the I_T nexus that made it (SPC-4 5.13.3), and a
// session this run opened is a new nexus: READ KEYS may still list this
// node's key, registered by a session that is gone (tgtd keeps those, tied
// to the old session's handle), while this one may not write. So after a
// login the step always registers again.
func (r *reserveStep) Done(ctx context.Context, s *plan.System) (bool, error) {
	r.owner = s.Owner
	if r.owner.Generation == 0 {
		return true, nil
	}
	if s.DryRun || r.a.loggedIn {
		return false, nil
	}
	key, err := ReservationKey(r.owner.Node, r.owner.Generation)
	if err != nil {
		return false, sysexits.Wrap(sysexits.Config, err)
	}
	keys, holder, held, err := r.read(ctx, s)
	// This node's key may be listed twice: once for this session, once
	// for one that is gone.
	others := slices.ContainsFunc(keys, func(k uint64) bool { return k != key })
	return err == nil && held && holder == key && len(keys) > 0 && !others, nil
}

func (r *reserveStep) Apply(ctx context.Context, s *plan.System) error {
	a, b := r.a, r.a.b
	key, err := ReservationKey(r.owner.Node, r.owner.Generation)
	if err != nil {
		return sysexits.Wrap(sysexits.Config, err)
	}
	if s.DryRun {
		_, _ = s.Run.Run(ctx, run.Cmd{Argv: b.registerArgv(a.dev, key)}) // a dry run: the runner prints it
		s.Say("# preempt the key of every older owner of %s", a.dev)
		_, _ = s.Run.Run(ctx, run.Cmd{Argv: b.reserveArgv(a.dev, key)}) // a dry run: the runner prints it
		return nil
	}
	if err := r.pr(ctx, s, b.registerArgv(a.dev, key)); err != nil {
		return err
	}
	keys, holder, held, err := r.read(ctx, s)
	if err != nil {
		return err
	}
	// A key can be listed more than once (a node registered again from a
	// new session; see Done), and one PREEMPT removes every registration
	// under its key: preempting it again would name a key no longer
	// registered, which the target refuses with a conflict (SPC-4
	// 5.13.11.2.4).
	slices.Sort(keys)
	for _, k := range slices.Compact(keys) {
		if k == key {
			continue
		}
		if KeyGeneration(k) > r.owner.Generation {
			return sysexits.New(sysexits.NoPerm, "LUN %d of %s is reserved by a newer owner (key %s, generation %d; this node holds generation %d): this node lost %s; run mnt-stop -j %s here", b.LUN, a.target, hexKey(k), KeyGeneration(k), r.owner.Generation, a.jname, a.jname)
		}
		if err := r.pr(ctx, s, b.preemptArgv(a.dev, key, k)); err != nil {
			return err
		}
		s.Log.Action("preempted the reservation key %s (generation %d) on LUN %d of %s: that node's writes now fail at the target", hexKey(k), KeyGeneration(k), b.LUN, a.target)
		if k == holder {
			held, holder = true, key // a preemption of the holder hands its reservation over
		}
	}
	if !held || holder != key {
		if err := r.pr(ctx, s, b.reserveArgv(a.dev, key)); err != nil {
			return err
		}
	}
	if _, holder, held, err = r.read(ctx, s); err != nil {
		return err
	}
	if !held || holder != key {
		return sysexits.New(sysexits.Unavailable, "LUN %d of %s: the target did not grant the reservation for key %s (it shows %s): its writes are not fenced; set ISCSI_RESERVE=0 only for a target without persistent reservations", b.LUN, a.target, hexKey(key), describeHolder(holder, held))
	}
	return nil
}

func describeHolder(key uint64, held bool) string {
	if !held {
		return "none"
	}
	return hexKey(key)
}

// read returns the registered keys and the reservation's holder.
func (r *reserveStep) read(ctx context.Context, s *plan.System) (keys []uint64, holder uint64, held bool, err error) {
	b, dev := r.a.b, r.a.dev
	out, err := r.prOut(ctx, s, b.readKeysArgv(dev))
	if err != nil {
		return nil, 0, false, err
	}
	keys = ParseKeys(out)
	if out, err = r.prOut(ctx, s, b.readReservationArgv(dev)); err != nil {
		return nil, 0, false, err
	}
	holder, held = ParseReservation(out)
	return keys, holder, held, nil
}

func (r *reserveStep) pr(ctx context.Context, s *plan.System, argv []string) error {
	_, err := r.prOut(ctx, s, argv)
	return err
}

// prOut runs one reservation command; a unit attention (the first command
// after a login or a preemption gets one) is answered by trying again.
func (r *reserveStep) prOut(ctx context.Context, s *plan.System, argv []string) (string, error) {
	var err error
	for try := 0; try < 3; try++ {
		var res run.Result
		res, err = s.Command(ctx, argv...)
		var re *run.Error
		if err == nil {
			return string(res.Stdout), nil
		}
		if !(errors.As(err, &re) && r.a.b.OS == Linux && re.ExitCode == linuxPRUnitAttention) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "", sysexits.New(sysexits.Unavailable, "cannot %s: %v", r, err)
}

// Undo unregisters this initiator, which also releases its reservation; an
// initiator that was preempted meanwhile has nothing left to give up.
func (r *reserveStep) Undo() *state.Action {
	if r.owner.Generation == 0 {
		return nil
	}
	b := r.a.b
	return &state.Action{
		ID:     "iscsi-reservation:" + r.a.target,
		What:   fmt.Sprintf("SCSI-3 reservation on LUN %d of %s (%s)", b.LUN, r.a.target, r.a.dev),
		Kind:   state.KindCommand,
		Argv:   b.registerArgv(r.a.dev, 0),
		OKExit: []int{linuxPRNoDevice, linuxPRConflict},
	}
}

func (b *Backend) readKeysArgv(dev string) []string {
	if b.OS == FreeBSD {
		return FreeBSDReadKeysArgv(dev)
	}
	return LinuxReadKeysArgv(dev)
}

func (b *Backend) readReservationArgv(dev string) []string {
	if b.OS == FreeBSD {
		return FreeBSDReadReservationArgv(dev)
	}
	return LinuxReadReservationArgv(dev)
}

func (b *Backend) registerArgv(dev string, key uint64) []string {
	if b.OS == FreeBSD {
		return FreeBSDRegisterArgv(dev, key)
	}
	return LinuxRegisterArgv(dev, key)
}

func (b *Backend) reserveArgv(dev string, key uint64) []string {
	if b.OS == FreeBSD {
		return FreeBSDReserveArgv(dev, key)
	}
	return LinuxReserveArgv(dev, key)
}

func (b *Backend) preemptArgv(dev string, key, old uint64) []string {
	if b.OS == FreeBSD {
		return FreeBSDPreemptArgv(dev, key, old)
	}
	return LinuxPreemptArgv(dev, key, old)
}

// StorageFence says how this backend fences at the storage (see
// backend.StorageFencer).
func (b *Backend) StorageFence() string {
	if !b.Reserve {
		return ""
	}
	return "the SCSI-3 reservation of the LUN, preempted"
}
