package oneline

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/envhooks/envhooks/lib/sysexits"
)

func TestCleanEscapesWhatCouldForgeALine(t *testing.T) {
	cases := map[string]string{
		"plain /usr/jails/web1":                 "plain /usr/jails/web1",
		"-\nmnt-start: attached j1":             `-\nmnt-start: attached j1`,
		"a\rb":                                  `a\rb`,
		"bell\a esc\x1b[31m":                    `bell\a esc\x1b[31m`,
		"tab\there":                             `tab\there`,
		"nul\x00":                               `nul\x00`,
		"del\x7f":                               `del\x7f`,
		"bad \xff\xfe utf8":                     `bad \xff\xfe utf8`,
		"ünïcode stays":                         "ünïcode stays",
		"bidi \u202eevil":                       `bidi \u202eevil`,
		"c1 \u0085 next line":                   `c1 \u0085 next line`,
		"line sep \u2028 para \u2029":           `line sep \u2028 para \u2029`,
		"zero width \u200b joiner":              `zero width \u200b joiner`,
		"":                                      "",
		"trailing newline\n":                    `trailing newline\n`,
		"quotes \"stay\" 'as' `they` are $(id)": "quotes \"stay\" 'as' `they` are $(id)",
	}
	for in, want := range cases {
		got := Clean(in)
		assert.Equal(t, want, got, "%q", in)
		assert.NotContains(t, got, "\n")
	}
}

func TestCleanBoundsTheLength(t *testing.T) {
	huge := strings.Repeat("A", 5<<20)
	got := Clean(huge)
	assert.LessOrEqual(t, len(got), Max+40)
	assert.Contains(t, got, "more bytes)")
	// Escapes count towards the bound: a flood of newlines is cut too.
	got = Clean(strings.Repeat("\n", 1<<20))
	assert.LessOrEqual(t, len(got), Max+40)
	assert.True(t, strings.HasPrefix(got, `\n\n`))
	assert.Equal(t, "0123456789abcdef... (4 more bytes)", CleanMax("0123456789abcdefWXYZ", 16))
}

func TestQuoteShowsAndBounds(t *testing.T) {
	assert.Equal(t, `"-\nmnt-start: attached j1"`, Quote("-\nmnt-start: attached j1"))
	long := Quote(strings.Repeat("x", 10000))
	assert.Less(t, len(long), 300)
	assert.Contains(t, long, "(10000 bytes)")
}

func TestFailPrintsOneLineAndTheCode(t *testing.T) {
	var b bytes.Buffer
	code := Fail(&b, "mnt-start", sysexits.New(sysexits.Usage, "unknown option %s", "-\nmnt-start: attached j1"))
	assert.Equal(t, 64, code)
	assert.Equal(t, "mnt-start: error: unknown option -\\nmnt-start: attached j1\n", b.String())
	b.Reset()
	assert.Equal(t, 70, Fail(&b, "envctl", errors.New("x")))
}

func FuzzClean(f *testing.F) {
	for _, s := range []string{"", "a\nb", "\xff", "\u202e", strings.Repeat("é", 3000)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Clean(s)
		if strings.ContainsAny(got, "\n\r\x00") {
			t.Fatalf("Clean(%q) = %q holds a line break", s, got)
		}
		if len(got) > Max+40 {
			t.Fatalf("Clean of %d bytes is %d bytes long", len(s), len(got))
		}
		for _, r := range got {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("Clean(%q) = %q keeps control character %U", s, got, r)
			}
		}
	})
}
