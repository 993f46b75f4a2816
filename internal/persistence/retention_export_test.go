package persistence

// RetentionPageSQL is InstanceListFinalDue's query as the database gets it, for the tests that
// EXPLAIN it.
func RetentionPageSQL(db *DB, p RetentionPage) (string, []any) {
	if db.Citus {
		return q(db.Dialect, retentionPageCitusQuery), retentionPageArgs(db.Dialect, p)
	}
	return q(db.Dialect, retentionPageQuery), retentionPageArgs(db.Dialect, p)
}
