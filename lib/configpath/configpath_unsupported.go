//go:build !linux && !freebsd

package configpath

// Global is where the global file would be; envhooks does not run here
// (see lib/platform).
const Global = "/etc/envhooks.conf"
