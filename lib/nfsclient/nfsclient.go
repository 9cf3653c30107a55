// Package nfsclient talks to an NFS server from user space, with nothing
// mounted and no shell: it probes a server (TCP reach, the MOUNT service's
// answer for an export, an NFS NULL call) and works on files and directories
// inside an export over NFSv3. It wraps github.com/vmware/go-nfs-client,
// which has no deadlines of its own: every call here runs under one, and the
// sockets are closed when it passes so nothing is left waiting. Mkdir is the
// atomic create (NFSv3 MKDIR fails with EXIST on the server, in one step);
// the library's Create is UNCHECKED and must never be used for exclusivity.
package nfsclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vmware/go-nfs-client/nfs"
	"github.com/vmware/go-nfs-client/nfs/rpc"
	"github.com/vmware/go-nfs-client/nfs/util"
	"github.com/vmware/go-nfs-client/nfs/xdr"
)

// Well-known ports. go-nfs-client always asks the portmapper on
// PortmapPort; NFSPort is where NFSv4 lives without one.
const (
	PortmapPort = rpc.PmapPort
	NFSPort     = 2049
)

func init() {
	// The library logs connection errors with log.Printf; the errors are
	// returned as well, and a hook's stderr is for its one-line verdict.
	util.DefaultLogger = quietLogger{}
}

type quietLogger struct{}

func (quietLogger) SetDebug(bool)                 {}
func (quietLogger) Errorf(string, ...interface{}) {}
func (quietLogger) Debugf(string, ...interface{}) {}
func (quietLogger) Infof(string, ...interface{})  {}

// bare strips the brackets of an IPv6 literal: "[::1]" -> "::1".
func bare(server string) string {
	return strings.TrimSuffix(strings.TrimPrefix(server, "["), "]")
}

// libHost is the host as go-nfs-client wants it: it builds addresses with
// "%s:%d", so an IPv6 literal must carry its brackets.
func libHost(server string) string {
	h := bare(server)
	if strings.Contains(h, ":") {
		return "[" + h + "]"
	}
	return h
}

// ProbeTCP checks that server accepts a TCP connection on port before ctx
// ends.
func ProbeTCP(ctx context.Context, server string, port int) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(bare(server), strconv.Itoa(port)))
	if err != nil {
		if ctx.Err() != nil {
			return &TimeoutError{Op: "TCP connect", Server: server, Port: port}
		}
		return err
	}
	return c.Close()
}

// ProbeNull makes an NFS NULL call (the RPC "ping") of the given NFS version
// on server:port, which is how a v4-only server, with no portmapper and no
// MOUNT service, shows that it answers.
func ProbeNull(ctx context.Context, server string, port int, version uint32) error {
	t := &tracker{}
	return within(ctx, fmt.Sprintf("NFSv%d NULL call", version), server, port, t, func() error {
		c, err := rpc.DialTCP("tcp", nil, net.JoinHostPort(bare(server), strconv.Itoa(port)))
		if err != nil {
			return err
		}
		t.add(c)
		defer c.Close()
		_, err = c.Call(&rpc.Header{Rpcvers: 2, Prog: nfs.Nfs3Prog, Vers: version, Proc: 0, Cred: rpc.AuthNull, Verf: rpc.AuthNull})
		return err
	})
}

// ExportError is the MOUNT service refusing a path.
type ExportError struct {
	Server string
	Path   string
	Status uint32 // mountstat3
}

var mountStatus = map[uint32]string{
	nfs.MNT3ErrPerm:        "not permitted (MNT3ERR_PERM)",
	nfs.MNT3ErrNoEnt:       "no such directory (MNT3ERR_NOENT)",
	nfs.MNT3ErrIO:          "I/O error (MNT3ERR_IO)",
	nfs.MNT3ErrAcces:       "access denied to this client (MNT3ERR_ACCES)",
	nfs.MNT3ErrNotDir:      "not a directory (MNT3ERR_NOTDIR)",
	nfs.MNT3ErrInval:       "invalid path (MNT3ERR_INVAL)",
	nfs.MNT3ErrNameTooLong: "name too long (MNT3ERR_NAMETOOLONG)",
	nfs.MNT3ErrNotSupp:     "not supported (MNT3ERR_NOTSUPP)",
	nfs.MNT3ErrServerFault: "server fault (MNT3ERR_SERVERFAULT)",
}

func (e *ExportError) Error() string {
	why, ok := mountStatus[e.Status]
	if !ok {
		why = fmt.Sprintf("mount status %d", e.Status)
	}
	return fmt.Sprintf("the MOUNT service of %s refuses %s: %s", e.Server, e.Path, why)
}

// NotFound reports whether the server said the path does not exist.
func (e *ExportError) NotFound() bool { return e.Status == nfs.MNT3ErrNoEnt }

// Credentials are the AUTH_UNIX identity calls are made with.
type Credentials struct {
	UID, GID    uint32
	MachineName string // "" means this host's name
}

func (c Credentials) auth() rpc.Auth {
	name := c.MachineName
	if name == "" {
		name, _ = os.Hostname()
	}
	return rpc.NewAuthUnix(name, c.UID, c.GID).Auth()
}

type mountArgs struct {
	rpc.Header
	Dirpath string
}

// mnt asks the MOUNT service for a path and returns its file handle.
func mnt(m *nfs.Mount, server, p string, auth rpc.Auth) ([]byte, error) {
	res, err := m.Call(&mountArgs{rpc.Header{Rpcvers: 2, Prog: nfs.MountProg, Vers: nfs.MountVers, Proc: nfs.MountProc3MNT, Cred: auth, Verf: rpc.AuthNull}, p})
	if err != nil {
		return nil, err
	}
	status, err := xdr.ReadUint32(res)
	if err != nil {
		return nil, err
	}
	if status != nfs.MNT3Ok {
		return nil, &ExportError{Server: server, Path: p, Status: status}
	}
	return xdr.ReadOpaque(res)
}

// umnt tells the MOUNT service the client is done, so its list of mounted
// clients (showmount -a) does not keep growing with every probe.
func umnt(m *nfs.Mount, p string, auth rpc.Auth) {
	m.Call(&mountArgs{rpc.Header{Rpcvers: 2, Prog: nfs.MountProg, Vers: nfs.MountVers, Proc: nfs.MountProc3UMNT, Cred: auth, Verf: rpc.AuthNull}, p})
}

// ProbeExports asks the MOUNT service (found through the portmapper) whether
// it lets this client mount each path. It mounts nothing on this node.
func ProbeExports(ctx context.Context, server string, paths []string, cred Credentials) error {
	t := &tracker{}
	auth := cred.auth()
	return within(ctx, "portmapper/MOUNT check", server, 0, t, func() error {
		m, err := nfs.DialMount(libHost(server))
		if err != nil {
			return fmt.Errorf("portmapper (port %d) or MOUNT service: %w", PortmapPort, err)
		}
		t.add(m)
		defer m.Close()
		for _, p := range paths {
			if _, err := mnt(m, server, p, auth); err != nil {
				return err
			}
			umnt(m, p, auth)
		}
		return nil
	})
}

// Options shape a Client.
type Options struct {
	// Timeout bounds each call; the caller's context bounds it too.
	Timeout time.Duration
	Cred    Credentials
}

// DefaultTimeout is used when Options.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// Client works inside one export of one server over NFSv3. Paths are
// relative to the export ("data/web1"). A Client is safe for concurrent use
// (calls are serialised); after a call times out it is closed and every
// further call fails.
type Client struct {
	server, export string
	timeout        time.Duration
	auth           rpc.Auth

	mu     sync.Mutex
	mount  *nfs.Mount
	target *nfs.Target
	broken error
}

// Dial mounts export of server (in user space) within ctx's deadline.
func Dial(ctx context.Context, server, export string, o Options) (*Client, error) {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	c := &Client{server: server, export: export, timeout: o.Timeout, auth: o.Cred.auth()}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	t := &tracker{}
	err := within(ctx, "MOUNT of "+export, server, 0, t, func() error {
		m, err := nfs.DialMount(libHost(server))
		if err != nil {
			return fmt.Errorf("portmapper (port %d) or MOUNT service: %w", PortmapPort, err)
		}
		t.add(m)
		if _, err := mnt(m, server, export, c.auth); err != nil {
			m.Close()
			return err
		}
		// The library's Mount asks again and dials the NFS service.
		tg, err := m.Mount(export, c.auth)
		if err != nil {
			m.Close()
			return fmt.Errorf("NFS service: %w", err)
		}
		t.add(tg)
		m.SetTimeout(o.Timeout)
		tg.SetTimeout(o.Timeout)
		c.mount, c.target = m, tg
		return nil
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Close unmounts (politely, bounded) and closes the connections.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return nil
	}
	c.broken = errors.New("client closed")
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	t := &tracker{}
	t.add(c.mount)
	t.add(c.target)
	within(ctx, "UMNT of "+c.export, c.server, 0, t, func() error {
		umnt(c.mount, c.export, c.auth)
		return nil
	})
	t.expire()
	return nil
}

// do runs one call with the client's deadline.
func (c *Client) do(ctx context.Context, op string, fn func(tg *nfs.Target) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return fmt.Errorf("%s: NFS client for %s:%s is unusable: %w", op, c.server, c.export, c.broken)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	t := &tracker{}
	t.add(c.mount)
	t.add(c.target)
	err := within(ctx, op, c.server, 0, t, func() error { return fn(c.target) })
	if IsTimeout(err) {
		c.broken = err
	}
	return err
}

func clean(p string) string {
	p = path.Clean("/" + p)
	return strings.TrimPrefix(p, "/")
}

// Info is what Stat reports about a file or directory.
type Info struct {
	Name    string
	IsDir   bool
	Mode    fs.FileMode // permission bits (and setuid/setgid/sticky)
	UID     uint32
	GID     uint32
	Size    int64
	ModTime time.Time
}

func infoOf(name string, a *nfs.Fattr) Info {
	return Info{
		Name:    path.Base(name),
		IsDir:   a.Type == nfs.NF3Dir,
		Mode:    fs.FileMode(a.FileMode & 0o7777),
		UID:     a.UID,
		GID:     a.GID,
		Size:    int64(a.Filesize),
		ModTime: a.ModTime(),
	}
}

// Stat looks a path up. A missing path gives an error that matches
// fs.ErrNotExist.
func (c *Client) Stat(ctx context.Context, p string) (Info, error) {
	p = clean(p)
	var info Info
	err := c.do(ctx, "lookup of "+p, func(tg *nfs.Target) error {
		if p == "" {
			info = Info{Name: ".", IsDir: true}
			return nil
		}
		fi, _, err := tg.Lookup(p)
		if err != nil {
			return err
		}
		info = infoOf(p, fi.(*nfs.Fattr))
		return nil
	})
	if err != nil {
		return Info{}, &fs.PathError{Op: "stat", Path: p, Err: err}
	}
	return info, nil
}

// Owner is who a created directory belongs to; a negative id leaves the
// server's choice (the caller's credentials).
type Owner struct{ UID, GID int }

// NoOwner leaves ownership to the server.
var NoOwner = Owner{UID: -1, GID: -1}

func sattr(mode fs.FileMode, o Owner) nfs.Sattr3 {
	s := nfs.Sattr3{Mode: nfs.SetMode{SetIt: true, Mode: uint32(mode & 0o7777)}}
	if o.UID >= 0 {
		s.UID = nfs.SetUID{SetIt: true, UID: uint32(o.UID)}
	}
	if o.GID >= 0 {
		s.GID = nfs.SetUID{SetIt: true, UID: uint32(o.GID)}
	}
	return s
}

// call sends one NFSv3 request and checks its status.
func call(tg *nfs.Target, args interface{}) (io.ReadSeeker, error) {
	res, err := tg.Call(args)
	if err != nil {
		return nil, err
	}
	status, err := xdr.ReadUint32(res)
	if err != nil {
		return nil, err
	}
	if err := nfs.NFS3Error(status); err != nil {
		return nil, err
	}
	return res, nil
}

func (c *Client) header(proc uint32) rpc.Header {
	return rpc.Header{Rpcvers: 2, Prog: nfs.Nfs3Prog, Vers: nfs.Nfs3Vers, Proc: proc, Cred: c.auth, Verf: rpc.AuthNull}
}

// Mkdir creates one directory with mode and owner set in the same MKDIR
// request. The server does the existence check and the create in one step,
// so of two clients racing for the same name exactly one succeeds; the other
// gets an error that matches fs.ErrExist (use errors.Is), whatever the path
// already is.
func (c *Client) Mkdir(ctx context.Context, p string, mode fs.FileMode, owner Owner) error {
	p = clean(p)
	if p == "" {
		return &fs.PathError{Op: "mkdir", Path: "/", Err: fs.ErrExist}
	}
	type mkdirArgs struct {
		rpc.Header
		Where nfs.Diropargs3
		Attrs nfs.Sattr3
	}
	err := c.do(ctx, "mkdir of "+p, func(tg *nfs.Target) error {
		_, fh, err := tg.Lookup(path.Dir(p))
		if err != nil {
			return err
		}
		_, err = call(tg, &mkdirArgs{
			Header: c.header(nfs.NFSProc3Mkdir),
			Where:  nfs.Diropargs3{FH: fh, Filename: path.Base(p)},
			Attrs:  sattr(mode, owner),
		})
		return err
	})
	if err != nil {
		return &fs.PathError{Op: "mkdir", Path: p, Err: err}
	}
	return nil
}

// MkdirAll creates p and any missing parents with mode and owner, and
// returns the directories it created (none when p already existed). A path
// element that exists but is not a directory is an error.
func (c *Client) MkdirAll(ctx context.Context, p string, mode fs.FileMode, owner Owner) ([]string, error) {
	p = clean(p)
	var created []string
	if p == "" {
		return nil, nil
	}
	parts := strings.Split(p, "/")
	for i := range parts {
		sub := strings.Join(parts[:i+1], "/")
		err := c.Mkdir(ctx, sub, mode, owner)
		if err == nil {
			created = append(created, sub)
			continue
		}
		if !errors.Is(err, fs.ErrExist) {
			return created, err
		}
		info, err := c.Stat(ctx, sub)
		if err != nil {
			return created, err
		}
		if !info.IsDir {
			return created, &fs.PathError{Op: "mkdir", Path: sub, Err: errors.New("exists and is not a directory")}
		}
	}
	return created, nil
}

// ReadFile reads a whole (small) file; larger than limit is an error.
func (c *Client) ReadFile(ctx context.Context, p string) ([]byte, error) {
	const limit = 16 << 20
	p = clean(p)
	var data []byte
	err := c.do(ctx, "read of "+p, func(tg *nfs.Target) error {
		f, err := tg.Open(p)
		if err != nil {
			return err
		}
		data, err = io.ReadAll(io.LimitReader(f, limit+1))
		if err != nil {
			return err
		}
		if len(data) > limit {
			return fmt.Errorf("larger than %d bytes", limit)
		}
		return nil
	})
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: p, Err: err}
	}
	return data, nil
}

// WriteFile replaces the contents of p (created with mode if missing) and
// commits them to stable storage. It is neither atomic nor exclusive: a
// reader may see it half written and two writers both succeed. Use Mkdir
// for anything that must be created by one client only.
func (c *Client) WriteFile(ctx context.Context, p string, data []byte, mode fs.FileMode) error {
	p = clean(p)
	type setattrArgs struct {
		rpc.Header
		FH    []byte
		Attrs nfs.Sattr3
		Guard uint32 // sattrguard3: FALSE, no ctime check
	}
	err := c.do(ctx, "write of "+p, func(tg *nfs.Target) error {
		f, err := tg.OpenFile(p, mode)
		if err != nil {
			return err
		}
		_, fh, err := tg.Lookup(p)
		if err != nil {
			return err
		}
		// OpenFile writes over an existing file from offset 0 without
		// truncating it; cut it to zero first.
		if _, err := call(tg, &setattrArgs{Header: c.header(nfsProc3SetAttr), FH: fh, Attrs: nfs.Sattr3{Size: nfs.SetSize{SetIt: true}}}); err != nil {
			return err
		}
		if len(data) > 0 {
			if _, err := f.Write(data); err != nil {
				return err
			}
		}
		return f.Close()
	})
	if err != nil {
		return &fs.PathError{Op: "write", Path: p, Err: err}
	}
	return nil
}

const nfsProc3SetAttr = 2

// Remove deletes a file or an empty directory. A missing path gives an
// error that matches fs.ErrNotExist.
func (c *Client) Remove(ctx context.Context, p string) error {
	p = clean(p)
	if p == "" {
		return &fs.PathError{Op: "remove", Path: "/", Err: errors.New("cannot remove the export itself")}
	}
	err := c.do(ctx, "remove of "+p, func(tg *nfs.Target) error {
		fi, _, err := tg.Lookup(p)
		if err != nil {
			return err
		}
		if fi.(*nfs.Fattr).Type == nfs.NF3Dir {
			return tg.RmDir(p)
		}
		return tg.Remove(p)
	})
	if err != nil {
		return &fs.PathError{Op: "remove", Path: p, Err: err}
	}
	return nil
}

// ReadDirNames lists the names in directory p (without "." and "..").
func (c *Client) ReadDirNames(ctx context.Context, p string) ([]string, error) {
	p = clean(p)
	var names []string
	err := c.do(ctx, "readdir of "+p, func(tg *nfs.Target) error {
		dir := p
		if dir == "" {
			dir = "."
		}
		entries, err := tg.ReadDirPlus(dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if e.FileName != "." && e.FileName != ".." {
				names = append(names, e.FileName)
			}
		}
		return nil
	})
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: p, Err: err}
	}
	return names, nil
}

const nfsProc3Rename = 14

// Rename moves from to to in one RENAME request: the server does it
// atomically, so another client sees either name, never both or neither. A
// missing from gives an error that matches fs.ErrNotExist.
func (c *Client) Rename(ctx context.Context, from, to string) error {
	from, to = clean(from), clean(to)
	type renameArgs struct {
		rpc.Header
		From nfs.Diropargs3
		To   nfs.Diropargs3
	}
	err := c.do(ctx, "rename of "+from, func(tg *nfs.Target) error {
		_, fromDir, err := tg.Lookup(path.Dir(from))
		if err != nil {
			return err
		}
		_, toDir, err := tg.Lookup(path.Dir(to))
		if err != nil {
			return err
		}
		_, err = call(tg, &renameArgs{
			Header: c.header(nfsProc3Rename),
			From:   nfs.Diropargs3{FH: fromDir, Filename: path.Base(from)},
			To:     nfs.Diropargs3{FH: toDir, Filename: path.Base(to)},
		})
		return err
	})
	if err != nil {
		return &fs.PathError{Op: "rename", Path: from, Err: err}
	}
	return nil
}
