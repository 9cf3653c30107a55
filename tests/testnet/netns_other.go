//go:build !linux

package testnet

// Isolate needs Linux's network namespaces; elsewhere it leaves the
// program where it is.
func Isolate() {}

// Isolated reports whether this process runs in the namespaces Isolate made.
func Isolated() bool { return false }
