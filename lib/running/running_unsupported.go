//go:build !linux && !freebsd

package running

// defaultCheck: no known way to ask on this OS; set RUNNING_CHECK.
func defaultCheck(string) []string { return nil }
