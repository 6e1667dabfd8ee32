package checks

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Metrics are the runner's Prometheus metrics. One set per process, like
// the registry they are served from.
type Metrics struct {
	// EventsDropped counts Events not posted to an event webhook because
	// the runner's queue was full, one per webhook, by the Event's type
	// (Normal, Warning).
	EventsDropped *prometheus.CounterVec
}

// NewMetrics makes the metrics; Register adds them to a registry.
func NewMetrics() *Metrics {
	return &Metrics{
		EventsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_webhook_events_dropped_total",
			Help: "Events not posted to an event webhook because the check runner's queue was full, one per webhook, by the Event's type (Normal, Warning).",
		}, []string{"type"}),
	}
}

// Register adds the metrics to reg (controller-runtime's metrics.Registry
// when nil).
func (m *Metrics) Register(reg prometheus.Registerer) error {
	if reg == nil {
		reg = metrics.Registry
	}
	return reg.Register(m.EventsDropped)
}
