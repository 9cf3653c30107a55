package run

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// Executable is a configured executable that passed the checks, held open:
// what runs is this file, whatever happens to its path afterwards.
type Executable struct {
	Path string // the real path it was opened at, symlinks resolved
	File *os.File
	Info fs.FileInfo // what fstat said when it was checked
}

// Close releases the file.
func (e *Executable) Close() error { return e.File.Close() }

// OpenExecutable is the one check every executable the configuration
// names goes through (EXEC_HOOK, RUNNING_CHECK, CBSD_COMMAND): it runs as
// root, so nobody but root may be able to change what it is. A name
// without a slash is looked up on PATH. The file must be a regular
// executable owned by root and writable by nobody else, and every directory
// from / down to it, for the path as given and once symlinks are resolved,
// must be owned by root and writable by nobody else (the rule sudo and
// OpenSSH apply to the files they trust): otherwise another user could
// swap it between this check and the exec. The file is opened and checked
// through the descriptor, and the runner executes that descriptor.
func OpenExecutable(name string) (*Executable, error) {
	path := name
	if !strings.Contains(name, "/") {
		found, err := exec.LookPath(name)
		if err != nil {
			return nil, fmt.Errorf("%s is not on PATH", name)
		}
		path = found
	}
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("%s is not an absolute path", name)
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, err
	}
	for _, p := range []string{filepath.Clean(path), real} {
		if err := checkDirs(p); err != nil {
			return nil, fmt.Errorf("%s: %v", name, err)
		}
	}
	f, err := os.OpenFile(real, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil {
		err = checkFile(real, fi)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return &Executable{Path: real, File: f, Info: fi}, nil
}

// CheckExecutable tells whether OpenExecutable accepts name, for the
// configuration checks that refuse a bad hook before anything runs.
func CheckExecutable(name string) error {
	e, err := OpenExecutable(name)
	if err != nil {
		return err
	}
	return e.Close()
}

// checkDirs checks every directory above path, from its parent up to /.
func checkDirs(path string) error {
	for dir := filepath.Dir(path); ; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		if err != nil {
			return err
		}
		if err := trusted("directory "+dir, fi); err != nil {
			return err
		}
		if dir == "/" {
			return nil
		}
	}
}

func checkFile(path string, fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", path)
	}
	return trusted(path, fi)
}

// trusted refuses what someone other than root could change.
func trusted(what string, fi fs.FileInfo) error {
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("%s is writable by group or others (mode %04o): chmod go-w it, or move the executable to a directory only root can write", what, perm|modeBits(fi))
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 {
		return fmt.Errorf("%s is owned by uid %d, not root: chown root it, or move the executable to a directory root owns", what, st.Uid)
	}
	return nil
}

// modeBits are the setuid, setgid and sticky bits as chmod writes them.
func modeBits(fi fs.FileInfo) fs.FileMode {
	var m fs.FileMode
	if fi.Mode()&fs.ModeSticky != 0 {
		m |= 0o1000
	}
	if fi.Mode()&fs.ModeSetgid != 0 {
		m |= 0o2000
	}
	if fi.Mode()&fs.ModeSetuid != 0 {
		m |= 0o4000
	}
	return m
}
