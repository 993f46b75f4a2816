package server

import (
	"errors"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fsmd-io/fsmd/internal/code"
	"github.com/fsmd-io/fsmd/internal/service"
)

// metrics are what /metrics serves: the events by definition, event and outcome (accepted, or the
// error code), their latency, and the Go runtime and process. Each server has a registry of its own,
// so that tests and several servers in one process do not share counters.
type metrics struct {
	registry *prometheus.Registry
	events   *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// newMetrics registers the server's metrics with registry (a new one when nil): the process's
// other parts (the outbox dispatcher) may register theirs there too, and /metrics shows them all.
func newMetrics(registry *prometheus.Registry) *metrics {
	if registry == nil {
		registry = prometheus.NewRegistry()
	}
	m := &metrics{
		registry: registry,
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fsmd_events_total",
			Help: "Events sent to instances, by definition, event and outcome (accepted, replayed, or the error code).",
		}, []string{"definition", "event", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "fsmd_event_duration_seconds",
			Help:    "Time to handle an event, from decoding to the answer, by definition.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5},
		}, []string{"definition"}),
	}
	m.registry.MustRegister(m.events, m.latency,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() echo.HandlerFunc {
	return echo.WrapHandler(promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{}))
}

// observe counts one event. The definition is known from the answer, or from the instance an error
// carries; an error before the instance was read (not found, a bad request) counts under "".
func (m *metrics) observe(event string, res service.EventResult, replayed bool, err error, took time.Duration) {
	definition, outcome := res.Instance.Definition, "accepted"
	switch {
	case err != nil:
		outcome = code.Of(err)
		if outcome == "" {
			outcome = code.Internal
		}
		var ee *service.EventError
		var vc *service.VersionConflictError
		if errors.As(err, &ee) {
			definition = ee.Instance.Definition
		} else if errors.As(err, &vc) {
			definition = vc.Instance.Definition
		}
	case replayed:
		outcome = "replayed"
	}
	m.events.WithLabelValues(definition, event, outcome).Inc()
	m.latency.WithLabelValues(definition).Observe(took.Seconds())
}
