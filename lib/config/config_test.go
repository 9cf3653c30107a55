package config

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/sysexits"
)

var (
	testServer = Define(Key{Name: "TEST_SERVER", Default: "none"})
	testBool   = Define(Key{Name: "TEST_FLAG", Default: "0", Check: IsBool})
	testSecs   = Define(Key{Name: "TEST_SECONDS", Default: "5", Check: IsSeconds})
	testOld    = DefineAlias("TEST_OLD_SECONDS", testSecs)
)

// A deprecated name is read as the key that replaces it, from a file or
// the environment, with one warning line that names both; where both are
// given the later wins; a bad value is refused under the name written.
func TestDeprecatedNameIsReadAsItsKey(t *testing.T) {
	dir := t.TempDir()
	p := write(t, dir, "envhooks.conf", "TEST_FLAG=1\n"+testOld+"=7\n")
	c, err := LoadFile(p)
	require.NoError(t, err)
	assert.Equal(t, 7*time.Second, c.Seconds(testSecs))
	assert.Equal(t, p+":2", c.Where(testSecs).String())
	require.Len(t, c.Warnings, 1)
	assert.Equal(t, p+":2: TEST_OLD_SECONDS is deprecated, replaced by TEST_SECONDS: rename it (its value is read as TEST_SECONDS meanwhile)", c.Warnings[0])

	c, err = Load(Sources{Environ: []string{testOld + "=8"}})
	require.NoError(t, err)
	assert.Equal(t, 8*time.Second, c.Seconds(testSecs))
	require.Len(t, c.Warnings, 1)
	assert.Contains(t, c.Warnings[0], "the environment: TEST_OLD_SECONDS is deprecated, replaced by TEST_SECONDS")

	c, err = LoadFile(write(t, dir, "both.conf", testSecs+"=3\n"+testOld+"=4\n"))
	require.NoError(t, err)
	assert.Equal(t, 4*time.Second, c.Seconds(testSecs), "the later line wins")
	c, err = LoadFile(write(t, dir, "both2.conf", testOld+"=4\n"+testSecs+"=3\n"))
	require.NoError(t, err)
	assert.Equal(t, 3*time.Second, c.Seconds(testSecs), "the later line wins")

	_, err = LoadFile(write(t, dir, "bad.conf", testOld+"=soon\n"))
	require.Error(t, err)
	assert.Equal(t, sysexits.Config, sysexits.Code(err))
	assert.Contains(t, err.Error(), `TEST_OLD_SECONDS="soon"`)

	assert.Contains(t, Names(), testOld, "the quick check fingerprints it too")
	for _, k := range Keys() {
		assert.NotEqual(t, testOld, k.Name, "not a key of its own: the docs list it as an alias")
	}
	assert.Contains(t, Aliases(), Alias{Name: testOld, Key: testSecs})
	assert.Panics(t, func() { DefineAlias("TEST_OTHER", "TEST_UNDECLARED") })
	assert.Panics(t, func() { Define(Key{Name: testOld}) })
}

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

func TestLayersLaterWins(t *testing.T) {
	dir := t.TempDir()
	global := write(t, dir, "envhooks.conf", "TEST_SERVER=global\nTEST_FLAG=1\nTEST_SECONDS=7\n")
	sample := write(t, dir, "env_start_nfs.conf", "# CBSD sample\nTEST_SERVER=\"sample\"\n")
	perEnv := write(t, dir, "envhooks.d/web1.conf", "export TEST_SECONDS='9'\n")
	c, err := Load(Sources{Global: global, CBSDSample: sample, PerEnv: perEnv, Environ: []string{"TEST_FLAG=0", "PATH=/bin"}})
	require.NoError(t, err)
	assert.Equal(t, "sample", c.Get(testServer))
	assert.Equal(t, 9*time.Second, c.Seconds(testSecs))
	assert.False(t, c.Bool(testBool), "the environment wins over files")
	assert.Equal(t, "the environment", c.Where(testBool).String())
	assert.Equal(t, sample+":2", c.Where(testServer).String())
	assert.Empty(t, c.Warnings, "unrelated environment variables are not typos")
}

func TestDefaultsAndMissingOptionalFiles(t *testing.T) {
	dir := t.TempDir()
	c, err := Load(Sources{Global: filepath.Join(dir, "nope.conf"), CBSDSample: filepath.Join(dir, "nope2")})
	require.NoError(t, err)
	assert.Equal(t, "none", c.Get(testServer))
	assert.Equal(t, 5*time.Second, c.Seconds(testSecs))
	assert.False(t, c.IsSet(testServer))
}

func TestExplicitFileMustExist(t *testing.T) {
	_, err := Load(Sources{Global: filepath.Join(t.TempDir(), "missing.conf"), GlobalMust: true})
	require.Error(t, err)
	assert.Equal(t, sysexits.Config, sysexits.Code(err))
	assert.Contains(t, err.Error(), "missing.conf")
}

func TestUnknownKeyWarnsWithLine(t *testing.T) {
	p := write(t, t.TempDir(), "c.conf", "TEST_SERVER=x\n\nNFS_SEVRER=typo\n")
	c, err := LoadFile(p)
	require.NoError(t, err)
	require.Len(t, c.Warnings, 1)
	assert.Contains(t, c.Warnings[0], p+":3")
	assert.Contains(t, c.Warnings[0], "NFS_SEVRER")
}

func TestBadValueNamesFileAndLine(t *testing.T) {
	for _, content := range []string{"TEST_FLAG=maybe\n", "# c\nTEST_SECONDS=0\n", "TEST_SECONDS=-3\n", "TEST_SECONDS=1e9\n"} {
		p := write(t, t.TempDir(), "c.conf", content)
		_, err := LoadFile(p)
		if assert.Error(t, err, content) {
			assert.Equal(t, sysexits.Config, sysexits.Code(err))
			assert.Regexp(t, `c\.conf:\d+: TEST_`, err.Error())
			assert.NotContains(t, err.Error(), "\n")
		}
	}
	_, err := Load(Sources{Environ: []string{"TEST_FLAG=2"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the environment")
}

func TestSyntaxErrorIsConfigError(t *testing.T) {
	p := write(t, t.TempDir(), "c.conf", "TEST_SERVER=\"unterminated\n")
	_, err := LoadFile(p)
	require.Error(t, err)
	assert.Equal(t, sysexits.Config, sysexits.Code(err))
}

// CBSD's sample file, as its guide prints it, loads unchanged: values with
// quotes and several -o words stay one value.
func TestCBSDSampleSyntax(t *testing.T) {
	p := write(t, t.TempDir(), "env_start_nfs.conf", `NFS_SERVER="172.16.0.1"
TEST_SERVER="-orw -overs=4 -ointr -orsize=32768 -ohard -oproto=tcp -otimeout=300"
MOUNT_RCCONF=0
MOUNT_FSTAB=1
`)
	c, err := LoadFile(p)
	require.NoError(t, err)
	assert.Len(t, c.Words(testServer), 7)
	assert.False(t, c.Bool(MountRCConf))
	assert.True(t, c.Bool(MountFstab))
}

func TestDefaultSourcesPutsPerEnvBesideGlobal(t *testing.T) {
	s := DefaultSources("/tmp/x/my.conf", "web1")
	assert.Equal(t, "/tmp/x/my.conf", s.Global)
	assert.True(t, s.GlobalMust)
	assert.Equal(t, "/tmp/x/envhooks.d/web1.conf", s.PerEnv)
	assert.Equal(t, CBSDSamplePath, s.CBSDSample)
	s = DefaultSources("", "web1")
	assert.Equal(t, GlobalPath, s.Global)
	assert.False(t, s.GlobalMust)
}

func TestChecks(t *testing.T) {
	assert.NoError(t, IsAbsPath("/a/b"))
	assert.Error(t, IsAbsPath("a/b"))
	assert.Error(t, IsAbsPath("/a\nb"))
	assert.NoError(t, IsName("node-1.example"))
	assert.Error(t, IsName("node 1"))
	assert.NoError(t, OneOf("a", "b")("b"))
	assert.Error(t, OneOf("a", "b")("c"))
	assert.Error(t, IsInt("x"))
}

func TestAssignedKey(t *testing.T) {
	for line, want := range map[string]string{
		"KEY=1": "KEY", "  export  KEY2 = x": "KEY2", "A.B: y": "A.B", "export=1": "export", "_X=": "_X",
	} {
		got, ok := assignedKey(line)
		assert.True(t, ok, line)
		assert.Equal(t, want, got, line)
	}
	for _, line := range []string{"# KEY=1", "", "KEY", "1KEY=2", "=x", "export KEY"} {
		_, ok := assignedKey(line)
		assert.False(t, ok, line)
	}
}

// Every line must be blank, a comment or an assignment as godotenv reads
// it: godotenv itself takes a last line of garbage without a newline as
// the value of an empty key. Errors name the file and line, never the
// content.
func TestBadLinesAreRefusedByNumber(t *testing.T) {
	dir := t.TempDir()
	for text, line := range map[string]int{
		"A=1\ngarbage":                   2,
		"A=1\ngarbage\n":                 2,
		"# c\n\nexport\n":                3,
		"A=\"x\" trailing\n":             1,
		"A=\"x\ny\" trailing\n":          2,
		"A=\"never closed\nB=2\n":        1,
		"A='never closed\n":              1,
		"A=1\nB=\x00\n":                  2,
		"NULLFS-ROOT=/x\n":               1,
		"=1\n":                           1,
		"\ufeffBACKEND=nullfs\n":         1,
		"A=\"esc \\\" still open\nB=1\n": 1,
	} {
		p := filepath.Join(dir, "c.conf")
		require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
		_, err := LoadFile(p)
		require.Error(t, err, "%q", text)
		assert.Equal(t, sysexits.Config, sysexits.Code(err), "%q", text)
		assert.Contains(t, err.Error(), fmt.Sprintf("%s:%d: ", p, line), "%q", text)
		assert.NotContains(t, err.Error(), "garbage", "%q", text)
	}
	for _, good := range []string{
		"A=1", "A=1\n", "export A=1\n", "A: 1\n", "  # indented comment\n\tA = 1 # c\n",
		"A=\"multi\nline\"\n", "A='x' # c\n", "A=\"a \\\" quote\"\n", "A=\r\nB=2\r\n", "",
	} {
		p := filepath.Join(dir, "c.conf")
		require.NoError(t, os.WriteFile(p, []byte(good), 0o644))
		_, err := LoadFile(p)
		assert.NoError(t, err, "%q", good)
	}
}

func TestSpecialFilesAreRefused(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o644))
	big := filepath.Join(dir, "big")
	require.NoError(t, os.WriteFile(big, make([]byte, 2<<20), 0o644))
	for p, why := range map[string]string{fifo: "FIFO", "/dev/zero": "character device", dir: "directory", big: "too large"} {
		_, err := LoadFile(p)
		require.Error(t, err, p)
		assert.Equal(t, sysexits.Config, sysexits.Code(err), p)
		assert.Equal(t, "cannot read config file "+p+": ", err.Error()[:len("cannot read config file "+p+": ")], p)
		assert.Contains(t, err.Error(), why, p)
	}
}
