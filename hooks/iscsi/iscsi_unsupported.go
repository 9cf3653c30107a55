//go:build !linux && !freebsd

package iscsi

// Where envhooks does not run (lib/platform stops the programs first), the
// BSD defaults stand in so the tree builds.
const (
	nativeOS         = FreeBSD
	defaultFSType    = "ufs"
	defaultDeviceDir = "/dev"
)

func defaultInitiatorName() string { return fallbackInitiatorName() }
