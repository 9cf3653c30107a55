// Package record is the one codec of envhooks' own files: the state
// record, mnt-start's quick-check note, leases, heartbeats, the inventory
// and the lease directory's marker. Every record is a JSON object whose
// first field, "format", names its kind and version; it is read only from a
// regular file of bounded size and written atomically. A record that cannot
// be read as its kind is damaged: the error names the file and carries exit
// code 65, so one bad file is reported as itself and never as a crash.
package record

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/envhooks/envhooks/lib/safefile"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// Kind is one kind of record.
type Kind struct {
	Format string // the value of the "format" field: "envhooks-state 2"
	What   string // what messages call it: "state record"
	Max    int64  // the largest file read as one
	// Legacy, if set, reads the format this kind had before it was JSON,
	// so that records written by an older envhooks are still understood.
	// It is tried only on content that does not start with '{'.
	Legacy func(raw []byte, v any) error
	// Unversioned: records of this kind were JSON before they named their
	// format; one without a "format" field is read as such.
	Unversioned bool
}

// DamagedError says a record could not be read as its kind.
type DamagedError struct {
	What, Path string
	Err        error
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("%s %s is damaged: %v", e.What, e.Path, e.Err)
}

func (e *DamagedError) Unwrap() error { return e.Err }

// Encode returns v (a struct or a map) as a record of this kind: indented
// JSON with the format first.
func (k Kind) Encode(v any) ([]byte, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if len(body) < 2 || body[0] != '{' {
		return nil, fmt.Errorf("a %s must be a JSON object", k.What)
	}
	head, _ := json.Marshal(k.Format)
	raw := append([]byte(`{"format":`), head...)
	if len(body) > 2 {
		raw = append(raw, ',')
	}
	raw = append(raw, body[1:]...)
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// Decode reads raw as a record of this kind into v. The error says what is
// wrong without quoting the content.
func (k Kind) Decode(raw []byte, v any) error {
	if t := bytes.TrimLeft(raw, " \t\r\n"); k.Legacy != nil && len(t) > 0 && t[0] != '{' {
		return k.Legacy(raw, v)
	}
	var head struct {
		Format *string `json:"format"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return jsonError(err)
	}
	switch {
	case head.Format == nil && !k.Unversioned:
		return errors.New(`no "format" field`)
	case head.Format == nil:
		// written before records named their format
	case *head.Format != k.Format:
		if f := *head.Format; strings.HasPrefix(f, "envhooks-") && len(f) <= 32 {
			return fmt.Errorf("it is a %q record, not %q", f, k.Format)
		}
		return fmt.Errorf("its format is not %q", k.Format)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return jsonError(err)
	}
	return nil
}

// jsonError drops what encoding/json may quote of the input beyond a
// character or a type name.
func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var tim *time.ParseError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("not JSON at byte %d: %v", syn.Offset, syn)
	case errors.As(err, &typ):
		return fmt.Errorf("field %q holds a JSON %s, not a %s", typ.Field, typ.Value, typ.Type)
	case errors.As(err, &tim):
		return errors.New("a time field does not parse as RFC 3339")
	}
	return err
}

// Damaged returns the error of a record at path that does not decode; its
// exit code is 65.
func (k Kind) Damaged(path string, err error) error {
	return &sysexits.Error{Code: sysexits.DataErr, Err: &DamagedError{What: k.What, Path: path, Err: err}}
}

// Read decodes the record at path into v. found is false when there is no
// such file. A file that is not regular, too large or does not decode is a
// damaged record (65); other errors (permissions, I/O) are returned as
// they are.
func (k Kind) Read(path string, v any) (found bool, err error) {
	raw, found, err := k.ReadFile(path)
	if !found || err != nil {
		return found, err
	}
	if err := k.Decode(raw, v); err != nil {
		return true, k.Damaged(path, err)
	}
	return true, nil
}

// ReadFile returns the content of the record file at path, for a caller
// that decodes it itself; the errors are Read's.
func (k Kind) ReadFile(path string) (raw []byte, found bool, err error) {
	raw, err = safefile.Read(path, k.Max)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, false, nil
	case errors.Is(err, safefile.ErrNotRegular), errors.Is(err, safefile.ErrTooLarge):
		return nil, true, k.Damaged(path, unwrapPath(err, path))
	case err != nil:
		return nil, true, err
	}
	return raw, true, nil
}

// unwrapPath drops the "path: " safefile puts first, which the damaged
// record's message already says.
func unwrapPath(err error, path string) error {
	msg := err.Error()
	if len(msg) > len(path)+2 && msg[:len(path)+2] == path+": " {
		return errors.New(msg[len(path)+2:])
	}
	return err
}

// Write replaces the file at path with v as a record of this kind,
// atomically and durably (see safefile.WriteAtomic).
func (k Kind) Write(path string, v any, perm os.FileMode) error {
	raw, err := k.Encode(v)
	if err != nil {
		return err
	}
	return safefile.WriteAtomic(path, raw, perm)
}
