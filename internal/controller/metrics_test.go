package controller_test

import (
	"context"
	"fmt"
	dto "github.com/prometheus/client_model/go"
	"math"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/testenv"
)

// served reads a series from controller-runtime's registry, the one
// --metrics-bind-address serves, by its documented name and label: a
// counter's value, or a histogram's sample count and sum (zeros for a
// series not there yet).
func served(t *testing.T, name, label, value string) (count uint64, sum float64) {
	t.Helper()
	labels := map[string]string{}
	if label != "" {
		labels[label] = value
	}
	m := gathered(t, name, labels)
	switch {
	case m == nil:
	case m.GetCounter() != nil:
		return uint64(m.GetCounter().GetValue()), 0
	case m.GetHistogram() != nil:
		return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
	}
	return 0, 0
}

// gathered is the first series of a family in the registry with the
// labels; nil when there is none.
func gathered(t *testing.T, name string, labels map[string]string) *dto.Metric {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue next
				}
			}
			return m
		}
	}
	return nil
}

// A promotion moves the verification metrics as documented: nothing is
// compared before the promotion, the promoted primary is compared with
// its record until it is verified (sluice_verification_attempts_total
// grows), the verification's time is observed once under
// result="Verified" (exactly what status.verification's start and finish
// say, whole seconds) and nothing under result="Failed", and a settled
// Canary compares nothing more.
func TestVerificationMetricsAfterAPromotion(t *testing.T) {
	const (
		attemptsTotal = "sluice_verification_attempts_total"
		duration      = "sluice_verification_duration_seconds"
	)
	_, ns, cl := setup(t)
	// Pods count as available 2 s after they are Ready, so verifying the
	// promoted primary takes at least that long.
	target := app(ns, "meter", "example.com/meter:1", 2)
	target.Spec.MinReadySeconds = 2
	create(t, cl, target, canary(ns, "meter", weightStep(50), untilPromoted()))
	waitPhase(t, cl, ns, "meter", v1alpha1.PhaseInitialized, 60*time.Second)
	attempts0, _ := served(t, attemptsTotal, "", "")
	verified0, sum0 := served(t, duration, "result", v1alpha1.VerificationVerified)
	failed0, _ := served(t, duration, "result", v1alpha1.VerificationFailed)

	setImage(t, cl, ns, "meter", "example.com/meter:2")
	waitPhase(t, cl, ns, "meter", v1alpha1.PhaseWaitingPromotion, 60*time.Second)
	if n, _ := served(t, attemptsTotal, "", ""); n != attempts0 {
		t.Errorf("%s grew by %d before the promotion", attemptsTotal, n-attempts0)
	}

	start := time.Now()
	request(t, cl, ns, "meter", v1alpha1.RequestPromote)
	done := waitPhase(t, cl, ns, "meter", v1alpha1.PhaseSucceeded, 60*time.Second)
	took := time.Since(start)
	attempts1, _ := served(t, attemptsTotal, "", "")
	if attempts1 <= attempts0 {
		t.Errorf("%s did not grow during the promotion (%d)", attemptsTotal, attempts1)
	}
	verified1, sum1 := served(t, duration, "result", v1alpha1.VerificationVerified)
	if verified1 != verified0+1 {
		t.Errorf(`%s{result="Verified"} has %d observations, want %d`, duration, verified1, verified0+1)
	}
	v := done.Status.Verification
	if v == nil || v.State != v1alpha1.VerificationVerified || v.StartedAt == nil || v.FinishedAt == nil {
		t.Fatalf("status.verification = %+v, want Verified with its times", v)
	}
	observed, recorded := sum1-sum0, v.FinishedAt.Sub(v.StartedAt.Time).Seconds()
	if observed < 1 || observed > took.Seconds()+1 || math.Abs(observed-recorded) > 1e-9 {
		t.Errorf(`%s{result="Verified"} observed %.3fs; status.verification says %.0fs, the promotion took %s`, duration, observed, recorded, took)
	}
	if n, _ := served(t, duration, "result", v1alpha1.VerificationFailed); n != failed0 {
		t.Errorf(`%s{result="Failed"} grew by %d`, duration, n-failed0)
	}

	// Settled: a reconcile of a new generation compares nothing.
	c, err := getCanary(t.Context(), cl, ns, "meter")
	if err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(c.DeepCopy())
	c.Spec.ProgressDeadline = &metav1.Duration{Duration: 11 * time.Minute}
	if err := cl.Patch(t.Context(), c, patch); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "a decision on the new generation", func(ctx context.Context) error {
		got, err := getCanary(ctx, cl, ns, "meter")
		if err != nil {
			return err
		}
		if got.Status.ObservedGeneration < c.Generation {
			return fmt.Errorf("observedGeneration %d, want %d", got.Status.ObservedGeneration, c.Generation)
		}
		return nil
	})
	if n, _ := served(t, attemptsTotal, "", ""); n != attempts1 {
		t.Errorf("%s grew by %d after the release settled", attemptsTotal, n-attempts1)
	}
}

// series reads one series of a family from controller-runtime's registry
// by its labels (a gauge's or a counter's value); false when there is no
// such series.
func series(t *testing.T, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	m := gathered(t, name, labels)
	switch {
	case m == nil:
		return 0, false
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue(), true
	}
	return m.GetCounter().GetValue(), true
}

// expectSeries fails unless the series is there with the value.
func expectSeries(t *testing.T, name string, labels map[string]string, want float64) {
	t.Helper()
	if got, ok := series(t, name, labels); !ok || got != want {
		t.Errorf("%s%v = %v (present %v), want %v", name, labels, got, ok, want)
	}
}

// releaseRecord reads the record of the Canary's current revision.
func releaseRecord(t *testing.T, cl client.Client, c *v1alpha1.Canary) *v1alpha1.CanaryRevision {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var rec v1alpha1.CanaryRevision
	key := client.ObjectKey{Namespace: c.Namespace, Name: c.Name + "-" + c.Status.CanaryRevision}
	if err := cl.Get(ctx, key, &rec); err != nil {
		t.Fatalf("record of %s: %v", key, err)
	}
	return &rec
}

// checkedPoints are a history's points of counted rounds.
func checkedPoints(h []v1alpha1.ReleasePoint) []v1alpha1.ReleasePoint {
	var out []v1alpha1.ReleasePoint
	for _, p := range h {
		if p.Round > 0 {
			out = append(out, p)
		}
	}
	return out
}
