package e2e_test

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/dataplane"
	"github.com/sluice-dev/sluice/internal/testenv"
)

// rate is the load: requests per second through Traefik.
const rate = 200

// minPerStep is the fewest requests a measured step may rest on. At 200/s
// a 15 s pause gives ~2,400 after the window's margins; with 1,500 the
// binomial standard error of a share is at most 1.3 points (at 50%), so a
// ±2 point bound would hold even for a proxy that chose at random.
// Traefik's weighted round-robin is deterministic, which is why the
// measured shares sit much closer than that.
const minPerStep = 1500

func host(ns string) string { return "shop." + ns + ".test" }

// ingressRoute is the user's IngressRoute for the apex Service.
func (w *world) ingressRoute(t *testing.T, ns, name string) {
	t.Helper()
	u := testenv.IngressRoute(ns, name, host(ns), map[string]any{"name": name, "port": int64(80)})
	if err := w.cl.Create(t.Context(), u); err != nil {
		t.Fatal(err)
	}
}

func canary(ns, name string, analysis *v1alpha1.Analysis, steps ...v1alpha1.Step) *v1alpha1.Canary {
	return &v1alpha1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"sluice.dev/instance": instanceID}},
		Spec: v1alpha1.CanarySpec{
			TargetRef: v1alpha1.TargetRef{Name: name},
			Service:   v1alpha1.ServiceSpec{Port: 80, TargetPort: "8080"},
			Router:    v1alpha1.RouterSpec{Traefik: &v1alpha1.TraefikRouter{IngressRoute: &v1alpha1.TraefikIngressRouteRef{Name: name}}},
			Strategy:  v1alpha1.Strategy{Steps: steps},
			Analysis:  analysis,
		},
	}
}

func setWeight(w int32) v1alpha1.Step { return v1alpha1.Step{SetWeight: &w} }
func pause(d time.Duration) v1alpha1.Step {
	return v1alpha1.Step{Pause: &v1alpha1.PauseStep{Duration: &metav1.Duration{Duration: d}}}
}

// serving waits until Traefik answers for the namespace's host with
// version.
func (w *world) serving(t *testing.T, ns, version string) {
	t.Helper()
	w.servingAt(t, host(ns), version)
}

// servingAt waits until Traefik answers requests for hostname from
// version.
func (w *world) servingAt(t *testing.T, hostname, version string) {
	t.Helper()
	testenv.Eventually(t, 60*time.Second, "traefik serving "+version+" at "+hostname, func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, w.traefik.WebURL+"/", nil)
		req.Host = hostname
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != 200 || resp.Header.Get(dataplane.HeaderVersion) != version {
			return fmt.Errorf("%d %q", resp.StatusCode, resp.Header.Get(dataplane.HeaderVersion))
		}
		return nil
	})
}

// TestEndToEnd runs every scenario against one world (one Traefik with
// both Kubernetes providers, one Prometheus, one controller: a process
// holds one controller manager).
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	w := start(t, true)
	t.Run("a-ingressroute-release", w.ingressRouteRelease)
	t.Run("b-gateway-api-release", w.gatewayAPIRelease)
	t.Run("c-rollback-on-errors", w.rollbackOnErrors)
	t.Run("d-header-route", w.headerRoute)
	t.Run("e-flagger-handover", w.flaggerHandover)
	t.Run("f-sticky-canary", w.stickyRelease)
	t.Run("g-blue-green", w.blueGreenRelease)
	t.Run("h-no-router-canary", w.noRouterCanary)
	t.Run("i-no-router-blue-green", w.blueGreenNoRouter)
	t.Run("j-judge-catches-slow-canary", w.judgeCatchesSlowCanary)
}

// (a) IngressRoute mode, canary to promotion: at every step the measured
// canary share is within ±2 points of the declared weight, and no request
// fails from the first step through promotion and finalisation.
func (w *world) ingressRouteRelease(t *testing.T) {
	ns, _ := w.namespace(t)
	steps := []v1alpha1.Step{setWeight(10), pause(15 * time.Second), setWeight(30), pause(15 * time.Second), setWeight(50), pause(15 * time.Second)}
	w.ingressRoute(t, ns, "shop")
	w.deploy(t, ns, app(ns, "shop", "v1", 0), canary(ns, "shop", nil, steps...))

	tl := w.watch(t, ns, "shop", ingressRouteShare)
	results, released, done := w.releaseUnderLoad(t, ns, tl, w.plainLoad(ns), 3*time.Minute, 5*time.Second, nil)

	tb := &table{title: "(a) IngressRoute mode: canary to promotion"}
	base := window(results, "plain", time.Time{}, released)
	pct, fails := share(base, "v2")
	tb.add("before the release", "0", pct, len(base), fails)
	measureSteps(t, tb, tl, results, steps, "v2")
	promoting := tl.first(func(p statusPoint) bool { return p.phase == v1alpha1.PhasePromoting })
	rs := window(results, "plain", promoting, done)
	pct, fails = share(rs, "v2")
	tb.add("promotion and finalise", "100→0", pct, len(rs), fails)
	after := window(results, "plain", done, time.Now())
	pct, fails = share(after, "v2")
	tb.add("after (primary runs v2)", "0", pct, len(after), fails)
	if pct != 100 {
		t.Errorf("after promotion %.2f%% of answers come from v2", pct)
	}
	all := window(results, "plain", released, time.Now())
	_, fails = share(all, "v2")
	tb.add("release, in all", "", math.NaN(), len(all), fails)
	tb.print(t)
	checkTransitions(t, "(a) transitions, from the new revision to the end", tl, results, "shop", released, time.Now())
	if fails != 0 {
		explainFailures(t, tl, all)
		t.Errorf("%d of %d requests failed from the first step through promotion and finalise", fails, len(all))
	}
}

// (c) A canary answering 20% 500s is rolled back on real Prometheus data
// (Traefik's own series), and requests stop reaching it within one analysis
// interval after the decision.
func (w *world) rollbackOnErrors(t *testing.T) {
	ns, _ := w.namespace(t)
	interval := 10 * time.Second
	analysis := &v1alpha1.Analysis{Interval: &metav1.Duration{Duration: interval}, Threshold: ptrTo(int32(2)),
		Metrics: []v1alpha1.MetricCheck{{Name: "request-success-rate", ThresholdRange: &v1alpha1.ThresholdRange{Min: ptrTo(95.0)}}}}
	steps := []v1alpha1.Step{setWeight(30), pause(3 * time.Minute), setWeight(60), pause(time.Minute)}
	w.ingressRoute(t, ns, "shop")
	w.deploy(t, ns, app(ns, "shop", "v1", 0), canary(ns, "shop", analysis, steps...))
	tl := w.watch(t, ns, "shop", ingressRouteShare)
	load := w.plainLoad(ns)
	released := time.Now()
	w.release(t, ns, "shop", "v2-bad", 0.2)
	failed := w.waitFor(t, ns, "shop", v1alpha1.PhaseFailed, 3*time.Minute)
	wait(interval + 5*time.Second)
	results := load.Stop()
	tl.end()

	decided := tl.first(func(p statusPoint) bool { return p.phase == v1alpha1.PhaseFailed })
	var last time.Time
	for _, r := range results {
		if r.Version == "v2-bad" && r.At.After(last) {
			last = r.At
		}
	}
	tb := &table{title: "(c) a canary answering 20% 500s: rolled back by Prometheus data"}
	at30 := tl.first(func(p statusPoint) bool { return p.step == 1 && p.phase == v1alpha1.PhaseProgressing })
	rs := window(results, "plain", at30, decided)
	pct, fails := share(rs, "v2-bad")
	tb.add("step 0: setWeight 30", "30", pct, len(rs), fails)
	after := window(results, "plain", decided.Add(interval), time.Now())
	pct, fails = share(after, "v2-bad")
	tb.add("one interval after", "0", pct, len(after), fails)
	tb.print(t)
	checkTransitions(t, "(c) transitions, from the new revision to the end", tl, results, "shop", released, time.Now())
	var metric string
	for _, m := range failed.Status.Metrics {
		metric += fmt.Sprintf("%s=%s (%s) ", m.Name, m.Value, m.Message)
	}
	t.Logf("rolled back %s after the release started (reason %s); last canary answer %s after the decision; metrics: %s",
		decided.Sub(released).Round(time.Second), failed.Status.Reason, last.Sub(decided).Round(100*time.Millisecond), metric)
	if failed.Status.Reason != "ChecksFailed" && failed.Status.Reason != "AnalysisFailed" {
		t.Logf("note: reason %q", failed.Status.Reason)
	}
	if last.After(decided.Add(interval)) {
		t.Errorf("the canary answered %s after the rollback decision (more than one interval, %s)", last.Sub(decided), interval)
	}
	if pct != 0 || len(after) == 0 {
		t.Errorf("after the rollback: %.2f%% of %d answers from the canary", pct, len(after))
	}
}

// (d) Header routing: before the first weight step, 100% of requests with
// the header reach the canary and 0% of those without.
func (w *world) headerRoute(t *testing.T) {
	ns, _ := w.namespace(t)
	yes := "yes"
	steps := []v1alpha1.Step{{SetHeaderRoute: &v1alpha1.HeaderRoute{Match: []v1alpha1.HeaderMatch{{Name: "X-Canary", Exact: &yes}}}},
		pause(15 * time.Second), setWeight(20), pause(5 * time.Second)}
	w.ingressRoute(t, ns, "shop")
	w.deploy(t, ns, app(ns, "shop", "v1", 0), canary(ns, "shop", nil, steps...))
	tl := w.watch(t, ns, "shop", ingressRouteShare)
	load := dataplane.StartLoad(w.traefik.WebURL, rate,
		dataplane.Stream{Name: "with", Header: http.Header{"Host": {host(ns)}, "X-Canary": {"yes"}}},
		dataplane.Stream{Name: "plain", Header: http.Header{"Host": {host(ns)}}})
	released := time.Now()
	w.release(t, ns, "shop", "v2", 0)
	w.waitFor(t, ns, "shop", v1alpha1.PhaseSucceeded, 3*time.Minute)
	results := load.Stop()
	tl.end()

	from, to := tl.pause(1, steps[1])
	if from.IsZero() || to.IsZero() {
		t.Fatal("the pause after the header step was not seen in the status timeline")
	}
	tb := &table{title: "(d) header route X-Canary: yes, before the first weight step"}
	with := window(results, "with", from, to)
	pctWith, failsWith := share(with, "v2")
	tb.add("with the header", "100", pctWith, len(with), failsWith)
	plain := window(results, "plain", from, to)
	pctPlain, failsPlain := share(plain, "v2")
	tb.add("without it", "0", pctPlain, len(plain), failsPlain)
	tb.print(t)
	checkTransitions(t, "(d) transitions of the requests without the header", tl, results, "shop", released, time.Now())
	if pctWith != 100 || pctPlain != 0 || failsWith+failsPlain != 0 || len(with) < minPerStep/2 || len(plain) < minPerStep/2 {
		t.Errorf("header route: %.2f%% of %d with the header and %.2f%% of %d without reached the canary (%d failures); want 100%% and 0%%, at least %d each",
			pctWith, len(with), pctPlain, len(plain), failsWith+failsPlain, minPerStep/2)
	}
}

func ptrTo[T any](v T) *T { return &v }

// measureSteps adds a row per pause that follows a setWeight step: the
// share of requests answered by version while the pause held, which must
// be the declared weight ±2 points, over at least minPerStep requests.
func measureSteps(t *testing.T, tb *table, tl *timeline, results []dataplane.Result, steps []v1alpha1.Step, version string) {
	t.Helper()
	for i, s := range steps {
		if s.Pause == nil || i == 0 || steps[i-1].SetWeight == nil {
			continue
		}
		declared := *steps[i-1].SetWeight
		from, to := tl.pause(i, s)
		if from.IsZero() || to.IsZero() {
			t.Fatalf("step %d (the pause after setWeight %d) not seen in the status timeline", i, declared)
		}
		rs := window(results, "plain", from, to)
		pct, fails := share(rs, version)
		tb.add(fmt.Sprintf("step %d: setWeight %d", i-1, declared), fmt.Sprint(declared), pct, len(rs), fails)
		if len(rs) < minPerStep || math.Abs(pct-float64(declared)) > 2 {
			t.Errorf("step %d: %.2f%% of %d requests answered by %s, declared %d%% (±2, at least %d requests)", i-1, pct, len(rs), version, declared, minPerStep)
			explainShare(t, tl, rs, version, from)
		}
	}
}

// deploy creates the objects, then waits until the Canary "shop" is
// Initialized and Traefik serves v1 for the namespace's host.
func (w *world) deploy(t *testing.T, ns string, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := w.cl.Create(t.Context(), o); err != nil {
			t.Fatal(err)
		}
	}
	w.waitFor(t, ns, "shop", v1alpha1.PhaseInitialized, 90*time.Second)
	w.serving(t, ns, "v1")
}

// plainLoad sends the steady load, without extra headers, to the
// namespace's host.
func (w *world) plainLoad(ns string) *dataplane.Load {
	return dataplane.StartLoad(w.traefik.WebURL, rate, dataplane.Stream{Name: "plain", Header: http.Header{"Host": {host(ns)}}})
}

// wait pauses the test (never a controller) for d.
func wait(d time.Duration) { <-time.After(d) }
