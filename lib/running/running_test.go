package running

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/run"
	"github.com/envhooks/envhooks/lib/sysexits"
)

func TestFreeBSDCheckArgv(t *testing.T) {
	assert.Equal(t, []string{"jls", "-j", "%j", "jid"}, FreeBSDCheck(Jail))
	assert.Equal(t, []string{"exists:/dev/vmm/%j"}, FreeBSDCheck(VM))
}

func load(t *testing.T, check string) *config.Config {
	t.Helper()
	cfg, err := config.Load(config.Sources{})
	require.NoError(t, err)
	require.NoError(t, cfg.Set(config.RunningCheck, check))
	return cfg
}

func TestCheck(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := load(t, "exists:"+dir+"/run-%j")
	on, _, err := Check(ctx, nil, cfg, "web1", Jail)
	require.NoError(t, err)
	assert.False(t, on)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "run-web1"), nil, 0o644))
	on, how, err := Check(ctx, nil, cfg, "web1", Jail)
	require.NoError(t, err)
	assert.True(t, on, how)
	err = RefuseIfRunning(ctx, nil, cfg, "web1", Jail)
	assert.Equal(t, sysexits.TempFail, sysexits.Code(err))

	rec := &run.Recorder{Respond: func(c run.Cmd) (run.Result, error) {
		return run.Result{}, &run.Error{Cmd: c, ExitCode: 1}
	}}
	cfg = load(t, "jls -j %j jid")
	on, _, err = Check(ctx, rec, cfg, "web1", Jail)
	require.NoError(t, err)
	assert.False(t, on)
	assert.Equal(t, [][]string{{"jls", "-j", "web1", "jid"}}, rec.Argvs())
	rec.Respond = func(c run.Cmd) (run.Result, error) { return run.Result{}, &run.Error{Cmd: c, ExitCode: 2} }
	err = RefuseIfRunning(ctx, rec, cfg, "web1", Jail)
	assert.Equal(t, sysexits.TempFail, sysexits.Code(err), "a check that cannot answer refuses")
	assert.True(t, Configured(cfg, Jail))
}
