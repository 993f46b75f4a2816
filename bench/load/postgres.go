package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"time"

	_ "github.com/lib/pq" // the "postgres" driver
)

// pgServer is a connection to the server's maintenance database: it creates and drops the
// databases of the run.
type pgServer struct {
	url     string // as given
	db      *sql.DB
	version string
}

func openServer(ctx context.Context, u string) (*pgServer, error) {
	db, err := sql.Open("postgres", u)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(2)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var version string
	if err := db.QueryRowContext(pctx, "SHOW server_version").Scan(&version); err != nil {
		db.Close()
		return nil, fmt.Errorf("PostgreSQL at %s: %w", hostPort(u), err)
	}
	return &pgServer{url: u, db: db, version: version}, nil
}

func (s *pgServer) close() { s.db.Close() }

// createDatabase creates a database named fsmd_bench_<random><suffix> and returns its name and URL;
// the bench drops it at the end of the run (and so does an interrupted run).
func (s *pgServer) createDatabase(ctx context.Context, b *bench, suffix string) (string, string, error) {
	var r [6]byte
	_, _ = rand.Read(r[:])
	name := "fsmd_bench_" + hex.EncodeToString(r[:]) + suffix
	if _, err := s.db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return "", "", fmt.Errorf("create database %s: %w", name, err)
	}
	b.cleanup(func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := s.db.ExecContext(dctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			b.progress("drop database %s: %v", name, err)
		}
	})
	pu, err := url.Parse(s.url)
	if err != nil {
		return "", "", err
	}
	pu.Path, pu.RawPath = "/"+name, ""
	return name, pu.String(), nil
}

// checkpoint flushes the server's dirty pages, so that a checkpoint started by the previous phase
// (creating instances, pgbench -i) does not land in the measured one. A role that may not
// checkpoint only loses that.
func (s *pgServer) checkpoint(ctx context.Context, b *bench) {
	if _, err := s.db.ExecContext(ctx, "CHECKPOINT"); err != nil {
		b.progress("CHECKPOINT: %v (the measured phase may include one)", err)
	}
}
