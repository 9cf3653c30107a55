package iscsi_test

import (
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/envhooks/envhooks/hooks/iscsi"
	"github.com/envhooks/envhooks/lib/config"
)

// TestExamplesLoad keeps examples/iscsi honest: every key is known and
// valid, and this OS's example builds a backend.
func TestExamplesLoad(t *testing.T) {
	files, _ := filepath.Glob("../../examples/iscsi/*.conf")
	if len(files) < 3 {
		t.Fatalf("found %d example configs, want the FreeBSD UFS, FreeBSD ZFS and Linux ext4 ones", len(files))
	}
	for _, f := range files {
		cfg, err := config.LoadFile(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if len(cfg.Warnings) > 0 {
			t.Errorf("%s: %v", f, cfg.Warnings)
		}
		if !strings.HasPrefix(filepath.Base(f), runtime.GOOS) {
			continue
		}
		// The CHAP file named there does not exist on a test machine.
		if err := cfg.Set("ISCSI_CHAP_FILE", ""); err != nil {
			t.Fatal(err)
		}
		if _, err := iscsi.New(cfg); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}
