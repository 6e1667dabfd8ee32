package gatewayapi

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/engine"
	"github.com/sluice-dev/sluice/internal/router"
)

// ref is a backendRef in the route's namespace (ns "") or another one.
func ref(name, ns string, weight *int32) gwv1.HTTPBackendRef {
	r := gwv1.HTTPBackendRef{BackendRef: gwv1.BackendRef{
		BackendObjectReference: gwv1.BackendObjectReference{Name: gwv1.ObjectName(name)},
		Weight:                 weight,
	}}
	if ns != "" {
		r.Namespace = ptr(gwv1.Namespace(ns))
	}
	return r
}

func routeWith(refs ...gwv1.HTTPBackendRef) *gwv1.HTTPRoute {
	return &gwv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"},
		Spec:       gwv1.HTTPRouteSpec{Rules: []gwv1.HTTPRouteRule{{BackendRefs: refs}}},
	}
}

func canaryIn(ns string, names ...string) router.Split {
	var s router.Split
	for _, n := range names {
		s.Canary = append(s.Canary, router.Backend{Kind: "Service", Name: n, Namespace: ns, Weight: 1})
	}
	return s
}

func TestCanaryPercent(t *testing.T) {
	w := func(v int32) *int32 { return &v }
	tests := []struct {
		name  string
		route *gwv1.HTTPRoute
		split router.Split
		want  int32
	}{
		{"no rules", &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: "shop"}}, canaryIn("shop", "web-canary"), 0},
		{"no backendRefs", routeWith(), canaryIn("shop", "web-canary"), 0},
		{"zero total", routeWith(ref("web-primary", "", w(0)), ref("web-canary", "", w(0))), canaryIn("shop", "web-canary"), 0},
		{"all primary", routeWith(ref("web-primary", "", w(10000)), ref("web-canary", "", w(0))), canaryIn("shop", "web-canary"), 0},
		{"all canary", routeWith(ref("web-primary", "", w(0)), ref("web-canary", "", w(10000))), canaryIn("shop", "web-canary"), 100},
		{"basis points", routeWith(ref("web-primary", "", w(7000)), ref("web-canary", "", w(3000))), canaryIn("shop", "web-canary"), 30},
		{"relative weights", routeWith(ref("web-primary", "", w(3)), ref("web-canary", "", w(1))), canaryIn("shop", "web-canary"), 25},
		{"rounds 33.3 down", routeWith(ref("web-primary", "", w(2)), ref("web-canary", "", w(1))), canaryIn("shop", "web-canary"), 33},
		{"rounds 66.7 up", routeWith(ref("web-primary", "", w(1)), ref("web-canary", "", w(2))), canaryIn("shop", "web-canary"), 67},
		{"rounds half up", routeWith(ref("web-primary", "", w(199)), ref("web-canary", "", w(1))), canaryIn("shop", "web-canary"), 1},
		{"rounds just below half down", routeWith(ref("web-primary", "", w(200)), ref("web-canary", "", w(1))), canaryIn("shop", "web-canary"), 0},
		{"rounds 99.5 up", routeWith(ref("web-primary", "", w(1)), ref("web-canary", "", w(199))), canaryIn("shop", "web-canary"), 100},
		{"nil weight counts as 1", routeWith(ref("web-primary", "", nil), ref("web-canary", "", nil)), canaryIn("shop", "web-canary"), 50},
		{"nil weight against explicit", routeWith(ref("web-primary", "", w(3)), ref("web-canary", "", nil)), canaryIn("shop", "web-canary"), 25},
		{"several canary backends add up", routeWith(ref("p", "", w(5000)), ref("c1", "", w(1000)), ref("c2", "", w(1500))), canaryIn("shop", "c1", "c2"), 33},
		{"unknown backends count as primary", routeWith(ref("web-canary", "", w(1)), ref("stray", "", w(3))), canaryIn("shop", "web-canary"), 25},
		{
			"canary backend in another namespace matched by namespace",
			routeWith(ref("svc", "", w(6000)), ref("svc", "other", w(4000))),
			canaryIn("other", "svc"), 40,
		},
		{
			"same name in the route's namespace is not the other namespace's canary",
			routeWith(ref("svc", "", w(6000)), ref("svc", "other", w(4000))),
			canaryIn("shop", "svc"), 60,
		},
		{
			"explicit namespace equal to the route's",
			routeWith(ref("web-primary", "", w(9000)), ref("web-canary", "shop", w(1000))),
			canaryIn("shop", "web-canary"), 10,
		},
		{"only the last (weighted) rule counts, not a header route before it", &gwv1.HTTPRoute{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop"},
			Spec: gwv1.HTTPRouteSpec{Rules: []gwv1.HTTPRouteRule{
				{BackendRefs: []gwv1.HTTPBackendRef{ref("web-canary", "", w(10000))}},
				{BackendRefs: []gwv1.HTTPBackendRef{ref("web-primary", "", w(8000)), ref("web-canary", "", w(2000))}},
			}},
		}, canaryIn("shop", "web-canary"), 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := canaryPercent(tt.route, tt.split); got != tt.want {
				t.Fatalf("canaryPercent = %d, want %d", got, tt.want)
			}
		})
	}
}

// TestCanaryPercentReadsBackDesired: the percentage read back from the
// route Desired builds is the weight it was built for, for every weight,
// with generated backends and with several backends per phase in several
// namespaces.
func TestCanaryPercentReadsBackDesired(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	r := &Router{Scheme: scheme}
	c := &v1alpha1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", UID: "uid"},
		Spec: v1alpha1.CanarySpec{
			TargetRef: v1alpha1.TargetRef{Name: "web"},
			Service:   v1alpha1.ServiceSpec{Port: 80},
			Router: v1alpha1.RouterSpec{GatewayAPI: &v1alpha1.GatewayAPIRouter{
				ParentRefs: []gwv1.ParentReference{{Name: "gw"}},
			}},
		},
	}
	genPrimary, genCanary := router.Backends(c, "web")
	splits := map[string]router.Split{
		"generated": {Primary: genPrimary, Canary: genCanary},
		"several backends and namespaces": {
			Primary: []router.Backend{
				{Kind: "Service", Name: "a", Namespace: "shop", Weight: 1},
				{Kind: "Service", Name: "b", Namespace: "legacy", Weight: 2},
				{Kind: "Service", Name: "c", Namespace: "shop", Weight: 4},
			},
			Canary: []router.Backend{
				{Kind: "Service", Name: "a", Namespace: "canary-ns", Weight: 1},
				{Group: "proxy.example.io", Kind: "AuthProxy", Name: "auth", Namespace: "auth", Weight: 3},
				{Kind: "Service", Name: "idle", Namespace: "shop", Weight: 0},
			},
		},
	}
	for name, s := range splits {
		for w := int32(0); w <= 100; w++ {
			s.CanaryWeight = w
			route, err := r.Desired(c, s)
			if err != nil {
				t.Fatal(err)
			}
			if got := canaryPercent(route, s); got != w {
				t.Fatalf("%s: built for %d%%, read back %d%%", name, w, got)
			}
		}
	}
}

// A header route is a first rule with the user's matches plus the headers,
// to the canary only; what Observe reads back from it is the same key.
func TestHeaderRouteRule(t *testing.T) {
	exact, re := "insider", "^beta-.*$"
	hr := &v1alpha1.HeaderRoute{Match: []v1alpha1.HeaderMatch{{Name: "X-Canary", Exact: &exact}, {Name: "X-User", Regex: &re}}}
	for _, userMatches := range [][]gwv1.HTTPRouteMatch{nil, {
		{Path: &gwv1.HTTPPathMatch{Value: ptr("/api")}, Headers: []gwv1.HTTPHeaderMatch{{Name: "X-Tenant", Value: "a"}}},
		{Path: &gwv1.HTTPPathMatch{Value: ptr("/v2")}},
	}} {
		c := &v1alpha1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", UID: "uid"},
			Spec: v1alpha1.CanarySpec{Service: v1alpha1.ServiceSpec{Port: 80},
				Router: v1alpha1.RouterSpec{GatewayAPI: &v1alpha1.GatewayAPIRouter{Matches: userMatches}}}}
		p, cn := router.Backends(c, "web")
		scheme := runtime.NewScheme()
		if err := v1alpha1.AddToScheme(scheme); err != nil {
			t.Fatal(err)
		}
		r := &Router{Scheme: scheme}
		route, err := r.Desired(c, router.Split{Primary: p, Canary: cn, CanaryWeight: 10, HeaderRoute: hr})
		if err != nil {
			t.Fatal(err)
		}
		rules := route.Spec.Rules
		if len(rules) != 2 || len(rules[0].BackendRefs) != 1 || string(rules[0].BackendRefs[0].Name) != "web-canary" ||
			*rules[0].BackendRefs[0].Weight != 10000 {
			t.Fatalf("rules = %+v", rules)
		}
		want := max(1, len(userMatches))
		if len(rules[0].Matches) != want {
			t.Fatalf("%d header-route matches, want %d", len(rules[0].Matches), want)
		}
		for i, m := range rules[0].Matches {
			last := m.Headers[len(m.Headers)-2:]
			if string(last[0].Name) != "X-Canary" || last[0].Value != "insider" || *last[0].Type != gwv1.HeaderMatchExact ||
				string(last[1].Name) != "X-User" || *last[1].Type != gwv1.HeaderMatchRegularExpression {
				t.Errorf("match %d headers = %+v", i, m.Headers)
			}
			if userMatches != nil && m.Path == nil {
				t.Errorf("match %d lost the user's path", i)
			}
		}
		if got := headerRouteKey(route, nil); got != engine.HeaderRouteKey(hr) {
			t.Errorf("read back %q, want %q", got, engine.HeaderRouteKey(hr))
		}
		if canaryPercent(route, router.Split{Primary: p, Canary: cn}) != 10 {
			t.Errorf("the weighted rule no longer carries 10%%")
		}
		plain, _ := r.Desired(c, router.Split{Primary: p, Canary: cn, CanaryWeight: 10})
		if len(plain.Spec.Rules) != 1 || headerRouteKey(plain, nil) != "" {
			t.Errorf("without a header route: %d rules, key %q", len(plain.Spec.Rules), headerRouteKey(plain, nil))
		}
	}
}

// A cookie step is a regex on the Cookie header in the header rule, read
// back as the same header route.
func TestCookieHeaderRoute(t *testing.T) {
	c := &v1alpha1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", UID: "uid"},
		Spec: v1alpha1.CanarySpec{Service: v1alpha1.ServiceSpec{Port: 80},
			Router: v1alpha1.RouterSpec{GatewayAPI: &v1alpha1.GatewayAPIRouter{}}}}
	p, cn := router.Backends(c, "web")
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	hr := &v1alpha1.HeaderRoute{Cookie: &v1alpha1.CookieMatch{Name: "beta", Value: "on"}}
	route, err := (&Router{Scheme: scheme}).Desired(c, router.Split{Primary: p, Canary: cn, CanaryWeight: 10, HeaderRoute: hr})
	if err != nil {
		t.Fatal(err)
	}
	h := route.Spec.Rules[0].Matches[0].Headers
	if len(h) != 1 || h[0].Name != "Cookie" || *h[0].Type != gwv1.HeaderMatchRegularExpression || h[0].Value != v1alpha1.CookieRegex("beta", "on") {
		t.Fatalf("cookie rule headers %+v", h)
	}
	if got := headerRouteKey(route, nil); got != engine.HeaderRouteKey(hr) {
		t.Errorf("read back %q, want %q", got, engine.HeaderRouteKey(hr))
	}
}
