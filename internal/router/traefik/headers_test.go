package traefik_test

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/engine"
	"github.com/sluice-dev/sluice/internal/router"
	"github.com/sluice-dev/sluice/internal/router/traefik"
)

func gvkIn(group, kind string) schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: group, Version: "v1alpha1", Kind: kind}
}

// create makes an object of kind in group from YAML (apiVersion and kind
// are set from group and kind).
func create(t *testing.T, cl client.Client, group, kind, ns, doc string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
		t.Fatal(err)
	}
	u.SetGroupVersionKind(gvkIn(group, kind))
	u.SetNamespace(ns)
	if err := cl.Create(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	return u
}

func exists(t *testing.T, cl client.Client, gvk schema.GroupVersionKind, ns, name string) bool {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	err := cl.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, u)
	if err != nil && client.IgnoreNotFound(err) != nil {
		t.Fatal(err)
	}
	return err == nil
}

func headerSplit(c *v1alpha1.Canary, w int32, hr *v1alpha1.HeaderRoute) router.Split {
	s := split(c, w)
	s.HeaderRoute = hr
	return s
}

var betaRoute = func() *v1alpha1.HeaderRoute {
	v, re := "beta", "ios-.*"
	return &v1alpha1.HeaderRoute{Match: []v1alpha1.HeaderMatch{{Name: "X-Channel", Exact: &v}, {Name: "User-Agent", Regex: &re}}}
}()

// IngressRoute mode, in both API groups: a header route is a separate
// IngressRoute Sluice owns, narrowing the user's route (same entry points,
// TLS, middlewares, then the canary middlewares) to the canary; the
// user's object keeps everything but the weights; a missing canary
// middleware is reported by Check; the header route goes when the step's
// route does.
func TestHeaderRouteIngressRouteMode(t *testing.T) {
	for _, group := range traefik.DefaultGroups {
		t.Run(group, func(t *testing.T) {
			cl, ns := setup(t)
			user := create(t, cl, group, "IngressRoute", ns, userRoute)
			userRoutes, _, _ := unstructured.NestedSlice(user.Object, "spec", "routes")
			c := newCanary(t, cl, ns, v1alpha1.TraefikRouter{
				IngressRoute:      &v1alpha1.TraefikIngressRouteRef{Name: "shop", Match: "Host(`shop.example.com`)"},
				CanaryMiddlewares: []v1alpha1.TraefikMiddlewareRef{{Name: "canary-tag"}},
			})
			c.Spec.Strategy.Steps = append(c.Spec.Strategy.Steps, v1alpha1.Step{SetHeaderRoute: betaRoute})
			r := newRouter(cl, group)

			reason, msg, err := r.Check(t.Context(), c)
			if err != nil || reason != "MiddlewareNotFound" || !strings.Contains(msg, "spec.router.traefik.canaryMiddlewares[0]: Middleware "+ns+"/canary-tag not found") {
				t.Fatalf("check without the middleware: %q %q %v", reason, msg, err)
			}
			create(t, cl, group, "Middleware", ns, "metadata: {name: canary-tag}\nspec: {headers: {customRequestHeaders: {X-Canary: \"1\"}}}")
			if reason, msg, err := r.Check(t.Context(), c); reason != "" || msg != "" || err != nil {
				t.Fatalf("check with the middleware: %q %q %v", reason, msg, err)
			}

			if err := r.Apply(t.Context(), c, headerSplit(c, 20, betaRoute)); err != nil {
				t.Fatal(err)
			}
			obs, err := r.Observe(t.Context(), c, split(c, 20))
			if err != nil || obs.CanaryWeight != 20 || obs.HeaderRoute != engine.HeaderRouteKey(betaRoute) {
				t.Fatalf("observe: %+v %v", obs, err)
			}
			hdr := get(t, cl, gvkIn(group, "IngressRoute"), ns, "shop-web-headers")
			exactFn, regexFn := "Header", "HeaderRegexp"
			if group == "traefik.containo.us" {
				exactFn, regexFn = "Headers", "HeadersRegexp"
			}
			want := `{"entryPoints":["web","websecure"],"routes":[{"kind":"Rule",` +
				`"match":"(Host(` + "`shop.example.com`" + `)) \u0026\u0026 ` + exactFn + `(\"X-Channel\", \"beta\") \u0026\u0026 ` + regexFn + `(\"User-Agent\", \"^(?:ios-.*)$\")",` +
				`"middlewares":[{"name":"compress"},{"name":"ratelimit","namespace":"shared"},{"name":"canary-tag"}],` +
				`"services":[{"name":"web-canary","port":80,"weight":10000}]}],"tls":{"options":{"name":"modern"},"secretName":"shop-tls"}}`
			if got := specJSON(t, hdr); got != want {
				t.Errorf("header route spec:\n%s\nwant\n%s", got, want)
			}
			if len(hdr.GetOwnerReferences()) != 1 || hdr.GetOwnerReferences()[0].UID != c.UID {
				t.Errorf("header route owners %v", hdr.GetOwnerReferences())
			}
			after := get(t, cl, gvkIn(group, "IngressRoute"), ns, "shop")
			afterRoutes, _, _ := unstructured.NestedSlice(after.Object, "spec", "routes")
			if jsonOf(afterRoutes[0]) != jsonOf(userRoutes[0]) || jsonOf(afterRoutes[1].(map[string]any)["middlewares"]) != jsonOf(userRoutes[1].(map[string]any)["middlewares"]) {
				t.Errorf("the user's routes changed beyond the weights: %s", jsonOf(afterRoutes))
			}

			// The step's route ends: the header route goes, the weights stay.
			if err := r.Apply(t.Context(), c, split(c, 20)); err != nil {
				t.Fatal(err)
			}
			if exists(t, cl, gvkIn(group, "IngressRoute"), ns, "shop-web-headers") {
				t.Error("the header route is still there without a header step")
			}
			if obs, _ := r.Observe(t.Context(), c, split(c, 20)); obs.HeaderRoute != "" || obs.CanaryWeight != 20 {
				t.Errorf("observe after: %+v", obs)
			}
		})
	}
}

// TraefikService mode: a header route narrows every route that references
// the Canary's TraefikService, one header IngressRoute per IngressRoute
// (here one on web and one on websecure with an explicit priority, which
// the header route tops by one); an IngressRoute that does not reference
// it is ignored; with none, Check says so.
func TestHeaderRouteTraefikServiceMode(t *testing.T) {
	cl, ns := setup(t)
	c := newCanary(t, cl, ns, v1alpha1.TraefikRouter{RuleSyntax: "v2"})
	c.Spec.Strategy.Steps = append(c.Spec.Strategy.Steps, v1alpha1.Step{SetHeaderRoute: betaRoute})
	r := newRouter(cl)
	if reason, msg, _ := r.Check(t.Context(), c); reason != "HeaderRouteBaseNotFound" || !strings.Contains(msg, "no IngressRoute in "+ns+" references TraefikService web") {
		t.Fatalf("check with no referencing route: %q %q", reason, msg)
	}
	const group = "traefik.io"
	create(t, cl, group, "IngressRoute", ns, "metadata: {name: plain}\nspec:\n  entryPoints: [web]\n  routes:\n  - {kind: Rule, match: \"Host(`a.example`)\", services: [{kind: TraefikService, name: web}]}")
	create(t, cl, group, "IngressRoute", ns, "metadata: {name: secure}\nspec:\n  entryPoints: [websecure]\n  tls: {}\n  routes:\n  - {kind: Rule, match: \"Host(`a.example`)\", priority: 70, services: [{kind: TraefikService, name: web}]}")
	create(t, cl, group, "IngressRoute", ns, "metadata: {name: other}\nspec:\n  routes:\n  - {kind: Rule, match: \"Host(`b.example`)\", services: [{name: b, port: 80}]}")
	if reason, msg, err := r.Check(t.Context(), c); reason != "" || err != nil {
		t.Fatalf("check: %q %q %v", reason, msg, err)
	}
	if err := r.Apply(t.Context(), c, headerSplit(c, 0, betaRoute)); err != nil {
		t.Fatal(err)
	}
	plain := get(t, cl, gvkIn(group, "IngressRoute"), ns, "plain-web-headers")
	secure := get(t, cl, gvkIn(group, "IngressRoute"), ns, "secure-web-headers")
	if got := jsonOf(plain.Object["spec"]); !strings.Contains(got, `"entryPoints":["web"]`) || !strings.Contains(got, `Headers(\"X-Channel\", \"beta\")`) || strings.Contains(got, "priority") {
		t.Errorf("plain header route: %s", got)
	}
	if got := jsonOf(secure.Object["spec"]); !strings.Contains(got, `"priority":71`) || !strings.Contains(got, `"tls":{}`) {
		t.Errorf("secure header route: %s", got)
	}
	if exists(t, cl, gvkIn(group, "IngressRoute"), ns, "other-web-headers") {
		t.Error("a header route narrows an IngressRoute that does not reference the TraefikService")
	}
	if obs, err := r.Observe(t.Context(), c, split(c, 0)); err != nil || obs.HeaderRoute != engine.HeaderRouteKey(betaRoute) {
		t.Errorf("observe: %+v %v", obs, err)
	}
	// Deleting the Canary releases: the header routes go.
	apex := router.Backend{Kind: "Service", Name: "web", Namespace: ns, Port: ptr(int32(80)), Weight: 1}
	if err := r.Release(t.Context(), c, apex); err != nil {
		t.Fatal(err)
	}
	if exists(t, cl, gvkIn(group, "IngressRoute"), ns, "plain-web-headers") || exists(t, cl, gvkIn(group, "IngressRoute"), ns, "secure-web-headers") {
		t.Error("header routes survive the release")
	}
}

// Mirror steps in TraefikService mode, both groups: the Canary's
// TraefikService becomes a mirroring one whose main is the weighted split
// (<canary>-split) and whose mirror is the canary at the step's percent;
// at 0 it is weighted again and the split is gone; the release leaves a
// plain weighted service.
func TestMirroring(t *testing.T) {
	for _, group := range traefik.DefaultGroups {
		t.Run(group, func(t *testing.T) {
			cl, ns := setup(t)
			c := newCanary(t, cl, ns, v1alpha1.TraefikRouter{})
			r := newRouter(cl, group)
			gvk := gvkIn(group, "TraefikService")
			s := split(c, 20)
			s.MirrorPercent = 50
			if err := r.Apply(t.Context(), c, s); err != nil {
				t.Fatal(err)
			}
			main := get(t, cl, gvk, ns, "web")
			if got := jsonOf(main.Object["spec"]); got != `{"mirroring":{"kind":"TraefikService","mirrors":[{"name":"web-canary","percent":50,"port":80}],"name":"web-split"}}` {
				t.Errorf("mirroring service spec: %s", got)
			}
			if got := jsonOf(get(t, cl, gvk, ns, "web-split").Object["spec"]); got != `{"weighted":{"services":[{"name":"web-primary","port":80,"weight":8000},{"name":"web-canary","port":80,"weight":2000}]}}` {
				t.Errorf("split service spec: %s", got)
			}
			if obs, err := r.Observe(t.Context(), c, s); err != nil || obs.CanaryWeight != 20 || obs.MirrorPercent != 50 {
				t.Errorf("observe: %+v %v", obs, err)
			}
			if err := r.Apply(t.Context(), c, split(c, 20)); err != nil {
				t.Fatal(err)
			}
			if got := jsonOf(get(t, cl, gvk, ns, "web").Object["spec"]); got != `{"weighted":{"services":[{"name":"web-primary","port":80,"weight":8000},{"name":"web-canary","port":80,"weight":2000}]}}` {
				t.Errorf("after the mirror: %s", got)
			}
			if exists(t, cl, gvk, ns, "web-split") {
				t.Error("the split service outlives the mirror")
			}
			if obs, err := r.Observe(t.Context(), c, s); err != nil || obs.CanaryWeight != 20 || obs.MirrorPercent != 0 {
				t.Errorf("observe after: %+v %v", obs, err)
			}
			// A release during a mirror leaves a weighted service only.
			if err := r.Apply(t.Context(), c, s); err != nil {
				t.Fatal(err)
			}
			apex := router.Backend{Kind: "Service", Name: "web", Namespace: ns, Port: ptr(int32(80)), Weight: 1}
			if err := r.Release(t.Context(), c, apex); err != nil {
				t.Fatal(err)
			}
			if got := jsonOf(get(t, cl, gvk, ns, "web").Object["spec"]); got != `{"weighted":{"services":[{"name":"web","port":80,"weight":10000}]}}` {
				t.Errorf("after release: %s", got)
			}
		})
	}
}
