// Package lxcconf reads LXC container configuration files
// (lxc.container.conf(5)) as far as envctl needs them to move a container
// between nodes: "key = value" lines, where the container's root file
// system is, and the container directory the paths in it are written for.
package lxcconf

import (
	"bytes"
	"path/filepath"
	"strings"

	"github.com/envhooks/envhooks/lib/sysexits"
)

// FileName is the name LXC gives a container's config file in its
// directory, <lxcpath>/<name>/config.
const FileName = "config"

// Keys envctl reads.
const (
	RootfsKey   = "lxc.rootfs.path"
	PreStartKey = "lxc.hook.pre-start"
	PostStopKey = "lxc.hook.post-stop"
)

// Config is a parsed config file; Raw is kept byte for byte.
type Config struct {
	Raw    []byte
	values map[string][]string
}

// Parse reads raw (from where, for messages). LXC itself refuses what it
// cannot read when the container starts; Parse refuses lines that are not
// "key = value" with a key of LXC's namespace, so that a file that is not
// a container config (a CBSD descriptor given by mistake) is caught early.
func Parse(raw []byte, where string) (*Config, error) {
	c := &Config{Raw: raw, values: map[string][]string{}}
	for i, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if !ok || !strings.HasPrefix(key, "lxc.") || strings.ContainsAny(key, " \t") {
			return nil, sysexits.New(sysexits.DataErr, "%s:%d: not an LXC config line (key = value with an lxc.* key): %.60q", where, i+1, line)
		}
		c.values[key] = append(c.values[key], value)
	}
	return c, nil
}

// Get returns the last value of key ("" when it is not set), the one LXC
// uses for single-valued keys.
func (c *Config) Get(key string) string {
	v := c.values[key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// All returns every value of a key that may repeat (hooks, mount entries).
func (c *Config) All(key string) []string { return c.values[key] }

// Rootfs is the directory lxc.rootfs.path names: a plain path or a dir:
// one. Other storage types, and no rootfs at all, are errors: envhooks
// attaches directories.
func (c *Config) Rootfs(where string) (string, error) {
	p := strings.TrimPrefix(c.Get(RootfsKey), "dir:")
	if !filepath.IsAbs(p) {
		return "", sysexits.New(sysexits.DataErr, "%s: %s = %q: want the directory of the root file system (dir:/var/lib/lxc/NAME/rootfs)", where, RootfsKey, c.Get(RootfsKey))
	}
	return filepath.Clean(p), nil
}

// Runs reports whether one of key's hooks runs program (by its base name).
func (c *Config) Runs(key, program string) bool {
	for _, v := range c.All(key) {
		if f := strings.Fields(v); len(f) > 0 && filepath.Base(f[0]) == program {
			return true
		}
	}
	return false
}

// Relocate rewrites every value path that lies in the container directory
// from to lie in to instead: a config moved between nodes whose lxcpath
// differs. Only whole path prefixes are replaced (from followed by '/', a
// blank or the end of the line), literally.
func Relocate(raw []byte, from, to string) []byte {
	from, to = strings.TrimRight(from, "/"), strings.TrimRight(to, "/")
	if from == to || from == "" {
		return raw
	}
	var out bytes.Buffer
	for i, line := range bytes.Split(raw, []byte("\n")) {
		if i > 0 {
			out.WriteByte('\n')
		}
		key, value, ok := bytes.Cut(line, []byte("="))
		if t := bytes.TrimSpace(line); !ok || len(t) == 0 || t[0] == '#' {
			out.Write(line)
			continue
		}
		out.Write(key)
		out.WriteByte('=')
		out.Write(replacePaths(value, from, to))
	}
	return out.Bytes()
}

func replacePaths(value []byte, from, to string) []byte {
	var out bytes.Buffer
	for rest := value; ; {
		i := bytes.Index(rest, []byte(from))
		if i < 0 {
			out.Write(rest)
			return out.Bytes()
		}
		end := i + len(from)
		before := i == 0 || strings.IndexByte(" \t:", rest[i-1]) >= 0
		after := end == len(rest) || strings.IndexByte("/ \t", rest[end]) >= 0
		out.Write(rest[:i])
		if before && after {
			out.WriteString(to)
		} else {
			out.WriteString(from)
		}
		rest = rest[end:]
	}
}
