package iscsi_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/envhooks/envhooks/lib/iscsi"
	"github.com/envhooks/envhooks/lib/iscsi/iscsitest"
)

func opts(c *iscsi.Credentials) iscsi.Options {
	return iscsi.Options{InitiatorName: "iqn.2026-01.org.envhooks.test:unit", CHAP: c, Timeout: 5 * time.Second}
}

func TestCHAPDiscovery(t *testing.T) {
	p := iscsitest.Start(t, &iscsitest.Portal{Targets: []string{"iqn.2026-01.org.example:web1"}, CHAPUser: "web", CHAPSecret: "0123456789abcdef"})
	ts, err := iscsi.Discover(context.Background(), p.Addr, opts(&iscsi.Credentials{User: "web", Secret: "0123456789abcdef"}))
	if err != nil || len(ts) != 1 || ts[0].Name != "iqn.2026-01.org.example:web1" {
		t.Fatalf("got %v, %v", ts, err)
	}

	_, err = iscsi.Discover(context.Background(), p.Addr, opts(&iscsi.Credentials{User: "web", Secret: "wrong-secret-0000"}))
	var e *iscsi.Error
	if !errors.As(err, &e) || !e.Auth {
		t.Fatalf("wrong secret: got %v, want an authentication error", err)
	}
	if errors.As(err, &e) && (contains(err.Error(), "wrong-secret-0000") || contains(err.Error(), "0123456789abcdef")) {
		t.Fatalf("the error carries a secret: %v", err)
	}

	_, err = iscsi.Discover(context.Background(), p.Addr, opts(nil))
	if !errors.As(err, &e) || !e.Auth {
		t.Fatalf("no credentials: got %v, want an authentication error", err)
	}
	if p.Logins() != 1 {
		t.Fatalf("%d logins reached the full feature phase, want 1", p.Logins())
	}
}

func TestCHAPOfferedToAPortalThatNeedsNone(t *testing.T) {
	p := iscsitest.Start(t, &iscsitest.Portal{Targets: []string{"iqn.2026-01.org.example:a"}})
	ts, err := iscsi.Discover(context.Background(), p.Addr, opts(&iscsi.Credentials{User: "u", Secret: "s"}))
	if err != nil || len(ts) != 1 {
		t.Fatalf("got %v, %v", ts, err)
	}
}

func TestLongAnswerSpansPDUs(t *testing.T) {
	var want []string
	for i := 0; i < 50; i++ {
		want = append(want, fmt.Sprintf("iqn.2026-01.org.example:env%02d", i))
	}
	p := iscsitest.Start(t, &iscsitest.Portal{Targets: want, SplitText: 100})
	ts, err := iscsi.Discover(context.Background(), p.Addr, opts(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := iscsi.Names(ts); !slices.Equal(got, want) {
		t.Fatalf("got %v", got)
	}
	for _, tg := range ts {
		if len(tg.Addresses) != 1 || tg.Addresses[0] != p.Addr+",1" {
			t.Fatalf("%s: addresses %v", tg.Name, tg.Addresses)
		}
	}
}

func TestPortal(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.1":         "10.0.0.1:3260",
		"10.0.0.1:3261":    "10.0.0.1:3261",
		"san.example":      "san.example:3260",
		"[fd00::1]":        "[fd00::1]:3260",
		"[fd00::1]:3262":   "[fd00::1]:3262",
		"fd00::1":          "[fd00::1]:3260",
		" 127.0.0.1:3260 ": "127.0.0.1:3260",
	} {
		if got, err := iscsi.Portal(in); err != nil || got != want {
			t.Errorf("Portal(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "host:0", "host:99999", ":3260", "a b", "host:x"} {
		if got, err := iscsi.Portal(bad); err == nil {
			t.Errorf("Portal(%q) = %q, want an error", bad, got)
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
