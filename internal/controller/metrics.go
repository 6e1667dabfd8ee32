package controller

import (
	"strconv"

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
	// Per Canary, from the status each reconcile writes.
	Phase        *prometheus.GaugeVec
	Weight       *prometheus.GaugeVec
	Step         *prometheus.GaugeVec
	Steps        *prometheus.GaugeVec
	FailedChecks *prometheus.GaugeVec
	CheckValue   *prometheus.GaugeVec
	// Releases and Rollbacks count ends of releases, on the status
	// transition that records them.
	Releases  *prometheus.CounterVec
	Rollbacks *prometheus.CounterVec
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
		Phase: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_canary_phase",
			Help: "1 for each Canary's current phase (Initializing, Initialized, Waiting, Progressing, Paused, WaitingPromotion, Promoting, Finalising, Succeeded, Failed); one series per Canary.",
		}, []string{"namespace", "name", "phase"}),
		Weight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_canary_weight_ratio",
			Help: "The canary's share of the route Sluice set, from 0 to 1 (status.canaryWeight / 100).",
		}, []string{"namespace", "name"}),
		Step: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_canary_step",
			Help: "The index of the step the release runs (0-based).",
		}, []string{"namespace", "name"}),
		Steps: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_canary_steps",
			Help: "The number of steps of the release.",
		}, []string{"namespace", "name"}),
		FailedChecks: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_canary_failed_checks",
			Help: "Failed check rounds of the current release (spec.analysis.threshold of them roll it back).",
		}, []string{"namespace", "name"}),
		CheckValue: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_canary_check_value",
			Help: "Each metric's value in the last check round, when it answered a number.",
		}, []string{"namespace", "name", "metric"}),
		Releases: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_releases_total",
			Help: "Releases that ended, by outcome (Succeeded, Failed, Superseded).",
		}, []string{"namespace", "name", "outcome"}),
		Rollbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_rollbacks_total",
			Help: "Releases rolled back, by the reason in the Canary's status (ChecksFailed, ProgressDeadlineExceeded, Aborted, ...).",
		}, []string{"namespace", "name", "reason"}),
		Checks: checks.NewMetrics(),
		Notify: notify.NewMetrics(),
	}
}

// Register adds the metrics to reg (metrics.Registry when nil).
func (m *Metrics) Register(reg prometheus.Registerer) error {
	if reg == nil {
		reg = metrics.Registry
	}
	for _, c := range []prometheus.Collector{m.VerificationAttempts, m.VerificationMismatches, m.VerificationDuration, m.VerificationState,
		m.Phase, m.Weight, m.Step, m.Steps, m.FailedChecks, m.CheckValue, m.Releases, m.Rollbacks} {
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

var phases = []v1alpha1.CanaryPhase{v1alpha1.PhaseInitializing, v1alpha1.PhaseInitialized, v1alpha1.PhaseWaiting,
	v1alpha1.PhaseProgressing, v1alpha1.PhasePaused, v1alpha1.PhaseWaitingPromotion, v1alpha1.PhasePromoting,
	v1alpha1.PhaseFinalising, v1alpha1.PhaseSucceeded, v1alpha1.PhaseFailed}

// observeCanary sets a Canary's gauges from the status written, and
// counts a release's end on the transition into it: prev is the status
// read, so a restarted controller, reading the end already written, does
// not count it again.
func (r *CanaryReconciler) observeCanary(c *v1alpha1.Canary, prev, next v1alpha1.CanaryStatus) {
	m := r.Metrics
	if m == nil {
		return
	}
	ns, name := c.Namespace, c.Name
	for _, p := range phases {
		if p == next.Phase {
			m.Phase.WithLabelValues(ns, name, string(p)).Set(1)
		} else {
			m.Phase.DeleteLabelValues(ns, name, string(p))
		}
	}
	m.Weight.WithLabelValues(ns, name).Set(float64(next.CanaryWeight) / 100)
	m.Step.WithLabelValues(ns, name).Set(float64(next.CurrentStep))
	m.Steps.WithLabelValues(ns, name).Set(float64(next.Steps))
	m.FailedChecks.WithLabelValues(ns, name).Set(float64(next.FailedChecks))
	m.CheckValue.DeletePartialMatch(prometheus.Labels{"namespace": ns, "name": name})
	for _, v := range next.Metrics {
		if f, err := strconv.ParseFloat(v.Value, 64); err == nil {
			m.CheckValue.WithLabelValues(ns, name, v.Name).Set(f)
		}
	}
	ended := func(p v1alpha1.CanaryPhase) bool { return p == v1alpha1.PhaseSucceeded || p == v1alpha1.PhaseFailed }
	switch {
	case ended(next.Phase) && (!ended(prev.Phase) || prev.CanaryRevision != next.CanaryRevision):
		m.Releases.WithLabelValues(ns, name, outcome(next.Phase)).Inc()
		if next.Phase == v1alpha1.PhaseFailed {
			m.Rollbacks.WithLabelValues(ns, name, next.Reason).Inc()
		}
	case prev.CanaryRevision != "" && prev.CanaryRevision != next.CanaryRevision && prev.Phase.InRelease():
		m.Releases.WithLabelValues(ns, name, v1alpha1.OutcomeSuperseded).Inc()
	}
}

// forgetMetrics drops a deleted Canary's series.
func (r *CanaryReconciler) forgetMetrics(c *v1alpha1.Canary) {
	m := r.Metrics
	if m == nil {
		return
	}
	labels := prometheus.Labels{"namespace": c.Namespace, "name": c.Name}
	for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{
		m.VerificationState, m.Phase, m.Weight, m.Step, m.Steps, m.FailedChecks, m.CheckValue, m.Releases, m.Rollbacks,
	} {
		v.DeletePartialMatch(labels)
	}
}
