// Package logging writes one line per action: to stderr always, and to
// syslog as well when stderr is not a terminal (CBSD captures nothing a hook
// prints, so syslog is where an operator finds it afterwards).
package logging

import (
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/term"

	"github.com/envhooks/envhooks/lib/oneline"
)

// Logger is safe for concurrent use.
type Logger struct {
	mu      sync.Mutex
	prog    string
	out     io.Writer
	sys     sysWriter
	sysOpen func() sysWriter // connects on first use: a run that logs nothing pays nothing
	verbose bool
}

// sysWriter is the part of log/syslog the logger needs; nil where there is
// no syslog.
type sysWriter interface {
	Info(string) error
	Warning(string) error
	Err(string) error
}

// New logs as prog to stderr (the program's, or what stands in for it),
// and to syslog when useSyslog is set and stderr is not a terminal.
func New(prog string, stderr io.Writer, verbose, useSyslog bool) *Logger {
	l := &Logger{prog: prog, out: stderr, verbose: verbose}
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		useSyslog = false
	}
	if useSyslog {
		l.sysOpen = func() sysWriter { return openSyslog(prog) }
	}
	return l
}

// NewTo logs to w only; tests and tools use it.
func NewTo(prog string, w io.Writer, verbose bool) *Logger {
	return &Logger{prog: prog, out: w, verbose: verbose}
}

// Discard logs nothing.
func Discard() *Logger { return NewTo("", io.Discard, false) }

// line prints one line; whatever the arguments hold (a hook's output, a
// value from a file), it stays one line of bounded length.
func (l *Logger) line(level string, format string, args []any) string {
	msg := oneline.Clean(fmt.Sprintf(format, args...))
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sysOpen != nil && level != "debug" {
		l.sys, l.sysOpen = l.sysOpen(), nil
	}
	if level == "" || level == "debug" {
		fmt.Fprintf(l.out, "%s: %s\n", l.prog, msg)
	} else {
		fmt.Fprintf(l.out, "%s: %s: %s\n", l.prog, level, msg)
	}
	return msg
}

// Action logs something that changed the system.
func (l *Logger) Action(format string, args ...any) {
	msg := l.line("", format, args)
	if l.sys != nil {
		_ = l.sys.Info(msg)
	}
}

// Debug logs only with -v.
func (l *Logger) Debug(format string, args ...any) {
	if l.verbose {
		l.line("debug", format, args)
	}
}

// Warn logs something an operator should look at.
func (l *Logger) Warn(format string, args ...any) {
	msg := l.line("warning", format, args)
	if l.sys != nil {
		_ = l.sys.Warning(msg)
	}
}

// Error logs the one line that explains a failure (the mains call it).
func (l *Logger) Error(format string, args ...any) {
	msg := l.line("error", format, args)
	if l.sys != nil {
		_ = l.sys.Err(msg)
	}
}

// Close releases the syslog connection.
func (l *Logger) Close() {
	if c, ok := l.sys.(io.Closer); ok {
		c.Close()
	}
}
