package outbox

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the dispatcher's Prometheus metrics; all nil (and every method a no-op) when
// Config.Metrics is nil.
type metrics struct {
	outcomes *prometheus.CounterVec
	duration prometheus.Histogram
	open     prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fsmd_outbox_deliveries_total",
			Help: "Webhook delivery attempts and claimed rows by outcome: delivered, failed (to be retried), dead, released (given back unsent).",
		}, []string{"outcome"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "fsmd_outbox_delivery_duration_seconds",
			Help:    "Time of one webhook delivery attempt, from sending to reading the answer.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		open: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "fsmd_outbox_breakers_open",
			Help: "Destinations whose circuit breaker is open or half-open in this process.",
		}),
	}
	for _, c := range []prometheus.Collector{m.outcomes, m.duration, m.open} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) outcome(o string) {
	if m != nil {
		m.outcomes.WithLabelValues(o).Inc()
	}
}

func (m *metrics) observe(d time.Duration) {
	if m != nil {
		m.duration.Observe(d.Seconds())
	}
}

// breaker counts a breaker changing state.
func (m *metrics) breaker(from, to string) {
	if m == nil {
		return
	}
	switch {
	case from == BreakerClosed && to != BreakerClosed:
		m.open.Inc()
	case from != BreakerClosed && to == BreakerClosed:
		m.open.Dec()
	}
}
