// Package dist checks what the project installs: make install puts exactly
// the files the FreeBSD port's pkg-plist names, with the right modes, the
// PREFIX in the scripts that name a program's path, and the man pages
// compressed as ports and Debian keep them. portlint and poudriere cannot
// run here (no FreeBSD): this is the part of the port a Linux machine can
// check.
package dist

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/tests/testenv"
)

// plist reads pkg-plist as the package tool does: @sample FILE installs
// FILE (and copies it to the name without .sample if that is absent),
// %%DATADIR%% is share/<PORTNAME>.
func plist(t *testing.T) []string {
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "dist", "freebsd", "pkg-plist"))
	require.NoError(t, err)
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		line = strings.TrimPrefix(line, "@sample ")
		require.False(t, strings.HasPrefix(line, "@"), "unexpected keyword in %q", line)
		out = append(out, strings.ReplaceAll(line, "%%DATADIR%%", "share/envhooks"))
	}
	sort.Strings(out)
	return out
}

// install runs make target (install, or install-files from bin) into a
// staging directory.
func install(t *testing.T, target, prefix, bin string) string {
	testenv.Require(t, "make", "install", "gzip", "sed")
	stage := filepath.Join(t.TempDir(), "stage")
	cmd := exec.Command("make", "-s", target, "DESTDIR="+stage, "PREFIX="+prefix, "BIN="+bin)
	cmd.Dir = testenv.RepoRoot()
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "make install:\n%s", out)
	return filepath.Join(stage, prefix)
}

func installed(t *testing.T, root string) map[string]fs.FileMode {
	out := map[string]fs.FileMode{}
	require.NoError(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out[rel] = fi.Mode()
		return nil
	}))
	return out
}

func TestPlistNamesExactlyWhatMakeInstallInstalls(t *testing.T) {
	root := install(t, "install", "/usr/local", t.TempDir())
	got := installed(t, root)
	var names []string
	for name := range got {
		names = append(names, name)
	}
	sort.Strings(names)
	assert.Equal(t, plist(t), names)

	for name, mode := range got {
		want := fs.FileMode(0o644)
		if strings.HasPrefix(name, "bin/") || strings.HasPrefix(name, "etc/rc.d/") || strings.HasSuffix(name, "/envhooks-mnt-stop") || strings.HasSuffix(name, "/libvirt/envhooks") {
			want = 0o755
		}
		assert.Equal(t, want.String(), mode.Perm().String(), name)
	}
	// The man pages are the sources, compressed.
	for _, page := range []string{"man5/envhooks.conf.5", "man8/envctl.8", "man8/mnt-start.8", "man8/mnt-stop.8"} {
		f, err := os.Open(filepath.Join(root, "share", "man", page+".gz"))
		require.NoError(t, err)
		z, err := gzip.NewReader(f)
		require.NoError(t, err)
		text, err := io.ReadAll(z)
		f.Close()
		require.NoError(t, err)
		src, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "man", filepath.Base(page)))
		require.NoError(t, err)
		assert.True(t, bytes.Equal(src, text), page)
	}
	// The programs run.
	r := testenv.Run(t, nil, filepath.Join(root, "bin", "envctl"), "--version")
	assert.Equal(t, 0, r.Code, r.Stderr)
}

// Every program the module builds is installed, and the port builds each.
func TestEveryProgramIsPackaged(t *testing.T) {
	entries, err := os.ReadDir(filepath.Join(testenv.RepoRoot(), "cmd"))
	require.NoError(t, err)
	port, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "dist", "freebsd", "Makefile"))
	require.NoError(t, err)
	list := plist(t)
	for _, e := range entries {
		assert.Contains(t, list, "bin/"+e.Name())
		assert.Contains(t, string(port), "./cmd/"+e.Name(), "GO_TARGET builds %s", e.Name())
	}
	for _, f := range []string{"pkg-descr", "files/pkg-message.in"} {
		_, err := os.Stat(filepath.Join(testenv.RepoRoot(), "dist", "freebsd", f))
		assert.NoError(t, err)
	}
}

// Scripts that name where a program is installed follow PREFIX.
func TestPrefixReachesTheScripts(t *testing.T) {
	root := install(t, "install-files", "/opt/envhooks", filepath.Dir(testenv.Bin(t, "envctl")))
	rc, err := os.ReadFile(filepath.Join(root, "etc", "rc.d", "envhooks_heartbeat"))
	require.NoError(t, err)
	assert.Contains(t, string(rc), "envctl=/opt/envhooks/bin/envctl\n")
	assert.NotContains(t, string(rc), "/usr/local/bin/")
	unit, err := os.ReadFile(filepath.Join(root, "share", "envhooks", "systemd", "envhooks-heartbeat.service"))
	require.NoError(t, err)
	assert.Contains(t, string(unit), "ExecStart=/opt/envhooks/bin/envctl heartbeat\n")
}
