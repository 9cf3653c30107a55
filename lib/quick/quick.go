// Package quick answers mnt-start's most common call, "everything is
// already attached", without loading the configuration parser or any
// storage backend, which together cost more than the answer itself.
//
// A full start (envhooks-attach) that leaves everything in place writes a
// note to the run directory: the fingerprint of its inputs (the flags, the
// bytes of every configuration layer, the environment variables that are
// configuration keys, and the identity of the installed programs), the
// digest of the state record it left, the directories the flags resolve to,
// and the mounts it made sure of. mnt-start recomputes the fingerprint and
// the digest, resolves the flags again and asks inplace.Decide, the one
// decider the full start uses too, with the note's mounts and the mount
// table. On any difference or doubt (a lost, damaged or changed state
// record, another build, a moved symbolic link) it hands the run to
// envhooks-attach. The note is written only for plans made of plain mounts,
// without ownership leases and without configuration warnings, so that the
// full start would have done nothing and said nothing either; mnt-stop
// removes it before it detaches anything.
package quick

import (
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/fnv"
	"os"
	"path/filepath"
	"runtime/debug"

	"golang.org/x/sys/unix"

	"github.com/envhooks/envhooks/lib/configpath"
	"github.com/envhooks/envhooks/lib/inplace"
	"github.com/envhooks/envhooks/lib/mounttab"
	"github.com/envhooks/envhooks/lib/record"
	"github.com/envhooks/envhooks/lib/safefile"
)

// DirEnv names the environment variable that moves the run directory
// (tests, several installations on one node).
const DirEnv = "ENVHOOKS_RUNDIR"

// Dir is where the notes live: a run directory, emptied at boot like the
// mount table the notes describe.
func Dir() string {
	if d := os.Getenv(DirEnv); d != "" {
		return d
	}
	return defaultDir
}

// Inputs are what decides a start's plan, besides the configuration files
// and environment the fingerprint reads.
type Inputs struct {
	Version                            string
	ConfigFile                         string // -c FILE or ENVHOOKS_CONFIG; "" for the global file
	JName, Data, System, Fstab, RCConf string
}

// Dirs returns the directory flags that were given.
func (in Inputs) Dirs() []string {
	var out []string
	for _, d := range []string{in.Data, in.System, in.Fstab, in.RCConf} {
		if d != "" {
			out = append(out, d)
		}
	}
	return out
}

// Mount is one mount a note vouches for.
type Mount struct {
	ID     string        `json:"id"` // its action in the state record
	Target string        `json:"target"`
	Want   mounttab.Want `json:"want"`
}

// Note is what a full start leaves for the next mnt-start.
type Note struct {
	Inputs string   `json:"inputs"` // the fingerprint
	Keys   []string `json:"keys"`   // the configuration keys the environment can set
	// The state record the start left, and its digest. STATE_DIR comes
	// from the configuration, which the fingerprint covers.
	State  string `json:"state"`
	Record string `json:"record"`
	// Done lists the actions the state record holds as done.
	Done []string `json:"done"`
	// Resolved maps each directory flag to where its symbolic links led.
	Resolved map[string]string `json:"resolved"`
	Mounts   []Mount           `json:"mounts"`
}

// Codec is the note's kind of record.
var Codec = record.Kind{Format: "envhooks-note 2", What: "quick-check note", Max: 4 << 20}

// Fingerprint digests in, the configuration layers' bytes, the values of
// the environment variables named in keys, and the identity of the
// installed programs.
func Fingerprint(in Inputs, keys []string) string {
	// FNV-128a, not SHA-256: the fingerprint guards against change, not
	// against an attacker (who would need root to edit these files), and
	// crypto/sha256 alone would add a tenth of the check's cost at start.
	h := fnv.New128a()
	field := func(s string) { fmt.Fprintf(h, "%d:%s\n", len(s), s) }
	for _, s := range []string{in.Version, in.ConfigFile, in.JName, in.Data, in.System, in.Fstab, in.RCConf, Build()} {
		field(s)
	}
	for _, p := range configpath.For(in.ConfigFile, in.JName).Paths() {
		field(p)
		fileField(h, field, p)
	}
	for _, k := range keys {
		field(k)
		if v, ok := os.LookupEnv(k); ok {
			field("=" + v)
		} else {
			field("unset")
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

func fileField(h hash.Hash, field func(string), p string) {
	raw, err := safefile.Read(p, configpath.MaxFile)
	switch {
	case err == nil:
		field("file")
		h.Write(raw)
	case errors.Is(err, os.ErrNotExist):
		field("absent")
	default:
		field("unreadable")
	}
}

// Programs are the installed programs the note depends on: mnt-start reads
// it, envhooks-attach writes it. They are installed side by side.
var Programs = []string{"mnt-start", AttachProgram}

// Build identifies the installed programs: the revision they were built
// from and whether the tree was modified (debug.ReadBuildInfo), then the
// device, inode, size and modification time of each, beside the running
// one. Every build and every installation changes it, so a note is never
// read by another build than the one that wrote it (a version string is the
// same for many builds, and a revision for every build of a modified tree).
func Build() string {
	self, err := os.Executable()
	if err != nil {
		return "unknown"
	}
	id := ""
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" || s.Key == "vcs.modified" {
				id += s.Key + "=" + s.Value + ";"
			}
		}
	}
	for _, p := range Programs {
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(filepath.Dir(self), p), &st); err != nil {
			id += p + ":absent;"
			continue
		}
		id += fmt.Sprintf("%s:%d:%d:%d:%d.%d;", p, st.Dev, st.Ino, st.Size, st.Mtim.Sec, st.Mtim.Nsec)
	}
	return id
}

// maxRecord is the largest state record digested, as lib/state reads it
// (that package is not linked here: mnt-start never decodes the record).
// A larger one is "unreadable", which sends the start to envhooks-attach.
const maxRecord = 4 << 20

// Digest identifies the content of the file at path ("absent" when there
// is none, "unreadable" when it cannot be read as a record).
func Digest(path string) string {
	raw, err := safefile.Read(path, maxRecord)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "absent"
	case err != nil:
		return "unreadable"
	}
	h := fnv.New128a()
	h.Write(raw)
	return hex.EncodeToString(h.Sum(nil))
}

// Path is where jname's note lives.
func Path(jname string) string { return filepath.Join(Dir(), jname+".quick") }

// Write leaves jname's note.
func Write(jname string, n Note) error {
	if err := os.MkdirAll(Dir(), 0o700); err != nil {
		return err
	}
	return Codec.Write(Path(jname), n, 0o600)
}

// Remove deletes jname's note; a missing note is fine.
func Remove(jname string) error { return safefile.Remove(Path(jname)) }

// Load reads jname's note; nil when there is none or it cannot be read
// whole (a note is only ever a shortcut).
func Load(jname string) *Note {
	var n Note
	if found, err := Codec.Read(Path(jname), &n); !found || err != nil || len(n.Mounts) == 0 || n.State == "" {
		return nil
	}
	return &n
}

// Needs turns mounts into what inplace.Decide asks about, against table.
func Needs(mounts []Mount, table mounttab.Table) []inplace.Need {
	needs := make([]inplace.Need, len(mounts))
	for i, m := range mounts {
		needs[i] = inplace.Need{ID: m.ID, Shows: func() (bool, error) { return table.Shows(m.Target, m.Want), nil }}
	}
	return needs
}

// InPlace reports whether jname's note matches in, the state record is the
// one the note was written with, the directory flags still resolve where
// they did, and inplace.Decide finds every mount in place. The note is read
// before the table: a mnt-stop running meanwhile unmounts before it
// forgets, so the two never agree on something half undone.
func InPlace(in Inputs, read func() (mounttab.Table, error)) bool {
	n := Load(in.JName)
	if n == nil || Fingerprint(in, n.Keys) != n.Inputs || Digest(n.State) != n.Record {
		return false
	}
	t, err := read()
	if err != nil {
		return false
	}
	for _, d := range in.Dirs() {
		if r, ok := n.Resolved[d]; !ok || t.Resolve(d) != r {
			return false
		}
	}
	done := make(map[string]bool, len(n.Done))
	for _, id := range n.Done {
		done[id] = true
	}
	return inplace.Decide(Needs(n.Mounts, t), func(id string) bool { return done[id] })
}
