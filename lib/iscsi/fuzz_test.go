package iscsi

import (
	"bytes"
	"testing"
)

// FuzzReadPDU feeds the PDU reader what a target (or anything listening on
// a portal) could send: it never panics, never returns a data segment over
// the bound, and what it returns marshals back to a PDU it reads the same.
func FuzzReadPDU(f *testing.F) {
	login := &pdu{}
	login.bhs[0] = opLogoutReq
	login.data = encodeKeys([][2]string{{"TargetName", "iqn.2026-01.org.example:web1"}, {"TargetAddress", "127.0.0.1:3260,1"}})
	login.setDataLen(len(login.data))
	f.Add(login.marshal())
	f.Add(make([]byte, 48))
	f.Add(append(make([]byte, 4), 0x01, 0xff, 0xff, 0xff))
	f.Fuzz(func(t *testing.T, raw []byte) {
		p, err := readPDU(bytes.NewReader(raw))
		if err != nil {
			return
		}
		if len(p.data) > maxDataSegment {
			t.Fatalf("a %d-byte data segment passed the %d-byte bound", len(p.data), maxDataSegment)
		}
		p.bhs[4] = 0 // marshal writes no additional header segments
		again, err := readPDU(bytes.NewReader(p.marshal()))
		if err != nil || !bytes.Equal(again.data, p.data) || again.bhs != p.bhs {
			t.Fatalf("a PDU read back differs: %v", err)
		}
	})
}

// FuzzDecodeKeys: any text segment splits into pairs without panicking,
// and the pairs survive encoding and decoding again.
func FuzzDecodeKeys(f *testing.F) {
	f.Add([]byte("TargetName=iqn.2026-01.org.example:web1\x00TargetAddress=127.0.0.1:3260,1\x00"))
	f.Add([]byte("CHAP_A=5\x00CHAP_I=1\x00CHAP_C=0x0123\x00"))
	f.Add([]byte("=\x00\x00==\x00novalue\x00"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		kv := decodeKeys(raw)
		for _, p := range kv {
			if bytes.IndexByte([]byte(p[0]), 0) >= 0 || bytes.IndexByte([]byte(p[1]), 0) >= 0 {
				t.Fatalf("a NUL inside a decoded pair: %q", p)
			}
		}
		_ = parseTargets(kv)
		if len(kv) > 0 && kv[0][0] != "" && !bytes.ContainsRune([]byte(kv[0][0]), '=') {
			again := decodeKeys(encodeKeys(kv[:1]))
			if len(again) != 1 || again[0] != kv[0] {
				t.Fatalf("%q does not survive a round trip: %q", kv[0], again)
			}
		}
	})
}

// FuzzPortal: a portal from the configuration is accepted as host:port or
// refused, never panics.
func FuzzPortal(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "127.0.0.1:3260", "[::1]:3260", "::1", "host.example:99999", "", ":", "[::1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if p, err := Portal(s); err == nil && p == "" {
			t.Fatalf("Portal(%q) accepted an empty portal", s)
		}
	})
}
