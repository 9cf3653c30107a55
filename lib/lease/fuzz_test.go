package lease

import (
	"strings"
	"testing"
)

// FuzzLeaseRecord feeds the lease record's reader damaged and hostile
// files (parseRecord, the one reader of node=/since=/generation= records:
// point it at the new reader if the codec changes). It never panics, and a
// lease whose node is one line reads back with the same node and
// generation after it is written.
func FuzzLeaseRecord(f *testing.F) {
	f.Add([]byte("node=node-a\nsince=2026-01-02T03:04:05Z\ngeneration=7\n"))
	f.Add([]byte("node=\nsince=garbage\ngeneration=-1\n"))
	f.Add([]byte("node=a\nnode=b\ngeneration=18446744073709551616"))
	f.Add([]byte("\x00\xff=\n=="))
	f.Fuzz(func(t *testing.T, raw []byte) {
		l := parseRecord(raw, "web1")
		if l.JName != "web1" {
			t.Fatalf("the jname comes from the file name, not the content: %q", l.JName)
		}
		if l.Node == "" || strings.ContainsAny(l.Node, "\n\r") {
			return
		}
		again := parseRecord(formatRecord(l), "web1")
		if again.Node != l.Node || again.Generation != l.Generation {
			t.Fatalf("a lease read back differs: %+v, %+v", l, again)
		}
	})
}
