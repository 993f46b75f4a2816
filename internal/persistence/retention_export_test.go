package persistence

// RetentionPageSQL is InstanceListFinalDue's query as the database gets it, for the tests that
// EXPLAIN it.
func RetentionPageSQL(d Dialect, p RetentionPage) (string, []any) {
	return q(d, retentionPageQuery), retentionPageArgs(d, p)
}
