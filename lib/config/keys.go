package config

// Keys every backend shares. Backends declare their own in their packages.
var (
	Backend        = Define(Key{Name: "BACKEND", Doc: "storage backend, by the name the programs register it under (nullfs, exec, nfs, zfs, iscsi in this tree); nfs is the default when NFS_SERVER is set"})
	MountRCConf    = Define(Key{Name: "MOUNT_RCCONF", Default: "0", Doc: "1: also mount the rcconf directory on -r (CBSD's node-wide jails-rcconf: this hides every other environment's file)", Check: IsBool})
	MountFstab     = Define(Key{Name: "MOUNT_FSTAB", Default: "1", Doc: "1: also mount the fstab directory on -f when -f is given", Check: IsBool})
	AllowNonEmpty  = Define(Key{Name: "ALLOW_NONEMPTY", Default: "0", Doc: "1: allow mounting over a directory that already holds files (they are hidden, not lost)", Check: IsBool})
	CommandTimeout = Define(Key{Name: "COMMAND_TIMEOUT", Default: "30", Doc: "seconds any one external command may take before its process group is killed", Check: IsSeconds})
	HookTimeout    = Define(Key{Name: "HOOK_TIMEOUT", Default: "120", Doc: "seconds a whole mnt-start or mnt-stop run may take", Check: IsSeconds})
	LockTimeout    = Define(Key{Name: "LOCK_TIMEOUT", Default: "30", Doc: "seconds to wait for another run on the same environment before giving up with 75", Check: IsSeconds})
	UnmountTimeout = Define(Key{Name: "UNMOUNT_TIMEOUT", Default: "10", Doc: "seconds to keep retrying a busy unmount before giving up with 75", Check: IsSeconds})
	ForceUnmount   = Define(Key{Name: "FORCE_UNMOUNT", Default: "0", Doc: "1: when an unmount stays busy, force it: FreeBSD umount -f (open files in the environment lose their writes); Linux umount -f -l (the mount is detached at once; processes still holding files in it keep them until they close them)", Check: IsBool})
	StateDir       = Define(Key{Name: "STATE_DIR", Default: DefaultStateDir, Doc: "where mnt-start records what it attached, so mnt-stop can undo exactly that, after a reboot too", Check: IsAbsPath})
	NodeName       = Define(Key{Name: "NODE_NAME", Doc: "this node's name in leases (default: the host name)", Check: IsName})
	Workdir        = Define(Key{Name: "WORKDIR", Default: "/usr/jails", Doc: "CBSD's workdir; envctl derives an environment's directories from it as CBSD does (not /, and without blanks, control characters, quotes, backslash, backquote or $ , = ; : so that descriptors can carry it as CBSDROOT)", Check: isWorkdir})
	SyslogTag      = Define(Key{Name: "SYSLOG", Default: "1", Doc: "1: also log to syslog when stderr is not a terminal", Check: IsBool})
	// One deadline for every probe of a server before the OS is asked to
	// attach from it, whatever the backend: it is one idea, so one key.
	PreflightTimeout = Define(Key{Name: "PREFLIGHT_TIMEOUT", Default: "3", Doc: "seconds each network probe before attaching may take: the NFS server's (never more than NFS_MOUNT_TIMEOUT), each iSCSI portal's discovery; a server that does not answer fails with 69 after this", Check: IsSeconds})

	// envctl's keys live here too: one file configures all three programs,
	// and mnt-start must not call envctl's keys typos.
	InventoryDir = Define(Key{Name: "INVENTORY_DIR", Default: DefaultStateDir + "/inventory", Doc: "envctl's node-local registry: one record per environment registered on this node", Check: IsAbsPath})
	RunningCheck = Define(Key{Name: "RUNNING_CHECK", Doc: "a command, %j for the jname, that exits 0 when the environment runs and 1 when it does not (default: jls -j %j on FreeBSD jails, /dev/vmm/%j for VMs, lxc-wait for LXC containers; none for jails and VMs on Linux)"})
	LXCPath      = Define(Key{Name: "LXC_PATH", Default: "/var/lib/lxc", Doc: "envctl cregister/cunregister: LXC's lxc.lxcpath; container <name> is LXC_PATH/<name>: its config, its root rootfs/ (data) and system/ (system)", Check: IsAbsPath})
	CBSDDelegate = Define(Key{Name: "CBSD_DELEGATE", Default: "auto", Doc: "1: envctl also runs cbsd jregister/junregister, so CBSD's own database follows the environment (without it cbsd jstart on the new node says No such jail); 0: never; auto: 1 when CBSD_COMMAND is installed", Check: isBoolOrAuto})
	CBSDCommand  = Define(Key{Name: "CBSD_COMMAND", Default: "/usr/local/bin/cbsd", Doc: "the cbsd program CBSD_DELEGATE runs", Check: IsAbsPath})
	Parallel     = Define(Key{Name: "PARALLEL", Default: "8", Doc: "how many environments a wildcard envctl run handles at once", Check: IsSeconds})
)

// Old names, still read, with a warning that names the key replacing them.
var _ = DefineAlias("ISCSI_PREFLIGHT_TIMEOUT", PreflightTimeout)
