package persistence_test

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// TestUnavailable: a PostgreSQL server that goes away gives ErrUnavailable (from reads, WithTx and
// Ping), and the same DB works again once it is back, without being reopened.
func TestUnavailable(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(dbtest.PostgresDatabaseURL(t))
	if err != nil {
		t.Fatal(err)
	}
	p := dbtest.NewProxy(t, u.Host)
	u.Host = p.Addr()
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
		p.Cut()
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

	p.Restore() // back, on the same port
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
