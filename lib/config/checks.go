package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/envhooks/envhooks/lib/descriptor"
)

func parseBool(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "yes", "true", "on":
		return true
	}
	return false
}

// IsBool accepts 0/1 as CBSD's sample writes them, and yes/no, true/false, on/off.
func IsBool(v string) error {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "0", "1", "yes", "no", "true", "false", "on", "off":
		return nil
	}
	return errors.New("want 0 or 1")
}

// IsInt accepts a non-negative integer.
func IsInt(v string) error {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 {
		return errors.New("want a whole number")
	}
	return nil
}

// IsSeconds accepts a positive number of seconds, at most a day: a deadline
// longer than that is a hang by another name.
func IsSeconds(v string) error {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n <= 0 || n > 86400 {
		return errors.New("want a number of seconds between 1 and 86400")
	}
	return nil
}

// OneOf accepts exactly one of the listed values (or empty when "" is listed).
func OneOf(allowed ...string) func(string) error {
	return func(v string) error {
		for _, a := range allowed {
			if v == a {
				return nil
			}
		}
		return fmt.Errorf("want one of %s", strings.Join(quoteAll(allowed), ", "))
	}
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = strconv.Quote(v)
	}
	return out
}

// IsAbsPath accepts an empty value or a clean absolute path without control
// characters.
func IsAbsPath(v string) error {
	if v == "" {
		return nil
	}
	if !filepath.IsAbs(v) {
		return errors.New("want an absolute path")
	}
	if strings.ContainsAny(v, "\x00\n\r\t") {
		return errors.New("a path may not contain control characters")
	}
	return nil
}

// IsName accepts an empty value or a single word of safe characters, such as
// a node name.
func IsName(v string) error {
	if v == "" {
		return nil
	}
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_.-", r)) {
			return errors.New("want letters, digits, '_', '.' and '-' only")
		}
	}
	return nil
}

func isBoolOrAuto(v string) error {
	if strings.EqualFold(strings.TrimSpace(v), "auto") {
		return nil
	}
	if IsBool(v) != nil {
		return errors.New("want 0, 1 or auto")
	}
	return nil
}

// isWorkdir is WORKDIR's check: it must survive the round trip through a
// portable descriptor (descriptor.CheckWorkdir decides).
func isWorkdir(v string) error { return descriptor.CheckWorkdir(v) }
