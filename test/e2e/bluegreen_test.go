package e2e_test

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/controller"
	"github.com/sluice-dev/sluice/internal/dataplane"
	"github.com/sluice-dev/sluice/internal/router/service"
	"github.com/sluice-dev/sluice/internal/testenv"
)

// Blue/green releases and Canaries without a router, through real
// requests: a real Traefik in front of the responder for (g), the apex
// Service's ClusterIP itself for (h) and (i) (the responder answers on it
// as kube-proxy would: by the selector's Ready pods, or by the Ready
// endpoints the Service's EndpointSlices list when it has none).

// blueGreenCanary is a blue/green Canary for the app "shop": a one-replica
// preview for 10 s behind shop-preview, then the switch, then a 10 s
// scale-down delay.
func blueGreenCanary(ns string, router v1alpha1.RouterSpec) *v1alpha1.Canary {
	c := canary(ns, "shop", nil)
	c.Spec.Router = router
	c.Spec.Strategy = v1alpha1.Strategy{BlueGreen: &v1alpha1.BlueGreen{
		PreviewService: "shop-preview", PreviewReplicaCount: ptrTo(int32(1)),
		AutoPromotionSeconds: ptrTo(int32(10)), ScaleDownDelay: &metav1.Duration{Duration: 10 * time.Second},
	}}
	return c
}

// scaled is app with n replicas.
func scaled(d *appsv1.Deployment, n int32) *appsv1.Deployment {
	d.Spec.Replicas = &n
	return d
}

// (g) Blue/green through Traefik (IngressRoute mode): the preview runs v2
// behind shop-preview with no production traffic; the switch moves every
// request at once; no request fails, and none is answered by v1 once the
// switch has settled.
func (w *world) blueGreenRelease(t *testing.T) {
	ns, _ := w.namespace(t)
	w.ingressRoute(t, ns, "shop")
	w.deploy(t, ns, scaled(app(ns, "shop", "v1", 0), 3), blueGreenCanary(ns, v1alpha1.RouterSpec{
		Traefik: &v1alpha1.TraefikRouter{IngressRoute: &v1alpha1.TraefikIngressRouteRef{Name: "shop"}}}))
	tl := w.watch(t, ns, "shop", ingressRouteShare)
	load := w.plainLoad(ns)
	w.blueGreenRun(t, ns, tl, load, "(g) blue/green through Traefik (IngressRoute)")
}

// (i) Blue/green without a router: the switch is the apex Service's
// selector, from the primary's pods to the canary's.
func (w *world) blueGreenNoRouter(t *testing.T) {
	ns, _ := w.namespace(t)
	w.deployNoRouter(t, ns, scaled(app(ns, "shop", "v1", 0), 3), blueGreenCanary(ns, v1alpha1.RouterSpec{}))
	tl := w.watch(t, ns, "shop", apexShare)
	load := dataplane.StartLoad(w.clusterURL(t, ns, "shop"), rate, dataplane.Stream{Name: "plain"})
	w.blueGreenRun(t, ns, tl, load, "(i) blue/green without a router (apex Service selector)")
}

func (w *world) blueGreenRun(t *testing.T, ns string, tl *timeline, load *dataplane.Load, title string) {
	// The preview answers as v2 on its own Service while production
	// traffic stays on v1.
	results, released, done := w.releaseUnderLoad(t, ns, tl, load, 3*time.Minute, 5*time.Second,
		func() { w.previewServes(t, ns, "shop-preview", "v2") })

	switched := tl.first(func(p statusPoint) bool { return p.step == 2 && p.phase == v1alpha1.PhaseProgressing })
	promoting := tl.first(func(p statusPoint) bool { return p.phase == v1alpha1.PhasePromoting })
	if switched.IsZero() || promoting.IsZero() {
		t.Fatalf("the switch (step 2) or the promotion never seen in the status timeline")
	}
	// The switch counts as carried once read back and given the route's
	// settle time (step 2 starts then); answers sent after it plus the
	// sampling slack must all be v2.
	settled := switched.Add(sampleSlack)
	tb := &table{title: title}
	row := func(name, declared string, from, to time.Time) []dataplane.Result {
		rs := window(results, "plain", from, to)
		pct, fails := share(rs, "v2")
		tb.add(name, declared, pct, len(rs), fails)
		return rs
	}
	row("before the release", "0", time.Time{}, released)
	// The preview ends when the switch is written, which the sampled
	// status shows up to one sample (and its write) later.
	switchAsked := tl.first(func(p statusPoint) bool { return p.step == 1 })
	preview := row("preview (1 replica)", "0", released.Add(controller.DefaultRouteSettle), switchAsked.Add(-sampleSlack))
	row("switch and delay", "100", settled, promoting)
	row("promotion and finalise", "100→0", promoting, done)
	after := row("after (primary runs v2)", "0", done, time.Now())
	all := row("release, in all", "", released, time.Now())
	tb.print(t)
	if pct, _ := share(preview, "v2"); pct != 0 {
		t.Errorf("%.2f%% of production requests reached the preview before the switch", pct)
	}
	old := 0
	for _, r := range window(results, "plain", settled, time.Now()) {
		if r.Version != "v2" {
			old++
		}
	}
	t.Logf("switch carried %s after the release; %d answers not from v2 after it settled", switched.Sub(released).Round(100*time.Millisecond), old)
	if old != 0 {
		t.Errorf("%d answers after the switch settled came from another version than v2", old)
	}
	if pct, _ := share(after, "v2"); pct != 100 {
		t.Errorf("after promotion %.2f%% of answers come from v2", pct)
	}
	if _, fails := share(all, "v2"); fails != 0 {
		explainFailures(t, tl, all)
		t.Errorf("%d of %d requests failed during the release", fails, len(all))
	}
}

// (h) A canary walk without a router: the weight is approximated by the
// share of Ready endpoints the apex Service lists (4 replicas a copy). At
// each step the share measured at the ClusterIP is within ±3 points of the
// endpoints' share, which is the closest the replica counts allow.
func (w *world) noRouterCanary(t *testing.T) {
	ns, _ := w.namespace(t)
	steps := []v1alpha1.Step{setWeight(20), pause(15 * time.Second), setWeight(30), pause(15 * time.Second),
		setWeight(50), pause(15 * time.Second), setWeight(80), pause(15 * time.Second)}
	c := canary(ns, "shop", nil, steps...)
	c.Spec.Router = v1alpha1.RouterSpec{}
	w.deployNoRouter(t, ns, scaled(app(ns, "shop", "v1", 0), 4), c)
	tl := w.watch(t, ns, "shop", apexShare)
	load := dataplane.StartLoad(w.clusterURL(t, ns, "shop"), rate, dataplane.Stream{Name: "plain"})
	results, released, done := w.releaseUnderLoad(t, ns, tl, load, 4*time.Minute, 3*time.Second, nil)

	tb := &table{title: "(h) canary without a router: declared weight, the endpoints' share, the share measured"}
	for i, s := range steps {
		if s.Pause == nil {
			continue
		}
		declared := *steps[i-1].SetWeight
		np, nc := service.Counts(declared, 4, 4)
		endpoints := 100 * float64(nc) / float64(np+nc)
		from, to := tl.pause(i, s)
		if from.IsZero() || to.IsZero() {
			t.Fatalf("step %d not seen in the status timeline", i)
		}
		rs := window(results, "plain", from, to)
		pct, fails := share(rs, "v2")
		tb.add(fmt.Sprintf("%d%%: %d canary, %d primary", declared, nc, np), fmt.Sprintf("%d→%.1f", declared, endpoints), pct, len(rs), fails)
		if len(rs) < minPerStep || math.Abs(pct-endpoints) > 3 {
			t.Errorf("setWeight %d: %.2f%% of %d requests answered by v2; the endpoints give %.1f%% (±3, at least %d requests)", declared, pct, len(rs), endpoints, minPerStep)
			explainShare(t, tl, rs, "v2", from)
		}
		if got := tl.sharesAt(i); got != fmt.Sprintf("%d/%d", nc, np) {
			t.Errorf("setWeight %d: status.endpointShare canary/primary during the pause = %s, want %d/%d throughout", declared, got, nc, np)
		}
	}
	all := window(results, "plain", released, done)
	_, fails := share(all, "v2")
	tb.add("release, in all", "", math.NaN(), len(all), fails)
	tb.print(t)
	checkTransitions(t, "(h) transitions, from the new revision to the end", tl, results, "shop", released, done)
	if fails != 0 {
		explainFailures(t, tl, all)
		t.Errorf("%d of %d requests failed during the release", fails, len(all))
	}
}

// deployNoRouter creates the objects, then waits until the Canary is
// Initialized and the apex Service answers v1.
func (w *world) deployNoRouter(t *testing.T, ns string, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := w.cl.Create(t.Context(), o); err != nil {
			t.Fatal(err)
		}
	}
	w.waitFor(t, ns, "shop", v1alpha1.PhaseInitialized, 90*time.Second)
	url := w.clusterURL(t, ns, "shop")
	testenv.Eventually(t, 60*time.Second, "apex Service serving v1", func(ctx context.Context) error {
		return answersAs(ctx, url, "v1")
	})
}

// previewServes waits until the preview Service answers as version.
func (w *world) previewServes(t *testing.T, ns, name, version string) {
	t.Helper()
	testenv.Eventually(t, 90*time.Second, name+" serving "+version, func(ctx context.Context) error {
		return answersAs(ctx, w.clusterURL(t, ns, name), version)
	})
}

func answersAs(ctx context.Context, url, version string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/", nil)
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
}

// clusterURL is the URL of a Service's ClusterIP (where the responder
// answers), once the Service exists.
func (w *world) clusterURL(t *testing.T, ns, name string) string {
	t.Helper()
	var url string
	testenv.Eventually(t, 60*time.Second, "service "+name, func(ctx context.Context) error {
		var svc corev1.Service
		if err := w.cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &svc); err != nil {
			return err
		}
		url = fmt.Sprintf("http://%s:%d", svc.Spec.ClusterIP, svc.Spec.Ports[0].Port)
		return nil
	})
	return url
}

// apexShare is the canary's share (percent) of the Ready endpoints the
// apex Service's EndpointSlices list, as kube-proxy reads them: every
// slice labelled with the Service's name when it has no selector, and
// with a selector, those of the EndpointSlice controller and Sluice's. An
// endpoint is the primary's when its pod is <name>-primary-…
func apexShare(ctx context.Context, cl client.Client, ns, name string) (float64, error) {
	var apex corev1.Service
	if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &apex); err != nil {
		return 0, err
	}
	var list discoveryv1.EndpointSliceList
	if err := cl.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels{discoveryv1.LabelServiceName: name}); err != nil {
		return 0, err
	}
	var canary, total float64
	for _, es := range list.Items {
		for _, ep := range es.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready || ep.TargetRef == nil {
				continue
			}
			total++
			if !strings.HasPrefix(ep.TargetRef.Name, name+"-primary-") {
				canary++
			}
		}
	}
	if total == 0 {
		return 0, fmt.Errorf("service %s lists no Ready endpoint", name)
	}
	return 100 * canary / total, nil
}
