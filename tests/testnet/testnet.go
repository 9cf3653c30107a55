// Package testnet holds the network fakes tests and benchmarks share.
package testnet

import (
	"net"
	"sync"
)

// Silent is a hung server: it listens on a free port of 127.0.0.1, accepts
// every connection and never answers. stop closes the listener and every
// connection it accepted.
func Silent() (addr *net.TCPAddr, stop func(), err error) {
	return SilentOn("127.0.0.1:0")
}

// SilentOn is Silent on a given address, for a server that must be found
// on its well-known port (inside a network namespace the test made).
func SilentOn(listen string) (addr *net.TCPAddr, stop func(), err error) {
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, nil, err
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	return l.Addr().(*net.TCPAddr), func() {
		l.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}, nil
}
