package persistence

// InstanceListSQL is InstanceList's query as the database gets it, for the tests that EXPLAIN it.
func InstanceListSQL(d Dialect, p InstanceListParams) (string, []any, error) {
	query, args, err := instanceListQuery(d, p)
	return q(d, query), args, err
}

// KeyLookupSQL is InstanceFindByKey's query as the database gets it.
func KeyLookupSQL(d Dialect, definition string, f CtxField, value any) (string, []any) {
	return q(d, keyLookupQuery(d, definition, f)), []any{ctxArg(d, f.Kind, value)}
}
