package machine

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/fsmd-io/fsmd/internal/schema"
	"github.com/fsmd-io/fsmd/internal/source"
)

// Webhook is one entry of a definition's `notify` section: a receiver that is told about the
// definition's accepted transitions (an HTTP POST per transition, delivered by package outbox).
// Without filters it is told about every transition; Events and States narrow it down.
type Webhook struct {
	Name   string   // unique within the definition; what a table's then.notified lists
	URL    string   // http or https, with a host
	Events []string // only transitions of these events; empty for every event
	States []string // only transitions to these states; empty for every state
	// OnDead is the event sent to the instance when one of the webhook's deliveries to it is
	// dead-lettered ("" for none): a message from the instance to itself, with the payload
	// OnDeadPayload describes.
	OnDead string
	Pos    Pos // of the entry in `notify`

	eventPos, statePos []Pos // of each filter entry, for validate
	onDeadPos          Pos
}

// Limits of the notify section: the length of a webhook's URL, in bytes, and how many webhooks a
// definition may have (each accepted transition writes a delivery per webhook it notifies).
const (
	MaxWebhookURL = 2048
	MaxWebhooks   = 100
)

var webhookKeys = []string{"name", "url", "events", "states", "on_dead"}

// OnDeadPayload is the payload schema of a webhook's on_dead event: the webhook's name, how many
// attempts the delivery had, and the last one's error. The event is declared with it when `events`
// does not declare it; declared there, it must have exactly these fields and types.
func OnDeadPayload() *schema.Type {
	return schema.ObjectOf(
		&schema.Field{Name: "webhook", Type: schema.Scalar(schema.String)},
		&schema.Field{Name: "attempts", Type: schema.Scalar(schema.Int)},
		&schema.Field{Name: "last_error", Type: schema.Scalar(schema.String)},
	)
}

// sameFields reports whether two object types have the same field names with the same types, in
// any order (defaults, `required` and descriptions aside).
func sameFields(a, b *schema.Type) bool {
	if a == nil || b == nil || a.Kind != schema.Object || b.Kind != schema.Object || len(a.Fields) != len(b.Fields) {
		return false
	}
	for _, f := range a.Fields {
		g := b.Field(f.Name)
		if g == nil || !schema.Identical(g.Type, f.Type) {
			return false
		}
	}
	return true
}

// Notifies reports whether the webhook announces a transition of event to the state to.
func (w *Webhook) Notifies(event, to string) bool {
	return (len(w.Events) == 0 || slices.Contains(w.Events, event)) &&
		(len(w.States) == 0 || slices.Contains(w.States, to))
}

// Notified returns the webhooks that announce t, in the order of the `notify` section; nil when
// none does.
func (d *Definition) Notified(t *Transition) []*Webhook {
	if t == nil {
		return nil
	}
	var out []*Webhook
	for _, w := range d.Notify {
		if w.Notifies(t.Event, t.To) {
			out = append(out, w)
		}
	}
	return out
}

// CheckWebhookURL checks the form of a webhook's URL: http or https, a host, no user name or
// password (the definition's source is shown by the API, and a receiver authenticates fsmd by the
// signature), at most MaxWebhookURL bytes. Where the host points is checked when delivering.
func CheckWebhookURL(raw string) error {
	if len(raw) > MaxWebhookURL {
		return fmt.Errorf("the URL is %d bytes long; the limit is %d", len(raw), MaxWebhookURL)
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%q is not a URL: %v", raw, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%q is not an http or https URL", raw)
	case u.Opaque != "" || u.Hostname() == "":
		return fmt.Errorf("%q has no host", raw)
	case u.Port() != "" && !validPort(u.Port()):
		return fmt.Errorf("%q has an invalid port %q", raw, u.Port())
	case u.User != nil:
		return fmt.Errorf("%q holds a user name or password: receivers authenticate fsmd by the signature, and the definition's source is shown by the API", raw)
	}
	return nil
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
}

// MetadataHosts and MetadataAddrs are the one list of cloud metadata services, which a webhook
// must not reach by default (a definition's author could read the host's credentials through
// them): their names, and their addresses (169.254.169.254 on AWS, GCP, Azure and others; AWS's
// IPv6 one; Alibaba Cloud's). Validation refuses them in URLs; the outbox refuses them when it
// connects (internal/outbox/guard.go), with the link-local ranges that hold most of them.
var (
	MetadataHosts = []string{"metadata.google.internal", "metadata.goog"}
	MetadataAddrs = []netip.Addr{netip.MustParseAddr("169.254.169.254"), netip.MustParseAddr("fd00:ec2::254"),
		netip.MustParseAddr("100.100.100.200")}
)

// refusedHost says why fsmd would refuse to deliver to host by default (a link-local address or a
// cloud metadata service), "" when it would not. Names that resolve there are found when delivering.
func refusedHost(host string) string {
	if slices.Contains(MetadataHosts, strings.ToLower(strings.TrimSuffix(host, "."))) {
		return "a cloud metadata service"
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return ""
	}
	ip = ip.Unmap()
	switch {
	case slices.Contains(MetadataAddrs, ip):
		return "a cloud metadata address"
	case ip.IsLinkLocalUnicast():
		return "a link-local address"
	}
	return ""
}

// notify parses the `notify` section: a list of webhooks. Their filters are checked against the
// states and events by validate, once the whole file is read. It runs after `events` and before
// `states`: an on_dead event not declared in `events` is declared here (OnDeadPayload), so that the
// guards and `set` of its transitions read its payload.
func (d *parser) notify(def *Definition, n *yaml.Node) []*Webhook {
	var out []*Webhook
	names := map[string]int{} // name -> line
	items := d.Sequence(n, "notify")
	if len(items) > MaxWebhooks {
		d.Errorf(source.At(d.Resolve(n)), "notify has %d webhooks; the limit is %d", len(items), MaxWebhooks)
		return nil
	}
	for _, item := range items {
		item = d.Resolve(item)
		entries, ok := d.Mapping(item, "a webhook of notify")
		if !ok {
			continue
		}
		w := &Webhook{Pos: source.At(item)}
		spec := d.Keys(entries, "a webhook", webhookKeys...)
		if e, ok := spec.Get("name"); ok {
			if s, ok := d.Scalar(e.Val, "webhook name"); ok {
				w.Name = s
				if line, dup := names[s]; dup {
					d.Errorf(source.At(e.Val), "webhook %q is already declared at line %d; names must be unique", s, line)
				} else if d.Name(e.Val, "webhook") {
					names[s] = e.Val.Line
				}
			}
		} else {
			d.Errorf(w.Pos, "a webhook needs a `name`")
		}
		what := "a webhook"
		if w.Name != "" {
			what = fmt.Sprintf("webhook %q", w.Name)
		}
		if e, ok := spec.Get("url"); ok {
			if s, ok := d.Scalar(e.Val, "url"); ok {
				w.URL = s
				if err := CheckWebhookURL(s); err != nil {
					d.Errorf(source.At(e.Val), "%s: url: %v", what, err)
				} else if u, _ := url.Parse(s); refusedHost(u.Hostname()) != "" {
					d.Warnf(source.At(e.Val), "%s: url: %s is %s: fsmd refuses to deliver there unless the process allows it",
						what, u.Hostname(), refusedHost(u.Hostname()))
				}
			}
		} else {
			d.Errorf(w.Pos, "%s needs a `url` (http or https)", what)
		}
		if e, ok := spec.Get("events"); ok {
			w.Events, w.eventPos = d.filter(e, what)
		}
		if e, ok := spec.Get("states"); ok {
			w.States, w.statePos = d.filter(e, what)
		}
		if e, ok := spec.Get("on_dead"); ok {
			d.onDead(def, w, e, what)
		}
		out = append(out, w)
	}
	return out
}

// onDead reads a webhook's `on_dead`: an event name. The event must not be declared in `events`
// with another payload than OnDeadPayload; not declared, it is declared with it. That a state
// handles it is checked by validate.
func (d *parser) onDead(def *Definition, w *Webhook, e source.Entry, what string) {
	v := d.Resolve(e.Val)
	s, ok := d.Scalar(v, what+" on_dead")
	if !ok || !d.Name(v, "on_dead event") {
		return
	}
	w.OnDead, w.onDeadPos = s, source.At(v)
	payload := OnDeadPayload()
	spec := def.Events[s]
	if spec == nil {
		def.Events[s] = &EventSpec{Name: s, Payload: payload, Pos: w.onDeadPos}
		return
	}
	if !sameFields(spec.Payload, payload) {
		d.Errorf(w.onDeadPos, "%s: on_dead: event %q is declared in events (line %d) with the payload %s; an on_dead event's payload is %s (leave it out of events, or declare exactly that)",
			what, s, spec.Pos.Line, spec.Payload, payload)
	}
}

// filter reads a webhook's `events` or `states`: a non-empty list of names, none twice.
func (d *parser) filter(e source.Entry, what string) ([]string, []Pos) {
	v := d.Resolve(e.Val)
	if source.IsNull(v) || v.Kind == yaml.SequenceNode && len(v.Content) == 0 {
		d.Errorf(source.At(v), "%s: %s is empty; leave it out to be told of every %s", what, e.Key,
			strings.TrimSuffix(e.Key, "s"))
		return nil, nil
	}
	items := d.Sequence(v, what+" "+e.Key)
	var names []string
	var pos []Pos
	for _, item := range items {
		s, ok := d.Scalar(item, what+" "+e.Key+" entry")
		if !ok {
			continue
		}
		if slices.Contains(names, s) {
			d.Errorf(source.At(d.Resolve(item)), "%s: %s lists %q twice", what, e.Key, s)
			continue
		}
		names = append(names, s)
		pos = append(pos, source.At(d.Resolve(item)))
	}
	return names, pos
}

// validateNotify checks that the filters of each webhook name events and states of the definition.
func validateNotify(def *Definition, r *source.Reporter) {
	if len(def.Notify) == 0 {
		return
	}
	events := map[string]bool{}
	for name := range def.Events {
		events[name] = true
	}
	for _, name := range def.StateOrder {
		for _, ev := range def.States[name].OnOrder {
			events[ev] = true
		}
	}
	for _, w := range def.Notify {
		for i, ev := range w.Events {
			if !events[ev] {
				r.Errorf(w.eventPos[i], "webhook %q: events: %q is not an event of the definition", w.Name, ev)
			}
		}
		for i, st := range w.States {
			if def.States[st] == nil {
				r.Errorf(w.statePos[i], "webhook %q: states: %q is not a declared state", w.Name, st)
			}
		}
		if w.OnDead != "" && !def.handled(w.OnDead) {
			r.Errorf(w.onDeadPos, "webhook %q: on_dead: no state handles event %q; handle it in the `on` of the states an instance may be in when a delivery is dead", w.Name, w.OnDead)
		}
	}
}

// handled reports whether some state handles event.
func (d *Definition) handled(event string) bool {
	for _, name := range d.StateOrder {
		if d.States[name].On[event] != nil {
			return true
		}
	}
	return false
}

// warnNotify warns about a webhook that no transition of the definition would notify.
func warnNotify(def *Definition, r *source.Reporter) {
	for _, w := range def.Notify {
		if len(w.Events) == 0 && len(w.States) == 0 {
			continue
		}
		if !def.anyTransition(w) {
			r.Warnf(w.Pos, "webhook %q is never notified: no transition of the definition is of an event in its `events` to a state in its `states`", w.Name)
		}
	}
}

func (d *Definition) anyTransition(w *Webhook) bool {
	for _, name := range d.StateOrder {
		s := d.States[name]
		for _, ev := range s.OnOrder {
			for _, b := range s.On[ev].Branches {
				if w.Notifies(ev, b.Target(name)) {
					return true
				}
			}
		}
	}
	return false
}
