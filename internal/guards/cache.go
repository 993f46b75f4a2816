package guards

import (
	"sync"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/conf"

	"github.com/fsmd-io/fsmd/internal/schema"
)

// newConfig makes the expr configuration of an environment: its types, the builtins (wall-clock now()
// disabled; the copying and building ones replaced by their metered versions, meter.go) and the
// limits. Building it costs more than compiling a short expression, so configs caches it.
func newConfig(key configKey) *conf.Config {
	c := conf.CreateNew()
	expr.Env(envType(key.Env))(c)
	expr.MaxNodes(MaxNodes)(c)
	if key.asBool {
		expr.AsBool()(c)
	}
	delete(c.Builtins, "now")
	for name, f := range meteredFunctions {
		delete(c.Builtins, name)
		c.Functions[name] = f
	}
	c.Functions[addName] = addFunction
	for _, f := range intFunctions {
		c.Functions[f.Name] = f
	}
	return c
}

// configKey identifies an environment by the schema types it is built from, which are not changed
// once a definition's parser has built them. The cache keeps them referenced, so an address is not
// reused for another type while its entry lives.
type configKey struct {
	Env
	asBool bool
}

// programKey identifies a compiled expression within its environment.
type programKey struct {
	src    string
	want   *schema.Type
	notNil Facts
}

// compiled is what compiling against one environment prepares and finds: the expr configuration,
// and the results of the expressions compiled so far (a definition often repeats an expression: a
// counter, a timestamp; and an alias repeats one as often as it is used).
type compiled struct {
	key      configKey
	config   *conf.Config
	programs map[programKey]result
}

type result struct {
	prog *Program
	err  error
}

// configCache keeps what was compiled against the few environments used most recently, so that a
// definition's expressions share it. An entry is not safe for concurrent use (expr caches types in
// its configuration while checking), so get takes it out of the cache and put returns it.
type configCache struct {
	mu      sync.Mutex
	entries []*compiled // most recently used first
}

// Bounds of the cache: a definition compiles against its context with each event's payload.
const (
	maxConfigs  = 16
	maxPrograms = 1024 // per environment
)

var configs configCache

func (c *configCache) get(key configKey) *compiled {
	c.mu.Lock()
	for i, e := range c.entries {
		if e.key == key {
			c.entries = append(c.entries[:i], c.entries[i+1:]...)
			c.mu.Unlock()
			return e
		}
	}
	c.mu.Unlock()
	return &compiled{key: key, config: newConfig(key), programs: map[programKey]result{}}
}

func (c *configCache) put(e *compiled) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, x := range c.entries {
		if x.key == e.key {
			return // another goroutine compiled against the same environment meanwhile
		}
	}
	if len(c.entries) == maxConfigs {
		c.entries[len(c.entries)-1] = nil
		c.entries = c.entries[:len(c.entries)-1]
	}
	c.entries = append(c.entries, nil)
	copy(c.entries[1:], c.entries)
	c.entries[0] = e
}
