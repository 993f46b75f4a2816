package persistence

import (
	"slices"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
)

// TestAdvanceStatementPostgres checks that the statement bench/load's ceiling replays is the one
// fsmd sends: InstanceAdvance's, one of the forms prepared at Open, in PostgreSQL's bind syntax,
// with one argument per parameter.
func TestAdvanceStatementPostgres(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
	u := InstanceUpdateParams{ID: "i", ExpectRevision: 4, Version: 1, State: "open", Context: []byte(`{}`), Revision: 5,
		UpdatedAt: at, EnteredAt: at}
	r := TransitionRow{InstanceID: "i", Seq: 5, Event: "deposit", From: "open", To: "open", Source: "api", RequestID: "r",
		RequestHash: "h", DefinitionVersion: 1, At: at}
	query, args := AdvanceStatementPostgres(u, r)
	want, wantArgs := advanceStatement(u, r)
	if query != sqlx.Rebind(sqlx.DOLLAR, want) || !slices.Equal(args, wantArgs) {
		t.Errorf("AdvanceStatementPostgres differs from InstanceAdvance's statement:\n%s\n%v", query, args)
	}
	if !slices.Contains(preparedQueries, want) {
		t.Errorf("the statement is not one of the prepared queries:\n%s", want)
	}
	if got := countParams(query); got != len(args) {
		t.Errorf("%d parameters, %d arguments", got, len(args))
	}
}

// countParams counts the distinct $n of a query in PostgreSQL's syntax.
func countParams(query string) int {
	seen := map[string]bool{}
	for i := 0; i < len(query); i++ {
		if query[i] != '$' {
			continue
		}
		j := i + 1
		for j < len(query) && query[j] >= '0' && query[j] <= '9' {
			j++
		}
		if j > i+1 {
			seen[query[i:j]] = true
		}
		i = j - 1
	}
	return len(seen)
}
