package persistence

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/lib/pq"
)

// ErrKeyExists: a write would give a running instance a key value another running instance of its
// definition has (a unique index of a definition's `keys`, ctxindex.go). KeyIndex names the index.
// It is not ErrConflict: writing again on a fresh read would be refused again.
var ErrKeyExists = errors.New("key exists")

// keyIndexPrefix begins the name of every key's index (KeyIndexName).
const keyIndexPrefix = "fsmd_key_"

// sqliteIndexName finds the index in SQLite's message for a unique index on expressions ("UNIQUE
// constraint failed: index 'fsmd_key_...'"); SQLite has no field for it.
var sqliteIndexName = regexp.MustCompile(`index '([^']+)'`)

// keyIndexOf is the key index a unique violation is of, "" for any other error.
func keyIndexOf(err error) string {
	var taken *keyTaken
	if errors.As(err, &taken) { // Citus (keys_citus.go)
		return taken.index
	}
	if !isUniqueViolation(err) {
		return ""
	}
	name := ""
	var pe *pq.Error
	if errors.As(err, &pe) {
		name = pe.Constraint
	} else if m := sqliteIndexName.FindStringSubmatch(err.Error()); m != nil {
		name = m[1]
	}
	if !strings.HasPrefix(name, keyIndexPrefix) {
		return ""
	}
	return name
}

// KeyIndex is the name of the key index an ErrKeyExists is of ("" for another error).
func KeyIndex(err error) string {
	if !errors.Is(err, ErrKeyExists) {
		return ""
	}
	return keyIndexOf(err)
}

// InstanceFindByKey returns the id of the running instance of definition whose key f has value
// (typed as CtxFilter's), through the key's unique index. ErrNotFound when there is none.
func InstanceFindByKey(ctx context.Context, ex Executor, definition string, f CtxField, value any) (string, error) {
	d := ex.dialect()
	var ids []string
	var err error
	if ex.citus() {
		ids, err = instanceFindByKeyCitus(ctx, ex, definition, f, value)
	} else {
		err = selectContext(ctx, ex, &ids, keyLookupQuery(d, definition, f), ctxArg(d, f.Kind, value))
	}
	if err != nil {
		return "", translate(canceled(ctx, fmt.Errorf("persistence: find an instance of %s by key %s: %w", definition, strings.Join(f.Path, "."), err)))
	}
	if len(ids) == 0 {
		return "", fmt.Errorf("persistence: instance of %s by key %s: %w", definition, strings.Join(f.Path, "."), ErrNotFound)
	}
	return ids[0], nil
}

// keyLookupQuery finds the running instance with a key value (one argument), through its index:
// it repeats the index's predicate word for word, which both databases need to use a partial index.
func keyLookupQuery(d Dialect, definition string, f CtxField) string {
	return `SELECT id FROM instances WHERE ` + keyPredicate(d, definition, f) + ` AND ` + ctxExpr(d, f) + ` = ? LIMIT 1`
}

// InstanceFindByKeyReplay returns the id of an instance of definition, running or not, whose key f
// has value and whose history holds an event sent with idempotencyKey: the instance a replay of an
// event sent by key was sent to, which may have finished since. ErrNotFound when there is none. It
// reads the definition's instances that have the value (no index covers finished ones), so it is
// asked only when no running instance has the key.
func InstanceFindByKeyReplay(ctx context.Context, ex Executor, definition string, f CtxField, value any, idempotencyKey string) (string, error) {
	d := ex.dialect()
	var ids []string
	err := selectContext(ctx, ex, &ids, `SELECT i.id FROM instances i JOIN transitions t ON t.instance_id = i.id
		WHERE i.`+definitionIs(definition)+` AND `+ctxExpr(d, f)+` = ? AND t.idempotency_key = ? LIMIT 1`,
		ctxArg(d, f.Kind, value), idempotencyKey)
	if err != nil {
		return "", translate(canceled(ctx, fmt.Errorf("persistence: find a replay of %s by key %s: %w", definition, strings.Join(f.Path, "."), err)))
	}
	if len(ids) == 0 {
		return "", fmt.Errorf("persistence: replay of %s by key %s: %w", definition, strings.Join(f.Path, "."), ErrNotFound)
	}
	return ids[0], nil
}
