package lab_test

import (
	"testing"
	"time"

	"github.com/envhooks/envhooks/tests/kernel/lab"
	"github.com/envhooks/envhooks/tests/kernel/lab/proto"
)

func TestSmoke(t *testing.T) {
	s := time.Now()
	lab.Prepare(t)
	t.Log("prepare", time.Since(s))
	g := lab.Boot(t, lab.Config{Name: "smoke"})
	s = time.Now()
	t.Log(g.Sh(t, "ip link show eth0; cat /proc/cmdline"))
	t.Log("sh", time.Since(s))
	s = time.Now()
	r := g.Run(t, nil, 2*time.Second, "true")
	t.Logf("%+v %s", r, time.Since(s))
	r = g.Exec(t, proto.Command{Argv: []string{"sh", "-c", "echo out; echo err >&2; exit 3"}})
	t.Logf("%d %q %q", r.Code, r.Stdout, r.Stderr)
	s = time.Now()
	g.Poweroff(t)
	t.Log("poweroff", time.Since(s))
}
