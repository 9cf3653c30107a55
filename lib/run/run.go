// Package run is the only place envhooks starts a process. Commands are argv
// lists (never a shell), each has a deadline, the child's whole process group
// is killed at that deadline, and the tail of its stderr is kept for the one
// line an operator reads. A Recorder stands in for the OS in dry runs and tests.
package run

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// Cmd is one command to run.
type Cmd struct {
	Argv    []string
	Timeout time.Duration // 0: only the caller's context bounds it
	Env     []string      // extra KEY=value pairs on top of the inherited environment
	Secret  bool          // never print the argv (it carries a credential)
}

// String renders the command as a shell-quoted line, as the dry run prints it.
func (c Cmd) String() string {
	if c.Secret && len(c.Argv) > 0 {
		return Quote(c.Argv[:1]) + " <arguments hidden: they carry a secret>"
	}
	return Quote(c.Argv)
}

// Result is what a finished command left behind.
type Result struct {
	Stdout []byte
	Stderr []byte
}

// Error is a command that failed: exited non-zero, was killed at its
// deadline, or could not start.
type Error struct {
	Cmd      Cmd
	ExitCode int // -1 when it did not exit by itself
	TimedOut bool
	Stderr   string // the last line or so of its stderr
	Err      error
}

func (e *Error) Error() string {
	name := "command"
	if len(e.Cmd.Argv) > 0 {
		name = e.Cmd.Argv[0]
	}
	switch {
	case e.TimedOut:
		return fmt.Sprintf("%s did not finish within %s and was killed", name, e.Cmd.Timeout)
	case e.ExitCode >= 0 && e.Stderr != "":
		return fmt.Sprintf("%s exited %d: %s", name, e.ExitCode, e.Stderr)
	case e.ExitCode >= 0:
		return fmt.Sprintf("%s exited %d", name, e.ExitCode)
	default:
		return fmt.Sprintf("%s: %v", name, e.Err)
	}
}

func (e *Error) Unwrap() error { return e.Err }

// Runner runs commands.
type Runner interface {
	Run(ctx context.Context, c Cmd) (Result, error)
}

// OS runs commands for real.
type OS struct{}

// killGrace is how long a killed group gets to close its pipes before Wait
// stops waiting for them (a grandchild may hold stderr open).
const killGrace = 500 * time.Millisecond

// Run starts c in a process group of its own and waits for it, killing the
// whole group when the deadline passes.
func (OS) Run(ctx context.Context, c Cmd) (Result, error) {
	if len(c.Argv) == 0 {
		return Result{}, &Error{Cmd: c, ExitCode: -1, Err: errors.New("empty command")}
	}
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, c.Argv[0], c.Argv[1:]...)
	if len(c.Env) > 0 {
		cmd.Env = append(cmd.Environ(), c.Env...)
	}
	var stdout bytes.Buffer
	stderr := &tailBuffer{max: 4096}
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	setProcessGroup(cmd)
	cmd.WaitDelay = killGrace
	err := cmd.Run()
	res := Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	if err == nil {
		return res, nil
	}
	e := &Error{Cmd: c, ExitCode: -1, Stderr: lastLine(res.Stderr), Err: err}
	if ctx.Err() != nil {
		e.TimedOut = true
		e.Err = ctx.Err()
		if c.Timeout == 0 {
			if d, ok := ctx.Deadline(); ok {
				e.Cmd.Timeout = time.Until(d).Round(time.Millisecond)
			}
		}
	} else if ee, ok := err.(*exec.ExitError); ok && ee.Exited() {
		e.ExitCode = ee.ExitCode()
	}
	return res, e
}

// lastLine keeps the most telling part of a command's stderr: its last
// non-empty line.
func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// tailBuffer keeps only the last max bytes written, so a chatty child cannot
// grow our memory.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) Bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]byte(nil), t.buf...)
}

// DryRun prints each command instead of running it and reports success.
type DryRun struct {
	Out io.Writer
}

func (d DryRun) Run(_ context.Context, c Cmd) (Result, error) {
	fmt.Fprintln(d.Out, c.String())
	return Result{}, nil
}

// Recorder remembers every command and answers with Respond (success when
// Respond is nil). Tests use it to check exact argv.
type Recorder struct {
	mu      sync.Mutex
	Cmds    []Cmd
	Respond func(c Cmd) (Result, error)
}

func (r *Recorder) Run(_ context.Context, c Cmd) (Result, error) {
	r.mu.Lock()
	r.Cmds = append(r.Cmds, c)
	respond := r.Respond
	r.mu.Unlock()
	if respond == nil {
		return Result{}, nil
	}
	return respond(c)
}

// Argvs returns the argv of every recorded command, in order.
func (r *Recorder) Argvs() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([][]string, len(r.Cmds))
	for i, c := range r.Cmds {
		out[i] = c.Argv
	}
	return out
}

// Quote renders argv as one line a POSIX shell would split back into the
// same words.
func Quote(argv []string) string {
	words := make([]string, len(argv))
	for i, a := range argv {
		words[i] = quoteWord(a)
	}
	return strings.Join(words, " ")
}

func quoteWord(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("@%+=:,./_-", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
