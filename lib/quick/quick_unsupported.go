//go:build !linux && !freebsd

package quick

const defaultDir = "/var/run/envhooks"
