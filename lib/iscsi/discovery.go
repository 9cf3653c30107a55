// Package iscsi is a small iSCSI discovery client written from RFC 7143: it
// connects to a portal, logs in to a discovery session (no authentication or
// CHAP), asks SendTargets=All, and logs out. The iSCSI backend uses it as a
// preflight, so a dead portal or a target the portal does not offer fails in
// seconds instead of after the OS initiator's minutes of retries. Every read
// and write runs under the caller's deadline.
package iscsi

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// DefaultPort is the iSCSI port IANA assigned.
const DefaultPort = "3260"

// Credentials are a CHAP user name and secret. Secret is never part of an
// error or log message.
type Credentials struct {
	User   string
	Secret string
}

// Options shape one discovery.
type Options struct {
	InitiatorName string        // this node's IQN, sent in the login
	CHAP          *Credentials  // nil: AuthMethod=None
	Timeout       time.Duration // bounds the whole exchange; 0: only ctx does
}

// Target is one target a portal offers, with the addresses it gave for it
// ("10.0.0.1:3260,1").
type Target struct {
	Name      string
	Addresses []string
}

// Error is a failed discovery, saying which portal and which stage.
type Error struct {
	Portal   string
	Op       string // "connect", "log in", "SendTargets"
	Err      error
	TimedOut bool // the portal did not answer within the deadline
	Auth     bool // the portal refused our credentials (or wants some)
}

func (e *Error) Error() string {
	return fmt.Sprintf("iSCSI portal %s: %s: %v", e.Portal, e.Op, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Portal returns host:port for a portal written host, host:port, [v6] or
// [v6]:port, adding the default port.
func Portal(p string) (string, error) {
	p = strings.TrimSpace(p)
	if p == "" {
		return "", errors.New("empty portal")
	}
	if host, port, err := net.SplitHostPort(p); err == nil {
		if host == "" {
			return "", fmt.Errorf("portal %q has no host", p)
		}
		if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
			return "", fmt.Errorf("portal %q has an invalid port", p)
		}
		return net.JoinHostPort(host, port), nil
	}
	host := strings.TrimSuffix(strings.TrimPrefix(p, "["), "]")
	if host == "" || strings.ContainsAny(host, "[]/ ") || (strings.Contains(host, ":") && net.ParseIP(host) == nil) {
		return "", fmt.Errorf("portal %q is not host, host:port or [ipv6]:port", p)
	}
	return net.JoinHostPort(host, DefaultPort), nil
}

// Discover logs in to a discovery session on portal and returns the targets
// it offers.
func Discover(ctx context.Context, portal string, opt Options) ([]Target, error) {
	addr, err := Portal(portal)
	if err != nil {
		return nil, &Error{Portal: portal, Op: "parse", Err: err}
	}
	if opt.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opt.Timeout)
		defer cancel()
	}
	fail := func(op string, err error) error {
		e := &Error{Portal: addr, Op: op, Err: err}
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
			e.TimedOut = true
			e.Err = fmt.Errorf("no answer within %s", describeDeadline(opt.Timeout))
		}
		var ae *authError
		if errors.As(err, &ae) {
			e.Auth = true
		}
		return e
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fail("connect", err)
	}
	defer conn.Close()
	// One deadline for every read and write, and cancellation of ctx
	// unblocks them at once.
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	s := &session{conn: conn, cmdSN: 1}
	if _, err := rand.Read(s.isid[1:]); err != nil {
		return nil, fail("log in", err)
	}
	s.isid[0] = 0x80 // RFC 7143 11.12.5: type 10b, a random ISID
	if err := s.login(opt); err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fail("log in", err)
	}
	targets, err := s.sendTargets()
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fail("SendTargets", err)
	}
	s.logout(ctx)
	return targets, nil
}

func describeDeadline(d time.Duration) string {
	if d <= 0 {
		return "the deadline"
	}
	return d.String()
}

// Names lists the target names, for messages.
func Names(ts []Target) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Name
	}
	return out
}

type authError struct{ msg string }

func (e *authError) Error() string { return e.msg }

// session is the state of one discovery session's connection.
type session struct {
	conn      net.Conn
	isid      [6]byte
	tsih      uint16
	itt       uint32
	cmdSN     uint32
	expStatSN uint32
}

func (s *session) send(p *pdu) error {
	_, err := s.conn.Write(p.marshal())
	return err
}

// loginPDU sends one login request and returns the response's keys and
// whether the target agreed to move on to nsg.
func (s *session) loginPDU(csg, nsg int, transit bool, keys [][2]string) (kv [][2]string, moved bool, err error) {
	p := &pdu{data: encodeKeys(keys)}
	p.bhs[0] = flagImmediate | opLoginReq
	p.bhs[1] = byte(csg<<2 | nsg)
	if transit {
		p.bhs[1] |= flagFinal
	}
	copy(p.bhs[8:14], s.isid[:])
	p.bhs[14], p.bhs[15] = byte(s.tsih>>8), byte(s.tsih)
	p.put32(16, s.itt)
	p.put32(24, s.cmdSN)
	p.put32(28, s.expStatSN)
	if err := s.send(p); err != nil {
		return nil, false, err
	}
	r, err := readPDU(s.conn)
	if err != nil {
		return nil, false, err
	}
	switch r.opcode() {
	case opLoginResp:
	case opReject:
		return nil, false, fmt.Errorf("the target rejected the login request (reason 0x%02x)", r.bhs[2])
	default:
		return nil, false, fmt.Errorf("unexpected PDU opcode 0x%02x during login", r.opcode())
	}
	if r.u32(16) != s.itt {
		return nil, false, fmt.Errorf("login response for task 0x%x, want 0x%x", r.u32(16), s.itt)
	}
	if class, detail := r.bhs[36], r.bhs[37]; class != 0 {
		return nil, false, loginStatus(class, detail, decodeKeys(r.data))
	}
	s.tsih = uint16(r.bhs[14])<<8 | uint16(r.bhs[15])
	s.expStatSN = r.u32(24) + 1
	s.cmdSN = r.u32(28) // ExpCmdSN: the next non-immediate command's number
	transitGranted := r.bhs[1]&flagFinal != 0
	return decodeKeys(r.data), transitGranted && int(r.bhs[1]&0x3) == nsg, nil
}

// loginStatus explains a non-zero Status-Class (RFC 7143 11.13.5).
func loginStatus(class, detail byte, kv [][2]string) error {
	switch {
	case class == 1:
		addr, _ := lookupKey(kv, "TargetAddress")
		return fmt.Errorf("the portal redirects discovery to %s; use that portal", addr)
	case class == 2 && detail == 1:
		return &authError{"authentication failed: check the CHAP user and secret in ISCSI_CHAP_FILE"}
	case class == 2 && detail == 2:
		return &authError{"the portal does not allow this initiator to discover (status 0x0202)"}
	case class == 2:
		return fmt.Errorf("the portal refused the login: initiator error 0x%02x%02x", class, detail)
	default:
		return fmt.Errorf("the portal failed the login: target error 0x%02x%02x", class, detail)
	}
}

func (s *session) login(opt Options) error {
	name := opt.InitiatorName
	if name == "" {
		return errors.New("no initiator name")
	}
	first := [][2]string{{"InitiatorName", name}, {"SessionType", "Discovery"}}
	if opt.CHAP == nil {
		kv, moved, err := s.loginPDU(stageSecurity, stageOperational, true, append(first, [2]string{"AuthMethod", "None"}))
		if err != nil {
			return err
		}
		if m, _ := lookupKey(kv, "AuthMethod"); m != "" && m != "None" {
			return &authError{fmt.Sprintf("the portal requires AuthMethod=%s for discovery: set ISCSI_CHAP_FILE", m)}
		}
		if !moved {
			return errors.New("the portal did not leave the security stage")
		}
	} else if err := s.chap(first, opt.CHAP); err != nil {
		return err
	}
	// Operational negotiation: declare what a discovery session needs and
	// accept whatever else the target proposes.
	keys := [][2]string{{"HeaderDigest", "None"}, {"DataDigest", "None"}, {"MaxRecvDataSegmentLength", strconv.Itoa(maxDataSegment)}}
	for round := 0; round < 8; round++ {
		kv, moved, err := s.loginPDU(stageOperational, stageFullFeature, true, keys)
		if err != nil {
			return err
		}
		if moved {
			return nil
		}
		keys = answer(kv, keys)
	}
	return errors.New("the portal did not finish the login after 8 rounds")
}

// answer replies to keys the target proposed that we did not send,
// accepting its first choice.
func answer(kv, sent [][2]string) [][2]string {
	var out [][2]string
	for _, p := range kv {
		if _, ours := lookupKey(sent, p[0]); ours || p[1] == "NotUnderstood" || p[1] == "Irrelevant" || p[1] == "Reject" {
			continue
		}
		v, _, _ := strings.Cut(p[1], ",")
		out = append(out, [2]string{p[0], v})
	}
	return out
}

// chap runs the CHAP exchange of RFC 7143 12.1.3 with MD5 (CHAP_A=5).
func (s *session) chap(first [][2]string, c *Credentials) error {
	// Offer None too: a portal that needs no authentication for discovery
	// may still want CHAP for the session the OS initiator opens.
	kv, _, err := s.loginPDU(stageSecurity, stageOperational, false, append(first, [2]string{"AuthMethod", "CHAP,None"}))
	if err != nil {
		return err
	}
	switch m, _ := lookupKey(kv, "AuthMethod"); m {
	case "CHAP":
	case "None":
		_, moved, err := s.loginPDU(stageSecurity, stageOperational, true, nil)
		if err == nil && !moved {
			err = errors.New("the portal did not leave the security stage")
		}
		return err
	default:
		return &authError{fmt.Sprintf("the portal offers neither CHAP nor None for discovery (AuthMethod=%s)", m)}
	}
	kv, _, err = s.loginPDU(stageSecurity, stageOperational, false, [][2]string{{"CHAP_A", "5"}})
	if err != nil {
		return err
	}
	idText, _ := lookupKey(kv, "CHAP_I")
	chal, _ := lookupKey(kv, "CHAP_C")
	id, err := strconv.Atoi(idText)
	if err != nil || id < 0 || id > 255 {
		return fmt.Errorf("the portal sent an invalid CHAP_I %q", idText)
	}
	challenge, err := decodeBinary(chal)
	if err != nil {
		return fmt.Errorf("the portal sent an invalid CHAP_C: %v", err)
	}
	h := md5.New()
	h.Write([]byte{byte(id)})
	h.Write([]byte(c.Secret))
	h.Write(challenge)
	resp := "0x" + hex.EncodeToString(h.Sum(nil))
	_, moved, err := s.loginPDU(stageSecurity, stageOperational, true, [][2]string{{"CHAP_N", c.User}, {"CHAP_R", resp}})
	if err != nil {
		return err
	}
	if !moved {
		return &authError{"the portal did not accept the CHAP response"}
	}
	return nil
}

// decodeBinary reads an RFC 7143 binary value: 0x hex or 0b base64.
func decodeBinary(v string) ([]byte, error) {
	switch {
	case strings.HasPrefix(v, "0x") || strings.HasPrefix(v, "0X"):
		h := v[2:]
		if len(h)%2 == 1 {
			h = "0" + h
		}
		return hex.DecodeString(h)
	case strings.HasPrefix(v, "0b") || strings.HasPrefix(v, "0B"):
		return base64.StdEncoding.DecodeString(v[2:])
	}
	return nil, fmt.Errorf("%q is neither 0x hex nor 0b base64", v)
}

// sendTargets asks for every target and gathers the answer, following
// continuation PDUs (a long list spans several).
func (s *session) sendTargets() ([]Target, error) {
	s.itt++
	ttt := uint32(0xffffffff)
	data := encodeKeys([][2]string{{"SendTargets", "All"}})
	var all []byte
	for round := 0; round < 64; round++ {
		p := &pdu{data: data}
		p.bhs[0] = opTextReq
		p.bhs[1] = flagFinal
		p.put32(16, s.itt)
		p.put32(20, ttt)
		p.put32(24, s.cmdSN)
		p.put32(28, s.expStatSN)
		if err := s.send(p); err != nil {
			return nil, err
		}
		s.cmdSN++
		r, err := readPDU(s.conn)
		if err != nil {
			return nil, err
		}
		switch r.opcode() {
		case opTextResp:
		case opReject:
			return nil, fmt.Errorf("the target rejected SendTargets (reason 0x%02x)", r.bhs[2])
		default:
			return nil, fmt.Errorf("unexpected PDU opcode 0x%02x after SendTargets", r.opcode())
		}
		if r.u32(16) != s.itt {
			return nil, fmt.Errorf("text response for task 0x%x, want 0x%x", r.u32(16), s.itt)
		}
		s.expStatSN = r.u32(24) + 1
		all = append(all, r.data...)
		if r.bhs[1]&flagFinal != 0 && r.bhs[1]&flagContinue == 0 {
			return parseTargets(decodeKeys(all)), nil
		}
		ttt = r.u32(20)
		data = nil
	}
	return nil, errors.New("the SendTargets answer did not end after 64 PDUs")
}

func parseTargets(kv [][2]string) []Target {
	var out []Target
	for _, p := range kv {
		switch p[0] {
		case "TargetName":
			out = append(out, Target{Name: p[1]})
		case "TargetAddress":
			if len(out) > 0 {
				out[len(out)-1].Addresses = append(out[len(out)-1].Addresses, p[1])
			}
		}
	}
	return out
}

// logout closes the session politely; the answer is already in hand, so
// it gets only a short wait and its errors are ignored.
func (s *session) logout(ctx context.Context) {
	dl := time.Now().Add(500 * time.Millisecond)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	s.conn.SetDeadline(dl)
	s.itt++
	p := &pdu{}
	p.bhs[0] = flagImmediate | opLogoutReq
	p.bhs[1] = flagFinal // reason 0: close the session
	p.put32(16, s.itt)
	p.put32(24, s.cmdSN)
	p.put32(28, s.expStatSN)
	if s.send(p) == nil {
		_, _ = readPDU(s.conn) // the logout response, or nothing: either way done
	}
}
