//go:build !linux && !freebsd

package config

// DefaultStateDir, where envhooks does not run (see lib/platform).
const DefaultStateDir = "/var/db/envhooks"
