package controller_test

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/testenv"
)

// errorRates is an exporter the test controls: one gauge per canary,
// canary_error_rate{canary="<name>"}, scraped by a real Prometheus.
type errorRates struct {
	mu    sync.Mutex
	rates map[string]float64
	addr  string
}

func startErrorRates(t *testing.T) *errorRates {
	e := &errorRates{rates: map[string]float64{}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = l.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		defer e.mu.Unlock()
		fmt.Fprintln(w, "# TYPE canary_error_rate gauge")
		for name, v := range e.rates {
			fmt.Fprintf(w, "canary_error_rate{canary=%q} %g\n", name, v)
		}
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return e
}

func (e *errorRates) set(name string, v float64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rates[name] = v
}

// scraped waits until Prometheus has the canary's rate, as it would long
// before a release on a real cluster.
func scraped(t *testing.T, prom *testenv.Prometheus, name string, v float64) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, "prometheus scraped "+name, func(ctx context.Context) error {
		s, err := prom.Query(ctx, fmt.Sprintf(`canary_error_rate{canary=%q}`, name))
		if err != nil || len(s) != 1 || s[0].Value != v {
			return fmt.Errorf("%v %v", s, err)
		}
		return nil
	})
}

// analysed builds a Canary checked every 2s against the error-rate
// template, rolled back after 2 failed rounds.
func analysed(ns, name string, steps ...v1alpha1.Step) *v1alpha1.Canary {
	c := canary(ns, name, steps...)
	c.Spec.Analysis = &v1alpha1.Analysis{
		Interval:  &metav1.Duration{Duration: 2 * time.Second},
		Threshold: ptr.To(int32(2)),
		Metrics: []v1alpha1.MetricCheck{{
			Name:           "error-rate",
			TemplateRef:    &v1alpha1.TemplateRef{Name: "error-rate"},
			ThresholdRange: &v1alpha1.ThresholdRange{Max: ptr.To(5.0)},
		}},
	}
	return c
}

func errorRateTemplate(ns, promURL string) *v1alpha1.MetricTemplate {
	return &v1alpha1.MetricTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "error-rate", Namespace: ns},
		Spec: v1alpha1.MetricTemplateSpec{
			Provider: v1alpha1.MetricProvider{Type: "prometheus", Address: promURL, Timeout: &metav1.Duration{Duration: 2 * time.Second}},
			Query:    `max(canary_error_rate{canary="{{ name }}"})`,
		},
	}
}

func setupAnalysis(t *testing.T) (string, *errorRates, *testenv.Prometheus) {
	_, ns, cl := setup(t)
	rates := startErrorRates(t)
	prom := testenv.StartPrometheus(t, time.Second, fmt.Sprintf("- job_name: rates\n  static_configs:\n  - targets: [%q]\n", rates.addr))
	create(t, cl, errorRateTemplate(ns, prom.URL))
	return ns, rates, prom
}

func TestHealthyCanaryPromotesOnRealMetrics(t *testing.T) {
	ns, rates, prom := setupAnalysis(t)
	cl := direct
	rates.set("good", 1)
	scraped(t, prom, "good", 1)
	create(t, cl, app(ns, "good", "example.com/good:1", 1), analysed(ns, "good", weightStep(20), pauseStep(2*time.Second), weightStep(60)))
	waitPhase(t, cl, ns, "good", v1alpha1.PhaseInitialized, 60*time.Second)
	setImage(t, cl, ns, "good", "example.com/good:2")
	c := waitPhase(t, cl, ns, "good", v1alpha1.PhaseSucceeded, 90*time.Second)
	if c.Status.FailedChecks != 0 || len(c.Status.Metrics) != 1 || !c.Status.Metrics[0].Passed || c.Status.Metrics[0].Value != "1" {
		t.Errorf("after a healthy release: failed %d, metrics %+v", c.Status.FailedChecks, c.Status.Metrics)
	}
	if c.Status.CheckedRound < 3 {
		t.Errorf("only %d check rounds counted; every step should have run one", c.Status.CheckedRound)
	}
	// The record keeps the release's history: each counted round with its
	// value, and each weight the route carried, in order.
	rec := releaseRecord(t, cl, c)
	rounds := checkedPoints(rec.Status.History)
	if rec.Status.Outcome != v1alpha1.OutcomeSucceeded || int64(len(rounds)) != rec.Status.CheckRounds || len(rounds) < 3 {
		t.Errorf("record: outcome %s, checkRounds %d, %d round points; want Succeeded and one point per round (≥ 3)", rec.Status.Outcome, rec.Status.CheckRounds, len(rounds))
	}
	var weights []int32
	for i, p := range rec.Status.History {
		if len(weights) == 0 || weights[len(weights)-1] != p.Weight {
			weights = append(weights, p.Weight)
		}
		if i > 0 && p.Time.Before(&rec.Status.History[i-1].Time) {
			t.Errorf("history point %d is older than the one before it", i)
		}
	}
	if !slices.Contains(weights, 20) || !slices.Contains(weights, 60) || !slices.IsSorted(weights[:len(weights)-1]) {
		t.Errorf("history weights %v: want 20 then 60 in order", weights)
	}
	for _, p := range rounds {
		if len(p.Values) != 1 || p.Values[0].Name != "error-rate" || p.Values[0].Value != "1" || p.Values[0].Result != v1alpha1.ResultPassed {
			t.Errorf("round %d values %+v: want error-rate 1 Passed", p.Round, p.Values)
		}
	}
	// And the gauges and counters say the same.
	who := map[string]string{"namespace": ns, "name": "good"}
	expectSeries(t, "sluice_releases_total", merged(who, "outcome", v1alpha1.OutcomeSucceeded), 1)
	expectSeries(t, "sluice_canary_phase", merged(who, "phase", string(v1alpha1.PhaseSucceeded)), 1)
	expectSeries(t, "sluice_canary_check_value", merged(who, "metric", "error-rate"), 1)
	expectSeries(t, "sluice_canary_failed_checks", who, 0)
	if _, ok := series(t, "sluice_canary_phase", merged(who, "phase", string(v1alpha1.PhaseProgressing))); ok {
		t.Errorf("sluice_canary_phase still has a Progressing series for a Succeeded Canary")
	}
}

func merged(m map[string]string, k, v string) map[string]string {
	out := maps.Clone(m)
	out[k] = v
	return out
}

func TestErrorRateRollsBackAfterExactlyThreshold(t *testing.T) {
	ns, rates, prom := setupAnalysis(t)
	cl := direct
	rates.set("flaky", 20)
	scraped(t, prom, "flaky", 20)
	create(t, cl, app(ns, "flaky", "example.com/flaky:1", 1), analysed(ns, "flaky", weightStep(20), pauseStep(time.Hour)))
	waitPhase(t, cl, ns, "flaky", v1alpha1.PhaseInitialized, 60*time.Second)
	setImage(t, cl, ns, "flaky", "example.com/flaky:2")
	c := waitPhase(t, cl, ns, "flaky", v1alpha1.PhaseFailed, 60*time.Second)
	if c.Status.Reason != "AnalysisFailed" || c.Status.FailedChecks != 2 {
		t.Errorf("reason %s, failed checks %d; want AnalysisFailed after exactly 2", c.Status.Reason, c.Status.FailedChecks)
	}
	if !strings.Contains(c.Status.Message, "error-rate: 20 is above the maximum 5") {
		t.Errorf("message does not name the metric and why: %s", c.Status.Message)
	}
	expectShare(t, cl, ns, "flaky", 0)
	expectTargetReplicas(t, cl, ns, "flaky", 0)
	assertEvents(t, cl, ns, "flaky", "CheckFailed", "AnalysisFailed")
	rec := releaseRecord(t, cl, c)
	rounds := checkedPoints(rec.Status.History)
	h := rec.Status.History
	if rec.Status.Outcome != v1alpha1.OutcomeFailed || rec.Status.CheckRounds != 2 || len(rounds) != 2 || len(h) == 0 || h[len(h)-1].Weight != 0 {
		t.Errorf("record: outcome %s, checkRounds %d, history %+v; want Failed after 2 rounds, ending at weight 0", rec.Status.Outcome, rec.Status.CheckRounds, h)
	}
	for i, p := range rounds {
		if len(p.Values) != 1 || p.Values[0].Value != "20" || p.Values[0].Result != v1alpha1.ResultFailed || p.FailedChecks != int32(i+1) {
			t.Errorf("round %d: failed %d, values %+v; want error-rate 20 Failed, %d failed so far", p.Round, p.FailedChecks, p.Values, i+1)
		}
	}
	who := map[string]string{"namespace": ns, "name": "flaky"}
	expectSeries(t, "sluice_rollbacks_total", merged(who, "reason", "AnalysisFailed"), 1)
	expectSeries(t, "sluice_releases_total", merged(who, "outcome", v1alpha1.OutcomeFailed), 1)
	expectSeries(t, "sluice_canary_failed_checks", who, 2)
	expectSeries(t, "sluice_canary_weight_ratio", who, 0)
	expectSeries(t, "sluice_canary_check_value", merged(who, "metric", "error-rate"), 20)
}

func TestNoSeriesIsAFailedCheck(t *testing.T) {
	ns, _, _ := setupAnalysis(t)
	cl := direct
	// Nothing exports a rate for this canary.
	create(t, cl, app(ns, "silent", "example.com/silent:1", 1), analysed(ns, "silent", weightStep(20), pauseStep(time.Hour)))
	waitPhase(t, cl, ns, "silent", v1alpha1.PhaseInitialized, 60*time.Second)
	setImage(t, cl, ns, "silent", "example.com/silent:2")
	c := waitPhase(t, cl, ns, "silent", v1alpha1.PhaseFailed, 60*time.Second)
	if !strings.Contains(c.Status.Message, "no values: is the canary receiving traffic?") {
		t.Errorf("message: %s", c.Status.Message)
	}
}

func TestPrometheusDownMidAnalysisNeverPromotes(t *testing.T) {
	ns, rates, prom := setupAnalysis(t)
	cl := direct
	rates.set("blind", 1)
	scraped(t, prom, "blind", 1)
	create(t, cl, app(ns, "blind", "example.com/blind:1", 1), analysed(ns, "blind", weightStep(20), pauseStep(4*time.Second), weightStep(60)))
	waitPhase(t, cl, ns, "blind", v1alpha1.PhaseInitialized, 60*time.Second)
	setImage(t, cl, ns, "blind", "example.com/blind:2")
	testenv.Eventually(t, 30*time.Second, "first round passed", func(ctx context.Context) error {
		c, err := getCanary(ctx, cl, ns, "blind")
		if err != nil {
			return err
		}
		if c.Status.CheckedRound < 1 || c.Status.FailedChecks != 0 {
			return fmt.Errorf("checked %d failed %d", c.Status.CheckedRound, c.Status.FailedChecks)
		}
		return nil
	})
	prom.Stop()
	c := waitPhase(t, cl, ns, "blind", v1alpha1.PhaseFailed, 60*time.Second)
	if c.Status.Reason != "AnalysisFailed" || !strings.Contains(c.Status.Message, prom.URL) {
		t.Errorf("reason %s: %s; want AnalysisFailed naming the provider", c.Status.Reason, c.Status.Message)
	}
	if meta.IsStatusConditionTrue(c.Status.Conditions, v1alpha1.ConditionReady) {
		t.Errorf("a release judged on no evidence must not be Ready")
	}
	primary, _ := deployment(t.Context(), cl, ns, "blind-primary")
	if img := primary.Spec.Template.Spec.Containers[0].Image; img != "example.com/blind:1" {
		t.Errorf("promoted without evidence: primary runs %s", img)
	}
}
