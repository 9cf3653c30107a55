#!/bin/sh
# envhooks smoke test for a real FreeBSD host with CBSD, as root.
#
# It makes a throwaway jail whose storage is a nullfs "shared" directory,
# replays CBSD's lifecycle with envhooks installed (envctl lease acquire,
# cbsd jcreate, envctl install-hook, cbsd jstart, cbsd jstop, cbsd jstart,
# cbsd jstop), moves the jail to a second workdir and back with envctl
# (junregister here, jregister as a second node with its own workdir,
# state and inventory, then back), starts it again with CBSD, cleans up
# and prints what passed. It cannot run in the project's CI (no FreeBSD
# there); run it on a test host:
#
#   make build && install -m 755 bin/* /usr/local/bin/
#   sh tests/freebsd-smoke.sh
#
# Environment: SMOKE_DIR (default /var/tmp/envhooks-smoke), CBSD_WORKDIR
# (default: cbsd_workdir from rc.conf, else /usr/jails). Nothing outside
# SMOKE_DIR, the throwaway jail and its CBSD registration is changed.
set -u

smoke=${SMOKE_DIR:-/var/tmp/envhooks-smoke}
workdir=${CBSD_WORKDIR:-$(sysrc -n cbsd_workdir 2>/dev/null || echo /usr/jails)}
jname=envsmoke$$
bin=/usr/local/bin
passed=0
failed=0

say() { printf '%s\n' "$*"; }
pass() { passed=$((passed + 1)); say "PASS $*"; }
fail() { failed=$((failed + 1)); say "FAIL $*"; }
# check NAME COMMAND...: run COMMAND, PASS or FAIL with its output.
check() {
	name=$1
	shift
	if out=$("$@" 2>&1); then
		pass "$name"
	else
		fail "$name: $(printf '%s' "$out" | tail -n 3 | tr '\n' ' ')"
	fi
}
# mounted DIR: is DIR a mount point (the mount table, never a stat).
mounted() { mount -p | awk -v d="$1" '$2 == d { found = 1 } END { exit !found }'; }
mounts_under() { mount -p | awk -v d="$1/" 'index($2, d) == 1 { n++ } END { print n + 0 }'; }

[ "$(id -u)" = 0 ] || { say "run as root"; exit 64; }
[ "$(uname -s)" = FreeBSD ] || { say "this smoke test is for FreeBSD"; exit 64; }
for p in cbsd "$bin/mnt-start" "$bin/envhooks-attach" "$bin/mnt-stop" "$bin/envctl"; do
	command -v "$p" >/dev/null || { say "missing $p: install envhooks and CBSD first"; exit 69; }
done

cleanup() {
	cbsd jstop "$jname" >/dev/null 2>&1
	ENVHOOKS_CONFIG=$smoke/a.conf envctl junregister "$jname" >/dev/null 2>&1
	ENVHOOKS_CONFIG=$smoke/b.conf envctl junregister "$jname" >/dev/null 2>&1
	for d in $(mount -p | awk -v s="$smoke/" -v w="$workdir/" -v j="$jname" \
		'index($2, s) == 1 || (index($2, w) == 1 && index($2, j)) { print $2 }' | sort -r); do
		umount "$d" 2>/dev/null || umount -f "$d"
	done
	cbsd jremove jname="$jname" >/dev/null 2>&1
	rm -rf "$smoke" "$workdir/jails-rcconf/rc.conf_$jname"
}
trap cleanup EXIT
cleanup
mkdir -p "$smoke/dfs/leases" "$smoke/b/jails-rcconf"
for role in data system fstab rcconf; do
	mkdir -p "$smoke/dfs/$role/$jname"
done
node=$(hostname)
common="BACKEND=nullfs
NULLFS_ROOT=$smoke/dfs
LEASE_DIR=$smoke/dfs/leases
SYSLOG=0
UNMOUNT_TIMEOUT=10"
printf '%s\nNODE_NAME=%s\nWORKDIR=%s\nSTATE_DIR=%s/a/state\nINVENTORY_DIR=%s/a/inventory\n' \
	"$common" "$node" "$workdir" "$smoke" "$smoke" > "$smoke/a.conf"
printf '%s\nNODE_NAME=smoke-b\nWORKDIR=%s/b\nSTATE_DIR=%s/b/state\nINVENTORY_DIR=%s/b/inventory\nCBSD_DELEGATE=0\n' \
	"$common" "$smoke" "$smoke" "$smoke" > "$smoke/b.conf"
export ENVHOOKS_CONFIG="$smoke/a.conf"
# The shared directory is on this node's root file system here: marked once,
# as an operator does.
envctl lease init

say "envhooks smoke test: jail $jname, workdir $workdir, shared storage $smoke/dfs"

# Create under a lease: jcreate runs mnt_start before the jail exists.
check "envctl lease acquire" envctl lease acquire jname="$jname"
check "cbsd jcreate (mnt_start attaches the shared storage)" \
	cbsd jcreate jname="$jname" ver=empty baserw=1 ip4_addr=0 runasap=0 mnt_start="$bin/mnt-start"
if mounted "$workdir/jails-data/$jname-data" && mounted "$workdir/jails-system/$jname"; then
	pass "data and system directories attached"
else
	fail "data and system directories attached"
fi
check "envctl install-hook" envctl install-hook jname="$jname"
[ -x "$smoke/dfs/system/$jname/master_poststop.d/envhooks-mnt-stop" ] &&
	pass "poststop script on the shared storage" || fail "poststop script on the shared storage"

for round in 1 2; do
	check "cbsd jstart ($round)" cbsd jstart "$jname"
	check "cbsd jstop ($round)" cbsd jstop "$jname"
	n=$(mounts_under "$workdir/jails-data/$jname-data")
	if ! mounted "$workdir/jails-data/$jname-data" && [ "$n" = 0 ]; then
		pass "jstop left nothing mounted ($round)"
	else
		fail "jstop left nothing mounted ($round): $(mount -p | grep "$jname")"
	fi
	[ ! -e "$smoke/dfs/system/$jname/locked" ] &&
		pass "no lock naming this node on the shared storage ($round)" ||
		fail "no lock naming this node on the shared storage ($round): $(cat "$smoke/dfs/system/$jname/locked")"
done

# Move to the second workdir and back.
check "envctl junregister (here)" envctl junregister "$jname"
grep -q CBSDROOT "$smoke/dfs/system/$jname/rc.conf_$jname" &&
	pass "portable descriptor on the shared storage" || fail "portable descriptor on the shared storage"
check "envctl jregister (second workdir)" env ENVHOOKS_CONFIG="$smoke/b.conf" envctl jregister "$jname"
mounted "$smoke/b/jails-data/$jname-data" && pass "attached in the second workdir" || fail "attached in the second workdir"
check "envctl junregister (second workdir)" env ENVHOOKS_CONFIG="$smoke/b.conf" envctl junregister "$jname"
check "envctl jregister (back here)" envctl jregister "$jname"
check "cbsd jstart after the move" cbsd jstart "$jname"
check "cbsd jstop after the move" cbsd jstop "$jname"

say "passed $passed, failed $failed"
[ "$failed" = 0 ]
