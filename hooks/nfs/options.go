package nfs

import (
	"errors"
	"fmt"
	"net"
	"path"
	"strings"

	"github.com/envhooks/envhooks/lib/mounttab"
)

// MOUNT_NFS_OPT holds FreeBSD mount_nfs(8) flags as CBSD's sample writes
// them: "-orw -overs=4 -ohard". Each word is one -o flag carrying one or
// more comma-separated NAME[=VALUE] options. The words reach mount_nfs as
// argv words, never through a shell, but they are still held to a narrow
// alphabet so a config value cannot smuggle in anything but options.

// option is one NAME[=VALUE] mount option.
type option struct{ name, value string }

func (o option) String() string {
	if o.value == "" {
		return o.name
	}
	return o.name + "=" + o.value
}

// parseOptWords checks MOUNT_NFS_OPT and splits it into options.
func parseOptWords(words []string) ([]option, error) {
	var out []option
	for _, w := range words {
		if !strings.HasPrefix(w, "-o") || len(w) == 2 {
			return nil, fmt.Errorf("%q is not an option word: write each option as -oNAME or -oNAME=VALUE (for example -orw -overs=4)", w)
		}
		for _, item := range strings.Split(w[2:], ",") {
			name, value, hasValue := strings.Cut(item, "=")
			if !validOptName(name) {
				return nil, fmt.Errorf("%q: option name %q must be letters, digits, '_' and '-'", w, name)
			}
			if hasValue && !validOptValue(value) {
				return nil, fmt.Errorf("%q: option value %q must be letters, digits and . _ - : / @ only", w, value)
			}
			out = append(out, option{name, value})
		}
	}
	return out, nil
}

func validOptName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

func validOptValue(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-:/@", r)) {
			return false
		}
	}
	return true
}

// checkOptions is MOUNT_NFS_OPT's config check.
func checkOptions(v string) error {
	opts, err := parseOptWords(strings.Fields(v))
	if err != nil {
		return err
	}
	_, err = versionOf(opts)
	return err
}

// versionOf finds the NFS version the options ask for. Without one, 3:
// FreeBSD mount_nfs's default. Pinning it on Linux too (rather than letting
// mount.nfs negotiate) keeps the mount table's type predictable.
func versionOf(opts []option) (int, error) {
	v := 3
	for _, o := range opts {
		switch {
		case o.name == "nfsv4":
			v = 4
		case o.name == "nfsv3":
			v = 3
		case o.name == "nfsv2":
			return 0, errors.New("NFSv2 is not supported: use vers=3 or vers=4")
		case o.name == "vers" || o.name == "nfsvers":
			// mount_nfs(8) reads vers= with strtol and refuses anything
			// after the number: 4.1 is written minorversion=1.
			switch o.value {
			case "3":
				v = 3
			case "4":
				v = 4
			default:
				if strings.HasPrefix(o.value, "4.") {
					return 0, fmt.Errorf("%s=%s: mount_nfs takes a whole version number; write -o%s=4 -ominorversion=%s", o.name, o.value, o.name, strings.TrimPrefix(o.value, "4."))
				}
				return 0, fmt.Errorf("%s=%s: want 3 or 4", o.name, o.value)
			}
		}
	}
	return v, nil
}

// optionWarnings says what mount_nfs(8) itself warns about: with NFSv4,
// intr and soft "cannot be safely used" (its BUGS section: the server
// enforces the order of opens and locks).
func optionWarnings(opts []option, version int) []string {
	var out []string
	if version != 4 {
		return out
	}
	for _, o := range opts {
		if o.name == "intr" || o.name == "soft" {
			out = append(out, fmt.Sprintf("MOUNT_NFS_OPT has %s with NFSv4: mount_nfs(8) says it cannot be used safely there (the server orders opens and locks); hard mounts are recommended", o.name))
		}
	}
	return out
}

// checkProto refuses what mount_nfs would fail on for this server:
// proto=tcp and proto=udp are IPv4 only (they set OF_NOINET6 in
// sbin/mount_nfs/mount_nfs.c), proto=tcp6 and proto=udp6 IPv6 only.
func checkProto(opts []option, server string) error {
	h := strings.TrimSuffix(strings.TrimPrefix(server, "["), "]")
	ip := net.ParseIP(h)
	for _, o := range opts {
		if o.name != "proto" {
			continue
		}
		switch o.value {
		case "tcp", "udp":
			if ip != nil && ip.To4() == nil {
				return fmt.Errorf("proto=%s is IPv4 only in mount_nfs(8), but NFS_SERVER %s is an IPv6 address: write -oproto=%s6", o.value, server, o.value)
			}
		case "tcp6", "udp6":
			if ip != nil && ip.To4() != nil {
				return fmt.Errorf("proto=%s is IPv6 only in mount_nfs(8), but NFS_SERVER %s is an IPv4 address: write -oproto=%s", o.value, server, strings.TrimSuffix(o.value, "6"))
			}
		default:
			return fmt.Errorf("proto=%s: mount_nfs(8) knows tcp, udp, tcp6 and udp6", o.value)
		}
	}
	return nil
}

// FreeBSDMountArgv is mount_nfs(8): the option words exactly as configured,
// then server:/path and the mount point.
func FreeBSDMountArgv(words []string, source, target string) []string {
	argv := append([]string{"mount_nfs"}, words...)
	return append(argv, source, target)
}

// linuxDropped are FreeBSD mount_nfs options with no mount.nfs(8)
// equivalent; they are left out on Linux rather than failing the mount.
//   - intr, nointr: ignored by Linux since 2.6.25 (signals always interrupt
//     a hard mount's waits)
//   - retrycnt: FreeBSD's mount retry count; Linux's retry= is in minutes
//   - readahead, deadthresh, dumbtimer, maxgroups, mntudp, noconn, nonfsv4,
//     oneopenown, pnfs, wcommitsize, negnametimeo, nametimeo: FreeBSD
//     client tuning with no Linux counterpart
var linuxDropped = map[string]bool{
	"intr": true, "nointr": true, "retrycnt": true, "readahead": true,
	"deadthresh": true, "dumbtimer": true, "maxgroups": true, "mntudp": true,
	"noconn": true, "oneopenown": true, "pnfs": true, "wcommitsize": true,
	"negnametimeo": true, "nametimeo": true,
}

// linuxOptions translates FreeBSD options to mount.nfs(8)'s -o list:
// nfsv4/nfsv3 become vers=, tcp/udp become proto=, timeout= (tenths of a
// second on both) becomes timeo=, nolockd becomes nolock, the FreeBSD-only
// ones above are dropped; everything else (rw, ro, hard, soft, rsize,
// wsize, acregmin/max, acdirmin/max, actimeo, noac, proto, port, retrans,
// sec, minorversion, nocto, noatime, nosuid, noexec, bg, ...) passes
// unchanged. vers= is always present.
func linuxOptions(opts []option, version int) []string {
	out := []string{}
	hasVers := false
	for _, o := range opts {
		switch {
		case linuxDropped[o.name]:
			continue
		case o.name == "nfsv4" || o.name == "nfsv3":
			continue // replaced by vers= below
		case o.name == "vers" || o.name == "nfsvers":
			if hasVers {
				continue
			}
			hasVers = true
			out = append(out, "vers="+o.value)
			continue
		case o.name == "tcp" || o.name == "udp":
			out = append(out, "proto="+o.name)
		case o.name == "timeout":
			out = append(out, option{"timeo", o.value}.String())
		case o.name == "nolockd":
			out = append(out, "nolock")
		default:
			out = append(out, o.String())
		}
	}
	if !hasVers {
		out = append(out, fmt.Sprintf("vers=%d", version))
	}
	return out
}

// LinuxMountArgv is mount.nfs(8) through mount(8): -t nfs4 for version 4,
// -t nfs with vers=3, and the translated options as one -o list.
func LinuxMountArgv(words []string, source, target string) ([]string, error) {
	opts, err := parseOptWords(words)
	if err != nil {
		return nil, err
	}
	version, err := versionOf(opts)
	if err != nil {
		return nil, err
	}
	return []string{"mount", "-t", linuxFSType(version), "-o", strings.Join(linuxOptions(opts, version), ","), source, target}, nil
}

func linuxFSType(version int) string {
	if version == 4 {
		return "nfs4"
	}
	return "nfs"
}

// LinuxWant and FreeBSDWant are what the mount table shows for a mount of
// source: Linux names the type nfs4 or nfs, FreeBSD says nfs for both.
func LinuxWant(source string, version int) mounttab.Want {
	return mounttab.Want{FSType: linuxFSType(version), Source: source}
}

func FreeBSDWant(source string) mounttab.Want {
	return mounttab.Want{FSType: "nfs", Source: source}
}

// LinuxForceUnmountArgv and FreeBSDForceUnmountArgv are the forced unmount
// FORCE_UNMOUNT=1 allows. Linux's detaches as well as forces (-f -l): Linux
// refuses umount -f alone on a mount in use, which is when forcing is asked
// for; -f still aborts the calls in flight to a dead server, and processes
// that hold files in the mount keep them until they close them. FreeBSD's
// is umount -N (umount(8): a forced
// dismount of an NFS mount that does not ask the server, for a server that
// does not answer, when even umount -f would wait); it wants the mount
// point exactly as mounted, which is the recorded target.
func LinuxForceUnmountArgv(target string) []string { return []string{"umount", "-f", "-l", target} }

func FreeBSDForceUnmountArgv(target string) []string { return []string{"umount", "-N", target} }

// Source is server:/path as mount commands and the mount table write it,
// with an IPv6 address in brackets.
func Source(server, remote string) string {
	h := strings.TrimSuffix(strings.TrimPrefix(server, "["), "]")
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	return h + ":" + path.Clean(remote)
}

// checkServer accepts a host name, an IPv4 address, or an IPv6 address
// (bare or in brackets). Anything else, such as "host:/path", "-oexec" or
// "a;b", is refused.
func checkServer(v string) error {
	if v == "" {
		return nil
	}
	if strings.HasPrefix(v, "[") && strings.HasSuffix(v, "]") {
		if ip := net.ParseIP(v[1 : len(v)-1]); ip != nil && ip.To4() == nil {
			return nil
		}
		return errors.New("want an IPv6 address inside the brackets")
	}
	if net.ParseIP(v) != nil {
		return nil
	}
	if len(v) > 253 {
		return errors.New("a host name is at most 253 characters")
	}
	for _, label := range strings.Split(strings.TrimSuffix(v, "."), ".") {
		if !validLabel(label) {
			return errors.New("want a host name (letters, digits and '-' in dot-separated labels), an IPv4 address or an IPv6 address")
		}
	}
	return nil
}

func validLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for _, r := range l {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// checkExportPath accepts an empty value or an absolute path on the server
// with no "." or ".." elements and no control characters.
func checkExportPath(v string) error {
	if v == "" {
		return nil
	}
	if !strings.HasPrefix(v, "/") {
		return errors.New("want an absolute path on the server, such as /nfs")
	}
	if strings.ContainsAny(v, "\x00\n\r\t") {
		return errors.New("a path may not contain control characters")
	}
	for _, el := range strings.Split(v, "/") {
		if el == "." || el == ".." {
			return errors.New(`a path may not contain "." or ".." elements`)
		}
	}
	return nil
}
