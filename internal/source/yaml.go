package source

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Limits on files, so that hostile input is an error and never a hang, and what a file costs is in
// proportion to the file.
const (
	MaxFileBytes = 1 << 20 // a definition or table file
	// MaxNodes bounds the YAML nodes a file names, aliases expanded, whether its reader reads them
	// again or shares what it read (Doc.Charge): what the reader's users iterate (alias bombs).
	MaxNodes = 1_000_000
	// The nodes a reader reads, aliases expanded, are what it builds: at most MaxExpansion times the
	// file's own nodes, and MinBudget for any file, so that aliases repeat a part a few times but do
	// not multiply the memory a file takes (a 23 KB file once took 60 MB).
	MaxExpansion = 10
	MinBudget    = 20_000
)

// budgetError stops the walk of a document that expands to too many nodes, at the alias that took it
// past the limit.
type budgetError struct {
	at  *yaml.Node
	msg string
}

// Doc walks one YAML document, reporting problems with their line:col. Its methods report what is
// wrong and return what they could read, so a caller goes on and every problem is found in one pass.
type Doc struct {
	*Reporter
	read, named int // the nodes read, and named (read or charged), so far
	maxRead     int // MaxExpansion times the document's own nodes and MinBudget, at most MaxNodes
	own         int // the document's own nodes, an alias one
	alias       *yaml.Node
	data        []byte
}

// Walk parses data as one YAML document and calls walk with its root. A document that expands
// through aliases past its budget (MaxExpansion, MinBudget, MaxNodes) stops the walk with an error at
// the alias that took it there; walk's result is then discarded.
func Walk(r *Reporter, data []byte, walk func(d *Doc, root *yaml.Node)) (ok bool) {
	if len(data) > MaxFileBytes {
		r.Errorf(Pos{}, "the file is %d bytes; the limit is %d", len(data), MaxFileBytes)
		return false
	}
	root, p, err := parseYAML(data)
	if err != nil {
		r.Errorf(p, "%v", err)
		return false
	}
	own := countNodes(root)
	d := &Doc{Reporter: r, own: own, maxRead: min(MaxNodes, MaxExpansion*own+MinBudget), data: data}
	defer func() {
		if v := recover(); v != nil {
			b, isBudget := v.(budgetError)
			if !isBudget {
				panic(v)
			}
			p := Pos{}
			if b.at != nil {
				p = At(b.at)
			}
			r.Errorf(p, "%s", b.msg)
			ok = false
		}
	}()
	walk(d, root)
	return true
}

// countNodes counts the nodes of a document as written: an alias is one node.
func countNodes(n *yaml.Node) int {
	c := 1
	if n.Kind != yaml.AliasNode {
		for _, m := range n.Content {
			c += countNodes(m)
		}
	}
	return c
}

// Nodes is how many nodes the walk has named so far, read or charged: a reader that shares what it
// made of a node (an alias named again) charges the nodes it read for it (Charge).
func (d *Doc) Nodes() int { return d.named }

// Charge counts n nodes that the reader does not read again but shares, named by at (an alias, or
// the node where it is named), against MaxNodes.
func (d *Doc) Charge(at *yaml.Node, n int) {
	if at.Kind == yaml.AliasNode {
		d.alias = at
	}
	d.named += n
	d.check()
}

func (d *Doc) check() {
	switch {
	case d.named > MaxNodes:
		panic(budgetError{d.alias, fmt.Sprintf("the document expands to more than %d YAML nodes through this alias", MaxNodes)})
	case d.read > d.maxRead:
		panic(budgetError{d.alias, fmt.Sprintf("the document expands to more than %d YAML nodes through this alias: "+
			"aliases may take a file to %d times its own nodes (%d here), or %d nodes", d.maxRead, MaxExpansion, d.own, MinBudget)})
	}
}

// Inside returns the position in the file of the character at col (from 0) of a scalar's value, where
// the value stands in the file as written, on one line (plain, or quoted without escapes), so that an
// error inside an expression points at its place. Otherwise it returns the scalar's own position.
func (d *Doc) Inside(n *yaml.Node, col int) Pos {
	p := At(n)
	lines := bytes.SplitN(d.data, []byte("\n"), n.Line+1)
	if n.Line < 1 || n.Line > len(lines) {
		return p
	}
	line := []rune(string(lines[n.Line-1]))
	start := n.Column - 1
	if n.Style == yaml.DoubleQuotedStyle || n.Style == yaml.SingleQuotedStyle {
		start++
	} else if n.Style != 0 {
		return p
	}
	value := []rune(n.Value)
	if start < 0 || start+len(value) > len(line) || string(line[start:start+len(value)]) != n.Value || col > len(value) {
		return p
	}
	return Pos{Line: n.Line, Col: start + 1 + col}
}

// Entry is one key and value of a mapping.
type Entry struct {
	Key     string
	KeyNode *yaml.Node
	Val     *yaml.Node
}

// At is the position of a node.
func At(n *yaml.Node) Pos { return Pos{n.Line, n.Column} }

// parseYAML reads one YAML document into a node tree.
func parseYAML(data []byte) (*yaml.Node, Pos, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Pos{}, errors.New("the file is empty")
		}
		p, msg := yamlError(err)
		if p.Line == 0 && strings.HasSuffix(msg, "control characters are not allowed") {
			p = controlAt(data)
		}
		return nil, p, errors.New(msg)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, At(&extra), errors.New("the file holds more than one YAML document; put one definition in each file")
	} else if !errors.Is(err, io.EOF) {
		p, msg := yamlError(err)
		return nil, p, errors.New(msg)
	}
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		return root.Content[0], Pos{}, nil
	}
	return &root, Pos{}, nil
}

// controlAt is the position of the first character YAML does not allow in a file, for the library's
// error that gives none; no position when there is none.
func controlAt(data []byte) Pos {
	line, col := 1, 1
	for _, r := range string(data) {
		switch {
		case r == '\t', r == '\r', r == 0x85:
		case r == '\n':
			line, col = line+1, 0
		case r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0, r >= 0xd800 && r < 0xe000, r == 0xfffe, r == 0xffff:
			return Pos{Line: line, Col: col}
		}
		col++
	}
	return Pos{}
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parserProblems are the messages of go.yaml.in/yaml/v3's parser, as opposed to its scanner. For
// them the library reports a line from 0 (its scanner errors count from 1), so one is added.
var parserProblems = []string{
	"did not find expected ',' or ']'", "did not find expected ',' or '}'", "did not find expected '-' indicator",
	"did not find expected <document start>", "did not find expected <stream-start>", "did not find expected key",
	"did not find expected node content", "found duplicate %TAG directive", "found duplicate %YAML directive",
	"found incompatible YAML document", "found undefined tag handle",
}

// yamlError turns a YAML syntax error into a position and a message without the library's prefix.
func yamlError(err error) (Pos, string) {
	m := yamlLine.FindStringSubmatch(err.Error())
	if m == nil {
		return Pos{}, "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")
	}
	line, _ := strconv.Atoi(m[1])
	if slices.Contains(parserProblems, m[2]) {
		line++
	}
	return Pos{Line: line}, "invalid YAML: " + m[2]
}

// Resolve follows aliases and charges the walk's budget.
func (d *Doc) Resolve(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode {
		d.alias = n
	}
	d.read++
	d.named++
	d.check()
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// IsNull reports whether n is an empty value.
func IsNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// Describe names what kind of node n is, for messages.
func Describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if IsNull(n) {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

// Mapping returns the entries of a mapping node in order, reporting duplicate keys. what names the
// node in messages ("state \"paid\"").
func (d *Doc) Mapping(n *yaml.Node, what string) ([]Entry, bool) {
	n = d.Resolve(n)
	if IsNull(n) {
		return nil, true
	}
	if n.Kind != yaml.MappingNode {
		d.Errorf(At(n), "%s must be a mapping, not %s", what, Describe(n))
		return nil, false
	}
	out := make([]Entry, 0, len(n.Content)/2)
	var seen map[string]bool // most mappings have a few keys: a scan of out finds duplicates faster
	if len(n.Content) > 32 {
		seen = make(map[string]bool, len(n.Content)/2)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := d.Resolve(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.Errorf(At(k), "a key in %s must be a plain name, not %s", what, Describe(k))
			continue
		}
		if k.Tag == "!!merge" {
			d.Errorf(At(k), "merge keys (<<) are not supported; repeat the keys or use an alias for the value")
			continue
		}
		if seen[k.Value] || seen == nil && slices.ContainsFunc(out, func(e Entry) bool { return e.Key == k.Value }) {
			d.Errorf(At(k), "duplicate key %q in %s", k.Value, what)
			continue
		}
		if seen != nil {
			seen[k.Value] = true
		}
		out = append(out, Entry{k.Value, k, v})
	}
	return out, true
}

// Fields are the entries of a mapping whose keys were checked, looked up by key. A mapping of the
// format has a handful of keys, so a scan beats building a map.
type Fields []Entry

// Get returns the entry of key.
func (fs Fields) Get(key string) (Entry, bool) {
	for _, e := range fs {
		if e.Key == key {
			return e, true
		}
	}
	return Entry{}, false
}

// Keys checks the entries against the keys allowed in what and returns the allowed ones.
func (d *Doc) Keys(entries []Entry, what string, allowed ...string) Fields {
	if !slices.ContainsFunc(entries, func(e Entry) bool { return !slices.Contains(allowed, e.Key) }) {
		return entries // the usual case: nothing to report, nothing to copy
	}
	out := entries[:0:0]
	for _, e := range entries {
		if !slices.Contains(allowed, e.Key) {
			d.Errorf(At(e.KeyNode), "unknown key %q in %s (expected %s)", e.Key, what, list(allowed))
			continue
		}
		out = append(out, e)
	}
	return out
}

// Scalar returns the text of a scalar node; anything else is reported.
func (d *Doc) Scalar(n *yaml.Node, what string) (string, bool) {
	n = d.Resolve(n)
	if n.Kind != yaml.ScalarNode || IsNull(n) {
		d.Errorf(At(n), "%s must be a single value, not %s", what, Describe(n))
		return "", false
	}
	if strings.IndexByte(n.Value, 0) >= 0 { // YAML's "\0": PostgreSQL cannot store it
		d.Errorf(At(n), "%s holds a NUL character", what)
		return "", false
	}
	return n.Value, true
}

// Boolean returns the value of a true/false node.
func (d *Doc) Boolean(n *yaml.Node, what string) bool {
	n = d.Resolve(n)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!bool" {
		b, err := strconv.ParseBool(n.Value)
		if err == nil {
			return b
		}
		return n.Value == "True" || n.Value == "TRUE"
	}
	d.Errorf(At(n), "%s must be true or false, not %s", what, Describe(n))
	return false
}

// Sequence returns the items of a list node.
func (d *Doc) Sequence(n *yaml.Node, what string) []*yaml.Node {
	n = d.Resolve(n)
	if IsNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.Errorf(At(n), "%s must be a list, not %s", what, Describe(n))
		return nil
	}
	return n.Content
}

// Identifier is the form of state, event and field names: usable as names in expressions.
var Identifier = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,62}$`)

// Name checks a state, event or field name: an identifier, so expressions can use it.
func (d *Doc) Name(n *yaml.Node, kind string) bool {
	if !Identifier.MatchString(n.Value) {
		d.Errorf(At(n), "%s name %q is not valid: it must start with a letter and hold only letters, digits and _ (at most 63)", kind, n.Value)
		return false
	}
	return true
}

func list(words []string) string {
	s := append([]string(nil), words...)
	sort.Strings(s)
	if len(s) == 1 {
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// Value converts a node into a loosely typed value, as decoding JSON would give it: mappings to
// map[string]any, lists to []any, scalars by their YAML tag, except that timestamps stay text. A
// schema then types the value as it types the same value sent to the API: an RFC 3339 text for a time
// field, and 2026-01-01 stays a string for a string field. Aliases count against the walk's budget.
func (d *Doc) Value(n *yaml.Node, what string) (any, bool) {
	n = d.Resolve(n)
	switch n.Kind {
	case yaml.MappingNode:
		entries, ok := d.Mapping(n, what)
		m := make(map[string]any, len(entries))
		for _, e := range entries {
			v, vok := d.Value(e.Val, what+"."+e.Key)
			ok = ok && vok
			m[e.Key] = v
		}
		return m, ok
	case yaml.SequenceNode:
		l := make([]any, len(n.Content))
		ok := true
		for i, item := range n.Content {
			v, vok := d.Value(item, fmt.Sprintf("%s[%d]", what, i))
			ok = ok && vok
			l[i] = v
		}
		return l, ok
	case yaml.ScalarNode:
		var v any
		switch n.Tag {
		case "!!null":
			return nil, true
		case "!!bool", "!!int", "!!float":
			if err := n.Decode(&v); err != nil {
				d.Errorf(At(n), "%s: %v", what, err)
				return nil, false
			}
			return v, true
		}
		return n.Value, true
	}
	d.Errorf(At(n), "%s: not a value", what)
	return nil, false
}
