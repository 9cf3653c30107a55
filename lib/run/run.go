// Package run is the only place envhooks starts a process. Commands are argv
// lists (never a shell), each has a deadline, the child's whole process group
// is killed at that deadline, and the tail of its stderr is kept for the one
// line an operator reads. An executable the configuration names (a hook) is
// checked before it runs, runs from the file that was checked, and dies at
// its deadline with every descendant, also those that left its process
// group. A dry run is a decorator: it passes commands that only read to the
// runner it wraps and prints the others. A Recorder stands in for the OS in
// tests.
package run

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/envhooks/envhooks/lib/deadline"
	"github.com/envhooks/envhooks/lib/oneline"
)

// Cmd is one command to run.
type Cmd struct {
	Argv    []string
	Timeout time.Duration // 0: only the caller's context bounds it
	Env     []string      // extra KEY=value pairs on top of the inherited environment
	Secret  bool          // never print the argv (it carries a credential)
	// ReadOnly says the command only looks (zfs list, jls): a dry run runs
	// it for real, since the plan it prints depends on the answer.
	ReadOnly bool
	// Configured says Argv[0] is an executable the configuration names
	// (EXEC_HOOK, RUNNING_CHECK, CBSD_COMMAND): it runs only if
	// OpenExecutable accepts it, from the file it checked, and at the
	// deadline every descendant dies with it (see reaper.go).
	Configured bool
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

// Error is a command that failed: exited non-zero, was killed at a
// deadline, or could not start.
type Error struct {
	Cmd      Cmd
	ExitCode int // -1 when it did not exit by itself
	TimedOut bool
	// Why, for a command killed before its own Timeout, is the deadline
	// (or interruption) that fired instead: HOOK_TIMEOUT, a signal.
	Why    error
	Stderr string // the last line of its stderr, made safe to print
	Err    error
}

func (e *Error) Error() string {
	name := "command"
	if len(e.Cmd.Argv) > 0 {
		name = e.Cmd.Argv[0]
	}
	switch {
	case e.TimedOut && e.Why != nil:
		return fmt.Sprintf("%s was killed: %v", name, e.Why)
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

// New is the runner of a program: the OS's, wrapped in DryRun (printing on
// out) when dryRun is set.
func New(dryRun bool, out io.Writer) Runner {
	if dryRun {
		return DryRun{Next: osRunner{}, Out: out}
	}
	return osRunner{}
}

// DryRun is the dry run: it prints every command that changes something,
// one shell-quoted line each, and reports success; a ReadOnly command goes
// to Next (when there is one), because what it answers shapes the plan.
type DryRun struct {
	Next Runner
	Out  io.Writer
}

func (d DryRun) Run(ctx context.Context, c Cmd) (Result, error) {
	if c.ReadOnly && d.Next != nil {
		return d.Next.Run(ctx, c)
	}
	fmt.Fprintln(d.Out, c.String())
	return Result{}, nil
}

// osRunner runs commands for real.
type osRunner struct{}

// killGrace is how long a killed group gets to close its pipes, and how
// long a command that exited is waited for when a child it left behind
// still holds its output: the command is done when it exits.
const killGrace = 500 * time.Millisecond

// maxStdout bounds what a command may print on stdout (a zfs list of many
// thousand datasets is a few MiB): past it the command is killed, so a
// chatty hook cannot grow memory without bound.
var maxStdout = 64 << 20

var errStdoutFull = errors.New("printed more than 64 MiB on stdout and was stopped")

// Run starts c in a process group of its own (a configured executable
// under a reaper of its own) and waits for it, killing the whole group
// when the deadline passes.
func (osRunner) Run(ctx context.Context, c Cmd) (Result, error) {
	if len(c.Argv) == 0 {
		return Result{}, &Error{Cmd: c, ExitCode: -1, Err: errors.New("empty command")}
	}
	var exe *Executable
	if c.Configured {
		var err error
		if exe, err = OpenExecutable(c.Argv[0]); err != nil {
			return Result{}, &Error{Cmd: c, ExitCode: -1, Err: err}
		}
		defer exe.Close()
	}
	own := &deadline.Passed{After: c.Timeout}
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, c.Timeout, own)
		defer cancel()
	}
	stdout := &limitedBuffer{max: maxStdout}
	stderr := &tailBuffer{max: 4096}
	cmd := command(ctx, c, exe)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = killGrace
	err := cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) {
		// It exited 0 (Wait says so only then) and left a child holding
		// its output: done, with whatever it printed until then.
		err = nil
	}
	res := Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	if err == nil {
		return res, nil
	}
	e := &Error{Cmd: c, ExitCode: -1, Stderr: oneline.CleanMax(lastLine(res.Stderr), 512), Err: err}
	if stdout.full {
		e.Err = errStdoutFull // whatever its end looked like: EPIPE, SIGPIPE
	} else if ctx.Err() != nil {
		e.TimedOut = true
		e.Err = ctx.Err()
		if context.Cause(ctx) != own {
			e.Why = deadline.Why(ctx)
		}
	} else if ee, ok := err.(*exec.ExitError); ok && ee.Exited() {
		e.ExitCode = ee.ExitCode()
	}
	return res, e
}

// command builds the exec.Cmd for c: a configured executable runs under a
// reaper of its own, anything else as the leader of a new process group.
func command(ctx context.Context, c Cmd, exe *Executable) *exec.Cmd {
	var cmd *exec.Cmd
	if exe != nil {
		cmd = reaperCommand(ctx, c.Argv, exe)
	} else {
		cmd = exec.CommandContext(ctx, c.Argv[0], c.Argv[1:]...)
		setProcessGroup(cmd)
	}
	if len(c.Env) > 0 {
		cmd.Env = append(os.Environ(), c.Env...)
	}
	return cmd
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

// limitedBuffer keeps the first max bytes and then refuses more, which
// makes the copy from the child's pipe stop (and the child get EPIPE).
type limitedBuffer struct {
	buf  bytes.Buffer
	max  int
	full bool
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if l.buf.Len()+len(p) > l.max {
		l.full = true
		return 0, errStdoutFull
	}
	return l.buf.Write(p)
}

func (l *limitedBuffer) Bytes() []byte { return l.buf.Bytes() }

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
