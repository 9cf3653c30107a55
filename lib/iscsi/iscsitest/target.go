// Package iscsitest is a fake iSCSI portal on 127.0.0.1 that answers a
// discovery session (login with or without CHAP, SendTargets, logout), for
// tests that need a portal without root or a real target daemon. It checks
// CHAP responses the way RFC 7143 and RFC 1994 define them, so a client
// that computes them wrongly is refused.
package iscsitest

import (
	"bytes"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// Portal is a running fake portal.
type Portal struct {
	Addr    string   // 127.0.0.1:port
	Targets []string // offered to SendTargets=All
	// CHAPUser and CHAPSecret, when set, make CHAP mandatory for discovery.
	CHAPUser, CHAPSecret string
	// SplitText sends the SendTargets answer in PDUs of this many bytes of
	// data (0: one PDU), to exercise continuation.
	SplitText int

	mu     sync.Mutex
	logins int
}

// Logins counts discovery sessions that reached the full feature phase.
func (p *Portal) Logins() int { p.mu.Lock(); defer p.mu.Unlock(); return p.logins }

// Start serves p on a fresh 127.0.0.1 port until the test ends.
func Start(t testing.TB, p *Portal) *Portal {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.Addr = l.Addr().String()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); p.serve(c) }()
		}
	}()
	t.Cleanup(func() { l.Close(); wg.Wait() })
	return p
}

type pdu struct {
	bhs  [48]byte
	data []byte
}

func read(r io.Reader) (*pdu, error) {
	p := &pdu{}
	if _, err := io.ReadFull(r, p.bhs[:]); err != nil {
		return nil, err
	}
	n := int(p.bhs[5])<<16 | int(p.bhs[6])<<8 | int(p.bhs[7])
	buf := make([]byte, (n+3)&^3)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	p.data = buf[:n]
	return p, nil
}

func (p *pdu) write(w io.Writer) error {
	n := len(p.data)
	p.bhs[5], p.bhs[6], p.bhs[7] = byte(n>>16), byte(n>>8), byte(n)
	b := append(append([]byte{}, p.bhs[:]...), p.data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	_, err := w.Write(b)
	return err
}

func keys(data []byte) map[string]string {
	m := map[string]string{}
	for _, f := range bytes.Split(data, []byte{0}) {
		if k, v, ok := bytes.Cut(f, []byte{'='}); ok {
			m[string(k)] = string(v)
		}
	}
	return m
}

func enc(kv ...string) []byte {
	var b bytes.Buffer
	for i := 0; i+1 < len(kv); i += 2 {
		b.WriteString(kv[i] + "=" + kv[i+1])
		b.WriteByte(0)
	}
	return b.Bytes()
}

var challenge = []byte{0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x01}

const chapID = 42

func (p *Portal) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	statSN := uint32(100)
	expCmdSN := uint32(0)
	authed := p.CHAPUser == ""
	for {
		req, err := read(c)
		if err != nil {
			return
		}
		resp := &pdu{}
		copy(resp.bhs[16:20], req.bhs[16:20]) // ITT
		cmdSN := binary.BigEndian.Uint32(req.bhs[24:28])
		if expCmdSN == 0 {
			expCmdSN = cmdSN
		}
		switch req.bhs[0] & 0x3f {
		case 0x03: // login
			k := keys(req.data)
			resp.bhs[0] = 0x23
			copy(resp.bhs[8:14], req.bhs[8:14])
			csg, nsg, transit := int(req.bhs[1]>>2&3), int(req.bhs[1]&3), req.bhs[1]&0x80 != 0
			var out []byte
			fail := func(class, detail byte) {
				resp.bhs[36], resp.bhs[37] = class, detail
			}
			switch {
			case csg == 0 && k["AuthMethod"] != "":
				methods := strings.Split(k["AuthMethod"], ",")
				if p.CHAPUser != "" {
					if !contains(methods, "CHAP") {
						fail(2, 1)
						break
					}
					out = enc("AuthMethod", "CHAP")
					transit = false
				} else {
					out = enc("AuthMethod", "None")
				}
			case csg == 0 && k["CHAP_A"] != "":
				out = enc("CHAP_A", "5", "CHAP_I", "42", "CHAP_C", "0x"+hex.EncodeToString(challenge))
				transit = false
			case csg == 0 && k["CHAP_N"] != "":
				h := md5.New()
				h.Write([]byte{chapID})
				h.Write([]byte(p.CHAPSecret))
				h.Write(challenge)
				if k["CHAP_N"] != p.CHAPUser || k["CHAP_R"] != "0x"+hex.EncodeToString(h.Sum(nil)) {
					fail(2, 1)
					break
				}
				authed = true
			case csg == 1 && !authed:
				fail(2, 1)
			case csg == 1:
				out = enc("HeaderDigest", "None", "DataDigest", "None", "MaxRecvDataSegmentLength", "8192")
				if transit && nsg == 3 {
					p.mu.Lock()
					p.logins++
					p.mu.Unlock()
				}
			}
			if resp.bhs[36] == 0 {
				resp.bhs[1] = byte(csg<<2 | nsg)
				if transit {
					resp.bhs[1] |= 0x80
				}
			}
			resp.bhs[14], resp.bhs[15] = 0, 7 // TSIH
			resp.data = out
			binary.BigEndian.PutUint32(resp.bhs[24:28], statSN)
			binary.BigEndian.PutUint32(resp.bhs[28:32], expCmdSN)
			binary.BigEndian.PutUint32(resp.bhs[32:36], expCmdSN+8)
			statSN++
			if resp.write(c) != nil || resp.bhs[36] != 0 {
				return
			}
		case 0x04: // text
			expCmdSN = cmdSN + 1
			ttt := binary.BigEndian.Uint32(req.bhs[20:24])
			var all []byte
			for _, t := range p.Targets {
				all = append(all, enc("TargetName", t, "TargetAddress", p.Addr+",1")...)
			}
			off := 0
			if ttt != 0xffffffff {
				off = int(ttt)
			}
			chunk := all[off:]
			final := true
			if p.SplitText > 0 && len(chunk) > p.SplitText {
				chunk, final = chunk[:p.SplitText], false
			}
			resp.bhs[0] = 0x24
			if final {
				resp.bhs[1] = 0x80
				binary.BigEndian.PutUint32(resp.bhs[20:24], 0xffffffff)
			} else {
				resp.bhs[1] = 0x40
				binary.BigEndian.PutUint32(resp.bhs[20:24], uint32(off+len(chunk)))
			}
			resp.data = chunk
			binary.BigEndian.PutUint32(resp.bhs[24:28], statSN)
			binary.BigEndian.PutUint32(resp.bhs[28:32], expCmdSN)
			binary.BigEndian.PutUint32(resp.bhs[32:36], expCmdSN+8)
			statSN++
			if resp.write(c) != nil {
				return
			}
		case 0x06: // logout
			resp.bhs[0] = 0x26
			resp.bhs[1] = 0x80
			binary.BigEndian.PutUint32(resp.bhs[24:28], statSN)
			resp.write(c)
			return
		default:
			return
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
