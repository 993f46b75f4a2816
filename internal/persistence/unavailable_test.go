package persistence_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// proxy forwards TCP connections from a local port to a server, and can be cut and restored.
type proxy struct {
	t      *testing.T
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	p := &proxy{t: t, target: target}
	p.start("127.0.0.1:0")
	t.Cleanup(p.stop)
	return p
}

func (p *proxy) start(addr string) {
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
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(s, c); s.Close() }()
			go func() { _, _ = io.Copy(c, s); c.Close() }()
		}
	}()
}

// stop refuses new connections and breaks the open ones: the database "goes away".
func (p *proxy) stop() {
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

// TestUnavailable: a PostgreSQL server that goes away gives ErrUnavailable (from reads, WithTx and
// Ping), and the same DB works again once it is back, without being reopened.
func TestUnavailable(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(dbtest.PostgresDatabaseURL(t))
	if err != nil {
		t.Fatal(err)
	}
	p := newProxy(t, u.Host)
	u.Host = p.addr
	q := u.Query()
	q.Set("connect_timeout", "2")
	u.RawQuery = q.Encode()
	ctx := context.Background()
	db, err := persistence.Open(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	seed(t, db, []persistence.DefinitionRow{definition("order", 1)}, nil)

	// Away in the middle of a transaction: its connection breaks.
	err = db.WithTx(ctx, func(tx *persistence.Tx) error {
		if err := insert(ctx, tx, "lost"); err != nil {
			return err
		}
		p.stop()
		_, err := persistence.InstanceGet(ctx, tx, "lost")
		return err
	})
	t.Logf("away during a transaction: %v", err)
	if !errors.Is(err, persistence.ErrUnavailable) {
		t.Errorf("away during a transaction: %v, want ErrUnavailable", err)
	}

	checks := []struct {
		name string
		fn   func() error
	}{
		{"read", func() error { _, err := persistence.DefinitionGet(ctx, db, "order", 1); return err }},
		{"WithTx", func() error {
			return db.WithTx(ctx, func(tx *persistence.Tx) error { return insert(ctx, tx, "i") })
		}},
		{"Ping", func() error { return db.Ping(ctx) }},
	}
	for _, c := range checks {
		err := c.fn()
		t.Logf("away: %s: %v", c.name, err)
		if !errors.Is(err, persistence.ErrUnavailable) {
			t.Errorf("away: %s: %v, want ErrUnavailable", c.name, err)
		}
	}

	p.start(p.addr) // back, on the same port
	deadline := time.Now().Add(10 * time.Second)
	for _, c := range checks {
		for {
			err := c.fn()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("back: %s: %v", c.name, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if !exists(t, db, "i") || exists(t, db, "lost") {
		t.Error("after the return: the write made then is missing, or the one broken off is there")
	}
}
