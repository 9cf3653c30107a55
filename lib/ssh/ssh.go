// Package ssh runs a command on another node with the system's OpenSSH
// client, so that the operator's keys, agent and ~/.ssh/config apply. It
// never asks for a password (BatchMode), gives up on a node that does not
// answer within SSH_CONNECT_TIMEOUT, and bounds the whole call by
// SSH_TIMEOUT. The remote command is an argv: this package quotes it for
// the remote shell, so no configuration value is ever pasted into a
// command line.
package ssh

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/deadline"
	"github.com/envhooks/envhooks/lib/run"
	"github.com/envhooks/envhooks/lib/sysexits"
)

// Keys.
var (
	DestinationsKey   = config.Define(config.Key{Name: "SSH_DESTINATIONS", Doc: "how envctl reaches other nodes: NODE=DESTINATION pairs separated by blanks (b=root@10.0.0.2 c=ssh://root@c.example.org:2222); a node not listed is reached at its own name", Check: checkDestinations})
	CommandKey        = config.Define(config.Key{Name: "SSH_COMMAND", Default: "/usr/bin/ssh", Doc: "the OpenSSH client envctl runs to reach other nodes", Check: config.IsAbsPath})
	OptionsKey        = config.Define(config.Key{Name: "SSH_OPTIONS", Doc: "more ssh(1) arguments, split at blanks, e.g. -i /root/.ssh/id_envhooks -F /etc/envhooks/ssh_config (BatchMode=yes, ConnectTimeout and the keepalives are always set)", Check: checkOptions})
	ConnectTimeoutKey = config.Define(config.Key{Name: "SSH_CONNECT_TIMEOUT", Default: "5", Doc: "seconds ssh may take to connect to another node; also the interval of its keepalives, three of which unanswered give up a node whose link was cut during a command", Check: config.IsSeconds})
	TimeoutKey        = config.Define(config.Key{Name: "SSH_TIMEOUT", Default: "300", Doc: "seconds one whole command on another node may take (ssh and the remote command) before ssh is killed", Check: config.IsSeconds})
)

// unreachable is ssh's own exit status: it could not connect, log in, or
// keep the connection. A remote command's own status is passed through.
const unreachable = 255

// Client reaches other nodes.
type Client struct {
	Runner         run.Runner // nil: the OS
	Command        string
	Options        []string
	ConnectTimeout time.Duration
	Timeout        time.Duration
	Destinations   map[string]string
}

// New reads the client's settings from cfg.
func New(cfg *config.Config, runner run.Runner) *Client {
	return &Client{Runner: runner, Command: cfg.Get(CommandKey), Options: cfg.Words(OptionsKey),
		ConnectTimeout: cfg.Seconds(ConnectTimeoutKey), Timeout: cfg.Seconds(TimeoutKey),
		Destinations: parseDestinations(cfg.Get(DestinationsKey))}
}

// Destination is where ssh connects to reach node.
func (c *Client) Destination(node string) string {
	if d, ok := c.Destinations[node]; ok {
		return d
	}
	return node
}

// Argv is the ssh command line that runs remote on node.
func (c *Client) Argv(node string, remote []string) ([]string, error) {
	line, err := RemoteCommand(remote)
	if err != nil {
		return nil, err
	}
	dest := c.Destination(node)
	if dest == "" || strings.HasPrefix(dest, "-") {
		return nil, sysexits.New(sysexits.Config, "the ssh destination %q of node %s is not a destination", dest, node)
	}
	// A link cut while a command runs is noticed by ssh's keepalives,
	// three missed at the connect timeout's interval, not only when
	// SSH_TIMEOUT ends the whole call.
	secs := strconv.Itoa(max(1, int(c.ConnectTimeout/time.Second)))
	argv := []string{c.Command, "-o", "BatchMode=yes", "-o", "ConnectTimeout=" + secs, "-o", "ServerAliveInterval=" + secs, "-o", "ServerAliveCountMax=3"}
	argv = append(argv, c.Options...)
	return append(argv, "--", dest, line), nil
}

// Error is a command on another node that failed.
type Error struct {
	Node        string
	Unreachable bool // ssh itself failed: the node, its sshd or the login
	Code        int  // the remote command's exit status (a sysexits code for envctl)
	Err         error
}

func (e *Error) Error() string {
	if e.Unreachable {
		return fmt.Sprintf("cannot reach node %s over ssh: %v", e.Node, e.Err)
	}
	return fmt.Sprintf("on node %s: %v", e.Node, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// coded gives e its sysexits code: the remote command's own, or 69 when
// the node could not be reached.
func coded(e *Error) error {
	code := e.Code
	if e.Unreachable || code <= 0 {
		code = sysexits.Unavailable
	}
	return &sysexits.Error{Code: code, Err: e}
}

// Run runs remote on node and returns what it printed. A node that cannot
// be reached, or a call that outlives SSH_TIMEOUT, is an *Error with
// Unreachable set; a remote command that fails is an *Error with its code.
func (c *Client) Run(ctx context.Context, node string, remote []string) (run.Result, error) {
	argv, err := c.Argv(node, remote)
	if err != nil {
		return run.Result{}, err
	}
	ctx, cancel := deadline.WithTimeout(ctx, c.Timeout, TimeoutKey)
	defer cancel()
	runner := c.Runner
	if runner == nil {
		runner = run.New(false, nil)
	}
	res, err := runner.Run(ctx, run.Cmd{Argv: argv, Timeout: c.Timeout, Configured: true})
	if err == nil {
		return res, nil
	}
	var re *run.Error
	if errors.As(err, &re) && !re.TimedOut && re.ExitCode >= 0 && re.ExitCode != unreachable {
		msg := re.Stderr
		if msg == "" {
			msg = fmt.Sprintf("%s exited %d", remote[0], re.ExitCode)
		}
		return res, coded(&Error{Node: node, Code: re.ExitCode, Err: errors.New(msg)})
	}
	return res, coded(&Error{Node: node, Unreachable: true, Err: err})
}

// RemoteCommand quotes argv as one command line for the remote user's
// shell: every word in single quotes unless it is plainly safe, so the
// shell hands the program exactly argv. Words with a NUL, a newline or a
// carriage return are refused: no argv can carry a NUL, and csh (an older
// FreeBSD root shell) cannot quote a newline.
func RemoteCommand(argv []string) (string, error) {
	if len(argv) == 0 {
		return "", sysexits.New(sysexits.Software, "no remote command")
	}
	for _, a := range argv {
		if strings.ContainsAny(a, "\x00\n\r") {
			return "", sysexits.New(sysexits.DataErr, "cannot pass %q to another node: it holds a NUL, newline or carriage return", a)
		}
	}
	return run.Quote(argv), nil
}

func parseDestinations(v string) map[string]string {
	out := map[string]string{}
	for _, pair := range strings.Fields(v) {
		if node, dest, ok := strings.Cut(pair, "="); ok {
			out[node] = dest
		}
	}
	return out
}

func checkDestinations(v string) error {
	for _, pair := range strings.Fields(v) {
		node, dest, ok := strings.Cut(pair, "=")
		if !ok || node == "" || dest == "" {
			return fmt.Errorf("%q is not NODE=DESTINATION", pair)
		}
		if err := config.IsName(node); err != nil {
			return fmt.Errorf("node %q: %v", node, err)
		}
		if strings.HasPrefix(dest, "-") {
			return fmt.Errorf("destination %q starts with '-'", dest)
		}
	}
	return nil
}

func checkOptions(v string) error {
	for _, w := range strings.Fields(v) {
		if w == "--" {
			return errors.New("-- would end ssh's options early")
		}
	}
	return nil
}
