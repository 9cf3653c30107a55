package iscsi

import (
	"os"
	"strings"
)

const (
	nativeOS         = Linux
	defaultFSType    = "ext4"
	defaultDeviceDir = "/dev/disk/by-path"
)

// defaultInitiatorName is open-iscsi's own name for this node, so the
// preflight sees what the login will see (targets may filter by name).
func defaultInitiatorName() string {
	raw, err := os.ReadFile("/etc/iscsi/initiatorname.iscsi")
	if err == nil {
		for _, line := range strings.Split(string(raw), "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "InitiatorName="); ok && v != "" {
				return strings.TrimSpace(v)
			}
		}
	}
	return fallbackInitiatorName()
}
