// Package failures keeps the last failure of each program by exit code, for
// envctl metrics: one small file per program and code in a directory,
// written only when a program fails, so that a run that succeeds pays
// nothing and mnt-start's quick check links nothing new but the write.
package failures

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/envhooks/envhooks/lib/rawread"
)

// Dir is where the records live in the run directory runDir (lib/quick's
// Dir): emptied at boot, so the figures are those since the node booted.
func Dir(runDir string) string { return filepath.Join(runDir, "failures") }

// Failure is the last failure of one program with one exit code.
type Failure struct {
	Program string
	Code    int
	JName   string // "" when the run failed before it knew one
	Time    time.Time
	Message string
}

// maxMessage bounds the message kept: the first line of an error is what
// an alert shows.
const maxMessage = 240

// Record notes that program failed with code, on jname, at now. It never
// fails: a failure that cannot be noted is still the same failure, and the
// caller is busy reporting it.
func Record(dir, program string, code int, jname, message string, now time.Time) {
	if code == 0 || program == "" || strings.ContainsAny(program, "/.") {
		return
	}
	if i := strings.IndexByte(message, '\n'); i >= 0 {
		message = message[:i]
	}
	if len(message) > maxMessage {
		message = message[:maxMessage]
	}
	text := fmt.Sprintf("time=%d\njname=%s\nmessage=%s\n", now.Unix(), strings.ReplaceAll(jname, "\n", ""), message)
	if os.MkdirAll(dir, 0o755) != nil {
		return
	}
	name := filepath.Join(dir, fmt.Sprintf("%s.%d", program, code))
	tmp := fmt.Sprintf("%s.tmp%d", name, os.Getpid())
	if os.WriteFile(tmp, []byte(text), 0o644) != nil || os.Rename(tmp, name) != nil {
		os.Remove(tmp)
	}
}

// List returns the failures recorded in dir, by program and code; an
// absent directory holds none. Files that are not records are skipped.
func List(dir string) ([]Failure, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Failure
	for _, e := range entries {
		program, codeText, ok := strings.Cut(e.Name(), ".")
		code, err := strconv.Atoi(codeText)
		if !ok || err != nil || code <= 0 || code > 255 {
			continue
		}
		raw, err := rawread.File(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		f := Failure{Program: program, Code: code}
		for _, line := range strings.Split(string(raw), "\n") {
			k, v, _ := strings.Cut(line, "=")
			switch k {
			case "time":
				if n, err := strconv.ParseInt(v, 10, 64); err == nil {
					f.Time = time.Unix(n, 0)
				}
			case "jname":
				f.JName = v
			case "message":
				f.Message = v
			}
		}
		if !f.Time.IsZero() {
			out = append(out, f)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Program != out[j].Program {
			return out[i].Program < out[j].Program
		}
		return out[i].Code < out[j].Code
	})
	return out, nil
}
