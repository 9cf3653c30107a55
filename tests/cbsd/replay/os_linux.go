package replay

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/envhooks/envhooks/lib/mounttab"
)

// OSKernel mounts for real: bind mounts stand in for nullfs. Run it in a
// private mount namespace.
type OSKernel struct{}

func (OSKernel) Nullfs(src, target string, readOnly bool) error {
	if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
		return err
	}
	if readOnly {
		return unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, "")
	}
	return nil
}

func (OSKernel) Unmount(target string, force bool) error {
	flags := 0
	if force {
		flags = unix.MNT_FORCE
	}
	return unix.Unmount(target, flags)
}

func (OSKernel) Table() (mounttab.Table, error) { return mounttab.Read() }

// ScriptRun is one master script CBSD ran, with what it said.
type ScriptRun struct {
	Path   string
	Code   int
	Output string
}

// ProgramHooks runs mnt_start and the master scripts as programs, with
// Env added to their environment and Bin first on PATH (CBSD resets PATH
// to /sbin:/bin:/usr/sbin:/usr/bin:/usr/local/sbin:/usr/local/bin for its
// master scripts; Bin stands for /usr/local/bin here).
type ProgramHooks struct {
	Bin string
	Env []string

	mu   sync.Mutex
	Runs []ScriptRun
}

func (h *ProgramHooks) env() []string {
	return append(append(os.Environ(), "PATH="+h.Bin+":/sbin:/bin:/usr/sbin:/usr/bin:/usr/local/sbin:/usr/local/bin"), h.Env...)
}

func (h *ProgramHooks) MntStart(program string, argv []string) error {
	cmd := exec.Command(program, argv...)
	cmd.Env = h.env()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%v: %s", err, strings.TrimSpace(out.String()))
	}
	return nil
}

// MasterScripts runs every regular file or symlink with an execute bit,
// as find -maxdepth 1 \( -type l -or -type f \) -and -perm ... does; CBSD
// does not look at their exit codes, the runs are kept for the tests.
func (h *ProgramHooks) MasterScripts(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range entries {
		fi, err := os.Lstat(filepath.Join(dir, e.Name()))
		if err != nil || !(fi.Mode().IsRegular() || fi.Mode()&os.ModeSymlink != 0) {
			continue
		}
		if st, err := os.Stat(filepath.Join(dir, e.Name())); err == nil && st.Mode()&0o111 != 0 {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for _, name := range names {
		p := filepath.Join(dir, name)
		cmd := exec.Command(p)
		cmd.Env = h.env()
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			code = -1
		}
		h.mu.Lock()
		h.Runs = append(h.Runs, ScriptRun{Path: p, Code: code, Output: string(out)})
		h.mu.Unlock()
	}
	return nil
}

// Last returns the runs of scripts under dir since the call before.
func (h *ProgramHooks) Last() []ScriptRun {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.Runs
	h.Runs = nil
	return out
}
