package state

import (
	"reflect"
	"testing"
)

// FuzzStateRecord feeds the state record's reader damaged and hostile
// files: it never panics, and a record it accepts is written and read back
// the same. (It fuzzes decode, the one reader of the record: if the codec
// changes, point it at the new reader.)
func FuzzStateRecord(f *testing.F) {
	f.Add([]byte("envhooks-state 1\njname \"web1\"\nbackend \"nullfs\"\nupdated \"2026-01-02T03:04:05Z\"\naction \"mount:/a\"\nwhat \"bind /x on /a\"\nkind \"unmount\"\ntarget \"/a\"\nwant \"\" \"\" \"/x\"\ndirect\nargv \"umount\" \"/a\"\n"))
	f.Add([]byte("envhooks-state 1\njname \"web1\"\ngeneration 7\naction \"exec:/h\"\nkind \"command\"\nargv \"/h\" \"stop\"\nok_exit 1 21\nok_stderr \"gone\"\ntimeout 60000\nconfigured\n"))
	f.Add([]byte("envhooks-state 1\naction \"x\"\njname \"\\xff\"\n"))
	f.Add([]byte("{torn"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := decode(raw)
		if err != nil {
			return
		}
		again, err := decode(encode(r))
		if err != nil {
			t.Fatalf("a record that was read cannot be read back: %v", err)
		}
		r.Updated, again.Updated = again.Updated, r.Updated // encode writes its own time format
		if !reflect.DeepEqual(normal(r), normal(again)) {
			t.Fatalf("round trip changed the record:\n%#v\n%#v", r, again)
		}
	})
}

// normal treats empty and missing lists alike, as the format does.
func normal(r *Record) *Record {
	c := *r
	c.Updated = r.Updated.UTC().Truncate(1e9)
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
	return &c
}
