// Package testnet holds the network fakes tests and benchmarks share.
package testnet

import (
	"net"
	"sync"
)

// Silent is a hung server: it listens on 127.0.0.1, accepts every
// connection and never answers. stop closes the listener and every
// connection it accepted.
func Silent() (addr *net.TCPAddr, stop func(), err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
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
