package envctl

import (
	"context"
	"strings"

	"github.com/envhooks/envhooks/lib/config"
	"github.com/envhooks/envhooks/lib/ssh"
)

// remoteEnvctlKey is envctl's path on the other nodes.
var remoteEnvctlKey = config.Define(config.Key{Name: "REMOTE_ENVCTL", Default: "envctl", Doc: "envctl on the other nodes, as envctl move, recover and restore run it there over ssh (a name is looked up on the remote PATH)"})

// peer is a node a move acts on: this one directly, another over ssh.
// Every action is idempotent, so that recover may repeat any of them.
type peer interface {
	Name() string
	Register(ctx context.Context, jname, kind string) error
	Unregister(ctx context.Context, jname, kind string) error
	Start(ctx context.Context, jname, kind string) error
	Stop(ctx context.Context, jname, kind string) error
}

// peer returns node as a peer.
func (n *Node) peer(node string) peer {
	if node == n.Name {
		return localPeer{n}
	}
	return n.remote(node)
}

// remote is node reached over ssh, running its own envctl.
func (n *Node) remote(node string) *remotePeer {
	return &remotePeer{node: node, client: n.ssh(), envctl: n.Config.Get(remoteEnvctlKey)}
}

// ssh is how this node reaches others: SSH, else a client made from the
// config (not stored: parallel moves ask at once).
func (n *Node) ssh() *ssh.Client {
	if n.SSH != nil {
		return n.SSH
	}
	return ssh.New(n.Config, n.Runner)
}

type localPeer struct{ n *Node }

func (l localPeer) Name() string { return l.n.Name }
func (l localPeer) Register(ctx context.Context, jname, kind string) error {
	return l.n.Register(ctx, jname, kind, RegisterOptions{InMaintenance: true})
}
func (l localPeer) Unregister(ctx context.Context, jname, kind string) error {
	return l.n.Unregister(ctx, jname, kind)
}
func (l localPeer) Start(ctx context.Context, jname, kind string) error {
	return l.n.Start(ctx, jname, kind)
}
func (l localPeer) Stop(ctx context.Context, jname, kind string) error {
	return l.n.Stop(ctx, jname, kind)
}

type remotePeer struct {
	node   string
	client *ssh.Client
	envctl string
}

func (r *remotePeer) Name() string { return r.node }

// run runs envctl with args on the node; what it prints on stdout is
// returned (preflight's answer).
func (r *remotePeer) run(ctx context.Context, args ...string) (string, error) {
	res, err := r.client.Run(ctx, r.node, append([]string{r.envctl}, args...))
	return strings.TrimSpace(string(res.Stdout)), err
}

func (r *remotePeer) Register(ctx context.Context, jname, kind string) error {
	_, err := r.run(ctx, verbFor("register", kind), "jname="+jname)
	return err
}
func (r *remotePeer) Unregister(ctx context.Context, jname, kind string) error {
	_, err := r.run(ctx, verbFor("unregister", kind), "jname="+jname)
	return err
}
func (r *remotePeer) Start(ctx context.Context, jname, kind string) error {
	_, err := r.run(ctx, "start", "jname="+jname, "kind="+kind)
	return err
}
func (r *remotePeer) Stop(ctx context.Context, jname, kind string) error {
	_, err := r.run(ctx, "stop", "jname="+jname, "kind="+kind)
	return err
}
