//go:build unix

package logging

import "log/syslog"

// openSyslog connects to the local syslog daemon; without one, logging goes
// to stderr only.
func openSyslog(prog string) sysWriter {
	w, err := syslog.New(syslog.LOG_DAEMON|syslog.LOG_INFO, prog)
	if err != nil {
		return nil
	}
	return w
}
