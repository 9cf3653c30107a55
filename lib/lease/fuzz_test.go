package lease

import (
	"testing"
	"unicode/utf8"
)

// FuzzLeaseRecord feeds the lease record's reader (parseRecord over
// Codec, the one reader of lease and generation records, JSON or
// 0.1's node=/since=/generation= lines) damaged and hostile files. It never
// panics, never reads a lease of another environment, and a lease it
// accepts reads back with the same node, generation and time after it is
// written.
func FuzzLeaseRecord(f *testing.F) {
	f.Add([]byte("node=node-a\nsince=2026-01-02T03:04:05Z\ngeneration=7\n"))
	f.Add([]byte("node=\nsince=garbage\ngeneration=-1\n"))
	f.Add([]byte("node=a\nnode=b\ngeneration=18446744073709551616"))
	f.Add([]byte("\x00\xff=\n=="))
	f.Add([]byte("42\n"))
	f.Add([]byte(`{"format":"envhooks-lease 2","jname":"web1","node":"a","since":"2026-01-02T03:04:05Z","generation":3}`))
	f.Add([]byte(`{"format":"envhooks-lease 2","jname":"web2","node":"a"}`))
	f.Add([]byte(`{"format":"envhooks-heartbeat 2","beat":"2026-01-02T03:04:05Z"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		l, err := parseRecord(raw, "web1")
		if err != nil {
			return
		}
		if l.JName != "web1" {
			t.Fatalf("read the lease of %q as web1's", l.JName)
		}
		if !utf8.ValidString(l.Node) {
			return // only 0.1's lines hold such a name; JSON holds text
		}
		again, err := parseRecord(formatRecord(l), "web1")
		if err != nil {
			t.Fatalf("a lease that was read cannot be read back: %v", err)
		}
		if again.Node != l.Node || again.Generation != l.Generation || !again.Since.Equal(l.Since) {
			t.Fatalf("a lease read back differs: %+v, %+v", l, again)
		}
	})
}
