package istio_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/engine"
	"github.com/sluice-dev/sluice/internal/router"
	"github.com/sluice-dev/sluice/internal/router/istio"
	"github.com/sluice-dev/sluice/internal/testenv"
)

// Against the local control plane with Istio's own CRDs (istio.io/api
// v1.31.1, whose OpenAPI schemas and CEL rules the apiserver enforces),
// and Istio's own validation (istiocheck). No istiod or Envoy runs here.

// The user's objects of the in-place tests: a VirtualService for a gateway
// and the mesh with a route Sluice must not touch, and the route it
// splits carrying retries, a timeout, a CORS policy and header
// manipulation; a DestinationRule with a traffic policy, its own subset,
// and a stable subset whose labels Sluice replaces.
const userVS = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: front
  annotations: {team: shop}
spec:
  hosts: [shop.example.com, shop]
  gateways: [istio-system/public, mesh]
  http:
  - name: admin
    match: [{uri: {prefix: /admin}}]
    route: [{destination: {host: admin}}]
  - name: main
    match:
    - uri: {prefix: /}
    - uri: {prefix: /api}
      headers: {x-tenant: {exact: acme}}
    retries: {attempts: 3, perTryTimeout: 2s, retryOn: "5xx,connect-failure"}
    timeout: 10s
    corsPolicy:
      allowOrigins: [{exact: "https://shop.example.com"}]
      allowMethods: [GET, POST]
      maxAge: 24h
    headers: {request: {set: {x-env: prod}}}
    route:
    - destination: {host: shop, subset: stable, port: {number: 80}}
      weight: 100
      headers: {response: {add: {x-copy: stable}}}
    - destination: {host: shop.NS.svc.cluster.local, subset: canary, port: {number: 80}}
      weight: 0
  - name: rest
    route: [{destination: {host: shop, port: {number: 80}}}]
`

const userDR = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: shop
spec:
  host: shop
  trafficPolicy:
    connectionPool: {http: {http1MaxPendingRequests: 10}}
    outlierDetection: {consecutive5xxErrors: 5, interval: 30s}
  subsets:
  - name: legacy
    labels: {track: legacy}
  - name: stable
    labels: {version: old}
    trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
`

func object(t *testing.T, ns, doc string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(strings.ReplaceAll(doc, ".NS.", "."+ns+".")), &u.Object); err != nil {
		t.Fatal(err)
	}
	u.SetNamespace(ns)
	return u
}

// workloads creates what Sluice has made before it routes: the target
// (template labels app=web and the shared service=shop), the -primary
// and -canary Services, and the user's Service shop selecting both
// copies.
func workloads(t *testing.T, cl client.Client, ns string) {
	t.Helper()
	ctx := t.Context()
	labels := map[string]string{"app": "web", "service": "shop"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(0)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "example.com/web:1"}}}},
		},
	}
	svc := func(name string, sel map[string]string) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: corev1.ServiceSpec{Selector: sel, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}
	}
	for _, o := range []client.Object{d,
		svc("web", map[string]string{"app": "web-primary"}),
		svc("web-primary", map[string]string{"app": "web-primary"}),
		svc("web-canary", map[string]string{"app": "web"}),
		svc("shop", map[string]string{"service": "shop"}),
	} {
		if err := cl.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
}

func canaryFor(t *testing.T, cl client.Client, ns string, is *v1alpha1.IstioRouter, steps ...v1alpha1.Step) *v1alpha1.Canary {
	t.Helper()
	if len(steps) == 0 {
		steps = []v1alpha1.Step{{SetWeight: ptr.To(int32(10))}}
	}
	c := &v1alpha1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns, Labels: map[string]string{"sluice.dev/instance": "none"}},
		Spec: v1alpha1.CanarySpec{TargetRef: v1alpha1.TargetRef{Name: "web"}, Service: v1alpha1.ServiceSpec{Port: 80},
			Router: v1alpha1.RouterSpec{Istio: is}, Strategy: v1alpha1.Strategy{Steps: steps}},
	}
	if err := cl.Create(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	return c
}

func inPlaceSpec() *v1alpha1.IstioRouter {
	return &v1alpha1.IstioRouter{
		VirtualService:  &v1alpha1.IstioVirtualServiceRef{Name: "front", Routes: []string{"main"}},
		DestinationRule: &v1alpha1.IstioDestinationRuleRef{Name: "shop"},
	}
}

func get(t *testing.T, cl client.Reader, kind, ns, name string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(istio.GVK(kind))
	if err := cl.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
		t.Fatal(err)
	}
	return u
}

func toJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func route(t *testing.T, vs *unstructured.Unstructured, name string) map[string]any {
	t.Helper()
	http, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
	for _, x := range http {
		if r := x.(map[string]any); r["name"] == name {
			return r
		}
	}
	return nil
}

func routeNames(vs *unstructured.Unstructured) []string {
	http, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
	var out []string
	for _, x := range http {
		out = append(out, x.(map[string]any)["name"].(string))
	}
	return out
}

// weightsOf reads a route's stable and canary weights (its first two
// destinations).
func weightsOf(t *testing.T, vs *unstructured.Unstructured, name string) (stable, canary int64) {
	t.Helper()
	rt := route(t, vs, name)
	dests := rt["route"].([]any)
	return dests[0].(map[string]any)["weight"].(int64), dests[1].(map[string]any)["weight"].(int64)
}

// In place, Sluice changes the split route's two weights, puts a header
// route (a copy of the user's route) before it and a mirror on it while
// those steps run, gives the DestinationRule its stable and canary
// subsets, and nothing else: at 0% both objects are as the user wrote
// them, byte for byte, but for the subsets' labels.
func TestInPlaceChangesOnlyWeightsAndSubsets(t *testing.T) {
	env := testenv.Get(t)
	cl, ns := env.SluiceClient(t), env.Namespace(t)
	ctx := t.Context()
	ic := newIstioChecker(t)
	workloads(t, cl, ns)
	vs, dr := object(t, ns, userVS), object(t, ns, userDR)
	for _, u := range []*unstructured.Unstructured{vs, dr} {
		ic.valid(u)
		if err := cl.Create(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	vsBefore, drBefore := get(t, cl, istio.VirtualService, ns, "front"), get(t, cl, istio.DestinationRule, ns, "shop")

	r := &istio.Router{Client: cl, Reader: cl, User: cl, Scheme: cl.Scheme(), Apex: "web"}
	// A cookie step is a regex on the Cookie header.
	yes, cookie := "yes", v1alpha1.CookieRegex("canary", "always")
	hr := &v1alpha1.HeaderRoute{Match: []v1alpha1.HeaderMatch{{Name: "X-Canary", Exact: &yes}}, Cookie: &v1alpha1.CookieMatch{Name: "canary"}}
	c := canaryFor(t, cl, ns, inPlaceSpec(),
		v1alpha1.Step{SetHeaderRoute: hr}, v1alpha1.Step{SetMirror: &v1alpha1.MirrorStep{Percent: 50}}, v1alpha1.Step{SetWeight: ptr.To(int32(30))})
	if reason, msg, err := r.Check(ctx, c); err != nil || reason != "" {
		t.Fatalf("Check = %q, %q, %v; want nothing", reason, msg, err)
	}

	split := router.Split{CanaryWeight: 30, HeaderRoute: hr, MirrorPercent: 50}
	if err := r.Apply(ctx, c, split); err != nil {
		t.Fatal(err)
	}
	got := get(t, cl, istio.VirtualService, ns, "front")
	ic.valid(got)
	if s, cw := weightsOf(t, got, "main"); s != 70 || cw != 30 {
		t.Errorf("main route weights %d/%d, want 70/30", s, cw)
	}
	if names := strings.Join(routeNames(got), ","); names != "admin,main-sluice-canary,main,rest" {
		t.Errorf("routes %s, want the header route right before main", names)
	}
	main := route(t, got, "main")
	if toJSON(t, main["mirror"]) != `{"host":"shop","port":{"number":80},"subset":"canary"}` || toJSON(t, main["mirrorPercentage"]) != `{"value":50}` {
		t.Errorf("main route mirror %v %v, want the canary subset at 50%%", main["mirror"], main["mirrorPercentage"])
	}
	hdr := route(t, got, "main-sluice-canary")
	userMain := route(t, vsBefore, "main")
	for _, k := range []string{"retries", "timeout", "corsPolicy", "headers"} {
		if toJSON(t, hdr[k]) != toJSON(t, userMain[k]) {
			t.Errorf("header route %s = %s, want the user's %s", k, toJSON(t, hdr[k]), toJSON(t, userMain[k]))
		}
	}
	wantMatch := `[{"headers":{"cookie":{"regex":` + toJSON(t, cookie) + `},"x-canary":{"exact":"yes"}},"uri":{"prefix":"/"}},` +
		`{"headers":{"cookie":{"regex":` + toJSON(t, cookie) + `},"x-canary":{"exact":"yes"},"x-tenant":{"exact":"acme"}},"uri":{"prefix":"/api"}}]`
	if m := toJSON(t, hdr["match"]); m != wantMatch {
		t.Errorf("header route match %s,\nwant %s", m, wantMatch)
	}
	if d := toJSON(t, hdr["route"]); d != `[{"destination":{"host":"shop.`+ns+`.svc.cluster.local","port":{"number":80},"subset":"canary"}}]` {
		t.Errorf("header route destinations %s, want the user's canary destination alone", d)
	}
	if _, ok := hdr["mirror"]; ok {
		t.Error("the header route mirrors the canary to itself")
	}
	gotDR := get(t, cl, istio.DestinationRule, ns, "shop")
	ic.valid(gotDR)
	subsets, _, _ := unstructured.NestedSlice(gotDR.Object, "spec", "subsets")
	wantSubsets := `[{"labels":{"track":"legacy"},"name":"legacy"},{"labels":{"app":"web-primary"},"name":"stable","trafficPolicy":{"loadBalancer":{"simple":"ROUND_ROBIN"}}},{"labels":{"app":"web"},"name":"canary"}]`
	if toJSON(t, subsets) != wantSubsets {
		t.Errorf("subsets %s,\nwant %s", toJSON(t, subsets), wantSubsets)
	}
	// The controller observes without the header route: the key comes
	// back in the Canary's spelling from its steps.
	if rt, err := r.Observe(ctx, c, router.Split{}); err != nil || !rt.Exists || rt.Pending != "" || rt.CanaryWeight != 30 || rt.MirrorPercent != 50 || rt.HeaderRoute != engine.HeaderRouteKey(hr) {
		t.Errorf("Observe = %+v, %v; want 30%%, mirror 50%%, the header route in the Canary's spelling", rt, err)
	}

	// The same split again writes nothing.
	if err := r.Apply(ctx, c, split); err != nil {
		t.Fatal(err)
	}
	if again := get(t, cl, istio.VirtualService, ns, "front"); again.GetResourceVersion() != got.GetResourceVersion() {
		t.Error("the same split rewrote the VirtualService")
	}
	if again := get(t, cl, istio.DestinationRule, ns, "shop"); again.GetResourceVersion() != gotDR.GetResourceVersion() {
		t.Error("the same split rewrote the DestinationRule")
	}

	// Back to 0% without header route or mirror: the VirtualService is
	// the user's again, byte for byte, and the DestinationRule too but for
	// the subsets' labels and the canary subset.
	if err := r.Apply(ctx, c, router.Split{}); err != nil {
		t.Fatal(err)
	}
	after := get(t, cl, istio.VirtualService, ns, "front")
	ic.valid(after)
	if a, b := toJSON(t, after.Object["spec"]), toJSON(t, vsBefore.Object["spec"]); a != b {
		t.Errorf("the VirtualService at 0%%:\n%s\nwant the user's:\n%s", a, b)
	}
	if a, b := toJSON(t, after.GetAnnotations()), toJSON(t, vsBefore.GetAnnotations()); a != b {
		t.Errorf("the VirtualService's annotations %s, want %s", a, b)
	}
	afterDR := get(t, cl, istio.DestinationRule, ns, "shop")
	drSpec, wantSpec := afterDR.Object["spec"].(map[string]any), drBefore.Object["spec"].(map[string]any)
	delete(drSpec, "subsets")
	delete(wantSpec, "subsets")
	if a, b := toJSON(t, drSpec), toJSON(t, wantSpec); a != b {
		t.Errorf("the DestinationRule apart from subsets:\n%s\nwant the user's:\n%s", a, b)
	}
	if rt, err := r.Observe(ctx, c, router.Split{}); err != nil || rt.CanaryWeight != 0 || rt.MirrorPercent != 0 || rt.HeaderRoute != "" || rt.Pending != "" {
		t.Errorf("Observe at 0 = %+v, %v", rt, err)
	}

	// Release: the subsets both select what the apex Service selects
	// (here the primary's pods).
	if err := r.Release(ctx, c, router.Backend{Kind: "Service", Name: "web", Port: ptr.To(int32(80))}); err != nil {
		t.Fatal(err)
	}
	rel := get(t, cl, istio.DestinationRule, ns, "shop")
	subsets, _, _ = unstructured.NestedSlice(rel.Object, "spec", "subsets")
	if toJSON(t, subsets) != strings.Replace(wantSubsets, `{"app":"web"}`, `{"app":"web-primary"}`, 1) {
		t.Errorf("subsets after release %s", toJSON(t, subsets))
	}
	if a, b := toJSON(t, get(t, cl, istio.VirtualService, ns, "front").Object["spec"]), toJSON(t, vsBefore.Object["spec"]); a != b {
		t.Errorf("the VirtualService after release:\n%s\nwant the user's:\n%s", a, b)
	}
	// Objects the user has deleted need nothing handed back.
	if err := cl.Delete(ctx, get(t, cl, istio.VirtualService, ns, "front")); err != nil {
		t.Fatal(err)
	}
	if err := r.Release(ctx, c, router.Backend{Kind: "Service", Name: "web", Port: ptr.To(int32(80))}); err != nil {
		t.Errorf("Release without the VirtualService: %v", err)
	}
	if err := cl.Delete(ctx, rel); err != nil {
		t.Fatal(err)
	}
	if err := r.Release(ctx, c, router.Backend{Kind: "Service", Name: "web", Port: ptr.To(int32(80))}); err != nil {
		t.Errorf("Release without either object: %v", err)
	}
}

// staleOnce answers the first read of each object with the version it
// had when the test began: Sluice's update then conflicts.
type staleOnce struct {
	client.Reader
	stale map[string]*unstructured.Unstructured
}

func (s *staleOnce) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if old, ok := s.stale[key.Name]; ok {
		delete(s.stale, key.Name)
		old.DeepCopyInto(obj.(*unstructured.Unstructured))
		return nil
	}
	return s.Reader.Get(ctx, key, obj, opts...)
}

// An update carries the resourceVersion read: a change made meanwhile
// (the user's new timeout) makes it conflict, Sluice reads again past
// the cache and keeps that change.
func TestInPlaceUpdateIsOptimistic(t *testing.T) {
	env := testenv.Get(t)
	cl, ns := env.SluiceClient(t), env.Namespace(t)
	ctx := t.Context()
	workloads(t, cl, ns)
	for _, u := range []*unstructured.Unstructured{object(t, ns, userVS), object(t, ns, userDR)} {
		if err := cl.Create(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	c := canaryFor(t, cl, ns, inPlaceSpec())
	stale := &staleOnce{Reader: cl, stale: map[string]*unstructured.Unstructured{"front": get(t, cl, istio.VirtualService, ns, "front")}}
	// The user changes the timeout after Sluice's (stale) read.
	vs := get(t, cl, istio.VirtualService, ns, "front")
	http, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
	http[1].(map[string]any)["timeout"] = "20s"
	_ = unstructured.SetNestedSlice(vs.Object, http, "spec", "http")
	if err := cl.Update(ctx, vs); err != nil {
		t.Fatal(err)
	}
	r := &istio.Router{Client: cl, Reader: cl, User: stale, Scheme: cl.Scheme(), Apex: "web"}
	if err := r.Apply(ctx, c, router.Split{CanaryWeight: 40}); err != nil {
		t.Fatal(err)
	}
	got := get(t, cl, istio.VirtualService, ns, "front")
	if s, cw := weightsOf(t, got, "main"); s != 60 || cw != 40 {
		t.Errorf("weights %d/%d, want 60/40", s, cw)
	}
	if tm := route(t, got, "main")["timeout"]; tm != "20s" {
		t.Errorf("timeout %v: the user's change made meanwhile was overwritten", tm)
	}
}

// Check names what keeps Sluice from splitting the user's objects.
func TestInPlaceCheck(t *testing.T) {
	env := testenv.Get(t)
	cl, ns := env.SluiceClient(t), env.Namespace(t)
	ctx := t.Context()
	workloads(t, cl, ns)
	r := &istio.Router{Client: cl, Reader: cl, User: cl, Scheme: cl.Scheme(), Apex: "web"}
	is := inPlaceSpec()
	is.VirtualService.Routes = []string{"main", "rest"}
	c := canaryFor(t, cl, ns, is, v1alpha1.Step{SetMirror: &v1alpha1.MirrorStep{Percent: 10}})
	want := func(reason, in string) {
		t.Helper()
		got, msg, err := r.Check(ctx, c)
		if err != nil || got != reason || !strings.Contains(msg, in) {
			t.Errorf("Check = %q, %q, %v; want %s mentioning %q", got, msg, err, reason, in)
		}
	}
	want(v1alpha1.ReasonVirtualServiceNotFound, "spec.router.istio.virtualService.name")
	vs := object(t, ns, userVS)
	if err := cl.Create(ctx, vs); err != nil {
		t.Fatal(err)
	}
	want(v1alpha1.ReasonDestinationRuleNotFound, "spec.router.istio.destinationRule.name")
	dr := object(t, ns, userDR)
	if err := cl.Create(ctx, dr); err != nil {
		t.Fatal(err)
	}
	want(v1alpha1.ReasonVirtualServiceRouteNotUsable, `route "rest" sends to subset ""`)

	// The mirror of the user's own, with mirror steps.
	c.Spec.Router.Istio.VirtualService.Routes = []string{"main"}
	vs = get(t, cl, istio.VirtualService, ns, "front")
	http, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
	http[1].(map[string]any)["mirror"] = map[string]any{"host": "audit"}
	_ = unstructured.SetNestedSlice(vs.Object, http, "spec", "http")
	if err := cl.Update(ctx, vs); err != nil {
		t.Fatal(err)
	}
	want(v1alpha1.ReasonVirtualServiceRouteNotUsable, "Sluice does not replace a mirror of yours")
	c.Spec.Strategy.Steps = []v1alpha1.Step{{SetWeight: ptr.To(int32(10))}}
	if reason, msg, err := r.Check(ctx, c); err != nil || reason != "" {
		t.Errorf("Check without mirror steps = %q, %q, %v; want nothing", reason, msg, err)
	}

	// A host whose Service selects one copy only: the apex.
	dr = get(t, cl, istio.DestinationRule, ns, "shop")
	_ = unstructured.SetNestedField(dr.Object, "web", "spec", "host")
	if err := cl.Update(ctx, dr); err != nil {
		t.Fatal(err)
	}
	want(v1alpha1.ReasonVirtualServiceRouteNotUsable, `not to "web", the DestinationRule's host`)
	vs = get(t, cl, istio.VirtualService, ns, "front")
	http, _, _ = unstructured.NestedSlice(vs.Object, "spec", "http")
	for _, d := range http[1].(map[string]any)["route"].([]any) {
		d.(map[string]any)["destination"].(map[string]any)["host"] = "web"
	}
	_ = unstructured.SetNestedSlice(vs.Object, http, "spec", "http")
	if err := cl.Update(ctx, vs); err != nil {
		t.Fatal(err)
	}
	want(v1alpha1.ReasonDestinationRuleNotUsable, "does not match the pods of both copies")
}

// The VirtualService Sluice owns: hosts through gateways and the mesh,
// the route's timeout and retries, a weighted split between the -primary
// and -canary Services, the header route before it, the mirror on it;
// Istio's validation accepts each; written only when it changes; kept,
// no longer the Canary's, on release.
func TestOwnedVirtualServiceFollowsTheSplit(t *testing.T) {
	env := testenv.Get(t)
	cl, ns := env.SluiceClient(t), env.Namespace(t)
	ctx := t.Context()
	ic := newIstioChecker(t)
	is := &v1alpha1.IstioRouter{
		Hosts:    []string{"shop.example.com", "web"},
		Gateways: []string{"istio-system/public", "mesh"},
		Timeout:  &metav1.Duration{Duration: 90_000_000_000},
		Retries:  &v1alpha1.IstioRetries{Attempts: 2, PerTryTimeout: &metav1.Duration{Duration: 1_500_000_000}, RetryOn: "5xx"},
	}
	group := "^(beta|canary)$"
	hr := &v1alpha1.HeaderRoute{Match: []v1alpha1.HeaderMatch{{Name: "X-Group", Regex: &group}}}
	c := canaryFor(t, cl, ns, is, v1alpha1.Step{SetHeaderRoute: hr}, v1alpha1.Step{SetWeight: ptr.To(int32(25))})
	r := &istio.Router{Client: cl, Reader: cl, User: cl, Scheme: cl.Scheme(), Apex: "web", Labels: map[string]string{"sluice.dev/canary": "web"}}
	if reason, msg, err := r.Check(ctx, c); err != nil || reason != "" {
		t.Fatalf("Check = %q, %q, %v; want nothing", reason, msg, err)
	}
	primary, canary := router.Backends(c, "web")
	split := router.Split{Primary: primary, Canary: canary, CanaryWeight: 25, MirrorPercent: 10, HeaderRoute: hr}
	if err := r.Apply(ctx, c, split); err != nil {
		t.Fatal(err)
	}
	vs := get(t, cl, istio.VirtualService, ns, "web")
	ic.valid(vs)
	spec := toJSON(t, vs.Object["spec"])
	want := `{"gateways":["istio-system/public","mesh"],"hosts":["shop.example.com","web"],"http":[` +
		`{"match":[{"headers":{"x-group":{"regex":"^(beta|canary)$"}}}],"name":"canary-headers","retries":{"attempts":2,"perTryTimeout":"1.5s","retryOn":"5xx"},"route":[{"destination":{"host":"web-canary","port":{"number":80}}}],"timeout":"90s"},` +
		`{"mirror":{"host":"web-canary","port":{"number":80}},"mirrorPercentage":{"value":10},"name":"split","retries":{"attempts":2,"perTryTimeout":"1.5s","retryOn":"5xx"},"route":[{"destination":{"host":"web-primary","port":{"number":80}},"weight":75},{"destination":{"host":"web-canary","port":{"number":80}},"weight":25}],"timeout":"90s"}]}`
	if spec != want {
		t.Errorf("VirtualService spec\n%s\nwant\n%s", spec, want)
	}
	if ref := metav1.GetControllerOf(vs); ref == nil || ref.Kind != "Canary" || ref.Name != "web" {
		t.Errorf("controller of the VirtualService = %+v, want the Canary", ref)
	}
	if rt, err := r.Observe(ctx, c, router.Split{Primary: primary, Canary: canary}); err != nil || !rt.Exists || rt.CanaryWeight != 25 || rt.MirrorPercent != 10 || rt.HeaderRoute != "X-Group~"+group {
		t.Errorf("Observe = %+v, %v; want 25%%, mirror 10%%, the header route", rt, err)
	}
	rv := vs.GetResourceVersion()
	if err := r.Apply(ctx, c, split); err != nil {
		t.Fatal(err)
	}
	if get(t, cl, istio.VirtualService, ns, "web").GetResourceVersion() != rv {
		t.Error("the same split rewrote the VirtualService")
	}
	// The checker is Istio's: it refuses what Sluice must never write.
	zero := vs.DeepCopy()
	_ = unstructured.SetNestedSlice(zero.Object, []any{map[string]any{"name": "split", "route": []any{
		map[string]any{"destination": map[string]any{"host": "web-primary"}, "weight": int64(0)},
		map[string]any{"destination": map[string]any{"host": "web-canary"}, "weight": int64(0)}}}}, "spec", "http")
	if msg := ic.refuses(zero); !strings.Contains(msg, "total destination weight = 0") {
		t.Errorf("istiocheck of a route weighing nothing = %q, want Istio's refusal", msg)
	}
	for _, w := range []int32{0, 100} {
		s := router.Split{Primary: primary, Canary: canary, CanaryWeight: w}
		if err := r.Apply(ctx, c, s); err != nil {
			t.Fatal(err)
		}
		ic.valid(get(t, cl, istio.VirtualService, ns, "web"))
		if rt, err := r.Observe(ctx, c, s); err != nil || rt.CanaryWeight != w || rt.HeaderRoute != "" || rt.MirrorPercent != 0 {
			t.Errorf("Observe at %d%% = %+v, %v", w, rt, err)
		}
	}

	// A trafficPolicy: one DestinationRule per copy's Service, which Istio
	// accepts; gone again without it.
	c.Spec.Router.Istio.TrafficPolicy = &runtime.RawExtension{Raw: []byte(`{"tls":{"mode":"ISTIO_MUTUAL"},"loadBalancer":{"simple":"LEAST_REQUEST"},"outlierDetection":{"consecutive5xxErrors":5,"interval":"30s"}}`)}
	if err := r.Apply(ctx, c, split); err != nil {
		t.Fatal(err)
	}
	for name, host := range map[string]string{"web-primary": "web-primary", "web-canary": "web-canary"} {
		dr := get(t, cl, istio.DestinationRule, ns, name)
		ic.valid(dr)
		if got := toJSON(t, dr.Object["spec"]); got != `{"host":"`+host+`","trafficPolicy":{"loadBalancer":{"simple":"LEAST_REQUEST"},"outlierDetection":{"consecutive5xxErrors":5,"interval":"30s"},"tls":{"mode":"ISTIO_MUTUAL"}}}` {
			t.Errorf("destinationrule %s spec %s", name, got)
		}
		if ref := metav1.GetControllerOf(dr); ref == nil || ref.Name != "web" {
			t.Errorf("controller of destinationrule %s = %+v, want the Canary", name, ref)
		}
	}
	c.Spec.Router.Istio.TrafficPolicy = nil
	if err := r.Apply(ctx, c, split); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"web-primary", "web-canary"} {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(istio.GVK(istio.DestinationRule))
		if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, u); !apierrors.IsNotFound(err) {
			t.Errorf("destinationrule %s without trafficPolicy: %v, want gone", name, err)
		}
	}

	if err := r.Release(ctx, c, router.Backend{Kind: "Service", Name: "web", Port: ptr.To(int32(80)), Weight: 1}); err != nil {
		t.Fatal(err)
	}
	vs = get(t, cl, istio.VirtualService, ns, "web")
	ic.valid(vs)
	if http := toJSON(t, vs.Object["spec"].(map[string]any)["http"]); !strings.Contains(http, `"route":[{"destination":{"host":"web","port":{"number":80}},"weight":100}]`) {
		t.Errorf("released routes %s, want everything to the apex Service", http)
	}
	if len(vs.GetOwnerReferences()) != 0 || vs.GetLabels()["sluice.dev/canary"] != "" {
		t.Errorf("released VirtualService still the Canary's: owners %v, labels %v", vs.GetOwnerReferences(), vs.GetLabels())
	}

	// Someone else's VirtualService by the name Sluice's would have.
	c2 := canaryFor(t, cl, env.Namespace(t), is)
	other := object(t, c2.Namespace, `{apiVersion: networking.istio.io/v1, kind: VirtualService, metadata: {name: web}, spec: {hosts: [web], http: [{route: [{destination: {host: web}}]}]}}`)
	if err := cl.Create(ctx, other); err != nil {
		t.Fatal(err)
	}
	if reason, _, err := r.Check(ctx, c2); err != nil || reason != v1alpha1.ReasonVirtualServiceNotOwned {
		t.Errorf("Check with a foreign VirtualService = %q, %v; want VirtualServiceNotOwned", reason, err)
	}
	if err := r.Apply(ctx, c2, split); err == nil || !strings.Contains(err.Error(), "not overwritten") {
		t.Errorf("Apply over a foreign VirtualService = %v, want a refusal", err)
	}
	// And a DestinationRule by the name of one a trafficPolicy needs.
	if err := cl.Delete(ctx, other); err != nil {
		t.Fatal(err)
	}
	c2.Spec.Router.Istio.TrafficPolicy = &runtime.RawExtension{Raw: []byte(`{"tls":{"mode":"DISABLE"}}`)}
	if err := cl.Create(ctx, object(t, c2.Namespace, `{apiVersion: networking.istio.io/v1, kind: DestinationRule, metadata: {name: web-canary}, spec: {host: web-canary}}`)); err != nil {
		t.Fatal(err)
	}
	if reason, _, err := r.Check(ctx, c2); err != nil || reason != v1alpha1.ReasonDestinationRuleNotOwned {
		t.Errorf("Check with a foreign DestinationRule = %q, %v; want DestinationRuleNotOwned", reason, err)
	}
}

// What the CRD refuses of spec.router.istio.
func TestIstioRouterCEL(t *testing.T) {
	env := testenv.Get(t)
	cl, ns := env.SluiceClient(t), env.Namespace(t)
	for name, tc := range map[string]struct {
		router v1alpha1.RouterSpec
		want   string
	}{
		"virtualService alone": {v1alpha1.RouterSpec{Istio: &v1alpha1.IstioRouter{VirtualService: &v1alpha1.IstioVirtualServiceRef{Name: "a", Routes: []string{"r"}}}},
			"virtualService and destinationRule go together"},
		"owned fields in place": {v1alpha1.RouterSpec{Istio: &v1alpha1.IstioRouter{Hosts: []string{"a"}, VirtualService: &v1alpha1.IstioVirtualServiceRef{Name: "a", Routes: []string{"r"}},
			DestinationRule: &v1alpha1.IstioDestinationRuleRef{Name: "d"}}}, "hosts, gateways, timeout, retries and trafficPolicy shape the VirtualService and DestinationRules Sluice owns"},
		"trafficPolicy in place": {v1alpha1.RouterSpec{Istio: &v1alpha1.IstioRouter{TrafficPolicy: &runtime.RawExtension{Raw: []byte(`{"tls":{"mode":"ISTIO_MUTUAL"}}`)},
			VirtualService: &v1alpha1.IstioVirtualServiceRef{Name: "a", Routes: []string{"r"}}, DestinationRule: &v1alpha1.IstioDestinationRuleRef{Name: "d"}}},
			"hosts, gateways, timeout, retries and trafficPolicy shape"},
		"two routers": {v1alpha1.RouterSpec{Istio: &v1alpha1.IstioRouter{}, NGINX: &v1alpha1.NGINXRouter{Ingress: "a"}}, "set at most one router"},
	} {
		c := &v1alpha1.Canary{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
			Spec: v1alpha1.CanarySpec{TargetRef: v1alpha1.TargetRef{Name: "web"}, Service: v1alpha1.ServiceSpec{Port: 80}, Router: tc.router,
				Strategy: v1alpha1.Strategy{Steps: []v1alpha1.Step{{SetWeight: ptr.To(int32(10))}}}},
		}
		if err := cl.Create(t.Context(), c); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Create = %v; want Invalid with %q", name, err, tc.want)
		}
	}
}

// A duration is written as istiod reads it, and a header regex above the
// proxies' RE2 limit is refused before anything is written.
func TestIstioValidate(t *testing.T) {
	huge := strings.Repeat("😀{1000}", 9) // at least 36001 instructions
	c := &v1alpha1.Canary{Spec: v1alpha1.CanarySpec{Router: v1alpha1.RouterSpec{Istio: &v1alpha1.IstioRouter{}},
		Strategy: v1alpha1.Strategy{Steps: []v1alpha1.Step{{SetHeaderRoute: &v1alpha1.HeaderRoute{Match: []v1alpha1.HeaderMatch{{Name: "x", Regex: &huge}}}}}}}}
	if reason, msg := istio.HeaderRegexProblem(c); reason != v1alpha1.ReasonInvalidHeaderRegex || !strings.Contains(msg, "32768") {
		t.Errorf("HeaderRegexProblem = %q, %q; want InvalidHeaderRegex naming Istio's limit", reason, msg)
	}
	ok := `^(.*?;\s*)?canary=always(;.*)?$`
	c.Spec.Strategy.Steps[0].SetHeaderRoute.Match[0].Regex = &ok
	if reason, msg := istio.HeaderRegexProblem(c); reason != "" {
		t.Errorf("HeaderRegexProblem of a cookie regex = %q, %q", reason, msg)
	}
}

// A sticky canary in the owned shape: a route before the split sends the
// requests with the cookie to the canary, and the canary's destination in
// the split sets it on its answers; Istio's own validation takes both,
// the read-back sees neither as a header route nor a change of weight,
// and at 0 both are gone.
func TestOwnedStickyCanary(t *testing.T) {
	env := testenv.Get(t)
	cl, ns := env.SluiceClient(t), env.Namespace(t)
	ctx := t.Context()
	ic := newIstioChecker(t)
	c := canaryFor(t, cl, ns, &v1alpha1.IstioRouter{}, v1alpha1.Step{SetWeight: ptr.To(int32(20))})
	r := &istio.Router{Client: cl, Reader: cl, User: cl, Scheme: cl.Scheme(), Apex: "web", Labels: map[string]string{"sluice.dev/canary": "web"}}
	primary, canary := router.Backends(c, "web")
	sticky := &router.Sticky{Cookie: "shop-canary", MaxAge: time.Hour, Value: "rev2"}
	split := router.Split{Primary: primary, Canary: canary, CanaryWeight: 20, Sticky: sticky}
	if err := r.Apply(ctx, c, split); err != nil {
		t.Fatal(err)
	}
	vs := get(t, cl, istio.VirtualService, ns, "web")
	ic.valid(vs)
	want := `[{"match":[{"headers":{"cookie":{"regex":"` + strings.ReplaceAll(sticky.CookieRegex(), `\`, `\\`) + `"}}}],"name":"canary-sticky","route":[{"destination":{"host":"web-canary","port":{"number":80}}}]},` +
		`{"name":"split","route":[{"destination":{"host":"web-primary","port":{"number":80}},"weight":80},{"destination":{"host":"web-canary","port":{"number":80}},"headers":{"response":{"add":{"Set-Cookie":"shop-canary=rev2; Max-Age=3600; Path=/; HttpOnly"}}},"weight":20}]}]`
	if got := toJSON(t, vs.Object["spec"].(map[string]any)["http"]); got != want {
		t.Errorf("http routes\n%s\nwant\n%s", got, want)
	}
	if rt, err := r.Observe(ctx, c, split); err != nil || rt.CanaryWeight != 20 || rt.HeaderRoute != "" {
		t.Errorf("Observe = %+v, %v; want 20%% and no header route", rt, err)
	}
	split.CanaryWeight = 0
	if err := r.Apply(ctx, c, split); err != nil {
		t.Fatal(err)
	}
	if got := toJSON(t, get(t, cl, istio.VirtualService, ns, "web").Object["spec"].(map[string]any)["http"]); strings.Contains(got, "canary-sticky") || strings.Contains(got, "Set-Cookie") {
		t.Errorf("at 0 the canary still keeps clients: %s", got)
	}
}
