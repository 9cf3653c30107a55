package iscsi

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
)

// Opcodes and flags from RFC 7143 section 11 that a discovery session uses.
const (
	opLoginReq  = 0x03
	opTextReq   = 0x04
	opLogoutReq = 0x06
	opLoginResp = 0x23
	opTextResp  = 0x24
	opLogoutRsp = 0x26
	opReject    = 0x3f

	flagImmediate = 0x40 // byte 0: an immediate command
	flagFinal     = 0x80 // byte 1: F (text) or T (login: transit)
	flagContinue  = 0x40 // byte 1: C, more text follows in the next PDU

	bhsLen = 48
	// maxDataSegment bounds what we accept from a target in one PDU; we
	// declare 64 KiB as MaxRecvDataSegmentLength, so a larger one is a
	// protocol error, not something to allocate.
	maxDataSegment = 64 * 1024
)

// Login stages (CSG/NSG).
const (
	stageSecurity    = 0
	stageOperational = 1
	stageFullFeature = 3
)

// pdu is one iSCSI PDU: the 48-byte basic header segment and the data
// segment (digests are never negotiated, AHS is skipped on read).
type pdu struct {
	bhs  [bhsLen]byte
	data []byte
}

func (p *pdu) opcode() byte { return p.bhs[0] & 0x3f }

func (p *pdu) setDataLen(n int) {
	p.bhs[5], p.bhs[6], p.bhs[7] = byte(n>>16), byte(n>>8), byte(n)
}

func (p *pdu) u32(off int) uint32      { return binary.BigEndian.Uint32(p.bhs[off:]) }
func (p *pdu) put32(off int, v uint32) { binary.BigEndian.PutUint32(p.bhs[off:], v) }

// marshal renders the PDU with its data segment padded to 4 bytes.
func (p *pdu) marshal() []byte {
	p.setDataLen(len(p.data))
	out := make([]byte, 0, bhsLen+len(p.data)+3)
	out = append(out, p.bhs[:]...)
	out = append(out, p.data...)
	for len(out)%4 != 0 {
		out = append(out, 0)
	}
	return out
}

// readPDU reads one PDU; the caller's connection deadline bounds it.
func readPDU(r io.Reader) (*pdu, error) {
	p := &pdu{}
	if _, err := io.ReadFull(r, p.bhs[:]); err != nil {
		return nil, err
	}
	ahs := int(p.bhs[4]) * 4
	n := int(p.bhs[5])<<16 | int(p.bhs[6])<<8 | int(p.bhs[7])
	if n > maxDataSegment {
		return nil, fmt.Errorf("target sent a %d-byte data segment, more than the %d we allow", n, maxDataSegment)
	}
	if ahs > 0 {
		if _, err := io.CopyN(io.Discard, r, int64(ahs)); err != nil {
			return nil, err
		}
	}
	padded := (n + 3) &^ 3
	buf := make([]byte, padded)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	p.data = buf[:n]
	return p, nil
}

// encodeKeys renders key=value pairs as the NUL-terminated text RFC 7143
// section 6 uses in login and text PDUs.
func encodeKeys(kv [][2]string) []byte {
	var b bytes.Buffer
	for _, p := range kv {
		b.WriteString(p[0])
		b.WriteByte('=')
		b.WriteString(p[1])
		b.WriteByte(0)
	}
	return b.Bytes()
}

// decodeKeys splits NUL-terminated key=value text, keeping order and
// repeated keys (SendTargets answers repeat TargetName and TargetAddress).
func decodeKeys(data []byte) [][2]string {
	var out [][2]string
	for _, field := range bytes.Split(data, []byte{0}) {
		if len(field) == 0 {
			continue
		}
		k, v, _ := bytes.Cut(field, []byte{'='})
		out = append(out, [2]string{string(k), string(v)})
	}
	return out
}

func lookupKey(kv [][2]string, key string) (string, bool) {
	for _, p := range kv {
		if p[0] == key {
			return p[1], true
		}
	}
	return "", false
}
