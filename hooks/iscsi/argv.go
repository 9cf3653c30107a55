package iscsi

import (
	"strconv"
	"strings"
)

// The argv builders for both initiators are kept on every OS, so the exact
// FreeBSD and Linux syntax is tested on Linux; Backend.OS picks one.

// LinuxNewNodeArgv creates open-iscsi's node record for the target at the
// portal as configured, which --login needs. SendTargets discovery
// (iscsiadm -m discovery) would instead record the portals the target
// announces, which an initiator behind NAT, or reaching the target by
// another address, cannot use; the preflight has already asked the portal
// whether it offers the target.
func LinuxNewNodeArgv(target, portal string) []string {
	return []string{"iscsiadm", "-m", "node", "-o", "new", "-T", target, "-p", portal}
}

// LinuxUpdateNodeArgv sets settings (name, value pairs) of the node
// record; the one carrying the CHAP password must run with
// run.Cmd{Secret: true}.
func LinuxUpdateNodeArgv(target, portal string, settings ...[2]string) []string {
	argv := []string{"iscsiadm", "-m", "node", "-T", target, "-p", portal, "-o", "update"}
	for _, kv := range settings {
		argv = append(argv, "-n", kv[0], "-v", kv[1])
	}
	return argv
}

func LinuxLoginArgv(target, portal string) []string {
	return []string{"iscsiadm", "-m", "node", "-T", target, "-p", portal, "--login"}
}

func LinuxLogoutArgv(target, portal string) []string {
	return []string{"iscsiadm", "-m", "node", "-T", target, "-p", portal, "--logout"}
}

func LinuxSessionsArgv() []string { return []string{"iscsiadm", "-m", "session"} }

func LinuxRescanArgv() []string { return []string{"iscsiadm", "-m", "session", "--rescan"} }

// iscsiadm exit codes (open-iscsi include/iscsi_err.h).
const (
	linuxErrSessionExists = 15 // ISCSI_ERR_SESS_EXISTS: already logged in
	linuxErrNoObjects     = 21 // ISCSI_ERR_NO_OBJS_FOUND: no such session
	linuxErrAuthFailed    = 24 // ISCSI_ERR_LOGIN_AUTH_FAILED: CHAP refused
)

// LinuxProbeArgv asks which filesystem the LUN holds, reading the device
// itself (-p), not blkid's cache; it exits 2 when it finds none.
func LinuxProbeArgv(dev string) []string {
	return []string{"blkid", "-p", "-s", "TYPE", "-o", "value", dev}
}

// linuxProbeNone is blkid's exit when it recognises nothing on the device.
const linuxProbeNone = 2

// LinuxProbeType is what blkid calls each ISCSI_FSTYPE.
func LinuxProbeType(fstype string) string {
	if fstype == "zfs" {
		return "zfs_member"
	}
	return fstype
}

// LinuxByPathName is the name udev gives the LUN under /dev/disk/by-path.
func LinuxByPathName(portal, target string, lun int) string {
	return "ip-" + portal + "-iscsi-" + target + "-lun-" + strconv.Itoa(lun)
}

// LinuxFsckArgv checks the LUN's filesystem before it is mounted; xfs has
// no boot-time check (its log is replayed at mount), so none runs.
func LinuxFsckArgv(fstype, dev string) []string {
	switch fstype {
	case "ext4":
		return []string{"fsck.ext4", "-p", dev}
	}
	return nil
}

func LinuxMountArgv(fstype, dev, target string) []string {
	return []string{"mount", "-t", fstype, dev, target}
}

func LinuxBindArgv(src, target string) []string { return []string{"mount", "--bind", src, target} }

func FreeBSDLogoutArgv(target, portal string) []string {
	return []string{"iscsictl", "-R", "-p", portal, "-t", target}
}

func FreeBSDSessionsArgv() []string { return []string{"iscsictl", "-L"} }

func FreeBSDRescanArgv() []string { return []string{"camcontrol", "rescan", "all"} }

// iscsictl reports kernel errors with warn(3): a duplicate session is
// EBUSY from ISCSISADD, a missing one ESRCH from ISCSISREMOVE.
const (
	freebsdSessionExists = "Device busy"
	freebsdNoSession     = "No such process"
)

// FreeBSDProbeArgv asks fstyp(8) which filesystem the LUN holds; it exits
// 1 when it recognises none.
func FreeBSDProbeArgv(dev string) []string { return []string{"fstyp", dev} }

// freebsdProbeNone is fstyp's exit when it recognises nothing.
const freebsdProbeNone = 1

func FreeBSDFsckArgv(fstype, dev string) []string {
	if fstype == "ufs" {
		return []string{"fsck", "-p", "-t", "ufs", dev}
	}
	return nil
}

func FreeBSDMountArgv(fstype, dev, target string) []string {
	return []string{"mount", "-t", fstype, dev, target}
}

func FreeBSDBindArgv(src, target string) []string {
	return []string{"mount", "-t", "nullfs", src, target}
}

// ZpoolImportArgv imports the pool from the LUN only (-d), under an
// altroot (-R, which also keeps it out of the cache file so no other boot
// imports it behind the owner's back).
func ZpoolImportArgv(dev, altroot, pool string) []string {
	return []string{"zpool", "import", "-d", dev, "-R", altroot, pool}
}

func ZpoolExportArgv(pool string) []string { return []string{"zpool", "export", pool} }

func ZpoolListArgv(pool string) []string { return []string{"zpool", "list", "-H", "-o", "name", pool} }

// Session is one logged-in session as an initiator lists it.
type Session struct {
	Target string
	Portal string // host:port as the initiator shows it
}

// ParseLinuxSessions reads `iscsiadm -m session`:
//
//	tcp: [1] 127.0.0.1:3260,1 iqn.2026-01.org.example:web1 (non-flash)
func ParseLinuxSessions(out string) []Session {
	var ss []Session
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[1], "[") {
			continue
		}
		portal, _, _ := strings.Cut(f[2], ",")
		ss = append(ss, Session{Target: f[3], Portal: portal})
	}
	return ss
}

// ParseFreeBSDSessions reads `iscsictl -L`:
//
//	Target name                          Target portal    State
//	iqn.2026-01.org.example:web1         10.0.0.1         Connected: da0
func ParseFreeBSDSessions(out string) []Session {
	var ss []Session
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] == "Target" {
			continue
		}
		ss = append(ss, Session{Target: f[0], Portal: f[1]})
	}
	return ss
}
