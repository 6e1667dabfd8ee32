package traefik_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/router"
	"github.com/sluice-dev/sluice/internal/router/traefik"
	"github.com/sluice-dev/sluice/internal/testenv"
)

// These tests run against the local control plane with Traefik's real
// CRDs (traefik.io from v3.6.12, traefik.containo.us from v2.11.0): every
// object Sluice writes passes their schema.

func setup(t *testing.T) (client.Client, string) {
	t.Helper()
	c := testenv.Get(t)
	cl := c.SluiceClient(t)
	return cl, c.Namespace(t)
}

func newCanary(t *testing.T, cl client.Client, ns string, tr v1alpha1.TraefikRouter) *v1alpha1.Canary {
	t.Helper()
	c := &v1alpha1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns, Labels: map[string]string{"sluice.dev/instance": "none"}},
		Spec: v1alpha1.CanarySpec{
			TargetRef: v1alpha1.TargetRef{Name: "web"},
			Service:   v1alpha1.ServiceSpec{Port: 80},
			Router:    v1alpha1.RouterSpec{Traefik: &tr},
			Strategy:  v1alpha1.Strategy{Steps: []v1alpha1.Step{{SetWeight: ptr(int32(10))}}},
		},
	}
	if err := cl.Create(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	return c
}

func ptr[T any](v T) *T { return &v }

func split(c *v1alpha1.Canary, w int32) router.Split {
	p, cn := router.Backends(c, "web")
	return router.Split{Primary: p, Canary: cn, CanaryWeight: w}
}

func newRouter(cl client.Client, groups ...string) *traefik.Router {
	return &traefik.Router{Client: cl, Reader: cl, Scheme: cl.Scheme(), Mapper: cl.RESTMapper(),
		Labels: map[string]string{"sluice.dev/canary": "web"}, Apex: "web", Groups: groups}
}

func get(t *testing.T, cl client.Client, gvk schema.GroupVersionKind, ns, name string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	if err := cl.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
		t.Fatal(err)
	}
	return u
}

// TraefikService mode, in both API groups: the weighted services carry the
// split, read back exactly (at 0 the canary's entry is left out: Traefik
// refuses a TraefikService listing a Service without endpoints); an unchanged split writes nothing; the release
// on deletion leaves a TraefikService the user's IngressRoute can keep
// using, not owned by the Canary.
func TestTraefikServiceMode(t *testing.T) {
	cl, ns := setup(t)
	c := newCanary(t, cl, ns, v1alpha1.TraefikRouter{})
	for _, group := range traefik.DefaultGroups {
		t.Run(group, func(t *testing.T) {
			r := newRouter(cl, group)
			r.Labels = map[string]string{"sluice.dev/canary": "web", "group": strings.ReplaceAll(group, ".", "-")}
			gvk := schema.GroupVersionKind{Group: group, Version: "v1alpha1", Kind: "TraefikService"}
			for _, w := range []int32{0, 20, 50, 100, 0} {
				if err := r.Apply(t.Context(), c, split(c, w)); err != nil {
					t.Fatalf("apply %d%%: %v", w, err)
				}
				got, err := r.Observe(t.Context(), c, split(c, w))
				if err != nil || !got.Exists || got.CanaryWeight != w {
					t.Fatalf("observe after %d%%: %+v %v", w, got, err)
				}
			}
			ts := get(t, cl, gvk, ns, "web")
			services, _, _ := unstructured.NestedSlice(ts.Object, "spec", "weighted", "services")
			if b, _ := json.Marshal(services); string(b) != `[{"name":"web-primary","port":80,"weight":10000}]` {
				t.Errorf("services = %s", b)
			}
			if len(ts.GetOwnerReferences()) != 1 || ts.GetOwnerReferences()[0].UID != c.UID {
				t.Errorf("owner references %v", ts.GetOwnerReferences())
			}
			rv := ts.GetResourceVersion()
			if err := r.Apply(t.Context(), c, split(c, 0)); err != nil {
				t.Fatal(err)
			}
			if get(t, cl, gvk, ns, "web").GetResourceVersion() != rv {
				t.Errorf("an unchanged split was written again")
			}

			apex := router.Backend{Kind: "Service", Name: "web", Namespace: ns, Port: ptr(int32(80)), Weight: 1}
			if err := r.Release(t.Context(), c, apex); err != nil {
				t.Fatal(err)
			}
			ts = get(t, cl, gvk, ns, "web")
			services, _, _ = unstructured.NestedSlice(ts.Object, "spec", "weighted", "services")
			b, _ := json.Marshal(services)
			if string(b) != `[{"name":"web","port":80,"weight":10000}]` || len(ts.GetOwnerReferences()) != 0 ||
				ts.GetLabels()["sluice.dev/canary"] != "" {
				t.Errorf("after release: services %s, owners %v, labels %v", b, ts.GetOwnerReferences(), ts.GetLabels())
			}
		})
	}
}

// The user's IngressRoute, with more than Sluice touches: a second route,
// middlewares, TLS, annotations, and in the split route a weight of the
// user's on the apex entry and another service (web-legacy) beside it.
const userRoute = `apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata:
  name: shop
  annotations: {team: payments, kubernetes.io/description: "the shop's routes"}
  labels: {app: shop}
spec:
  entryPoints: [web, websecure]
  routes:
  - match: Host(` + "`shop.example.com`" + `) && PathPrefix(` + "`/admin`" + `)
    kind: Rule
    priority: 50
    middlewares: [{name: admin-auth}]
    services: [{name: admin, port: 8080}]
  - match: Host(` + "`shop.example.com`" + `)
    kind: Rule
    middlewares: [{name: compress}, {name: ratelimit, namespace: shared}]
    services:
    - name: web
      port: 80
      weight: 3
      passHostHeader: true
      responseForwarding: {flushInterval: 100ms}
    - {name: web-legacy, port: 80, weight: 1}
  tls: {secretName: shop-tls, options: {name: modern}}
`

func createUserRoute(t *testing.T, cl client.Client, ns string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(userRoute), &u.Object); err != nil {
		t.Fatal(err)
	}
	u.SetNamespace(ns)
	if err := cl.Create(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	return u
}

func specJSON(t *testing.T, u *unstructured.Unstructured) string {
	t.Helper()
	b, err := json.Marshal(u.Object["spec"])
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var ingressRouteGVK = schema.GroupVersionKind{Group: "traefik.io", Version: "v1alpha1", Kind: "IngressRoute"}

// IngressRoute mode changes only the split route's weights and the canary
// entry (and remembers the user's apex weight in an annotation of its own
// while the release runs); everything else stays byte for byte, and a
// full release returns the object to exactly what the user wrote, the
// apex entry's weight and annotations included.
func TestIngressRouteModeChangesOnlyTheWeights(t *testing.T) {
	cl, ns := setup(t)
	orig := createUserRoute(t, cl, ns)
	origSpec := specJSON(t, get(t, cl, ingressRouteGVK, ns, "shop"))
	c := newCanary(t, cl, ns, v1alpha1.TraefikRouter{IngressRoute: &v1alpha1.TraefikIngressRouteRef{Name: "shop", Match: "Host(`shop.example.com`)"}})
	r := newRouter(cl)

	// No release yet: 0% leaves the user's object alone.
	if err := r.Apply(t.Context(), c, split0(c)); err != nil {
		t.Fatal(err)
	}
	if got := get(t, cl, ingressRouteGVK, ns, "shop"); got.GetResourceVersion() != orig.GetResourceVersion() {
		t.Errorf("0%% with no release running wrote the IngressRoute: spec\n%s\nwas\n%s", specJSON(t, got), origSpec)
	}

	if err := r.Apply(t.Context(), c, split(c, 30)); err != nil {
		t.Fatal(err)
	}
	got := get(t, cl, ingressRouteGVK, ns, "shop")
	routes, _, _ := unstructured.NestedSlice(got.Object, "spec", "routes")
	origRoutes, _, _ := unstructured.NestedSlice(orig.Object, "spec", "routes")
	if a, b := jsonOf(routes[0]), jsonOf(origRoutes[0]); a != b {
		t.Errorf("another route changed:\n%s\nwas\n%s", a, b)
	}
	split := routes[1].(map[string]any)
	if a, b := jsonOf(split["middlewares"]), jsonOf(origRoutes[1].(map[string]any)["middlewares"]); a != b {
		t.Errorf("middlewares changed: %s, was %s", a, b)
	}
	if s := jsonOf(split["services"]); s != `[{"name":"web","passHostHeader":true,"port":80,"responseForwarding":{"flushInterval":"100ms"},"weight":7000},`+
		`{"name":"web-legacy","port":80,"weight":1},{"name":"web-canary","port":80,"weight":3000}]` {
		t.Errorf("split route services = %s", s)
	}
	for _, f := range []string{"entryPoints", "tls"} {
		if a, b := jsonOf(got.Object["spec"].(map[string]any)[f]), jsonOf(orig.Object["spec"].(map[string]any)[f]); a != b {
			t.Errorf("spec.%s changed: %s, was %s", f, a, b)
		}
	}
	if jsonOf(usersAnnotations(got)) != jsonOf(orig.GetAnnotations()) || jsonOf(got.GetLabels()) != jsonOf(orig.GetLabels()) ||
		len(got.GetOwnerReferences()) != 0 {
		t.Errorf("metadata changed: annotations %v labels %v owners %v", got.GetAnnotations(), got.GetLabels(), got.GetOwnerReferences())
	}
	obs, err := r.Observe(t.Context(), c, split30(c))
	if err != nil || obs.CanaryWeight != 30 {
		t.Errorf("observe: %+v %v", obs, err)
	}

	// The same weights again: no write.
	rv := got.GetResourceVersion()
	if err := r.Apply(t.Context(), c, split30(c)); err != nil {
		t.Fatal(err)
	}
	if get(t, cl, ingressRouteGVK, ns, "shop").GetResourceVersion() != rv {
		t.Errorf("unchanged weights were written again")
	}

	// Back to 0: the object is exactly what the user wrote.
	if err := r.Apply(t.Context(), c, split0(c)); err != nil {
		t.Fatal(err)
	}
	after := get(t, cl, ingressRouteGVK, ns, "shop")
	if s := specJSON(t, after); s != origSpec {
		t.Errorf("after the release the spec is\n%s\nwas\n%s", s, origSpec)
	}
	if a, b := jsonOf(after.GetAnnotations()), jsonOf(orig.GetAnnotations()); a != b {
		t.Errorf("after the release the annotations are %s, were %s", a, b)
	}
}

// usersAnnotations are an object's annotations but Sluice's own.
func usersAnnotations(u *unstructured.Unstructured) map[string]string {
	out := map[string]string{}
	for k, v := range u.GetAnnotations() {
		if !strings.HasPrefix(k, "sluice.dev/") {
			out[k] = v
		}
	}
	return out
}

// The apex entry's weight is the user's whenever no release runs: each
// release starts from the weight the user last wrote (edited or removed
// between releases) and gives exactly that back at 0%, whether it ends by
// its weights or by the Canary's deletion. A new Router for every call
// stands for a controller restarted between any two of them: what must be
// remembered is on the object. The split route carries another service
// beside the apex, which keeps its own weight throughout.
func TestIngressRouteModeRestoresTheApexWeight(t *testing.T) {
	cl, ns := setup(t)
	ir := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(`apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: shop}
spec:
  entryPoints: [web]
  routes:
  - match: Host(`+"`shop.example.com`"+`)
    kind: Rule
    services:
    - {name: web, port: 80, weight: 3}
    - {name: web-legacy, port: 80, weight: 1}
`), &ir.Object); err != nil {
		t.Fatal(err)
	}
	ir.SetNamespace(ns)
	if err := cl.Create(t.Context(), ir); err != nil {
		t.Fatal(err)
	}
	c := newCanary(t, cl, ns, v1alpha1.TraefikRouter{IngressRoute: &v1alpha1.TraefikIngressRouteRef{Name: "shop"}})
	restarted := func() *traefik.Router { return newRouter(cl) }
	services := func() string {
		routes, _, _ := unstructured.NestedSlice(get(t, cl, ingressRouteGVK, ns, "shop").Object, "spec", "routes")
		return jsonOf(routes[0].(map[string]any)["services"])
	}

	for i, userWeight := range []*int64{ptr(int64(3)), ptr(int64(7)), nil, ptr(int64(5))} {
		if i > 0 { // the user edits the apex weight while no release runs
			setServices(t, cl, ns, "shop", apexEntry(userWeight), map[string]any{"name": "web-legacy", "port": int64(80), "weight": int64(1)})
		}
		user := get(t, cl, ingressRouteGVK, ns, "shop")
		userSpec := specJSON(t, user)

		if err := restarted().Apply(t.Context(), c, split(c, 0)); err != nil {
			t.Fatal(err)
		}
		if got := get(t, cl, ingressRouteGVK, ns, "shop"); got.GetResourceVersion() != user.GetResourceVersion() {
			t.Fatalf("user weight %s: 0%% with no release running wrote the IngressRoute: spec\n%s\nwas\n%s", jsonOf(userWeight), specJSON(t, got), userSpec)
		}
		for _, w := range []int32{20, 60} {
			if err := restarted().Apply(t.Context(), c, split(c, w)); err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf(`[{"name":"web","port":80,"weight":%d},{"name":"web-legacy","port":80,"weight":1},{"name":"web-canary","port":80,"weight":%d}]`, (100-w)*100, w*100)
			if got := services(); got != want {
				t.Errorf("user weight %s, at %d%%: services %s, want %s", jsonOf(userWeight), w, got, want)
			}
		}
		end := "0%"
		if i%2 == 0 {
			if err := restarted().Apply(t.Context(), c, split(c, 0)); err != nil {
				t.Fatal(err)
			}
		} else {
			end = "the Canary's deletion"
			if err := restarted().Release(t.Context(), c, router.Backend{}); err != nil {
				t.Fatal(err)
			}
		}
		after := get(t, cl, ingressRouteGVK, ns, "shop")
		if got := specJSON(t, after); got != userSpec {
			t.Errorf("user weight %s, after %s: spec\n%s\nwant the user's\n%s", jsonOf(userWeight), end, got, userSpec)
		}
		if len(after.GetAnnotations()) != 0 {
			t.Errorf("user weight %s, after %s: annotations %v left on the object", jsonOf(userWeight), end, after.GetAnnotations())
		}
	}

	// A release begun by a Sluice that did not remember the user's weight
	// (its weights on the apex and canary entries, no annotation): the
	// user's weight is unknown, and 0% removes the apex weight, as that
	// Sluice would have.
	setServices(t, cl, ns, "shop", apexEntry(ptr(int64(8000))),
		map[string]any{"name": "web-legacy", "port": int64(80), "weight": int64(1)},
		map[string]any{"name": "web-canary", "port": int64(80), "weight": int64(2000)})
	if err := restarted().Apply(t.Context(), c, split(c, 0)); err != nil {
		t.Fatal(err)
	}
	if got, want := services(), `[{"name":"web","port":80},{"name":"web-legacy","port":80,"weight":1}]`; got != want {
		t.Errorf("after a release begun without the annotation: services %s, want %s", got, want)
	}
}

// apexEntry is the route's entry for the apex Service web, with weight w
// (none when nil).
func apexEntry(w *int64) map[string]any {
	e := map[string]any{"name": "web", "port": int64(80)}
	if w != nil {
		e["weight"] = *w
	}
	return e
}

// setServices writes the services of an IngressRoute's first route, as
// its user would.
func setServices(t *testing.T, cl client.Client, ns, name string, services ...map[string]any) {
	t.Helper()
	u := get(t, cl, ingressRouteGVK, ns, name)
	routes, _, _ := unstructured.NestedSlice(u.Object, "spec", "routes")
	list := make([]any, len(services))
	for i, e := range services {
		list[i] = e
	}
	routes[0].(map[string]any)["services"] = list
	if err := unstructured.SetNestedSlice(u.Object, routes, "spec", "routes"); err != nil {
		t.Fatal(err)
	}
	if err := cl.Update(t.Context(), u); err != nil {
		t.Fatal(err)
	}
}

func split30(c *v1alpha1.Canary) router.Split { return split(c, 30) }
func split0(c *v1alpha1.Canary) router.Split  { return split(c, 0) }

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// conflicting is a client each of whose first n Updates is preceded by
// another writer's change to the same object (an annotation counting the
// changes, and a route of its own appended), so each meets a real 409.
type conflicting struct {
	client.Client
	n     int32
	edits atomic.Int32
}

func (c *conflicting) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	if k := c.edits.Add(1); k <= c.n {
		other := &unstructured.Unstructured{}
		other.SetGroupVersionKind(obj.GetObjectKind().GroupVersionKind())
		if err := c.Client.Get(ctx, client.ObjectKeyFromObject(obj), other); err != nil {
			return err
		}
		ann := other.GetAnnotations()
		ann["edited-by"] = fmt.Sprintf("someone-else-%d", k)
		other.SetAnnotations(ann)
		routes, _, _ := unstructured.NestedSlice(other.Object, "spec", "routes")
		routes = append(routes, map[string]any{"kind": "Rule", "match": fmt.Sprintf("Host(`other-%d.example.com`)", k),
			"services": []any{map[string]any{"name": "other", "port": int64(80)}}})
		_ = unstructured.SetNestedSlice(other.Object, routes, "spec", "routes")
		if err := c.Client.Update(ctx, other); err != nil {
			return err
		}
	}
	return c.Client.Update(ctx, obj, opts...)
}

// A conflict storm: another writer changes the object between each of
// Sluice's reads and writes, four times running. Sluice reads again and
// retries each time; its weights end up set and every one of the other
// writer's changes is kept. A storm longer than the retry budget is an
// error (the controller's next reconcile tries again), and nothing of
// either writer is lost.
func TestIngressRouteModeConflictStorm(t *testing.T) {
	cl, ns := setup(t)
	createUserRoute(t, cl, ns)
	c := newCanary(t, cl, ns, v1alpha1.TraefikRouter{IngressRoute: &v1alpha1.TraefikIngressRouteRef{Name: "shop", Match: "Host(`shop.example.com`)"}})
	cc := &conflicting{Client: cl, n: 4}
	r := newRouter(cl)
	r.Client = cc
	if err := r.Apply(t.Context(), c, split(c, 20)); err != nil {
		t.Fatal(err)
	}
	if cc.edits.Load() != 5 {
		t.Fatalf("%d updates, want 4 conflicting and 1 that lands", cc.edits.Load())
	}
	// check: the other writer's last edit is the annotation, and every one
	// of its routes (total so far) is there beside the user's two.
	check := func(weight int32, last, total int) {
		t.Helper()
		got := get(t, cl, ingressRouteGVK, ns, "shop")
		routes, _, _ := unstructured.NestedSlice(got.Object, "spec", "routes")
		obs, err := newRouter(cl).Observe(t.Context(), c, split(c, weight))
		if got.GetAnnotations()["edited-by"] != fmt.Sprintf("someone-else-%d", last) || len(routes) != 2+total || err != nil || obs.CanaryWeight != weight {
			t.Errorf("after the storm: annotations %v, %d routes (want %d), canary weight %d, want %d (%v)",
				got.GetAnnotations(), len(routes), 2+total, obs.CanaryWeight, weight, err)
		}
	}
	check(20, 4, 4)

	cc = &conflicting{Client: cl, n: 100}
	r.Client = cc
	err := r.Apply(t.Context(), c, split(c, 40))
	if !apierrors.IsConflict(err) || !strings.Contains(err.Error(), "update ingressroute "+ns+"/shop") {
		t.Fatalf("an endless storm: %v, want a conflict error naming the object", err)
	}
	edits := int(cc.edits.Load())
	check(20, edits, 4+edits) // Sluice's last landed weight, and every other change
	r.Client = cl
	if err := r.Apply(t.Context(), c, split(c, 40)); err != nil {
		t.Fatal(err)
	}
	check(40, edits, 4+edits)
}

// Bad references are errors that name the field and the fix.
func TestIngressRouteModeErrors(t *testing.T) {
	cl, ns := setup(t)
	createUserRoute(t, cl, ns)
	for _, tc := range []struct {
		ref  v1alpha1.TraefikIngressRouteRef
		want string
	}{
		{v1alpha1.TraefikIngressRouteRef{Name: "nope"}, "ingressroute " + ns + "/nope not found (spec.router.traefik.ingressRoute.name)"},
		{v1alpha1.TraefikIngressRouteRef{Name: "shop"}, "has 2 routes: set spec.router.traefik.ingressRoute.match"},
		{v1alpha1.TraefikIngressRouteRef{Name: "shop", Match: "Host(`other`)"}, "no route whose match is \"Host(`other`)\""},
		{v1alpha1.TraefikIngressRouteRef{Name: "shop", Match: "Host(`shop.example.com`) && PathPrefix(`/admin`)"}, "no entry for Service web: reference the apex Service"},
	} {
		c := &v1alpha1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
			Spec: v1alpha1.CanarySpec{Service: v1alpha1.ServiceSpec{Port: 80},
				Router: v1alpha1.RouterSpec{Traefik: &v1alpha1.TraefikRouter{IngressRoute: &tc.ref}}}}
		err := newRouter(cl).Apply(t.Context(), c, split(c, 10))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.ref, err, tc.want)
		}
	}
	// And the CRD refuses a Canary with two routers.
	bad := &v1alpha1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "two", Namespace: ns},
		Spec: v1alpha1.CanarySpec{TargetRef: v1alpha1.TargetRef{Name: "x"}, Service: v1alpha1.ServiceSpec{Port: 80},
			Router:   v1alpha1.RouterSpec{Traefik: &v1alpha1.TraefikRouter{}, GatewayAPI: &v1alpha1.GatewayAPIRouter{ParentRefs: []gwv1.ParentReference{{Name: "gw"}}}},
			Strategy: v1alpha1.Strategy{Steps: []v1alpha1.Step{{SetWeight: ptr(int32(10))}}}}}
	if err := cl.Create(t.Context(), bad); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "set at most one router (supported: gatewayAPI, traefik, ambassador, consul, nginx, istio;") {
		t.Errorf("two routers: %v", err)
	}
}

// A sticky canary in TraefikService mode, in both API groups: while the
// canary has a share the weighted service carries Traefik's sticky cookie,
// named after the revision (the CRDs keep every field: nothing is pruned,
// so an unchanged split writes nothing); at 0 it is gone.
func TestTraefikServiceSticky(t *testing.T) {
	cl, ns := setup(t)
	c := newCanary(t, cl, ns, v1alpha1.TraefikRouter{})
	sticky := &router.Sticky{Cookie: "shop-canary", MaxAge: time.Hour, Value: "rev2"}
	for _, group := range traefik.DefaultGroups {
		t.Run(group, func(t *testing.T) {
			r := newRouter(cl, group)
			gvk := schema.GroupVersionKind{Group: group, Version: "v1alpha1", Kind: "TraefikService"}
			s := split(c, 20)
			s.Sticky = sticky
			if err := r.Apply(t.Context(), c, s); err != nil {
				t.Fatal(err)
			}
			ts := get(t, cl, gvk, ns, "web")
			cookie, _, _ := unstructured.NestedMap(ts.Object, "spec", "weighted", "sticky", "cookie")
			want := `{"httpOnly":true,"maxAge":3600,"name":"shop-canary-rev2"}`
			if group == "traefik.containo.us" {
				want = `{"httpOnly":true,"name":"shop-canary-rev2"}` // Traefik v2 has no maxAge
			}
			if b, _ := json.Marshal(cookie); string(b) != want {
				t.Errorf("sticky cookie %s", b)
			}
			if got, err := r.Observe(t.Context(), c, s); err != nil || got.CanaryWeight != 20 {
				t.Errorf("observe: %+v %v", got, err)
			}
			rv := ts.GetResourceVersion()
			if err := r.Apply(t.Context(), c, s); err != nil {
				t.Fatal(err)
			}
			if get(t, cl, gvk, ns, "web").GetResourceVersion() != rv {
				t.Errorf("an unchanged sticky split was written again")
			}
			s = split(c, 0)
			s.Sticky = sticky
			if err := r.Apply(t.Context(), c, s); err != nil {
				t.Fatal(err)
			}
			if _, has, _ := unstructured.NestedMap(get(t, cl, gvk, ns, "web").Object, "spec", "weighted", "sticky"); has {
				t.Errorf("the sticky cookie outlived the canary's share")
			}
		})
	}
}
