package logging

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
)

type fakeSys struct{ info, warn, err []string }

func (f *fakeSys) Info(m string) error    { f.info = append(f.info, m); return nil }
func (f *fakeSys) Warning(m string) error { f.warn = append(f.warn, m); return nil }
func (f *fakeSys) Err(m string) error     { f.err = append(f.err, m); return nil }

func TestOneLinePerActionAndSyslogOnDemand(t *testing.T) {
	var out bytes.Buffer
	fs := &fakeSys{}
	opened := 0
	l := &Logger{prog: "mnt-start", out: &out, sysOpen: func() sysWriter { opened++; return fs }}
	l.Debug("quiet %d", 1)
	assert.Equal(t, 0, opened, "debug lines do not connect to syslog")
	assert.Empty(t, out.String(), "debug lines need -v")
	l.Action("mounted %s", "/x")
	l.Warn("careful")
	l.Error("failed")
	assert.Equal(t, 1, opened)
	assert.Equal(t, "mnt-start: mounted /x\nmnt-start: warning: careful\nmnt-start: error: failed\n", out.String())
	assert.Equal(t, []string{"mounted /x"}, fs.info)
	assert.Equal(t, []string{"careful"}, fs.warn)
	assert.Equal(t, []string{"failed"}, fs.err)
}

func TestVerbose(t *testing.T) {
	var out bytes.Buffer
	l := NewTo("p", &out, true)
	l.Debug("already mounted")
	assert.Equal(t, "p: already mounted\n", out.String())
}
