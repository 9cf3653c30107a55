package doctor

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCommands(t *testing.T) {
	fs := Commands("c", "sh", "envhooks-no-such-program")
	require.Len(t, fs, 2)
	assert.Equal(t, OK, fs[0].Status)
	assert.Equal(t, Fail, fs[1].Status)
	assert.Equal(t, 69, fs[1].Code)
	assert.Equal(t, 69, Code(fs), "the first failure's code")
	assert.Equal(t, 0, Code(fs[:1]))
}

func TestAnswers(t *testing.T) {
	ctx := context.Background()
	assert.Equal(t, OK, Answers(ctx, "a", time.Second, []string{"sh", "-c", "exit 21"}, []int{0, 21}, "no sessions", "").Status)
	f := Answers(ctx, "a", time.Second, []string{"sh", "-c", "echo cannot connect >&2; exit 20"}, []int{0, 21}, "", "start it")
	assert.Equal(t, Fail, f.Status)
	assert.Contains(t, f.Detail, "cannot connect")
	assert.Equal(t, "start it", f.Fix)
	start := time.Now()
	f = Answers(ctx, "a", 200*time.Millisecond, []string{"sleep", "10"}, []int{0}, "", "")
	assert.Equal(t, Fail, f.Status, "a command that hangs fails at its deadline")
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.Equal(t, Fail, Answers(ctx, "a", time.Second, []string{"envhooks-no-such-program"}, []int{0}, "", "").Status)
}

func TestKldstatArgv(t *testing.T) {
	// kldstat(8): -q quiet, -m the module by name.
	assert.Equal(t, []string{"kldstat", "-q", "-m", "nullfs"}, KldstatArgv("nullfs"))
}
