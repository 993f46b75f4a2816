package persistence

// AdvanceStatementPostgres is the statement InstanceAdvance sends on PostgreSQL to write u and r
// (one round trip: the conditional update of the instance and its audit row), in PostgreSQL's bind
// syntax ($1, $2, ...), with its arguments in order. bench/load replays it with pgbench to measure
// the database's ceiling for fsmd's own write per event (issue 18): taking the text from here, not
// from a copy, keeps the benchmark's statement the one fsmd sends.
func AdvanceStatementPostgres(u InstanceUpdateParams, r TransitionRow) (string, []any) {
	query, args := advanceStatement(u, r)
	return q(Postgres, query), args
}
