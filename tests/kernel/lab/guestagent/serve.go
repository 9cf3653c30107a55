//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/rpc"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/envhooks/envhooks/tests/kernel/lab/proto"
)

// serve answers the host's calls on the virtio-serial port named
// proto.PortName until the host goes away.
func serve() error {
	dev, err := findPort(proto.PortName)
	if err != nil {
		return err
	}
	port, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	// Blocks until the host side is connected.
	if _, err := port.WriteString(proto.Hello); err != nil {
		return err
	}
	srv := rpc.NewServer()
	if err := srv.RegisterName("Agent", &Agent{procs: map[int]*proc{}}); err != nil {
		return err
	}
	srv.ServeConn(port)
	return nil
}

func findPort(name string) (string, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		ports, _ := filepath.Glob("/sys/class/virtio-ports/*/name")
		for _, p := range ports {
			b, err := os.ReadFile(p)
			if err == nil && strings.TrimSpace(string(b)) == name {
				return "/dev/" + filepath.Base(filepath.Dir(p)), nil
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no virtio-serial port named %s", name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Agent is the RPC receiver.
type Agent struct {
	mu     sync.Mutex
	nextID int
	procs  map[int]*proc
}

type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	res  proto.Result
}

// capped keeps at most 8 MiB of a command's output.
type capped struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := 8<<20 - c.buf.Len(); room > 0 {
		if len(p) > room {
			c.buf.Write(p[:room])
		} else {
			c.buf.Write(p)
		}
	}
	return len(p), nil
}

func (c *capped) Bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.buf.Bytes())
}

func (a *Agent) start(c proto.Command) (*proc, error) {
	if len(c.Argv) == 0 {
		return nil, errors.New("empty command")
	}
	ctx, cancel := context.Background(), context.CancelFunc(func() {})
	if c.Timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
	}
	cmd := exec.CommandContext(ctx, c.Argv[0], c.Argv[1:]...)
	cmd.Env = append(os.Environ(), c.Env...)
	cmd.Dir = c.Dir
	cmd.Stdin = bytes.NewReader(c.Stdin)
	var stdout, stderr capped
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	p := &proc{cmd: cmd, done: make(chan struct{})}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, err
	}
	go func() {
		defer close(p.done)
		defer cancel()
		err := cmd.Wait()
		p.res = proto.Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), Took: time.Since(start), TimedOut: ctx.Err() != nil}
		if st := cmd.ProcessState; st != nil {
			p.res.Code = st.ExitCode()
			if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				p.res.Signal = ws.Signal().String()
			}
		} else if err != nil {
			p.res.Code, p.res.Err = -1, err.Error()
		}
	}()
	return p, nil
}

// Run runs a command to its end.
func (a *Agent) Run(c proto.Command, res *proto.Result) error {
	p, err := a.start(c)
	if err != nil {
		*res = proto.Result{Code: -1, Err: err.Error()}
		return nil
	}
	<-p.done
	*res = p.res
	return nil
}

// Start starts a command and returns its id for Wait and Signal.
func (a *Agent) Start(c proto.Command, st *proto.Started) error {
	p, err := a.start(c)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.nextID++
	a.procs[a.nextID] = p
	*st = proto.Started{ID: a.nextID, PID: p.cmd.Process.Pid}
	return nil
}

func (a *Agent) lookup(id int) (*proc, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p := a.procs[id]
	if p == nil {
		return nil, fmt.Errorf("no command %d", id)
	}
	return p, nil
}

// Wait waits up to w.Timeout for a started command.
func (a *Agent) Wait(w proto.Wait, res *proto.WaitResult) error {
	p, err := a.lookup(w.ID)
	if err != nil {
		return err
	}
	select {
	case <-p.done:
		res.Result = p.res
	case <-time.After(w.Timeout):
		res.Running = true
	}
	return nil
}

// Signal signals a started command's process group; a command that has
// ended is left alone.
func (a *Agent) Signal(s proto.Signal, _ *struct{}) error {
	p, err := a.lookup(s.ID)
	if err != nil {
		return err
	}
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := syscall.Kill(-p.cmd.Process.Pid, syscall.Signal(s.Signal)); err != nil && err != syscall.ESRCH {
		return err
	}
	return nil
}

// WriteFile writes a file, creating its directory.
func (a *Agent) WriteFile(f proto.File, _ *struct{}) error {
	if err := os.MkdirAll(filepath.Dir(f.Path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(f.Path, f.Data, os.FileMode(f.Mode))
}

// ReadFile returns a file's contents (a /proc file needs no process).
func (a *Agent) ReadFile(path string, out *[]byte) error {
	b, err := os.ReadFile(path)
	*out = b
	return err
}

// Procs lists every process from /proc/<pid>/stat, which never waits on a
// filesystem.
func (a *Agent) Procs(_ struct{}, out *[]proto.Process) error {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ...; comm may hold spaces and parentheses.
		s := string(stat)
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || close < open || close+2 >= len(s) {
			continue
		}
		p := proto.Process{PID: pid, Comm: s[open+1 : close], State: s[close+2 : close+3]}
		if b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil {
			p.Cmdline = strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
		}
		if b, err := os.ReadFile("/proc/" + e.Name() + "/wchan"); err == nil {
			p.WChan = string(b)
		}
		*out = append(*out, p)
	}
	return nil
}

// Poweroff answers, then powers the guest off.
func (a *Agent) Poweroff(_ struct{}, _ *struct{}) error {
	go func() {
		time.Sleep(100 * time.Millisecond)
		powerOff()
	}()
	return nil
}

// Log returns the kernel's messages (dmesg), for diagnostics.
func (a *Agent) Log(_ struct{}, out *string) error {
	f, err := os.Open("/dev/kmsg")
	if err != nil {
		return err
	}
	defer f.Close()
	fd := int(f.Fd())
	unix.SetNonblock(fd, true)
	var b strings.Builder
	buf := make([]byte, 8192)
	for {
		n, err := unix.Read(fd, buf)
		if err != nil || n <= 0 {
			break
		}
		// "prio,seq,usec,flags;message"
		line := string(buf[:n])
		if _, msg, ok := strings.Cut(line, ";"); ok {
			line = msg
		}
		b.WriteString(strings.SplitN(line, "\n", 2)[0] + "\n")
	}
	*out = b.String()
	return nil
}
