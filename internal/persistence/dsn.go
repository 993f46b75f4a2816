package persistence

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"unicode"
)

// parseURL picks the dialect and driver of a database URL (see Open) and returns the driver's DSN.
// Its errors never quote the URL but as Redact shows it.
func parseURL(u string) (Dialect, string, string, error) {
	switch {
	case u == "":
		return "", "", "", errors.New("persistence: empty database URL")
	case strings.HasPrefix(u, "postgres://"), strings.HasPrefix(u, "postgresql://"):
		dsn, err := postgresDSN(u)
		return Postgres, "postgres", dsn, err
	case conninfoRE.MatchString(u):
		dsn, err := conninfoDSN(u)
		return Postgres, "postgres", dsn, err
	case strings.HasPrefix(u, "sqlite://"):
		return sqliteDSN(strings.TrimPrefix(u, "sqlite://"))
	case strings.HasPrefix(u, "sqlite:"):
		return sqliteDSN(strings.TrimPrefix(u, "sqlite:"))
	case strings.Contains(u, "://") && !strings.HasPrefix(u, "file:"):
		scheme, _, _ := strings.Cut(u, "://")
		return "", "", "", fmt.Errorf("persistence: unsupported database URL scheme %q (postgres://, postgresql://, sqlite:, file: or a file path)", scheme)
	default: // file:PATH (an SQLite URI, kept as it is) or a plain path
		return sqliteDSN(u)
	}
}

// postgresDSN adds binary_parameters=yes unless the URL sets it: lib/pq then sends a query with
// arguments as Parse, Bind and Execute in one round trip instead of preparing it first. The store
// functions never pass []byte arguments (which that mode would send as binary data).
func postgresDSN(u string) (string, error) {
	pu, err := url.Parse(u)
	if err != nil {
		// url.Error quotes the whole URL, and its reason may quote a piece of a password (an
		// unescaped "/" in it makes the rest look like a port): neither is shown when the URL has
		// user information or a password parameter.
		reason := "percent-encode the special characters (: / ? # [ ] @ %) of the user name and password"
		var ue *url.Error
		if errors.As(err, &ue) && !strings.Contains(u, "@") && !passwordRE.MatchString(u) {
			reason = ue.Err.Error()
		}
		return "", fmt.Errorf("persistence: the database URL %s cannot be parsed: %s", Redact(u), reason)
	}
	qv := pu.Query()
	if !qv.Has("binary_parameters") {
		qv.Set("binary_parameters", "yes")
	}
	pu.RawQuery = qv.Encode()
	return pu.String(), nil
}

// sqliteDSN returns modernc.org/sqlite's DSN for a path (or file: URI) with an optional query:
// foreign keys on and immediate transactions always; busy_timeout 5000 ms and WAL unless the
// query sets them.
func sqliteDSN(p string) (Dialect, string, string, error) {
	path, rawQuery, _ := strings.Cut(p, "?")
	if path == "" || path == "file:" {
		return "", "", "", errors.New("persistence: SQLite URL without a file path")
	}
	qv, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "", "", "", fmt.Errorf("persistence: SQLite URL query: %w", err)
	}
	pragmaSet := func(name string) bool {
		for _, v := range qv["_pragma"] {
			if strings.HasPrefix(strings.ToLower(strings.TrimSpace(v)), name) {
				return true
			}
		}
		return false
	}
	if !qv.Has("_busy_timeout") && !qv.Has("_timeout") && !pragmaSet("busy_timeout") {
		qv.Set("_busy_timeout", "5000")
	}
	if !qv.Has("_journal_mode") && !qv.Has("_journal") && !pragmaSet("journal_mode") {
		qv.Set("_journal_mode", "WAL")
	}
	// Not negotiable: the schema relies on foreign keys, WithTx on BEGIN IMMEDIATE.
	qv.Del("_fk")
	qv.Set("_foreign_keys", "1")
	qv.Set("_txlock", "immediate")
	return SQLite, "sqlite", path + "?" + qv.Encode(), nil
}

// isSQLiteMemory reports whether an SQLite DSN names an in-memory database.
func isSQLiteMemory(dsn string) bool {
	path, rawQuery, _ := strings.Cut(dsn, "?")
	path = strings.TrimPrefix(path, "file:")
	if path == ":memory:" || strings.HasPrefix(path, ":memory:") {
		return true
	}
	qv, _ := url.ParseQuery(rawQuery)
	return qv.Get("mode") == "memory"
}

// conninfoRE recognizes libpq's key=value connection string ("host=db user=fsmd password=..."),
// which lib/pq takes as well as a URL, by its first keyword. Only PostgreSQL's keywords count, so
// that an SQLite file whose name holds "=" is still a file.
var conninfoRE = regexp.MustCompile(`^\s*(host|hostaddr|port|dbname|user|password|passfile|service|sslmode|sslrootcert|sslcert|sslkey|sslpassword|connect_timeout|application_name|options|target_session_attrs)\s*=`)

// conninfoDSN checks a key=value connection string as lib/pq will read it and adds
// binary_parameters=yes unless it is set (see postgresDSN). Its errors quote nothing of the string:
// a value mistaken for a key may be a piece of a password.
func conninfoDSN(s string) (string, error) {
	keys, err := conninfoKeys(s)
	if err != nil {
		return "", fmt.Errorf("persistence: the key=value connection string %s cannot be parsed: %w", Redact(s), err)
	}
	for _, k := range keys {
		if k == "binary_parameters" {
			return s, nil
		}
	}
	return strings.TrimRightFunc(s, unicode.IsSpace) + " binary_parameters=yes", nil
}

// conninfoKeys reads the keys of a key=value connection string with lib/pq's grammar: pairs
// separated by white space, a value in single quotes when it holds white space, a backslash
// escaping the next character.
func conninfoKeys(s string) ([]string, error) {
	var keys []string
	r := []rune(s)
	i := 0
	skipSpace := func() {
		for i < len(r) && unicode.IsSpace(r[i]) {
			i++
		}
	}
	for {
		skipSpace()
		if i == len(r) {
			return keys, nil
		}
		start := i
		for i < len(r) && !unicode.IsSpace(r[i]) && r[i] != '=' {
			i++
		}
		key := string(r[start:i])
		skipSpace()
		if i == len(r) || r[i] != '=' || key == "" {
			return nil, errors.New(`a word without "=" (a value holding a space goes in single quotes: password='a b')`)
		}
		i++
		skipSpace()
		switch {
		case i < len(r) && r[i] == '\'':
			for i++; ; i++ {
				if i >= len(r) {
					return nil, errors.New("a quoted value without its closing quote")
				}
				if r[i] == '\\' {
					i++
					continue
				}
				if r[i] == '\'' {
					i++
					break
				}
			}
		default:
			for ; i < len(r) && !unicode.IsSpace(r[i]); i++ {
				if r[i] == '\\' {
					if i++; i == len(r) {
						return nil, errors.New("a backslash at the end")
					}
				}
			}
		}
		keys = append(keys, key)
	}
}

// passwordRE finds, in a key=value connection string, each key naming a password (password,
// sslpassword) and its value: quoted (to the closing quote, or the end), or up to white space.
var passwordRE = regexp.MustCompile(`(?is)((?:^|\s)[a-z_]*password\s*=\s*)('(?:[^'\\]|\\.)*'?|(?:[^\s\\]|\\.)*\\?)`)

// Redact returns a database URL or connection string with its passwords replaced by ***, for logs
// and error messages: in a URL the password of the user information and the values of the query
// parameters named like a password (password, sslpassword); in a key=value connection string the
// values of such keys. A URL that cannot be parsed shows its scheme only, since where its password
// ends cannot be told, and a connection string that cannot be parsed nothing after its first
// password's key. An SQLite path is returned as it is.
func Redact(u string) string {
	scheme, rest, isURL := strings.Cut(u, "://")
	if !isURL {
		if _, err := conninfoKeys(u); err != nil && conninfoRE.MatchString(u) {
			// The words after a password may be the rest of it (password=my secret): hide them all.
			if loc := passwordRE.FindStringSubmatchIndex(u); loc != nil {
				return u[:loc[3]] + "***"
			}
		}
		return passwordRE.ReplaceAllString(u, "${1}***")
	}
	if _, err := url.Parse(u); err != nil {
		return scheme + "://***"
	}
	// Found as url.Parse finds them (and lib/pq, which uses it): the fragment, then the query, then
	// the user information up to the authority's last "@".
	rest, fragment, hasFragment := strings.Cut(rest, "#")
	rest, query, hasQuery := strings.Cut(rest, "?")
	authority, path := rest, ""
	if i := strings.Index(rest, "/"); i >= 0 {
		authority, path = rest[:i], rest[i:]
	}
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		if colon := strings.Index(authority[:at], ":"); colon >= 0 {
			authority = authority[:colon+1] + "***" + authority[at:]
		}
	}
	var b strings.Builder
	b.WriteString(scheme + "://" + authority + path)
	if hasQuery {
		params := strings.Split(query, "&")
		for i, p := range params {
			key, _, _ := strings.Cut(p, "=")
			k, err := url.QueryUnescape(key)
			if err != nil {
				k = key
			}
			if strings.Contains(strings.ToLower(k), "password") {
				params[i] = key + "=***"
			}
		}
		b.WriteString("?" + strings.Join(params, "&"))
	}
	if hasFragment {
		b.WriteString("#" + fragment)
	}
	return b.String()
}
