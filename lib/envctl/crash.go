package envctl

import (
	"os"
	"syscall"
)

// CrashEnv names a test-only fault point: when it equals a step's name,
// envctl kills itself with SIGKILL right after that step, as a power cut
// would. The migration tests use it to prove that running the command again
// converges. It has no other effect.
const CrashEnv = "ENVHOOKS_CRASH_AFTER"

func crashPoint(step string) {
	if v := os.Getenv(CrashEnv); v != "" && v == step {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
}
