package controller_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/testenv"
)

// A successCondition that does not compile stalls the release before the
// canary gets any traffic, naming the metric and the expression, instead
// of failing every round until the release is rolled back. Fixing it lets
// the release go on.
func TestInvalidSuccessConditionStallsBeforeTraffic(t *testing.T) {
	ns, rates, prom := setupAnalysis(t)
	cl := direct
	rates.set("cond", 1)
	scraped(t, prom, "cond", 1)
	cv := analysed(ns, "cond", weightStep(20))
	cv.Spec.Analysis.Metrics = append(cv.Spec.Analysis.Metrics, v1alpha1.MetricCheck{
		Name: "error-ceiling", TemplateRef: &v1alpha1.TemplateRef{Name: "error-rate"}, SuccessCondition: "result >>> 2",
	})
	create(t, cl, app(ns, "cond", "example.com/cond:1", 1), cv)
	waitPhase(t, cl, ns, "cond", v1alpha1.PhaseInitialized, 60*time.Second)

	// From the release's start on, the canary's share of the route must
	// stay 0 until the condition is fixed.
	leaked := countWhile(t, func(ctx context.Context) bool {
		split, err := routeSplit(ctx, cl, ns, "cond")
		return err == nil && canaryShare(split, "cond") > 0
	})
	setImage(t, cl, ns, "cond", "example.com/cond:2")
	const want = `spec.analysis.metrics[1] (error-ceiling).successCondition "result >>> 2": unexpected token Operator(">") (1:9)`
	var stalled *v1alpha1.Canary
	testenv.Eventually(t, 30*time.Second, "release stalled on the bad successCondition", func(ctx context.Context) error {
		c, err := getCanary(ctx, cl, ns, "cond")
		if err != nil {
			return err
		}
		st := meta.FindStatusCondition(c.Status.Conditions, v1alpha1.ConditionStalled)
		if st == nil || st.Status != metav1.ConditionTrue || st.Reason != "InvalidSuccessCondition" || st.Message != want {
			return fmt.Errorf("phase %s (%s: %s), Stalled %+v", c.Status.Phase, c.Status.Reason, c.Status.Message, st)
		}
		stalled = c
		return nil
	})
	if stalled.Status.CheckRound != 0 || stalled.Status.FailedChecks != 0 {
		t.Errorf("check rounds ran on a condition that cannot be judged: round %d, failed %d", stalled.Status.CheckRound, stalled.Status.FailedChecks)
	}
	// A reconcile after the stall (a spec change) reports it again in
	// status but records no second event.
	patch := client.MergeFrom(stalled.DeepCopy())
	stalled.Spec.ProgressDeadline = &metav1.Duration{Duration: 20 * time.Minute}
	if err := cl.Patch(t.Context(), stalled, patch); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, "spec change seen while stalled", func(ctx context.Context) error {
		c, err := getCanary(ctx, cl, ns, "cond")
		if err != nil {
			return err
		}
		if c.Status.ObservedGeneration != c.Generation || c.Status.Reason != "InvalidSuccessCondition" {
			return fmt.Errorf("observed generation %d of %d, reason %s", c.Status.ObservedGeneration, c.Generation, c.Status.Reason)
		}
		return nil
	})
	testenv.Eventually(t, 10*time.Second, "one InvalidSuccessCondition Warning event", func(ctx context.Context) error {
		var list corev1.EventList
		if err := cl.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return err
		}
		var got []string
		for _, e := range list.Items {
			if e.InvolvedObject.Name != "cond" || e.Reason != "InvalidSuccessCondition" {
				continue
			}
			got = append(got, fmt.Sprintf("%s %s (count %d, series %v)", e.Type, e.Message, e.Count, e.Series))
			if e.Type != corev1.EventTypeWarning || !strings.Contains(e.Message, want) || e.Series != nil {
				return fmt.Errorf("event %s", got[len(got)-1])
			}
		}
		if len(got) != 1 {
			return fmt.Errorf("events %q, want one", got)
		}
		return nil
	})

	if n := leaked(); n > 0 {
		t.Errorf("the canary carried traffic in %d samples while its successCondition did not compile", n)
	}

	// Fixed, the release goes on and is judged by the condition.
	c, err := getCanary(t.Context(), cl, ns, "cond")
	if err != nil {
		t.Fatal(err)
	}
	patch = client.MergeFrom(c.DeepCopy())
	c.Spec.Analysis.Metrics[1].SuccessCondition = "result < 2"
	if err := cl.Patch(t.Context(), c, patch); err != nil {
		t.Fatal(err)
	}
	c = waitPhase(t, cl, ns, "cond", v1alpha1.PhaseSucceeded, 60*time.Second)
	if len(c.Status.Metrics) != 2 || !c.Status.Metrics[1].Passed || c.Status.FailedChecks != 0 {
		t.Errorf("after the fix: metrics %+v, failed %d", c.Status.Metrics, c.Status.FailedChecks)
	}
	if meta.IsStatusConditionTrue(c.Status.Conditions, v1alpha1.ConditionStalled) {
		t.Errorf("still Stalled after the fix")
	}
}

// A builtin metric while the controller has no --metrics-server (this
// suite's controller has none) stalls the release before the canary gets
// any traffic, naming the metric and the flag, instead of failing every
// round until the release is rolled back: an install that forgot the
// flag rolls nothing back.
func TestBuiltinMetricWithoutMetricsServerStallsBeforeTraffic(t *testing.T) {
	_, ns, cl := setup(t)
	cv := analysed(ns, "nometrics", weightStep(20))
	cv.Spec.Analysis.Metrics = []v1alpha1.MetricCheck{{Name: "request-success-rate", ThresholdRange: &v1alpha1.ThresholdRange{Min: ptr.To(99.0)}}}
	create(t, cl, app(ns, "nometrics", "example.com/nometrics:1", 1), cv)
	waitPhase(t, cl, ns, "nometrics", v1alpha1.PhaseInitialized, 60*time.Second)
	leaked := countWhile(t, func(ctx context.Context) bool {
		split, err := routeSplit(ctx, cl, ns, "nometrics")
		return err == nil && canaryShare(split, "nometrics") > 0
	})
	setImage(t, cl, ns, "nometrics", "example.com/nometrics:2")
	var stalled *v1alpha1.Canary
	testenv.Eventually(t, 30*time.Second, "release stalled on the builtin metric", func(ctx context.Context) error {
		c, err := getCanary(ctx, cl, ns, "nometrics")
		if err != nil {
			return err
		}
		st := meta.FindStatusCondition(c.Status.Conditions, v1alpha1.ConditionStalled)
		if st == nil || st.Status != metav1.ConditionTrue || st.Reason != v1alpha1.ReasonNoMetricsServer ||
			!strings.Contains(st.Message, "spec.analysis.metrics[0] (request-success-rate)") || !strings.Contains(st.Message, "--metrics-server") {
			return fmt.Errorf("phase %s (%s: %s), Stalled %+v", c.Status.Phase, c.Status.Reason, c.Status.Message, st)
		}
		stalled = c
		return nil
	})
	if stalled.Status.Phase == v1alpha1.PhaseFailed || stalled.Status.CheckRound != 0 || stalled.Status.FailedChecks != 0 {
		t.Errorf("phase %s, round %d, failed %d: want no round run and nothing rolled back", stalled.Status.Phase, stalled.Status.CheckRound, stalled.Status.FailedChecks)
	}
	if n := leaked(); n > 0 {
		t.Errorf("the canary carried traffic in %d samples while its builtin metric could not be queried", n)
	}
}
