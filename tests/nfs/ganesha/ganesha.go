//go:build linux

// Package ganesha runs a throwaway NFS server for the NFS tests and the
// benchmark: nfs-ganesha with its VFS FSAL exporting a temporary directory
// over NFSv3 and NFSv4, registered with an rpcbind of its own. Both run in a
// private network namespace (and the caller's private mount namespace), so
// ports 111 and 2049 and /run/rpcbind.sock never meet anything already on
// the machine, and every byte stays on that namespace's loopback.
package ganesha

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/envhooks/envhooks/lib/nfsclient"
	"github.com/envhooks/envhooks/tests/testenv"
	"github.com/envhooks/envhooks/tests/testnet"
)

// Server is a running ganesha and rpcbind.
type Server struct {
	Dir    string // scratch directory: config, log, recovery
	Export string // the exported directory (same path over v3 and v4)
	procs  []*exec.Cmd
}

// Commands lists what Start needs installed.
var Commands = []string{"ganesha.nfsd", "rpcbind"}

// Start exports a fresh directory under dir. It must run inside Isolate's
// namespaces: it mounts a tmpfs on /run (rpcbind's socket and lock live
// there) and takes ports 111 and 2049.
func Start(dir string) (*Server, error) {
	if !testnet.Isolated() {
		return nil, errors.New("ganesha.Start must run in the namespaces testnet.Isolate makes")
	}
	s := &Server{Dir: dir, Export: filepath.Join(dir, "export")}
	for _, d := range []string{s.Export, filepath.Join(dir, "recovery")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	if err := os.Chmod(s.Export, 0o755); err != nil {
		return nil, err
	}
	if err := privateRun(); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "ganesha.conf")
	if err := os.WriteFile(conf, []byte(config(s.Export, filepath.Join(dir, "recovery"))), 0o644); err != nil {
		return nil, err
	}
	if err := s.Restart(); err != nil {
		return nil, err
	}
	return s, nil
}

// Restart starts a stopped server again with its directory, export and
// recovery records as they are, as a server coming back from a reboot
// does. Start uses it for the first start.
func (s *Server) Restart() error {
	if len(s.procs) > 0 {
		return errors.New("ganesha is running: stop it before restarting it")
	}
	if err := s.spawn("rpcbind", "-f", "-w"); err != nil {
		return err
	}
	if err := waitTCP(nfsclient.PortmapPort, 10*time.Second); err != nil {
		s.Stop()
		return fmt.Errorf("rpcbind did not start: %v", err)
	}
	log := filepath.Join(s.Dir, "ganesha.log")
	if err := s.spawn("ganesha.nfsd", "-F", "-f", filepath.Join(s.Dir, "ganesha.conf"), "-L", log, "-p", filepath.Join(s.Dir, "ganesha.pid"), "-N", "NIV_EVENT"); err != nil {
		s.Stop()
		return err
	}
	if err := s.waitReady(30 * time.Second); err != nil {
		tail, _ := os.ReadFile(log)
		s.Stop()
		return fmt.Errorf("ganesha did not start: %v\n%s", err, lastLines(tail, 15))
	}
	return nil
}

// privateRun gives this mount namespace its own /run, so our rpcbind's
// socket does not replace (or talk to) one the machine may run.
func privateRun() error {
	if err := unix.Mount("tmpfs", "/run", "tmpfs", 0, "mode=0755"); err != nil {
		return fmt.Errorf("mount a private /run: %v", err)
	}
	return os.MkdirAll("/run/rpcbind", 0o755)
}

func config(export, recovery string) string {
	return fmt.Sprintf(`NFS_CORE_PARAM {
	NFS_Port = %d;
	MNT_Port = 20048;
	Enable_NLM = false;
	Enable_RQUOTA = false;
	Protocols = 3, 4;
}
NFSV4 {
	Graceless = true;
	RecoveryBackend = fs;
	RecoveryRoot = %s;
}
LOG { Default_Log_Level = EVENT; }
EXPORT {
	Export_Id = 1;
	Path = %s;
	Pseudo = %s;
	Access_Type = RW;
	Squash = No_Root_Squash;
	Protocols = 3, 4;
	Transports = TCP;
	SecType = sys;
	FSAL { Name = VFS; }
}
`, nfsclient.NFSPort, recovery, export, export)
}

func (s *Server) spawn(argv ...string) error {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %v", argv[0], err)
	}
	s.procs = append(s.procs, cmd)
	return nil
}

func waitTCP(port int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := nfsclient.ProbeTCP(ctx, "127.0.0.1", port)
		cancel()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitReady waits until the MOUNT service offers the export, which ganesha
// does only once its exports are loaded.
func (s *Server) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := nfsclient.ProbeExports(ctx, "127.0.0.1", []string{s.Export}, nfsclient.Credentials{})
		if err == nil {
			err = nfsclient.ProbeNull(ctx, "127.0.0.1", nfsclient.NFSPort, 4)
		}
		cancel()
		if err == nil {
			return nil
		}
		for _, p := range s.procs {
			if p.ProcessState != nil {
				return fmt.Errorf("%s exited", p.Path)
			}
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Shared is the one ganesha a test package's tests share (starting it
// takes seconds), in the scratch directory they share; Close stops it.
func Shared(scratch *testenv.Shared[string]) *testenv.Shared[*Server] {
	return &testenv.Shared[*Server]{
		Make: func() (*Server, error) {
			dir, err := scratch.Value()
			if err != nil {
				return nil, err
			}
			return Start(filepath.Join(dir, "ganesha"))
		},
		End: (*Server).Stop,
	}
}

// Stop ends ganesha, then rpcbind: SIGTERM, and SIGKILL to the process
// group after five seconds. Only the processes Start began are signalled.
func (s *Server) Stop() {
	for i := len(s.procs) - 1; i >= 0; i-- {
		cmd := s.procs[i]
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	s.procs = nil
}

// Pids returns the process ids of the running server processes (the
// kernel lab freezes them with SIGSTOP to hang its clients' hard mounts).
func (s *Server) Pids() []int {
	var out []int
	for _, p := range s.procs {
		out = append(out, p.Process.Pid)
	}
	return out
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
