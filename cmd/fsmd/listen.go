package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"
)

// listenAddr is where serve listens. Without credentials to check (API keys or tokens) it is
// loopback only: a default address (":8080") becomes 127.0.0.1's, an address given beyond loopback
// is refused unless insecure.
func listenAddr(addr string, authenticated, given, insecure bool) (string, error) {
	if authenticated {
		return addr, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("--addr %q: %v", addr, err)
	}
	if ip, err := netip.ParseAddr(host); (err == nil && ip.IsLoopback()) || host == "localhost" {
		return addr, nil
	}
	switch {
	case insecure:
		return addr, nil
	case given:
		return "", fmt.Errorf("--addr %s listens beyond loopback, but there are no API keys: give --api-keys FILE (fsmd keys new makes keys), listen on 127.0.0.1, or accept anyone on the network with --insecure", addr)
	}
	return net.JoinHostPort("127.0.0.1", port), nil
}

// newHTTPServer serves h on addr, with timeouts so that a slow or stuck client cannot hold a connection
// forever.
func newHTTPServer(addr string, h http.Handler) *http.Server {
	return &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second}
}

// serveHTTP serves srv on ln (HTTPS with c.TLSCert and c.TLSKey) until ctx ends, then lets the
// requests in flight finish, for c.Shutdown at most.
func serveHTTP(ctx context.Context, srv *http.Server, ln net.Listener, c serveConfig, log *slog.Logger) error {
	errc := make(chan error, 1)
	go func() {
		if c.TLSCert != "" {
			errc <- srv.ServeTLS(ln, c.TLSCert, c.TLSKey)
			return
		}
		errc <- srv.Serve(ln)
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("fsmd shutting down: finishing in-flight requests", "timeout", c.Shutdown.String())
	sctx, cancel := context.WithTimeout(context.Background(), c.Shutdown)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
