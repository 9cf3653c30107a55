package iscsi

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/envhooks/envhooks/lib/iscsi"
	"github.com/envhooks/envhooks/lib/mounttab"
	"github.com/envhooks/envhooks/lib/plan"
	"github.com/envhooks/envhooks/lib/run"
	"github.com/envhooks/envhooks/lib/state"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// attachment is what the steps of one plan learn as they run: the portal
// the preflight chose and the device the login produced. Later steps build
// their commands from it, which is why they are built when they run.
type attachment struct {
	b      *Backend
	jname  string
	target string
	portal string // chosen by the preflight
	dev    string // found by waitDevice
	// loggedIn: this run opened the session, so the initiator meets the
	// LUN over a new I_T nexus, which no registration names yet.
	loggedIn bool
	lunRoot  string // where the LUN's filesystem (or pool altroot) goes
}

func (a *attachment) where() string {
	if a.portal != "" {
		return a.portal
	}
	return strings.Join(a.b.Portals, " ")
}

// preflight asks each portal, in order, for its targets, and picks the
// first that offers ours. The OS initiators retry for minutes; this answers
// in seconds and says what the portal does offer.
func (a *attachment) preflight() plan.Step {
	b := a.b
	return &plan.Check{
		What:      fmt.Sprintf("ask iSCSI portal %s whether it offers %s", strings.Join(b.Portals, " "), a.target),
		Preflight: true,
		Fn: func(ctx context.Context, s *plan.System) (err error) {
			defer func() {
				// A dry run prints the rest of its plan after a failed
				// preflight: with the commands of the first portal.
				if err != nil && s.DryRun {
					a.portal = b.Portals[0]
				}
			}()
			var why []string
			authOnly := true
			for _, p := range b.Portals {
				ts, err := iscsi.Discover(ctx, p, iscsi.Options{InitiatorName: b.InitiatorName, CHAP: b.CHAP, Timeout: b.PreflightTimeout})
				if err != nil {
					var e *iscsi.Error
					if !errors.As(err, &e) || !e.Auth {
						authOnly = false
					}
					why = append(why, err.Error())
					continue
				}
				authOnly = false
				if slices.ContainsFunc(ts, func(t iscsi.Target) bool { return t.Name == a.target }) {
					a.portal = p
					s.Log.Debug("iSCSI portal %s offers %s", p, a.target)
					return nil
				}
				offered := "no targets"
				if len(ts) > 0 {
					offered = strings.Join(iscsi.Names(ts), ", ")
				}
				why = append(why, fmt.Sprintf("portal %s offers %s", p, offered))
			}
			if authOnly {
				return sysexits.New(sysexits.Config, "iSCSI discovery of %s refused: %s; check ISCSI_CHAP_FILE and the target's discovery authentication", a.target, strings.Join(why, "; "))
			}
			return sysexits.New(sysexits.Unavailable, "iSCSI target %s is not available: %s; check ISCSI_TARGET, ISCSI_PORTAL and the storage server", a.target, strings.Join(why, "; "))
		},
	}
}

// loginStep logs in to the target. A session that already exists is
// success; its logout is what gets recorded.
type loginStep struct {
	a             *attachment
	sessionPortal string
}

func (l *loginStep) String() string {
	return fmt.Sprintf("log in to iSCSI target %s at %s", l.a.target, l.a.where())
}

func (l *loginStep) Done(ctx context.Context, s *plan.System) (bool, error) {
	if s.DryRun {
		return false, nil
	}
	b := l.a.b
	argv, parse := LinuxSessionsArgv(), ParseLinuxSessions
	if b.OS == FreeBSD {
		argv, parse = FreeBSDSessionsArgv(), ParseFreeBSDSessions
	}
	// No sessions at all is an error exit for iscsiadm; any failure here
	// only means "log in", whose own error is the one to report.
	res, err := s.Command(ctx, argv...)
	if err != nil {
		return false, nil
	}
	for _, sess := range parse(string(res.Stdout)) {
		if sess.Target == l.a.target {
			l.sessionPortal = sess.Portal
			return true, nil
		}
	}
	return false, nil
}

func (l *loginStep) Apply(ctx context.Context, s *plan.System) error {
	a, b := l.a, l.a.b
	login := func(argv []string) error {
		_, err := s.Run.Run(ctx, run.Cmd{Argv: argv, Timeout: s.CommandTimeout})
		if err == nil {
			a.loggedIn = !s.DryRun
			return nil
		}
		if sessionExists(b.OS, err) {
			return nil
		}
		if authFailed(b.OS, err) {
			if b.CHAP == nil {
				return sysexits.New(sysexits.Config, "iSCSI target %s at portal %s refused the login: it requires CHAP authentication; set ISCSI_CHAP_FILE", a.target, a.portal)
			}
			return sysexits.New(sysexits.Config, "iSCSI target %s at portal %s refused the login: CHAP authentication failed; check CHAP_USER and CHAP_SECRET in %s against the target's account", a.target, a.portal, b.CHAPFile)
		}
		return sysexits.New(sysexits.Unavailable, "cannot log in to iSCSI target %s at portal %s: %v", a.target, a.portal, err)
	}
	if b.OS == FreeBSD {
		if s.DryRun {
			s.Say("# write section %s of a temporary root-only iscsi.conf (target, portal, initiator name%s), then remove it", FreeBSDNickname(a.jname), map[bool]string{true: ", CHAP", false: ""}[b.CHAP != nil])
			return login(FreeBSDLoginArgv(FreeBSDNickname(a.jname), "TEMPORARY-FILE"))
		}
		return a.freebsdLogin(login)
	}
	if err := l.linuxRecord(ctx, s); err != nil {
		return err
	}
	return login(LinuxLoginArgv(a.target, a.portal))
}

// linuxRecord writes the node record --login reads: the portal as
// configured, no login of its own at boot (only the owner's mnt-start logs
// in), and the CHAP settings of ISCSI_CHAP_FILE, or none. The password is
// set by a command of its own, marked secret so it is never printed.
func (l *loginStep) linuxRecord(ctx context.Context, s *plan.System) error {
	a, b := l.a, l.a.b
	settings := [][2]string{{"node.startup", "manual"}, {"node.session.auth.authmethod", "None"}}
	if b.CHAP != nil {
		settings[1][1] = "CHAP"
		settings = append(settings, [2]string{"node.session.auth.username", b.CHAP.User})
	}
	cmds := []run.Cmd{
		{Argv: LinuxNewNodeArgv(a.target, a.portal)},
		{Argv: LinuxUpdateNodeArgv(a.target, a.portal, settings...)},
	}
	if b.CHAP != nil {
		cmds = append(cmds, run.Cmd{Argv: LinuxUpdateNodeArgv(a.target, a.portal, [2]string{"node.session.auth.password", b.CHAP.Secret}), Secret: true})
	}
	for _, c := range cmds {
		c.Timeout = s.CommandTimeout
		if _, err := s.Run.Run(ctx, c); err != nil {
			return sysexits.New(sysexits.Unavailable, "cannot write open-iscsi's node record for %s at %s: %v", a.target, a.portal, err)
		}
	}
	return nil
}

// authFailed reports a login the target refused for its credentials.
// iscsictl -A only adds the session (the kernel logs in later, and
// waitDevice reports its failure reason), so only iscsiadm says it here.
func authFailed(o OS, err error) bool {
	var re *run.Error
	return o == Linux && errors.As(err, &re) && !re.TimedOut && re.ExitCode == linuxErrAuthFailed
}

func sessionExists(o OS, err error) bool {
	var re *run.Error
	if !errors.As(err, &re) || re.TimedOut {
		return false
	}
	if o == FreeBSD {
		return strings.Contains(re.Stderr, freebsdSessionExists)
	}
	return re.ExitCode == linuxErrSessionExists
}

func (l *loginStep) Undo() *state.Action {
	portal := l.sessionPortal
	if portal == "" {
		portal = l.a.portal
	}
	return &state.Action{
		ID:       "iscsi-session:" + l.a.target,
		What:     fmt.Sprintf("iSCSI session to %s at %s", l.a.target, portal),
		Kind:     state.KindCommand,
		Argv:     l.a.b.logoutArgv(l.a.target, portal),
		OKExit:   []int{linuxErrNoObjects},
		OKStderr: []string{freebsdNoSession, "No matching sessions"},
	}
}

// waitDevice waits, under ISCSI_DEVICE_TIMEOUT, for the LUN's device to
// appear after the login; half-way it asks the initiator once to rescan.
type waitDevice struct{ a *attachment }

func (w *waitDevice) String() string {
	return fmt.Sprintf("wait for LUN %d of iSCSI target %s", w.a.b.LUN, w.a.target)
}
func (w *waitDevice) Done(context.Context, *plan.System) (bool, error) { return false, nil }
func (w *waitDevice) Undo() *state.Action                              { return nil }

func (w *waitDevice) Apply(ctx context.Context, s *plan.System) error {
	a, b := w.a, w.a.b
	if s.DryRun {
		a.dev = w.expected()
		s.Say("# wait up to %s for %s", b.DeviceTimeout, a.dev)
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, b.DeviceTimeout)
	defer cancel()
	start := time.Now()
	rescanned := false
	why := "looked for " + w.expected()
	for {
		dev, reason := w.find(ctx, s)
		if dev != "" {
			a.dev = dev
			s.Log.Debug("LUN %d of %s is %s", b.LUN, a.target, dev)
			return nil
		}
		if reason != "" {
			why = reason
		}
		if !rescanned && time.Since(start) >= b.DeviceTimeout/2 {
			rescanned = true
			argv := LinuxRescanArgv()
			if b.OS == FreeBSD {
				argv = FreeBSDRescanArgv()
			}
			if _, err := s.Command(ctx, argv...); err != nil {
				s.Log.Warn("rescan for LUN %d of %s failed: %v", b.LUN, a.target, err)
			}
		}
		select {
		case <-ctx.Done():
			return sysexits.New(sysexits.Unavailable, "logged in to iSCSI target %s at portal %s, but LUN %d gave no device within %s (%s); check that the target exports LUN %d to this initiator", a.target, a.portal, b.LUN, b.DeviceTimeout, why, b.LUN)
		case <-time.After(b.Poll):
		}
	}
}

// expected names the device the wait looks for, for messages and the dry run.
func (w *waitDevice) expected() string {
	a, b := w.a, w.a.b
	if b.OS == FreeBSD {
		return fmt.Sprintf("%s/da* (LUN %d in iscsictl -L -v)", b.DeviceDir, b.LUN)
	}
	return filepath.Join(b.DeviceDir, LinuxByPathName(a.portal, a.target, b.LUN))
}

// find returns the device if it is there, or why it is not.
func (w *waitDevice) find(ctx context.Context, s *plan.System) (dev, why string) {
	if w.a.b.OS == FreeBSD {
		return w.findFreeBSD(ctx, s)
	}
	return w.findLinux(), ""
}

func (w *waitDevice) findLinux() string {
	a, b := w.a, w.a.b
	candidates := []string{filepath.Join(b.DeviceDir, LinuxByPathName(a.portal, a.target, b.LUN))}
	// udev writes the address the session connected to, which differs
	// from the portal as configured for host names and IPv6.
	suffix := "-iscsi-" + a.target + "-lun-" + strconv.Itoa(b.LUN)
	if entries, err := os.ReadDir(b.DeviceDir); err == nil {
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "ip-") && strings.HasSuffix(e.Name(), suffix) {
				candidates = append(candidates, filepath.Join(b.DeviceDir, e.Name()))
			}
		}
	}
	for _, c := range candidates {
		if dev, err := filepath.EvalSymlinks(c); err == nil {
			return dev
		}
	}
	return ""
}

func (w *waitDevice) findFreeBSD(ctx context.Context, s *plan.System) (string, string) {
	a, b := w.a, w.a.b
	res, err := s.Command(ctx, FreeBSDSessionsVerboseArgv()...)
	if err != nil {
		return "", fmt.Sprintf("iscsictl -L -v: %v", err)
	}
	sessions, err := ParseFreeBSDSessionsJSON(res.Stdout)
	if err != nil {
		return "", err.Error()
	}
	var others []string
	why := "iscsictl -L -v lists no session for the target"
	for _, st := range sessions {
		if st.Target != a.target {
			continue
		}
		why = "session not connected yet"
		if !st.Connected && st.Reason != "" {
			why = "session not connected: " + st.Reason
		}
		for _, d := range st.Devices {
			if !strings.HasPrefix(d.Name, "da") {
				continue
			}
			if d.LUN != b.LUN {
				others = append(others, fmt.Sprintf("%s (LUN %d)", d.Name, d.LUN))
				continue
			}
			dev := filepath.Join(b.DeviceDir, d.Name)
			if _, err := os.Stat(dev); err == nil {
				return dev, ""
			}
			why = dev + " does not exist yet"
		}
	}
	if len(others) > 0 {
		return "", fmt.Sprintf("the session has %s but none is LUN %d", strings.Join(others, ", "), b.LUN)
	}
	return "", why
}

// lunMount mounts the LUN's filesystem on lunRoot. Its plan.Mount is built
// when the step runs, because only then is the device known.
type lunMount struct {
	a *attachment
	m *plan.Mount
}

func (l *lunMount) build() *plan.Mount {
	a, b := l.a, l.a.b
	dev := a.dev
	return &plan.Mount{
		Target:      a.lunRoot,
		Want:        mounttab.Want{FSType: b.FSType, Source: dev},
		Argv:        b.mountArgv(dev, a.lunRoot),
		UnmountArgv: []string{"umount", a.lunRoot},
		ForceArgv:   b.forceUnmountArgv(a.lunRoot),
		What:        fmt.Sprintf("mount LUN %d of %s (%s, %s) on %s", b.LUN, a.target, dev, b.FSType, a.lunRoot),
	}
}

func (l *lunMount) String() string {
	if l.m == nil {
		return l.build().What
	}
	return l.m.What
}

func (l *lunMount) Done(ctx context.Context, s *plan.System) (bool, error) {
	l.m = l.build()
	return l.m.Done(ctx, s)
}

func (l *lunMount) Apply(ctx context.Context, s *plan.System) error { return l.m.Apply(ctx, s) }

func (l *lunMount) Undo() *state.Action {
	if l.m == nil {
		l.m = l.build()
	}
	return l.m.Undo()
}

// probeStep refuses a LUN that does not hold what ISCSI_FSTYPE names,
// before anything checks, repairs, mounts or imports it: a blank LUN is
// never formatted behind the operator's back, and a LUN holding something
// else is never handed to the wrong fsck or mount. It is skipped, like the
// step it guards, when that is already in place.
type probeStep struct {
	a     *attachment
	pool  string
	guard plan.Step // the LUN's mount or pool import
}

func (p *probeStep) String() string {
	return fmt.Sprintf("check that LUN %d of %s holds %s", p.a.b.LUN, p.a.target, p.a.b.FSType)
}

func (p *probeStep) Done(ctx context.Context, s *plan.System) (bool, error) {
	return p.guard.Done(ctx, s)
}

func (p *probeStep) Undo() *state.Action { return nil }

func (p *probeStep) Apply(ctx context.Context, s *plan.System) error {
	a, b := p.a, p.a.b
	argv, want, none := LinuxProbeArgv(a.dev), LinuxProbeType(b.FSType), linuxProbeNone
	if b.OS == FreeBSD {
		argv, want, none = FreeBSDProbeArgv(a.dev), b.FSType, freebsdProbeNone
	}
	if s.DryRun {
		_, _ = s.Run.Run(ctx, run.Cmd{Argv: argv}) // a dry run: the runner prints it
		return nil
	}
	res, err := s.Command(ctx, argv...)
	found := strings.TrimSpace(string(res.Stdout))
	var re *run.Error
	if err != nil && !(errors.As(err, &re) && !re.TimedOut && re.ExitCode == none) {
		return sysexits.New(sysexits.Unavailable, "cannot tell what LUN %d of %s (%s) holds: %v", b.LUN, a.target, a.dev, err)
	}
	switch {
	case err == nil && found == want:
		return nil
	case err != nil || found == "":
		return sysexits.New(sysexits.DataErr, "LUN %d of %s (%s) holds no %s (%s finds nothing on it): envhooks never formats a LUN; if it is new, prepare it once by hand (%s) and start %s again", b.LUN, a.target, a.dev, b.FSType, argv[0], formatHint(b.OS, b.FSType, a.dev, p.pool), a.jname)
	default:
		return sysexits.New(sysexits.DataErr, "LUN %d of %s (%s) holds %s, not the %s that ISCSI_FSTYPE names: fix ISCSI_FSTYPE or ISCSI_LUN", b.LUN, a.target, a.dev, found, b.FSType)
	}
}

// formatHint is the command that prepares a new LUN, for the refusal.
func formatHint(o OS, fstype, dev, pool string) string {
	switch {
	case fstype == "zfs":
		return "zpool create -o cachefile=none " + pool + " " + dev + ", then zpool export " + pool
	case o == FreeBSD:
		return "newfs -U " + dev
	}
	return "mkfs." + fstype + " " + dev
}

// fsckStep checks the filesystem before it is mounted, and never while it
// is: a LUN already mounted here counts as checked. It is bounded by the
// hook's deadline, not the per-command one, since a check can take long.
type fsckStep struct {
	a     *attachment
	mount *lunMount
}

func (f *fsckStep) String() string {
	return fmt.Sprintf("check the %s filesystem on LUN %d of %s", f.a.b.FSType, f.a.b.LUN, f.a.target)
}

func (f *fsckStep) Done(ctx context.Context, s *plan.System) (bool, error) {
	return f.mount.Done(ctx, s)
}

func (f *fsckStep) Undo() *state.Action { return nil }

func (f *fsckStep) Apply(ctx context.Context, s *plan.System) error {
	b := f.a.b
	argv := b.fsckArgv(f.a.dev)
	_, err := s.Run.Run(ctx, run.Cmd{Argv: argv})
	var re *run.Error
	// e2fsck: 1 is "errors corrected", 2 "corrected, reboot" (which
	// matters only for a root filesystem).
	if err != nil && b.OS == Linux && errors.As(err, &re) && (re.ExitCode == 1 || re.ExitCode == 2) {
		s.Log.Warn("%s repaired the filesystem on %s", argv[0], f.a.dev)
		err = nil
	}
	if err != nil {
		return sysexits.New(sysexits.Unavailable, "the filesystem on LUN %d of %s (%s) needs repair that %s -p cannot do: %v; run %s by hand before starting %s", b.LUN, f.a.target, f.a.dev, argv[0], err, argv[0], f.a.jname)
	}
	return nil
}

// zpoolImport imports the pool on the LUN under lunRoot; its export is
// the undo.
type zpoolImport struct {
	a    *attachment
	pool string
}

func (z *zpoolImport) String() string {
	return fmt.Sprintf("import ZFS pool %s from LUN %d of %s", z.pool, z.a.b.LUN, z.a.target)
}

func (z *zpoolImport) Done(ctx context.Context, s *plan.System) (bool, error) {
	if s.DryRun {
		return false, nil
	}
	_, err := s.Command(ctx, ZpoolListArgv(z.pool)...)
	return err == nil, nil
}

func (z *zpoolImport) Apply(ctx context.Context, s *plan.System) error {
	if _, err := s.Command(ctx, ZpoolImportArgv(z.a.dev, z.a.lunRoot, z.pool)...); err != nil {
		return sysexits.New(sysexits.Unavailable, "cannot %s (%s): %v", z, z.a.dev, err)
	}
	return nil
}

func (z *zpoolImport) Undo() *state.Action {
	return &state.Action{
		ID:       "zpool:" + z.pool,
		What:     z.String(),
		Kind:     state.KindCommand,
		Argv:     ZpoolExportArgv(z.pool),
		OKStderr: []string{"no such pool"},
	}
}

// roleDirs creates the role folders on the LUN that are missing (a new
// LUN starts empty). The LUN is a local block device by now, so looking at
// it cannot hang.
func roleDirs(dirs []string) plan.Step {
	return &plan.Check{
		What:    "create the missing role folders " + strings.Join(dirs, " "),
		Changes: true,
		Fn: func(_ context.Context, s *plan.System) error {
			for _, d := range dirs {
				if _, err := os.Stat(d); err == nil {
					continue
				}
				if err := os.MkdirAll(d, 0o755); err != nil {
					return sysexits.New(sysexits.CantCreat, "cannot create %s on the LUN: %v", d, err)
				}
				s.Log.Action("created %s", d)
			}
			return nil
		},
	}
}
