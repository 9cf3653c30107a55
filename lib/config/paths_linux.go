package config

// DefaultStateDir survives reboots, so mnt-stop can still undo a session or
// pool import after one.
const DefaultStateDir = LinuxStateDir
