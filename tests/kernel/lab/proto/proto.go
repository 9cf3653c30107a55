// Package proto is what the lab's host side and its guest agent say to each
// other: net/rpc calls (gob encoded) over one virtio-serial port. Several
// calls may be in flight at once, so a command hung on a frozen NFS server
// never blocks the next one.
package proto

import "time"

// PortName is the virtio-serial port the agent serves on.
const PortName = "lab"

// Hello is the line the agent writes when it has opened the port; the host
// starts its RPC client only after reading it, so no request is sent into a
// port nobody reads yet.
const Hello = "envhooks-lab-agent ready\n"

// Command is one program to run in the guest.
type Command struct {
	Argv    []string
	Env     []string // added to the agent's environment
	Dir     string
	Stdin   []byte
	Timeout time.Duration // the agent kills the process group at it; 0: none
}

// Result is what a finished command left.
type Result struct {
	Code     int    // exit code; -1 when killed by a signal
	Signal   string // the signal that ended it, if any
	TimedOut bool   // killed by the agent at Command.Timeout
	Stdout   []byte
	Stderr   []byte
	Took     time.Duration
	Err      string // could not start
}

// Started names a command started in the background.
type Started struct {
	ID  int // for Wait and Signal
	PID int // its process id in the guest (its process group's too)
}

// Wait asks for a started command's result, waiting at most Timeout.
type Wait struct {
	ID      int
	Timeout time.Duration
}

// WaitResult is a Result, or Running when the command had not ended yet.
type WaitResult struct {
	Running bool
	Result  Result
}

// Signal sends a signal (by number) to a started command's process group.
type Signal struct {
	ID     int
	Signal int
}

// File is written in the guest's own (overlay) filesystem.
type File struct {
	Path string
	Data []byte
	Mode uint32
}

// Process is one line of the guest's process table, read from /proc by the
// agent (reading /proc never touches a hung mount).
type Process struct {
	PID     int
	State   string // R, S, D, Z, T, ...
	Comm    string
	Cmdline string
	WChan   string
}
