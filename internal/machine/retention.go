package machine

import (
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/fsmd-io/fsmd/internal/schema"
	"github.com/fsmd-io/fsmd/internal/source"
)

// Retention is a definition's `retention`: how long its finished instances are kept. A background
// job of fsmd serve deletes an instance, with its history, timers, webhook deliveries and messages,
// once it has been final for longer than FinalAfter, by the retention of its definition's latest
// version (docs/definitions.md, "Retention").
type Retention struct {
	FinalAfter time.Duration
	Pos        Pos
}

var retentionKeys = []string{"final_after"}

// retention parses `retention: {final_after: DURATION}`. A retention that could delete at once (0s,
// a negative duration) is refused rather than read as "keep nothing": a typo must not erase
// histories.
func (d *parser) retention(n *yaml.Node) *Retention {
	entries, ok := d.Mapping(n, "retention")
	if !ok {
		return nil
	}
	r := &Retention{Pos: source.At(d.Resolve(n))}
	spec := d.Keys(entries, "retention", retentionKeys...)
	e, has := spec.Get("final_after")
	if !has {
		d.Errorf(r.Pos, "retention needs `final_after`: how long an instance is kept once final (a duration, like 90d)")
		return nil
	}
	src, ok := d.Scalar(e.Val, "retention final_after")
	if !ok {
		return nil
	}
	dur, err := schema.ParseDuration(src)
	switch {
	case err != nil:
		d.Errorf(source.At(e.Val), "retention final_after: %q is not a duration (write e.g. 90d, 720h or 30m)", src)
		return nil
	case dur <= 0:
		d.Errorf(source.At(e.Val), "retention final_after: %q must be positive: it is how long a final instance is kept", src)
		return nil
	}
	r.FinalAfter = dur
	return r
}
