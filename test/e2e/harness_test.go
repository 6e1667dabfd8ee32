// Package e2e proves that what Sluice writes is what a real proxy does with
// real requests: a real Traefik (built from its Go module, bin/traefik),
// real Prometheus scraping it, Sluice's controller, and a load generator
// (vegeta) recording which revision answered each request. The workloads'
// pods are kwok's (Ready, running nothing); the service responder
// (internal/dataplane) answers on each Service's ClusterIP as a Ready pod
// behind it would, following the pod's VERSION, ERROR_RATE and LATENCY.
// That responder stands in for kube-proxy plus the app; everything in
// front of it is real.
package e2e_test

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/analysis"
	"github.com/sluice-dev/sluice/internal/controller"
	"github.com/sluice-dev/sluice/internal/dataplane"
	"github.com/sluice-dev/sluice/internal/routers"
	"github.com/sluice-dev/sluice/internal/testenv"
)

const instanceID = "e2e"

// world is what every scenario shares: one Traefik, one Prometheus
// scraping it, one controller.
type world struct {
	env     *testenv.Cluster
	cl      client.Client
	traefik *dataplane.Traefik
	prom    *testenv.Prometheus
}

func newScheme(t *testing.T) *runtime.Scheme {
	s, err := controller.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// start brings the world up; the test's end stops it.
func start(t *testing.T, gateway bool) *world {
	t.Helper()
	env := testenv.Get(t)
	if err := env.InstallSluiceCRDs(); err != nil {
		t.Fatal(err)
	}
	scheme := newScheme(t)
	cl, err := client.New(env.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	tr := env.StartTraefik(t, gateway)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	metricsHost := strings.TrimSuffix(strings.TrimPrefix(tr.MetricsURL, "http://"), "/metrics")
	prom := testenv.StartPrometheus(t, time.Second, fmt.Sprintf("  - job_name: traefik\n    static_configs:\n      - targets: [%s]\n", testenv.YAMLQuote(metricsHost)))

	ctrl.SetLogger(logr.Discard())
	mgr, _, err := controller.NewManager(env.ControllerConfig(t), controller.ManagerConfig{
		Manager:        ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0"},
		InstanceID:     instanceID,
		MetricsServer:  prom.URL,
		BuiltinMetrics: analysis.BuiltinAuto,
		MaxQueries:     8,
		RouteSettle:    controller.DefaultRouteSettle,
		Options:        controller.Options{Workers: 4},
		Routers:        routers.All(),
	})
	if err != nil {
		t.Fatal(err)
	}
	mgrDone := make(chan struct{})
	go func() {
		defer close(mgrDone)
		if err := mgr.Start(ctx); err != nil {
			t.Errorf("manager: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-mgrDone })
	return &world{env: env, cl: cl, traefik: tr, prom: prom}
}

// namespace is a fresh namespace with a responder answering on its
// Services.
func (w *world) namespace(t *testing.T) (string, *dataplane.Responder) {
	t.Helper()
	ns := w.env.Namespace(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	resp, err := dataplane.StartResponder(ctx, w.env.Config, ns)
	if err != nil {
		t.Fatal(err)
	}
	return ns, resp
}

// app is a Deployment whose pods answer with version (and errRate of
// 500s).
func app(ns, name, version string, errRate float64) *appsv1.Deployment {
	replicas := int32(2)
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/" + name + ":" + version,
					Env: behaviourEnv(version, errRate)}}},
			},
		},
	}
}

func behaviourEnv(version string, errRate float64) []corev1.EnvVar {
	return []corev1.EnvVar{{Name: dataplane.EnvVersion, Value: version}, {Name: dataplane.EnvErrorRate, Value: fmt.Sprint(errRate)}}
}

// release changes the Deployment's pods to answer as version.
func (w *world) release(t *testing.T, ns, name, version string, errRate float64) {
	t.Helper()
	var d appsv1.Deployment
	if err := w.cl.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, &d); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(d.DeepCopy())
	d.Spec.Template.Spec.Containers[0].Image = "example.com/" + name + ":" + version
	d.Spec.Template.Spec.Containers[0].Env = behaviourEnv(version, errRate)
	if err := w.cl.Patch(t.Context(), &d, patch); err != nil {
		t.Fatal(err)
	}
}

// releaseUnderLoad releases v2 of the app "shop" while load runs (3 s of
// it before the release), runs meanwhile (if any) once the release has
// started, waits up to timeout for the promotion, keeps the load tail
// longer, and returns the answers with the release's start and end.
func (w *world) releaseUnderLoad(t *testing.T, ns string, tl *timeline, load *dataplane.Load, timeout, tail time.Duration, meanwhile func()) (results []dataplane.Result, released, done time.Time) {
	t.Helper()
	wait(3 * time.Second)
	released = time.Now()
	w.release(t, ns, "shop", "v2", 0)
	if meanwhile != nil {
		meanwhile()
	}
	w.waitFor(t, ns, "shop", v1alpha1.PhaseSucceeded, timeout)
	done = time.Now()
	wait(tail)
	results = load.Stop()
	tl.end()
	return results, released, done
}

// statusPoint is the Canary's status at a moment.
type statusPoint struct {
	at     time.Time
	phase  v1alpha1.CanaryPhase
	step   int32
	weight int32
	reason string
	// stepStarted is status.stepStartedAt (whole seconds): a timed pause
	// ends, and the next weight is written, no sooner than this plus its
	// duration.
	stepStarted time.Time
	// share is status.endpointShare as "canary/primary" (no router), ""
	// without one.
	share string
}

// timeline samples a Canary's status, and its route's canary share, every
// 100 ms until stopped.
type timeline struct {
	mu     sync.Mutex
	points []statusPoint
	// samples pair every status read with the route read just after it.
	samples []routeSample
	stop    chan struct{}
	done    chan struct{}
}

// watch samples the Canary name and the route that routeShare reads.
func (w *world) watch(t *testing.T, ns, name string, routeShare routeReader) *timeline {
	tl := &timeline{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(tl.done)
		for {
			var c v1alpha1.Canary
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := w.cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &c)
			var share float64
			var routeErr error
			if err == nil {
				share, routeErr = routeShare(ctx, w.cl, ns, name)
			}
			cancel()
			if err == nil && routeErr == nil {
				tl.mu.Lock()
				// Without a router the status states the share the
				// endpoints give (endpointShare) beside the weight.
				status := c.Status.CanaryWeight
				if sh := c.Status.EndpointShare; sh != nil {
					status = int32(math.Round(sh.Percent()))
				}
				tl.samples = append(tl.samples, routeSample{at: time.Now(), phase: c.Status.Phase, status: status, route: share})
				tl.mu.Unlock()
			}
			if err == nil {
				p := statusPoint{at: time.Now(), phase: c.Status.Phase, step: c.Status.CurrentStep, weight: c.Status.CanaryWeight, reason: c.Status.Reason}
				if c.Status.StepStartedAt != nil {
					p.stepStarted = c.Status.StepStartedAt.Time
				}
				if sh := c.Status.EndpointShare; sh != nil {
					p.share = fmt.Sprintf("%d/%d", sh.Canary, sh.Primary)
				}
				tl.mu.Lock()
				if n := len(tl.points); n == 0 || tl.points[n-1].phase != p.phase || tl.points[n-1].step != p.step || tl.points[n-1].weight != p.weight || tl.points[n-1].reason != p.reason || tl.points[n-1].share != p.share {
					tl.points = append(tl.points, p)
				}
				tl.mu.Unlock()
			}
			select {
			case <-tl.stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(tl.end)
	return tl
}

func (tl *timeline) end() {
	select {
	case <-tl.stop:
	default:
		close(tl.stop)
	}
	<-tl.done
}

// sharesAt are the status.endpointShare values seen at step i, each
// change once, in order ("" if none).
func (tl *timeline) sharesAt(i int) string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	var seen []string
	for _, p := range tl.points {
		if int(p.step) == i && p.share != "" && (len(seen) == 0 || seen[len(seen)-1] != p.share) {
			seen = append(seen, p.share)
		}
	}
	return strings.Join(seen, " then ")
}

// first is when a point first matched, zero if never.
func (tl *timeline) first(match func(statusPoint) bool) time.Time {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	for _, p := range tl.points {
		if match(p) {
			return p.at
		}
	}
	return time.Time{}
}

// phaseAt is the status point in force at a moment.
// pause is when pause step i ran: from the status recording it (written
// once the weight before it settled) to its end, which is the earlier of
// its duration and the next step in the status. The next weight is
// written when the pause ends; the status records it once the router
// carries it, and the step after it once it has settled.
func (tl *timeline) pause(i int, step v1alpha1.Step) (from, to time.Time) {
	var started time.Time
	from = tl.first(func(p statusPoint) bool {
		started = p.stepStarted
		return p.phase == v1alpha1.PhaseProgressing && p.step == int32(i)
	})
	if from.IsZero() {
		return from, from
	}
	to = tl.first(func(p statusPoint) bool { return p.at.After(from) && p.step != int32(i) })
	if d := step.Pause; d != nil && d.Duration != nil && !started.IsZero() {
		if end := started.Add(d.Duration.Duration); to.IsZero() || end.Before(to) {
			to = end
		}
	}
	return from, to
}

func (tl *timeline) phaseAt(at time.Time) statusPoint {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	var cur statusPoint
	for _, p := range tl.points {
		if p.at.After(at) {
			break
		}
		cur = p
	}
	return cur
}

// explainFailures logs the failed requests, counted by what the Canary
// was doing when they were sent and how they failed.
func explainFailures(t *testing.T, tl *timeline, rs []dataplane.Result) {
	t.Helper()
	counts := map[string]int{}
	for _, r := range rs {
		if r.Code == 200 {
			continue
		}
		p := tl.phaseAt(r.At)
		counts[fmt.Sprintf("%s step %d weight %d (%s): code %d %s", p.phase, p.step, p.weight, p.reason, r.Code, r.Error)]++
	}
	for k, n := range counts {
		t.Logf("%6d failed while %s", n, k)
	}
}

// explainShare logs how a window's answers spread, when its share missed:
// the answers of each pod, and the share of version in each second of the
// window, so a drift shows whether it came from a copy's pod answering
// less, or from part of the window carrying another split.
func explainShare(t *testing.T, tl *timeline, rs []dataplane.Result, version string, from time.Time) {
	t.Helper()
	t.Logf("route read every 100 ms, from 3 s before the window:%s", tl.routeTrail(from.Add(-3*time.Second), from))
	pods := map[string]int{}
	type second struct{ all, of int }
	var secs []second
	for _, r := range rs {
		pods[r.Pod]++
		i := int(r.At.Sub(from) / time.Second)
		for len(secs) <= i {
			secs = append(secs, second{})
		}
		secs[i].all++
		if r.Version == version {
			secs[i].of++
		}
	}
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(pods)) {
		fmt.Fprintf(&b, " %s=%d", name, pods[name])
	}
	t.Logf("answers by pod:%s", b.String())
	b.Reset()
	for i, s := range secs {
		if s.all > 0 {
			fmt.Fprintf(&b, " %ds:%.0f%%", i, 100*float64(s.of)/float64(s.all))
		}
	}
	t.Logf("%s share by second of the window:%s", version, b.String())
}

// routeTrail lists the route's canary share each time it changed in the
// samples taken after since, at its offset from origin.
func (tl *timeline) routeTrail(since, origin time.Time) string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	var b strings.Builder
	last := math.NaN()
	for _, s := range tl.samples {
		if s.at.Before(since) || s.route == last {
			continue
		}
		last = s.route
		fmt.Fprintf(&b, " %s:%.1f%%", s.at.Sub(origin).Round(100*time.Millisecond), s.route)
	}
	return b.String()
}

// waitFor waits until the Canary's phase is phase.
func (w *world) waitFor(t *testing.T, ns, name string, phase v1alpha1.CanaryPhase, timeout time.Duration) *v1alpha1.Canary {
	t.Helper()
	var got v1alpha1.Canary
	testenv.Eventually(t, timeout, fmt.Sprintf("canary %s/%s %s", ns, name, phase), func(ctx context.Context) error {
		if err := w.cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &got); err != nil {
			return err
		}
		if got.Status.Phase != phase {
			return fmt.Errorf("phase %s (%s: %s)", got.Status.Phase, got.Status.Reason, got.Status.Message)
		}
		return nil
	})
	return &got
}

// window is the results of one stream sent in [from, to).
func window(results []dataplane.Result, stream string, from, to time.Time) []dataplane.Result {
	var out []dataplane.Result
	for _, r := range results {
		if r.Stream == stream && !r.At.Before(from) && r.At.Before(to) {
			out = append(out, r)
		}
	}
	return out
}

// share is the percentage of results answered by version, and the
// failures (anything but 200).
func share(rs []dataplane.Result, version string) (pct float64, failures int) {
	n := 0
	for _, r := range rs {
		if r.Code != 200 {
			failures++
		}
		if r.Version == version {
			n++
		}
	}
	if len(rs) == 0 {
		return 0, failures
	}
	return 100 * float64(n) / float64(len(rs)), failures
}

// table prints a scenario's measurements.
type table struct {
	title string
	rows  []string
}

// add adds a row; a NaN measured share prints as "-".
func (tb *table) add(step, declared string, measured float64, requests, failures int) {
	m := fmt.Sprintf("%8.2f%%", measured)
	if math.IsNaN(measured) {
		m = fmt.Sprintf("%9s", "-")
	}
	tb.rows = append(tb.rows, fmt.Sprintf("| %-23s | %8s | %s | %8d | %8d |", step, declared, m, requests, failures))
}

func (tb *table) print(t *testing.T) {
	var b strings.Builder
	fmt.Fprintf(&b, "\n%s\n| %-23s | %8s | %9s | %8s | %8s |\n|%s|%s|%s|%s|%s|\n", tb.title, "step", "declared", "measured", "requests", "failures",
		strings.Repeat("-", 25), strings.Repeat("-", 10), strings.Repeat("-", 11), strings.Repeat("-", 10), strings.Repeat("-", 10))
	for _, r := range tb.rows {
		b.WriteString(r + "\n")
	}
	t.Log(b.String())
}
