package e2e_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/dataplane"
)

// meanLatency is the mean time Traefik took to answer for one copy's
// Service (ms) over 3 s, from its own histogram; {{ copy }} picks the
// copy, so the judge asks it once for the canary and once for the
// primary. In IngressRoute mode the primary's share goes to the apex
// Service (<service>), the canary's to <service>-canary.
const meanLatency = `{{ $svc := print namespace "-" service }}{{ if eq copy "canary" }}{{ $svc = print $svc "-canary" }}{{ end -}}
1000 * sum(rate(traefik_service_request_duration_seconds_sum{service=~"{{ $svc }}-[0-9]+@kubernetescrd"}[3s]))
  / sum(rate(traefik_service_request_duration_seconds_count{service=~"{{ $svc }}-[0-9]+@kubernetescrd"}[3s]))`

// withLatency makes a Deployment's pods answer after d.
func withLatency(d *appsv1.Deployment, latency time.Duration) *appsv1.Deployment {
	c := &d.Spec.Template.Spec.Containers[0]
	c.Env = append(c.Env, corev1.EnvVar{Name: dataplane.EnvLatency, Value: latency.String()})
	return d
}

// (j) The statistical judge passes a canary as fast as its primary and
// catches what a fixed threshold lets through: first a revision answering
// in 15 ms like the old one is promoted; then one answering in 45 ms. Its
// builtin p99 latency stays far under its 500 ms threshold and passes
// every round; the judge, comparing the canary's per-second mean
// latencies with the primary's over each round, finds the canary higher
// and fails the rounds until the release rolls back.
func (w *world) judgeCatchesSlowCanary(t *testing.T) {
	ns, _ := w.namespace(t)
	interval := 20 * time.Second
	tmpl := &v1alpha1.MetricTemplate{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "mean-latency"},
		Spec: v1alpha1.MetricTemplateSpec{
			Provider: v1alpha1.MetricProvider{Type: v1alpha1.ProviderPrometheus, Address: w.prom.URL},
			Query:    meanLatency,
		},
	}
	analysis := &v1alpha1.Analysis{Interval: &metav1.Duration{Duration: interval}, Threshold: ptrTo(int32(2)),
		Metrics: []v1alpha1.MetricCheck{
			{Name: "request-duration", ThresholdRange: &v1alpha1.ThresholdRange{Max: ptrTo(500.0)}},
			{Name: "mean-latency", TemplateRef: &v1alpha1.TemplateRef{Name: "mean-latency"},
				Compare: &v1alpha1.Comparison{Direction: "Increase", TolerancePercent: ptrTo(int32(10)), MinSamples: ptrTo(int32(12)),
					SampleInterval: &metav1.Duration{Duration: time.Second}}},
		}}
	steps := []v1alpha1.Step{setWeight(50), pause(20 * time.Second)}
	w.ingressRoute(t, ns, "shop")
	if err := w.cl.Create(t.Context(), tmpl); err != nil {
		t.Fatal(err)
	}
	w.deploy(t, ns, withLatency(app(ns, "shop", "v1", 0), 15*time.Millisecond), canary(ns, "shop", analysis, steps...))
	tl := w.watch(t, ns, "shop", ingressRouteShare)
	load := w.plainLoad(ns)
	wait(3 * time.Second)
	release := func(version string, latency time.Duration) time.Time {
		var d appsv1.Deployment
		if err := w.cl.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "shop"}, &d); err != nil {
			t.Fatal(err)
		}
		patch := client.MergeFrom(d.DeepCopy())
		d.Spec.Template.Spec.Containers[0].Image = "example.com/shop:" + version
		d.Spec.Template.Spec.Containers[0].Env = append(behaviourEnv(version, 0), corev1.EnvVar{Name: dataplane.EnvLatency, Value: latency.String()})
		if err := w.cl.Patch(t.Context(), &d, patch); err != nil {
			t.Fatal(err)
		}
		return time.Now()
	}

	released := release("v2", 15*time.Millisecond)
	promoted := w.waitFor(t, ns, "shop", v1alpha1.PhaseSucceeded, 4*time.Minute)
	if j := promoted.Status.Judge; j == nil || j.Verdict != v1alpha1.VerdictPass || len(j.Metrics) != 1 || j.Metrics[0].Verdict != v1alpha1.VerdictPass {
		t.Fatalf("a canary as fast as its primary: judge %+v; want its last round passed", j)
	} else {
		m := j.Metrics[0]
		t.Logf("(j) as fast as the primary: promoted %s after the release started; judge round %d score %s: canary %s (n=%d) vs primary %s (n=%d), shift %s, p=%s",
			time.Since(released).Round(time.Second), j.Round, j.Score, m.CanaryMedian, m.CanarySamples, m.PrimaryMedian, m.PrimarySamples, m.Shift, m.PValue)
	}

	released = release("v3-slow", 45*time.Millisecond)
	failed := w.waitFor(t, ns, "shop", v1alpha1.PhaseFailed, 4*time.Minute)
	load.Stop()
	tl.end()

	decided := tl.first(func(p statusPoint) bool { return p.phase == v1alpha1.PhaseFailed })
	var metrics []string
	for _, m := range failed.Status.Metrics {
		metrics = append(metrics, fmt.Sprintf("%s=%s passed=%t inconclusive=%t (%s)", m.Name, m.Value, m.Passed, m.Inconclusive, m.Message))
	}
	t.Logf("(j) three times slower: rolled back %s after the release started: %s: %s", decided.Sub(released).Round(time.Second), failed.Status.Reason, failed.Status.Message)
	t.Logf("(j) last round: %s", strings.Join(metrics, "; "))
	if j := failed.Status.Judge; j != nil {
		for _, m := range j.Metrics {
			t.Logf("(j) judge round %d score %s %s: %s %s canary %s (n=%d) vs primary %s (n=%d), shift %s, p=%s",
				j.Round, j.Score, j.Verdict, m.Name, m.Verdict, m.CanaryMedian, m.CanarySamples, m.PrimaryMedian, m.PrimarySamples, m.Shift, m.PValue)
		}
	}
	if failed.Status.Reason != v1alpha1.ReasonAnalysisFailed {
		t.Errorf("reason %s; want AnalysisFailed", failed.Status.Reason)
	}
	// The fixed threshold let the slow canary through; the judge did not.
	var threshold, judge *v1alpha1.MetricStatus
	for i, m := range failed.Status.Metrics {
		switch m.Name {
		case "request-duration":
			threshold = &failed.Status.Metrics[i]
		case v1alpha1.JudgeCheckName:
			judge = &failed.Status.Metrics[i]
		}
	}
	if threshold == nil || !threshold.Passed {
		t.Errorf("the fixed threshold (p99 under 500 ms) should pass for a 45 ms canary: %+v", threshold)
	}
	if judge == nil || judge.Passed || judge.Inconclusive {
		t.Errorf("the judge's last round should have failed: %+v", judge)
	}
	j := failed.Status.Judge
	if j == nil || len(j.Metrics) != 1 || j.Metrics[0].Verdict != v1alpha1.VerdictHigh || j.Verdict != v1alpha1.VerdictFail {
		t.Fatalf("status.judge: %+v; want mean-latency High and the round failed", j)
	}
	if !strings.Contains(failed.Status.Message, "judge: score 0") || !strings.Contains(failed.Status.Message, "mean-latency High: canary higher than primary") {
		t.Errorf("the rollback message does not say the judge found the canary slower: %s", failed.Status.Message)
	}
}
