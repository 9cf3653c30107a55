package args

import (
	"strings"
	"testing"

	"github.com/envhooks/envhooks/lib/environment"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// FuzzArgs feeds the hook protocol's parser any argv (words separated by
// NUL in the input). It never panics; a refusal is a usage (64) or data
// (65) error; what it accepts has a valid jname and absolute, clean
// directories.
func FuzzArgs(f *testing.F) {
	for _, s := range []string{
		"-d\x00/usr/jails/jails-data/web1-data\x00-f\x00/usr/jails/jails-fstab/web1\x00-j\x00web1\x00-r\x00/usr/jails/jails-rcconf\x00-s\x00/usr/jails/jails-system/web1",
		"--jname=web1\x00--data=/d\x00--sysdata=/s\x00-nv",
		"-\nmnt-start: attached j1",
		"-j\x00../x\x00-d\x00/\x00-s\x00rel",
		"-c\x00\x00-j\x00a",
		"--\x00-j\x00web1",
		"-h", "-V", "-jweb1\x00-d/x\x00-s/y\x00extra",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		argv := append([]string{"mnt-start"}, strings.Split(in, "\x00")...)
		o, err := Parse(argv, Required{DataAndSystem: true})
		if err != nil {
			if c := sysexits.Code(err); c != sysexits.Usage && c != sysexits.DataErr {
				t.Fatalf("%q: refused with %d: %v", argv, c, err)
			}
			return
		}
		if o.Help || o.ShowVersion {
			return
		}
		if err := environment.CheckName(o.JName); err != nil {
			t.Fatalf("%q: accepted jname %q: %v", argv, o.JName, err)
		}
		for _, d := range []string{o.Data, o.System} {
			if !strings.HasPrefix(d, "/") || d == "/" || strings.ContainsAny(d, "\x00\n\r") {
				t.Fatalf("%q: accepted directory %q", argv, d)
			}
		}
	})
}
