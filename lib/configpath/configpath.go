// Package configpath says where the configuration layers of a hook run live:
// the global file (or -c FILE, or ENVHOOKS_CONFIG), CBSD's sample file, and
// the environment's own file beside the global one. It is apart from
// lib/config so that mnt-start's quick check can find the files without
// linking the parser.
package configpath

import "path/filepath"

// Env names the environment variable that stands in for -c FILE: scripts
// CBSD runs cannot pass flags.
const Env = "ENVHOOKS_CONFIG"

// MaxFile bounds a configuration file: anything larger is refused, not
// read (a configuration is a few KiB).
const MaxFile = 1 << 20

// CBSDSample is where CBSD's NFSv4 sample hook keeps its settings.
const CBSDSample = "/root/etc/env_start_nfs.conf"

// Layers are the files of one run, in the order they are read; empty paths
// are not read.
type Layers struct {
	Global     string // the global file, or -c FILE
	GlobalMust bool   // -c FILE (or ENVHOOKS_CONFIG) was given: it must exist
	CBSDSample string
	PerEnv     string // envhooks.d/<jname>.conf beside the global file
}

// For returns the layers for jname; configFile is -c FILE, or
// ENVHOOKS_CONFIG, or "" for the global file.
func For(configFile, jname string) Layers {
	l := Layers{Global: Global, CBSDSample: CBSDSample}
	if configFile != "" {
		l.Global, l.GlobalMust = configFile, true
	}
	if jname != "" {
		l.PerEnv = filepath.Join(filepath.Dir(l.Global), "envhooks.d", jname+".conf")
	}
	return l
}

// Paths lists the layers' files in reading order.
func (l Layers) Paths() []string {
	var out []string
	for _, p := range []string{l.Global, l.CBSDSample, l.PerEnv} {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}
