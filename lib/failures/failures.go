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

	"github.com/envhooks/envhooks/lib/record"
)

// Dir is where the records live in the run directory runDir (lib/quick's
// Dir): emptied at boot, so the figures are those since the node booted.
func Dir(runDir string) string { return filepath.Join(runDir, "failures") }

// Failure is the last failure of one program with one exit code.
type Failure struct {
	Program string    `json:"-"`               // from the file name
	Code    int       `json:"-"`               // from the file name
	JName   string    `json:"jname,omitempty"` // "" when the run failed before it knew one
	Time    time.Time `json:"time"`
	Message string    `json:"message"`
}

// Codec is the failure record's kind. The time=/jname=/message= lines
// written before records were JSON are read too.
var Codec = record.Kind{Format: "envhooks-failure 2", What: "failure record", Max: 4 << 10, Legacy: decodeLegacy}

func decodeLegacy(raw []byte, v any) error {
	f := v.(*Failure)
	for _, line := range strings.Split(string(raw), "\n") {
		k, val, _ := strings.Cut(line, "=")
		switch k {
		case "time":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				return errors.New("time is not a number")
			}
			f.Time = time.Unix(n, 0)
		case "jname":
			f.JName = val
		case "message":
			f.Message = val
		}
	}
	return nil
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
	if os.MkdirAll(dir, 0o755) != nil {
		return
	}
	name := filepath.Join(dir, fmt.Sprintf("%s.%d", program, code))
	_ = Codec.Write(name, Failure{JName: strings.ReplaceAll(jname, "\n", ""), Time: now.UTC().Truncate(time.Second), Message: message}, 0o644) // see above: never fails the caller
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
		f := Failure{Program: program, Code: code}
		if found, err := Codec.Read(filepath.Join(dir, e.Name()), &f); !found || err != nil {
			continue // gone meanwhile, or damaged: not a failure to report
		}
		f.Time = f.Time.Local()
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
