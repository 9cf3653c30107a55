package iscsi

const (
	nativeOS         = FreeBSD
	defaultFSType    = "ufs"
	defaultDeviceDir = "/dev"
)

// defaultInitiatorName is iscsid(8)'s default name for this node.
func defaultInitiatorName() string { return "iqn.1994-09.org.freebsd:" + hostname() }
