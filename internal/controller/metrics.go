package controller

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/checks"
	"github.com/sluice-dev/sluice/internal/notify"
)

// Metrics are the controller's own Prometheus metrics, registered on
// controller-runtime's registry (served on --metrics-bind-address). One
// set per process, like that registry.
type Metrics struct {
	VerificationAttempts   prometheus.Counter
	VerificationMismatches *prometheus.CounterVec
	VerificationDuration   *prometheus.HistogramVec
	VerificationState      *prometheus.GaugeVec
	// Checks are the check runner's (sluice_webhook_events_dropped_total),
	// registered with these; the runner is given them (checks.Runner's
	// Metrics).
	Checks *checks.Metrics
	// Notify are the notifier's (sluice_notifications_total).
	Notify *notify.Metrics
}

// NewMetrics makes the metrics; Register adds them to a registry.
func NewMetrics() *Metrics {
	return &Metrics{
		VerificationAttempts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_verification_attempts_total",
			Help: "Comparisons of a promoted primary with its revision's record.",
		}),
		VerificationMismatches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_verification_mismatches_total",
			Help: "Mismatches counted against verification retries, by the field that differed (image, resources, replicas, template, rollout).",
		}, []string{"field"}),
		VerificationDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_verification_duration_seconds",
			Help:    "From the start of a promotion to the primary verified or the verification failed.",
			Buckets: []float64{1, 5, 10, 30, 60, 120, 300, 600, 1800},
		}, []string{"result"}),
		VerificationState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_canary_verification",
			Help: "1 for each Canary's current verification state (Verifying, Verified, Failed, Drifted); one series per Canary.",
		}, []string{"namespace", "name", "state"}),
		Checks: checks.NewMetrics(),
		Notify: notify.NewMetrics(),
	}
}

// Register adds the metrics to reg (metrics.Registry when nil).
func (m *Metrics) Register(reg prometheus.Registerer) error {
	if reg == nil {
		reg = metrics.Registry
	}
	for _, c := range []prometheus.Collector{m.VerificationAttempts, m.VerificationMismatches, m.VerificationDuration, m.VerificationState} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	if err := m.Notify.Register(reg); err != nil {
		return err
	}
	return m.Checks.Register(reg)
}

var verificationStates = []string{v1alpha1.VerificationVerifying, v1alpha1.VerificationVerified, v1alpha1.VerificationFailed, v1alpha1.ConditionDrifted}

// observeVerification updates the metrics from a status change: a
// comparison made, a mismatch counted, a verification finished, and the
// Canary's current state.
func (r *CanaryReconciler) observeVerification(c *v1alpha1.Canary, prev, next v1alpha1.CanaryStatus) {
	m := r.Metrics
	if m == nil {
		return
	}
	old, v := prev.Verification, next.Verification
	if v != nil && (v.State == v1alpha1.VerificationVerifying || old == nil || old.State == v1alpha1.VerificationVerifying) &&
		(prev.Phase == v1alpha1.PhasePromoting || next.Phase == v1alpha1.PhasePromoting) {
		m.VerificationAttempts.Inc()
	}
	if v != nil {
		counted := int32(0)
		if old != nil && old.Revision == v.Revision {
			counted = old.Mismatches
		}
		if v.Mismatches > counted {
			m.VerificationMismatches.WithLabelValues(v.LastMismatchField).Add(float64(v.Mismatches - counted))
		}
		finished := v.State == v1alpha1.VerificationVerified || v.State == v1alpha1.VerificationFailed
		wasFinished := old != nil && old.Revision == v.Revision && old.State == v.State
		if finished && !wasFinished && v.StartedAt != nil && v.FinishedAt != nil {
			m.VerificationDuration.WithLabelValues(v.State).Observe(v.FinishedAt.Sub(v.StartedAt.Time).Seconds())
		}
	}
	state := ""
	if v != nil {
		state = v.State
	}
	for _, cond := range next.Conditions {
		if cond.Type == v1alpha1.ConditionDrifted && cond.Status == "True" {
			state = v1alpha1.ConditionDrifted
		}
	}
	for _, s := range verificationStates {
		if s == state {
			m.VerificationState.WithLabelValues(c.Namespace, c.Name, s).Set(1)
		} else {
			m.VerificationState.DeleteLabelValues(c.Namespace, c.Name, s)
		}
	}
}

// forgetMetrics drops a deleted Canary's series.
func (r *CanaryReconciler) forgetMetrics(c *v1alpha1.Canary) {
	if r.Metrics == nil {
		return
	}
	for _, s := range verificationStates {
		r.Metrics.VerificationState.DeleteLabelValues(c.Namespace, c.Name, s)
	}
}
