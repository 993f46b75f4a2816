package dbtest

import (
	"bytes"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy forwards TCP connections from a port of its own to a server, and can be cut (the database
// goes away: new connections are refused, open ones broken) and restored on the same port: for tests
// of a database that goes away and comes back. It can also break one connection at a chosen moment
// of a chosen request (DropAt): for tests of a write whose answer is lost.
type Proxy struct {
	t      testing.TB
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns []net.Conn
	drop  *dropRule // DropAt's, until it fires
}

// When a connection is broken by DropAt.
type When int

const (
	// BeforeForwarding breaks the connection instead of forwarding the client's bytes that hold the
	// marker: the server never sees the request (nothing is written).
	BeforeForwarding When = iota
	// AfterForwarding forwards them, then breaks the connection instead of forwarding the server's
	// answer: the server runs (and, for a statement on its own, commits) what the client never hears.
	AfterForwarding
)

type dropRule struct {
	markers [][]byte
	when    When
	fired   chan struct{}
}

// DropAt arms a one-time break: the next bytes a client sends that hold the first marker (a
// statement's text or one of its parameters, such as a request id), then, on the same connection,
// bytes holding each next marker in turn (such as "COMMIT"), break that connection as when says at
// the last one. The channel is closed once it has fired.
func (p *Proxy) DropAt(when When, markers ...string) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := &dropRule{when: when, fired: make(chan struct{})}
	for _, m := range markers {
		r.markers = append(r.markers, []byte(m))
	}
	p.drop = r
	return r.fired
}

// take returns the armed rule if chunk holds its first marker, disarming it: the connection that
// took it follows its other markers.
func (p *Proxy) take(chunk []byte) *dropRule {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drop == nil || !bytes.Contains(chunk, p.drop.markers[0]) {
		return nil
	}
	r := p.drop
	p.drop = nil
	return r
}

// pipe forwards one connection's two directions, watching the client's bytes for DropAt's marker.
func (p *Proxy) pipe(client, server net.Conn) {
	var cut sync.Once
	var mute atomic.Bool // the server's next bytes are not forwarded: the connection breaks instead
	var fired atomic.Pointer[dropRule]
	breakBoth := func() {
		cut.Do(func() {
			client.Close()
			server.Close()
			if r := fired.Load(); r != nil {
				close(r.fired)
			}
		})
	}
	go func() {
		buf := make([]byte, 64<<10)
		var taken *dropRule // this connection's rule, and the next of its markers to see
		next := 0
		for {
			n, err := client.Read(buf)
			if n > 0 {
				if taken == nil {
					if taken = p.take(buf[:n]); taken != nil {
						next = 1
					}
				} else if next < len(taken.markers) && bytes.Contains(buf[:n], taken.markers[next]) {
					next++
				}
				if taken != nil && next == len(taken.markers) {
					next++ // fires once
					fired.Store(taken)
					if taken.when == BeforeForwarding {
						breakBoth()
						return
					}
					mute.Store(true)
				}
				if _, werr := server.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		server.Close()
	}()
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := server.Read(buf)
			if n > 0 {
				if mute.Load() {
					breakBoth()
					return
				}
				if _, werr := client.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		client.Close()
	}()
}

// NewProxy forwards from 127.0.0.1 to target (host:port) until the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	p := &Proxy{t: t, target: target}
	p.listen("127.0.0.1:0")
	t.Cleanup(p.Cut)
	return p
}

func (p *Proxy) listen(addr string) {
	p.t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		p.t.Fatalf("proxy: %v", err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			if p.ln != ln { // cut while dialing
				p.mu.Unlock()
				c.Close()
				s.Close()
				return
			}
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			p.pipe(c, s)
		}
	}()
}

// Cut refuses new connections and breaks the open ones.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// Restore listens again on the same port.
func (p *Proxy) Restore() { p.listen(p.addr) }

// Addr is where the proxy listens.
func (p *Proxy) Addr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addr
}
