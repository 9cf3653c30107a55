//go:build linux

// Command fakecbsd stands in for the cbsd program on a test node: it runs
// CBSD's commands as tests/cbsd/replay plays them, on real bind mounts and
// with the real envhooks programs as hooks. The tests install it behind a
// per-node wrapper (CBSD_COMMAND), so envctl's CBSD_DELEGATE=1 runs its
// jregister and junregister exactly as it would run CBSD's.
//
//	fakecbsd NODE.json VERB jname=NAME [rcfile=FILE]
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/envhooks/envhooks/tests/cbsd/replay"
)

// Config describes the node the wrapper stands for.
type Config struct {
	Name, Workdir, Base, Ports, RunDir string
	Bin                                string   // the envhooks programs
	Env                                []string // added to the hooks' environment
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "cbsd: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("usage: fakecbsd NODE.json VERB jname=NAME [rcfile=FILE]")
	}
	raw, err := os.ReadFile(args[0])
	if err != nil {
		return err
	}
	var c Config
	if err := json.Unmarshal(raw, &c); err != nil {
		return err
	}
	ops := map[string]string{}
	for _, a := range args[2:] {
		k, v, _ := strings.Cut(a, "=")
		ops[k] = v
	}
	n, err := replay.New(c.Name, c.Workdir, c.Base, c.Ports, c.RunDir, replay.OSKernel{}, &replay.ProgramHooks{Bin: c.Bin, Env: c.Env})
	if err != nil {
		return err
	}
	j := ops["jname"]
	switch args[1] {
	case "jregister":
		return n.JRegister(j, ops["rcfile"])
	case "junregister":
		return n.JUnregister(j)
	case "jstart":
		return n.JStart(j)
	case "jstop":
		return n.JStop(j)
	case "jcleanup":
		return n.JCleanup(j)
	case "bstart":
		return n.BStart(j)
	case "bstop":
		return n.BStop(j)
	}
	return fmt.Errorf("fakecbsd: %s is not played", args[1])
}
