package state

import (
	"reflect"
	"testing"
	"unicode/utf8"
)

// FuzzStateRecord feeds the state record's reader (Codec.Decode, the one
// reader of state records, JSON or 0.1's lines) damaged and hostile files:
// it never panics, and a record it accepts is written and read back the
// same.
func FuzzStateRecord(f *testing.F) {
	f.Add([]byte("envhooks-state 1\njname \"web1\"\nbackend \"nullfs\"\nupdated \"2026-01-02T03:04:05Z\"\naction \"mount:/a\"\nwhat \"bind /x on /a\"\nkind \"unmount\"\ntarget \"/a\"\nwant \"\" \"\" \"/x\"\ndirect\nargv \"umount\" \"/a\"\n"))
	f.Add([]byte("envhooks-state 1\njname \"web1\"\ngeneration 7\naction \"exec:/h\"\nkind \"command\"\nargv \"/h\" \"stop\"\nok_exit 1 21\nok_stderr \"gone\"\ntimeout 60000\nconfigured\n"))
	f.Add([]byte("envhooks-state 1\naction \"x\"\njname \"\\xff\"\n"))
	f.Add([]byte(`{"format":"envhooks-state 2","jname":"web1","backend":"nullfs","updated":"2026-01-02T03:04:05Z","actions":[{"id":"mount:/a","what":"bind","kind":"unmount","pending":true,"target":"/a","want":{"bind_of":"/x"},"argv":["umount","/a"],"timeout_ns":5000000000,"configured":true}]}`))
	f.Add([]byte(`{"format":"envhooks-lease 2","jname":"web1"}`))
	f.Add([]byte("{torn"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var r Record
		if err := Codec.Decode(raw, &r); err != nil {
			return
		}
		if !utf8Strings(&r) {
			// Only 0.1's line format can hold bytes that are not UTF-8; a
			// JSON record holds text. What such a record names is undone
			// from memory, as read.
			return
		}
		out, err := Codec.Encode(&r)
		if err != nil {
			t.Fatalf("a record that was read cannot be written: %v", err)
		}
		var again Record
		if err := Codec.Decode(out, &again); err != nil {
			t.Fatalf("a record that was written cannot be read back: %v", err)
		}
		if !reflect.DeepEqual(normal(&r), normal(&again)) {
			t.Fatalf("round trip changed the record:\n%#v\n%#v", r, again)
		}
	})
}

// utf8Strings reports whether every string of r is UTF-8.
func utf8Strings(r *Record) bool {
	s := []string{r.JName, r.Backend, r.Node}
	for _, a := range r.Actions {
		s = append(s, a.ID, a.What, a.Kind, a.Target, a.Want.FSType, a.Want.Source, a.Want.BindOf)
		s = append(append(append(s, a.Argv...), a.Force...), a.OKStderr...)
	}
	for _, v := range s {
		if !utf8.ValidString(v) {
			return false
		}
	}
	return true
}

// normal treats empty and missing lists alike, as the format does, and
// times by their instant.
func normal(r *Record) *Record {
	c := *r
	c.Updated = r.Updated.UTC()
	c.Actions = nil
	for _, a := range r.Actions {
		for _, l := range []*[]string{&a.Argv, &a.Force, &a.OKStderr} {
			if len(*l) == 0 {
				*l = nil
			}
		}
		if len(a.OKExit) == 0 {
			a.OKExit = nil
		}
		c.Actions = append(c.Actions, a)
	}
	if len(c.Actions) == 0 {
		c.Actions = nil
	}
	return &c
}
