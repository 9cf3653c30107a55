package mounttab

import (
	"fmt"
	"path"
	"strings"
)

// Want describes the mount a step expects at its target, so the engine can
// tell "already done" from "something else is mounted here".
type Want struct {
	FSType string `json:"fstype,omitempty"`  // "" matches any type
	Source string `json:"source,omitempty"`  // compared with SameSource
	BindOf string `json:"bind_of,omitempty"` // a directory the mount must show (bind/nullfs)
}

// Matches reports whether mount m is the wanted one.
func (t Table) Matches(m Mount, w Want) bool {
	if w.FSType != "" && m.FSType != w.FSType {
		return false
	}
	if w.BindOf != "" {
		return t.ShowsDir(m, w.BindOf)
	}
	return SameSource(m.Source, w.Source)
}

// String describes the wanted mount for messages.
func (w Want) String() string {
	src := w.Source
	if w.BindOf != "" {
		src = w.BindOf
	}
	if w.FSType == "" {
		return src
	}
	return fmt.Sprintf("%s (%s)", src, w.FSType)
}

// SameSource compares two mount sources the way the kernel may have
// rewritten them: "host:/a/b/" equals "host:/a/b", "[::1]:/x" equals "::1:/x".
func SameSource(a, b string) bool { return normalizeSource(a) == normalizeSource(b) }

func normalizeSource(s string) string {
	host, p, remote := splitRemote(s)
	if !remote {
		if strings.HasPrefix(s, "/") {
			return path.Clean(s)
		}
		return s
	}
	return strings.ToLower(host) + ":" + path.Clean("/"+p)
}

// splitRemote splits "host:/path" (host may be a bracketed or bare IPv6
// address) into host and path.
func splitRemote(s string) (host, p string, ok bool) {
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]:")
		if end < 0 {
			return "", "", false
		}
		return s[1:end], s[end+2:], true
	}
	i := strings.LastIndex(s, ":/")
	if i <= 0 {
		return "", "", false
	}
	return s[:i], s[i+1:], true
}

// Describe names a mount for messages: "src (type)".
func (m Mount) Describe() string {
	if m.Root != "" && m.Root != "/" {
		return fmt.Sprintf("%s[%s] (%s)", m.Source, m.Root, m.FSType)
	}
	return fmt.Sprintf("%s (%s)", m.Source, m.FSType)
}
