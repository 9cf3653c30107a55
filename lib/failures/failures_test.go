package failures

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRecordKeepsTheLastFailurePerProgramAndCode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run", "failures")
	t0 := time.Unix(1_800_000_000, 0)
	Record(dir, "mnt-start", 77, "web1", "web1 is owned by node b", t0)
	Record(dir, "mnt-start", 77, "web2", "web2 is owned by node b\nsecond line", t0.Add(time.Minute))
	Record(dir, "mnt-start", 69, "web1", strings.Repeat("x", 1000), t0)
	Record(dir, "mnt-stop", 64, "", "-j JNAME is required", t0)
	Record(dir, "envctl", 0, "web1", "not a failure", t0)
	Record(dir, "../evil", 1, "", "", t0)
	got, err := List(dir)
	require.NoError(t, err)
	require.Len(t, got, 3)
	assert.Equal(t, Failure{Program: "mnt-start", Code: 69, JName: "web1", Time: t0, Message: strings.Repeat("x", maxMessage)}, got[0])
	assert.Equal(t, Failure{Program: "mnt-start", Code: 77, JName: "web2", Time: t0.Add(time.Minute), Message: "web2 is owned by node b"}, got[1])
	assert.Equal(t, Failure{Program: "mnt-stop", Code: 64, Time: t0, Message: "-j JNAME is required"}, got[2])
	entries, _ := os.ReadDir(dir)
	assert.Len(t, entries, 3, "no temporary files left")
}

func TestListSkipsWhatIsNotARecord(t *testing.T) {
	dir := t.TempDir()
	none, err := List(filepath.Join(dir, "absent"))
	require.NoError(t, err)
	assert.Empty(t, none)
	for name, text := range map[string]string{"README": "x", "mnt-start.abc": "time=1\n", "mnt-start.300": "time=1\n", "mnt-start.69": "no time\n", "mnt-start.69.tmp42": "time=1\n"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644))
	}
	require.NoError(t, os.Mkdir(filepath.Join(dir, "envctl.75"), 0o755))
	got, err := List(dir)
	require.NoError(t, err)
	assert.Empty(t, got)
}

// Record never fails its caller, not even where nothing can be written.
func TestRecordWhereNothingCanBeWritten(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	Record(filepath.Join(file, "failures"), "mnt-start", 69, "web1", "x", time.Now())
}
