// Package doctor is what envctl doctor reports: findings, each saying what
// was checked, what was found and what to do about it, and the checks of a
// node's setup that need no backend (directories, commands, kernel file
// systems). Backends add their own through backend.Diagnoser.
package doctor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/envhooks/envhooks/lib/fileowner"
	"github.com/envhooks/envhooks/lib/run"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// Statuses of a finding.
const (
	OK   = "ok"
	Warn = "warn"
	Fail = "fail"
)

// Finding is one check's result. Code is the sysexits code a failure
// maps to, the one envctl doctor exits with when it is the first.
type Finding struct {
	Check  string `json:"check"`
	Status string `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
	Code   int    `json:"code,omitempty"`
}

// Pass builds a finding of a check that passed; Warning and Failure build
// the others.
func Pass(check, format string, a ...any) Finding {
	return Finding{Check: check, Status: OK, Detail: fmt.Sprintf(format, a...)}
}

func Warning(check, detail, fix string) Finding {
	return Finding{Check: check, Status: Warn, Detail: detail, Fix: fix}
}

func Failure(code int, check, detail, fix string) Finding {
	return Finding{Check: check, Status: Fail, Detail: detail, Fix: fix, Code: code}
}

// FromError is a failure whose code the error carries.
func FromError(check string, err error, fix string) Finding {
	return Failure(sysexits.Code(err), check, err.Error(), fix)
}

// Code is the exit code of a set of findings: the first failure's, else 0.
func Code(fs []Finding) int {
	for _, f := range fs {
		if f.Status == Fail {
			return f.Code
		}
	}
	return sysexits.OK
}

// Commands checks that each program can be found the way the programs
// run it (exec.LookPath: an absolute path, or on PATH).
func Commands(check string, names ...string) []Finding {
	var out []Finding
	for _, name := range names {
		p, err := exec.LookPath(name)
		if err != nil {
			out = append(out, Failure(sysexits.Unavailable, check, fmt.Sprintf("%s is not installed or not on PATH", name), "install the package that provides "+filepath.Base(name)))
			continue
		}
		out = append(out, Pass(check, "%s is %s", name, p))
	}
	return out
}

// Answers runs argv under timeout and reports whether it exits with one of
// the accepted codes (a command that asks a daemon or the kernel).
func Answers(ctx context.Context, check string, timeout time.Duration, argv []string, accepted []int, what, fix string) Finding {
	_, err := run.New(false, nil).Run(ctx, run.Cmd{Argv: argv, Timeout: timeout, ReadOnly: true})
	code := 0
	if err != nil {
		var re *run.Error
		if !errors.As(err, &re) || re.TimedOut || re.ExitCode < 0 {
			return Failure(sysexits.Unavailable, check, fmt.Sprintf("%s: %v", run.Quote(argv), err), fix)
		}
		code = re.ExitCode
	}
	for _, c := range accepted {
		if c == code {
			return Pass(check, "%s (%s exited %d)", what, run.Quote(argv), code)
		}
	}
	return Failure(sysexits.Unavailable, check, fmt.Sprintf("%s: %v", run.Quote(argv), err), fix)
}

// Dir checks a directory a program writes records into: it exists (or its
// parent does, so it can be made), is a directory, is owned by root and
// not writable by group or others (anyone who can write there can forge
// what the programs trust), and root can write in it.
func Dir(key, path string) Finding {
	check := key
	if path == "" {
		return Failure(sysexits.Config, check, key+" is empty", "set "+key+" to an absolute path")
	}
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		parent := filepath.Dir(path)
		for ; parent != "/"; parent = filepath.Dir(parent) {
			if _, err := os.Stat(parent); err == nil {
				break
			}
		}
		return Pass(check, "%s does not exist yet; it is created on first use under %s", path, parent)
	}
	if err != nil {
		return Failure(sysexits.CantCreat, check, fmt.Sprintf("%s: %v", path, err), "make "+path+" a directory root can read")
	}
	if !fi.IsDir() {
		return Failure(sysexits.CantCreat, check, path+" is not a directory", "remove it or point "+key+" elsewhere")
	}
	if uid, ok := fileowner.UID(fi); ok && uid != 0 {
		return Failure(sysexits.NoPerm, check, fmt.Sprintf("%s is owned by uid %d, not root", path, uid), "chown root "+path)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return Failure(sysexits.NoPerm, check, fmt.Sprintf("%s has mode %04o: others can write records there", path, fi.Mode().Perm()), "chmod go-w "+path)
	}
	f, err := os.CreateTemp(path, ".envctl-doctor-")
	if err != nil {
		return Failure(sysexits.CantCreat, check, fmt.Sprintf("cannot write in %s: %v", path, err), "make "+path+" writable by root (a read-only mount?)")
	}
	f.Close()
	os.Remove(f.Name())
	return Pass(check, "%s is a root-owned directory, mode %04o, writable", path, fi.Mode().Perm())
}
