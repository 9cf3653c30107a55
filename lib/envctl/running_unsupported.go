//go:build !linux && !freebsd

package envctl

// defaultRunningCheck: none where envhooks does not run (see lib/platform).
func defaultRunningCheck(string) []string { return nil }
