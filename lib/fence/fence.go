// Package fence keeps a node that lost an environment from writing it once
// another node has taken it over. A lease decides who may start an
// environment; it cannot stop a node that is paused, partitioned or slow and
// still has the storage mounted. Fencing does, in three parts:
//
//   - the lease generation is a fencing token that reaches the storage:
//     mnt-start writes an owner record (node, generation, time) into the
//     environment's system directory and a copy into the environment
//     itself (Owner), and the iSCSI backend carries the generation in its
//     SCSI-3 reservation key;
//   - self-fencing: envctl heartbeat stops and detaches the environments
//     of a node that cannot renew its lease in time, or sees another owner,
//     and it tells "this node is cut off" from "the lease store is down for
//     everyone" with a witness on the shared storage (Witness), so a lease
//     store outage alone stops nothing;
//   - fencing before a takeover: Step, the one call a takeover makes
//     before it takes the lease from another node (FENCE_HOOK, the
//     witness's word that the node fenced itself, the backend's storage
//     fence).
//
// The timing that makes the three agree is the Contract.
package fence

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/envhooks/envhooks/lib/config"
)

// Keys.
var (
	StopCommandKey = config.Define(config.Key{Name: "STOP_COMMAND", Doc: "how an environment is stopped, by envctl stop (and so move and drain) and by self-fencing: a command, %j for the jname (/usr/local/bin/cbsd jstop jname=%j); RUNNING_CHECK confirms it; empty: by kind: CBSD_COMMAND jstop jname=%j for jails, CBSD_COMMAND bstop jname=%j for VMs, lxc-stop -P LXC_PATH -n %j for containers, each at once when fencing (fast=1, noacpi=1, -k)", Check: checkCommand})
	HookKey        = config.Define(config.Key{Name: "FENCE_HOOK", Doc: "the executable a takeover (jregister --takeover or --force) runs first as FENCE_HOOK NODE JNAME GENERATION to cut NODE off JNAME's storage (IPMI or PDU power off, an export update); exit 0 only once NODE can no longer write; root-owned like EXEC_HOOK", Check: config.IsAbsPath})
	HookTimeoutKey = config.Define(config.Key{Name: "FENCE_HOOK_TIMEOUT", Default: "60", Doc: "seconds FENCE_HOOK may run before it is killed with every process it started (the takeover then stops)", Check: config.IsSeconds})
	MarginKey      = config.Define(config.Key{Name: "FENCE_MARGIN", Doc: "seconds: a lease holder that has not renewed for LEASE_TTL minus this fences itself, and other nodes take over only after LEASE_TTL plus this; empty: LEASE_TTL/4", Check: emptyOrSeconds})
	TimeoutKey     = config.Define(config.Key{Name: "FENCE_TIMEOUT", Doc: "seconds self-fencing may take for all of this node's environments (STOP_COMMAND, then a forced detach); empty: LEASE_TTL/4", Check: emptyOrSeconds})
	SkewKey        = config.Define(config.Key{Name: "CLOCK_SKEW", Doc: "seconds the clocks of the nodes (and the lease store's) may differ at most; the timing contract allows for it; empty: LEASE_TTL/10", Check: emptyOrWhole})
	SelfKey        = config.Define(config.Key{Name: "SELF_FENCE", Default: "1", Doc: "1: envctl heartbeat stops and detaches this node's environments when it cannot renew its lease in time or sees another owner; 0: it only renews (nothing then stops a cut-off node)", Check: config.IsBool})
	WitnessKey     = config.Define(config.Key{Name: "FENCE_WITNESS_DIR", Doc: "a directory on the shared storage every node mounts (not on the lease store) where each node's heartbeat says when it last reached the lease store: a node that cannot renew fences itself only when another node still reaches the store; empty: it always does", Check: config.IsAbsPath})
)

func emptyOrSeconds(v string) error {
	if v == "" {
		return nil
	}
	return config.IsSeconds(v)
}

func emptyOrWhole(v string) error {
	if v == "" {
		return nil
	}
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err != nil || n < 0 || n > 86400 {
		return errors.New("want a number of seconds between 0 and 86400")
	}
	return nil
}

func checkCommand(v string) error {
	if strings.ContainsAny(v, "\x00\n\r") {
		return errors.New("a command may not contain control characters")
	}
	if w := strings.Fields(v); len(w) > 0 && strings.Contains(w[0], "%j") {
		return fmt.Errorf("the program %q may not depend on the jname", w[0])
	}
	return nil
}

// Command returns the words of a configured command with %j replaced by
// jname.
func Command(words []string, jname string) []string {
	argv := make([]string, len(words))
	for i, w := range words {
		argv[i] = strings.ReplaceAll(w, "%j", jname)
	}
	return argv
}
