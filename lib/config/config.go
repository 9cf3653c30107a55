// Package config reads envhooks' layered configuration: shell-style KEY="value"
// files parsed with godotenv (so CBSD's env_start_nfs.conf works unchanged),
// then the process environment. Every key is declared with Define, checked
// when loaded, and reported with the file and line it came from.
package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/joho/godotenv"

	"github.com/envhooks/envhooks/lib/configpath"
	"github.com/envhooks/envhooks/lib/safefile"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// Key declares one configuration key.
type Key struct {
	Name    string
	Default string
	Doc     string               // one line for the README and the man pages
	Check   func(v string) error // nil accepts anything
}

var (
	registryMu sync.Mutex
	registry   = map[string]Key{}
	aliases    = map[string]string{} // deprecated name -> the key's name
)

// Define declares a key and returns its name, so packages can keep typed
// handles: var rootKey = config.Define(config.Key{Name: "ZFS_ROOT", ...}).
func Define(k Key) string {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[k.Name]; dup || aliases[k.Name] != "" {
		panic("config: key defined twice: " + k.Name)
	}
	registry[k.Name] = k
	return k.Name
}

// Alias is an old name of a key, still read but deprecated.
type Alias struct {
	Name string // the old name
	Key  string // the key that replaces it
}

// DefineAlias declares old as a deprecated name of key, which must be
// declared already: a value given under old is read as key's own, checked
// as key's, and earns a one-line warning that names key. Where both are
// given, the later assignment wins, as for one key.
func DefineAlias(old, key string) string {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, ok := registry[key]; !ok {
		panic("config: alias " + old + " of an undeclared key " + key)
	}
	if _, dup := registry[old]; dup || aliases[old] != "" {
		panic("config: key defined twice: " + old)
	}
	aliases[old] = key
	return old
}

// Aliases returns every deprecated name, sorted.
func Aliases() []Alias {
	registryMu.Lock()
	defer registryMu.Unlock()
	out := make([]Alias, 0, len(aliases))
	for old, key := range aliases {
		out = append(out, Alias{Name: old, Key: key})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Keys returns every declared key, sorted by name.
func Keys() []Key {
	registryMu.Lock()
	defer registryMu.Unlock()
	out := make([]Key, 0, len(registry))
	for _, k := range registry {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Names lists every name a value can be given under, the deprecated ones
// too, sorted.
func Names() []string {
	var out []string
	for _, k := range Keys() {
		out = append(out, k.Name)
	}
	for _, a := range Aliases() {
		out = append(out, a.Name)
	}
	sort.Strings(out)
	return out
}

func lookup(name string) (Key, bool) {
	registryMu.Lock()
	defer registryMu.Unlock()
	k, ok := registry[name]
	return k, ok
}

// resolve finds the key a name stands for: itself, or the key it is a
// deprecated name of (then deprecated is true).
func resolve(name string) (k Key, deprecated, known bool) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if key, ok := aliases[name]; ok {
		return registry[key], true, true
	}
	k, known = registry[name]
	return k, false, known
}

// assign gives the key that name stands for its value; a deprecated name
// earns a warning that says which key replaces it.
func (c *Config) assign(name, value string, at Origin) (known bool, err error) {
	k, deprecated, known := resolve(name)
	if !known {
		return false, nil
	}
	if deprecated {
		c.Warnings = append(c.Warnings, fmt.Sprintf("%s: %s is deprecated, replaced by %s: rename it (its value is read as %s meanwhile)", at, name, k.Name, k.Name))
	}
	return true, c.set(k, name, value, at)
}

// Sources says where the layers come from; empty paths are skipped.
type Sources struct {
	Global     string   // the global file (or -c FILE)
	GlobalMust bool     // -c was given: a missing file is an error
	CBSDSample string   // CBSD's sample config path, read if present
	PerEnv     string   // envhooks.d/<jname>.conf beside the global file
	Environ    []string // the process environment, KEY=value
}

// DefaultSources returns the layers for jname as DESIGN.md lays them out;
// configFile is -c FILE or "".
func DefaultSources(configFile, jname string) Sources {
	l := configpath.For(configFile, jname)
	return Sources{Global: l.Global, GlobalMust: l.GlobalMust, CBSDSample: l.CBSDSample, PerEnv: l.PerEnv, Environ: os.Environ()}
}

// Where the layers live (see lib/configpath).
const (
	GlobalPath     = configpath.Global
	CBSDSamplePath = configpath.CBSDSample
)

// Origin tells where a value came from.
type Origin struct {
	File string // "" for defaults and the environment
	Line int
	Env  bool
}

func (o Origin) String() string {
	switch {
	case o.Env:
		return "the environment"
	case o.File == "":
		return "the built-in default"
	case o.Line > 0:
		return fmt.Sprintf("%s:%d", o.File, o.Line)
	default:
		return o.File
	}
}

// Config is a loaded, checked configuration.
type Config struct {
	values   map[string]string
	origins  map[string]Origin
	Warnings []string // unknown keys and other things an operator should see
}

// Load reads the layers in order, later wins, and checks every value.
func Load(src Sources) (*Config, error) {
	c := &Config{values: map[string]string{}, origins: map[string]Origin{}}
	for _, k := range Keys() {
		c.values[k.Name] = k.Default
	}
	files := []struct {
		path string
		must bool
	}{{src.Global, src.GlobalMust}, {src.CBSDSample, false}, {src.PerEnv, false}}
	for _, f := range files {
		if f.path == "" {
			continue
		}
		if err := c.loadFile(f.path, f.must); err != nil {
			return nil, err
		}
	}
	for _, kv := range src.Environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		// Only declared keys are taken from the environment: it holds many
		// unrelated variables, so unknown ones are not typos here.
		if _, err := c.assign(name, value, Origin{Env: true}); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// LoadFile is Load for a single file, used by tests and tools.
func LoadFile(path string) (*Config, error) {
	return Load(Sources{Global: path, GlobalMust: true})
}

func (c *Config) loadFile(path string, must bool) error {
	raw, err := safefile.Read(path, configpath.MaxFile)
	if errors.Is(err, os.ErrNotExist) && !must {
		return nil
	}
	if err != nil {
		return sysexits.New(sysexits.Config, "cannot read config file %v", pathFirst(err, path))
	}
	raw = bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n"))
	if line, why := badLine(raw); line > 0 {
		return sysexits.New(sysexits.Config, "config file %s:%d: %s", path, line, why)
	}
	if len(raw) > 0 && raw[len(raw)-1] != '\n' {
		raw = append(raw, '\n')
	}
	parsed, err := godotenv.UnmarshalBytes(raw)
	if err != nil {
		// godotenv quotes the rest of the file in its errors: never echo
		// it (a secret, megabytes of garbage).
		return sysexits.New(sysexits.Config, "config file %s cannot be read as KEY=\"value\" lines", path)
	}
	lines := keyLines(raw)
	names := make([]string, 0, len(parsed))
	for name := range parsed {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool { return lines[names[i]] < lines[names[j]] })
	for _, name := range names {
		at := Origin{File: path, Line: lines[name]}
		known, err := c.assign(name, parsed[name], at)
		if err != nil {
			return err
		}
		if !known {
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s: unknown key %.64s ignored (a typo?)", at, name))
		}
	}
	return nil
}

// pathFirst makes a read error start with the path exactly once.
func pathFirst(err error, path string) string {
	msg := err.Error()
	if strings.HasPrefix(msg, path) {
		return msg
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Sprintf("%s: %v", path, pe.Err)
	}
	return fmt.Sprintf("%s: %s", path, msg)
}

// badLine returns the first line of raw that is not blank, a comment or an
// assignment as godotenv reads one (a quoted value may run over several
// lines, and only a comment may follow its closing quote), with what is
// wrong with it; 0 when every line is fine. godotenv itself takes a last
// line without "=" and without a newline as a value of the empty key, and
// text after a closing quote as the next assignment.
func badLine(raw []byte) (int, string) {
	lines := strings.Split(string(raw), "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if strings.IndexByte(line, 0) >= 0 {
			return i + 1, "a NUL byte: this is not a text file"
		}
		t := strings.TrimLeft(line, " \t")
		if t == "" || t[0] == '#' {
			continue
		}
		if _, ok := assignedKey(t); !ok {
			return i + 1, `not a KEY="value" line`
		}
		// The key has no '=' or ':' in it: the first is the separator.
		value := strings.TrimLeft(t[strings.IndexAny(t, "=:")+1:], " \t")
		if value == "" || (value[0] != '"' && value[0] != '\'') {
			continue
		}
		end, tail, ok := closingQuote(lines, i, value)
		if !ok {
			return i + 1, "the quoted value is never closed"
		}
		if tail = strings.TrimLeft(tail, " \t"); tail != "" && tail[0] != '#' {
			return end + 1, "text after the closing quote"
		}
		i = end
	}
	return 0, ""
}

// closingQuote finds the quote that closes value (which starts with it),
// from line i on, as godotenv does: the first quote character not right
// after a backslash. It returns the line it is on and what follows it.
func closingQuote(lines []string, i int, value string) (int, string, bool) {
	q := value[0]
	text, prev := value[1:], value[0]
	for {
		for j := 0; j < len(text); j++ {
			if text[j] == q && prev != '\\' {
				return i, text[j+1:], true
			}
			prev = text[j]
		}
		if i++; i >= len(lines) {
			return 0, "", false
		}
		text, prev = lines[i], '\n'
	}
}

// set checks and stores a value of k given under name (k's own or a
// deprecated one, which the error names as the operator wrote it).
func (c *Config) set(k Key, name, value string, at Origin) error {
	if k.Check != nil {
		if err := k.Check(value); err != nil {
			return sysexits.New(sysexits.Config, "%s: %s=%.64q: %v", at, name, value, err)
		}
	}
	c.values[k.Name] = value
	c.origins[k.Name] = at
	return nil
}

// keyLines finds the line of the last assignment of each key, which is the
// one godotenv keeps, so errors can point at it.
func keyLines(raw []byte) map[string]int {
	lines := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		if name, ok := assignedKey(sc.Text()); ok {
			lines[name] = n
		}
	}
	return lines
}

// assignedKey returns the key a line assigns, as godotenv reads it:
// optional "export ", a name, optional blanks, then '=' or ':'.
func assignedKey(line string) (string, bool) {
	line = strings.TrimLeft(line, " \t")
	if rest, ok := strings.CutPrefix(line, "export"); ok && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
		line = strings.TrimLeft(rest, " \t")
	}
	end := 0
	for end < len(line) {
		c := line[end]
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || end > 0 && (c >= '0' && c <= '9' || c == '.')) {
			break
		}
		end++
	}
	rest := strings.TrimLeft(line[end:], " \t")
	if end == 0 || rest == "" || rest[0] != '=' && rest[0] != ':' {
		return "", false
	}
	return line[:end], true
}

// Get returns a key's value. Asking for an undeclared key is a bug.
func (c *Config) Get(name string) string {
	v, ok := c.values[name]
	if !ok {
		if _, known := lookup(name); !known {
			panic("config: undeclared key " + name)
		}
	}
	return v
}

// Set overrides a value after loading (flags that mirror keys); it is
// checked like any other value.
func (c *Config) Set(name, value string) error {
	known, err := c.assign(name, value, Origin{Env: true})
	if !known {
		return sysexits.New(sysexits.Config, "unknown configuration key %s", name)
	}
	return err
}

// Clone returns an independent copy, for a caller that overrides a value
// for one operation.
func (c *Config) Clone() *Config {
	n := &Config{values: make(map[string]string, len(c.values)), origins: make(map[string]Origin, len(c.origins)), Warnings: c.Warnings}
	for k, v := range c.values {
		n.values[k] = v
	}
	for k, v := range c.origins {
		n.origins[k] = v
	}
	return n
}

// IsSet reports whether a key was given by any layer, not just defaulted.
func (c *Config) IsSet(name string) bool { _, ok := c.origins[name]; return ok }

// Where tells where a key's value came from.
func (c *Config) Where(name string) Origin { return c.origins[name] }

// Bool reads a key checked with IsBool.
func (c *Config) Bool(name string) bool { return parseBool(c.Get(name)) }

// Int reads a key checked with IsInt or IsSeconds.
func (c *Config) Int(name string) int { n, _ := strconv.Atoi(strings.TrimSpace(c.Get(name))); return n }

// Seconds reads a key checked with IsSeconds as a duration.
func (c *Config) Seconds(name string) time.Duration {
	return time.Duration(c.Int(name)) * time.Second
}

// Words splits a key's value on white space.
func (c *Config) Words(name string) []string { return strings.Fields(c.Get(name)) }

// Errorf builds a configuration error that points at where key was set.
func (c *Config) Errorf(name, format string, args ...any) error {
	return sysexits.New(sysexits.Config, "%s: %s: %s", c.Where(name), name, fmt.Sprintf(format, args...))
}
