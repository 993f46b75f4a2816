// Package benchdb makes the throwaway PostgreSQL databases of the bench drivers.
package benchdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"time"

	_ "github.com/lib/pq" // the "postgres" driver
)

// Create creates a database named <prefix><random> on the server at serverURL and returns its URL
// and a function that drops it (FORCE: sessions left open do not keep it).
func Create(ctx context.Context, serverURL, prefix string) (string, func(), error) {
	server, err := sql.Open("postgres", serverURL)
	if err != nil {
		return "", nil, err
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := prefix + hex.EncodeToString(b[:])
	if _, err := server.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		server.Close()
		return "", nil, fmt.Errorf("create database %s: %w", name, err)
	}
	drop := func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := server.ExecContext(dctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			fmt.Fprintf(os.Stderr, "drop database %s: %v\n", name, err)
		}
		server.Close()
	}
	u, err := url.Parse(serverURL)
	if err != nil {
		drop()
		return "", nil, err
	}
	u.Path, u.RawPath = "/"+name, ""
	return u.String(), drop, nil
}
