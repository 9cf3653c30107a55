package config

// GlobalPath is the global configuration file on Linux.
const GlobalPath = "/etc/envhooks.conf"

// DefaultStateDir survives reboots, so mnt-stop can still undo a session or
// pool import after one.
const DefaultStateDir = "/var/lib/envhooks"
