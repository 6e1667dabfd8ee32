package gatewayapi_test

import (
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/router"
	"github.com/sluice-dev/sluice/internal/router/gatewayapi"
)

func p[T any](v T) *T { return &v }

func newScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := gwv1.Install(s); err != nil {
		t.Fatal(err)
	}
	return s
}

func newRouter(t *testing.T) *gatewayapi.Router {
	return &gatewayapi.Router{
		Scheme: newScheme(t),
		Labels: map[string]string{"app.kubernetes.io/managed-by": "sluice", "sluice.dev/canary": "web"},
	}
}

func newCanary() *v1alpha1.Canary {
	return &v1alpha1.Canary{
		TypeMeta:   metav1.TypeMeta{APIVersion: "sluice.dev/v1alpha1", Kind: "Canary"},
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", UID: types.UID("0b7c1d1e-uid")},
		Spec: v1alpha1.CanarySpec{
			TargetRef: v1alpha1.TargetRef{Name: "web"},
			Service:   v1alpha1.ServiceSpec{Port: 80},
			Router: v1alpha1.RouterSpec{GatewayAPI: &v1alpha1.GatewayAPIRouter{
				ParentRefs: []gwv1.ParentReference{{Name: "public", Namespace: p(gwv1.Namespace("gateways")), SectionName: p(gwv1.SectionName("https"))}},
				Hostnames:  []gwv1.Hostname{"shop.example.com", "www.shop.example.com"},
				Matches: []gwv1.HTTPRouteMatch{{
					Path: &gwv1.HTTPPathMatch{Type: p(gwv1.PathMatchPathPrefix), Value: p("/api")},
				}},
				Filters: []gwv1.HTTPRouteFilter{{
					Type:                  gwv1.HTTPRouteFilterRequestHeaderModifier,
					RequestHeaderModifier: &gwv1.HTTPHeaderFilter{Add: []gwv1.HTTPHeader{{Name: "X-Route", Value: "web"}}},
				}},
				Timeouts: &gwv1.HTTPRouteTimeouts{Request: p(gwv1.Duration("10s")), BackendRequest: p(gwv1.Duration("5s"))},
			}},
		},
	}
}

func defaultSplit(c *v1alpha1.Canary, weight int32) router.Split {
	primary, canary := router.Backends(c, "web")
	return router.Split{Primary: primary, Canary: canary, CanaryWeight: weight}
}

func TestDesiredBuildsRoute(t *testing.T) {
	r, c := newRouter(t), newCanary()
	route, err := r.Desired(c, defaultSplit(c, 30))
	if err != nil {
		t.Fatal(err)
	}

	if route.APIVersion != "gateway.networking.k8s.io/v1" || route.Kind != "HTTPRoute" {
		t.Errorf("TypeMeta = %s %s, want gateway.networking.k8s.io/v1 HTTPRoute", route.APIVersion, route.Kind)
	}
	if route.Name != "web" || route.Namespace != "shop" {
		t.Errorf("route = %s/%s, want shop/web", route.Namespace, route.Name)
	}
	if want := map[string]string{"app.kubernetes.io/managed-by": "sluice", "sluice.dev/canary": "web"}; !reflect.DeepEqual(route.Labels, want) {
		t.Errorf("labels = %v, want %v", route.Labels, want)
	}
	wantOwner := []metav1.OwnerReference{{
		APIVersion: "sluice.dev/v1alpha1", Kind: "Canary", Name: "web", UID: "0b7c1d1e-uid",
		Controller: p(true), BlockOwnerDeletion: p(true),
	}}
	if !reflect.DeepEqual(route.OwnerReferences, wantOwner) {
		t.Errorf("ownerReferences = %+v, want %+v", route.OwnerReferences, wantOwner)
	}
	if len(route.Annotations) != 1 || !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(route.Annotations[router.SpecHashAnnotation]) {
		t.Errorf("annotations = %v, want only %s with 16 hex digits", route.Annotations, router.SpecHashAnnotation)
	}

	gw := c.Spec.Router.GatewayAPI
	if !reflect.DeepEqual(route.Spec.ParentRefs, gw.ParentRefs) {
		t.Errorf("parentRefs = %+v, want %+v", route.Spec.ParentRefs, gw.ParentRefs)
	}
	if !reflect.DeepEqual(route.Spec.Hostnames, gw.Hostnames) {
		t.Errorf("hostnames = %v, want %v", route.Spec.Hostnames, gw.Hostnames)
	}
	if len(route.Spec.Rules) != 1 {
		t.Fatalf("route has %d rules, want 1", len(route.Spec.Rules))
	}
	rule := route.Spec.Rules[0]
	if !reflect.DeepEqual(rule.Matches, gw.Matches) {
		t.Errorf("matches = %+v, want %+v", rule.Matches, gw.Matches)
	}
	if !reflect.DeepEqual(rule.Filters, gw.Filters) {
		t.Errorf("filters = %+v, want %+v", rule.Filters, gw.Filters)
	}
	if !reflect.DeepEqual(rule.Timeouts, gw.Timeouts) {
		t.Errorf("timeouts = %+v, want %+v", rule.Timeouts, gw.Timeouts)
	}
	wantRefs := []gwv1.HTTPBackendRef{
		{BackendRef: gwv1.BackendRef{
			BackendObjectReference: gwv1.BackendObjectReference{Group: p(gwv1.Group("")), Kind: p(gwv1.Kind("Service")), Name: "web-primary", Port: p(gwv1.PortNumber(80))},
			Weight:                 p(int32(7000)),
		}},
		{BackendRef: gwv1.BackendRef{
			BackendObjectReference: gwv1.BackendObjectReference{Group: p(gwv1.Group("")), Kind: p(gwv1.Kind("Service")), Name: "web-canary", Port: p(gwv1.PortNumber(80))},
			Weight:                 p(int32(3000)),
		}},
	}
	if !reflect.DeepEqual(rule.BackendRefs, wantRefs) {
		t.Errorf("backendRefs =\n%s\nwant\n%s", refsString(rule.BackendRefs), refsString(wantRefs))
	}
}

func TestDesiredBackendWeights(t *testing.T) {
	tests := []struct {
		weight        int32
		primary, cnry int32
	}{
		{0, 10000, 0},
		{1, 9900, 100},
		{30, 7000, 3000},
		{50, 5000, 5000},
		{99, 100, 9900},
		{100, 0, 10000},
	}
	r, c := newRouter(t), newCanary()
	for _, tt := range tests {
		route, err := r.Desired(c, defaultSplit(c, tt.weight))
		if err != nil {
			t.Fatal(err)
		}
		refs := route.Spec.Rules[0].BackendRefs
		if len(refs) != 2 || refs[0].Name != "web-primary" || refs[1].Name != "web-canary" {
			t.Fatalf("weight %d: backendRefs = %s", tt.weight, refsString(refs))
		}
		if *refs[0].Weight != tt.primary || *refs[1].Weight != tt.cnry {
			t.Errorf("weight %d: primary %d canary %d, want %d / %d", tt.weight, *refs[0].Weight, *refs[1].Weight, tt.primary, tt.cnry)
		}
	}
}

// TestDesiredCustomBackends: several backends per phase split the phase's
// share by relative weight; a backend in another namespace names it, one in
// the Canary's namespace does not; group, kind, port and filters are kept.
func TestDesiredCustomBackends(t *testing.T) {
	r, c := newRouter(t), newCanary()
	proxyFilters := []gwv1.HTTPRouteFilter{{
		Type:                  gwv1.HTTPRouteFilterRequestHeaderModifier,
		RequestHeaderModifier: &gwv1.HTTPHeaderFilter{Set: []gwv1.HTTPHeader{{Name: "X-Canary", Value: "1"}}},
	}}
	s := router.Split{
		Primary: []router.Backend{
			{Kind: "Service", Name: "a", Namespace: "shop", Port: p(int32(80)), Weight: 1},
			{Kind: "Service", Name: "b", Namespace: "legacy", Port: p(int32(8080)), Weight: 3},
		},
		Canary: []router.Backend{
			{Group: "proxy.example.io", Kind: "AuthProxy", Name: "auth", Namespace: "auth", Weight: 1, Filters: proxyFilters},
			{Kind: "Service", Name: "zero", Namespace: "shop", Port: p(int32(81)), Weight: 0},
		},
		CanaryWeight: 20,
	}
	route, err := r.Desired(c, s)
	if err != nil {
		t.Fatal(err)
	}
	want := []gwv1.HTTPBackendRef{
		{BackendRef: gwv1.BackendRef{
			BackendObjectReference: gwv1.BackendObjectReference{Group: p(gwv1.Group("")), Kind: p(gwv1.Kind("Service")), Name: "a", Port: p(gwv1.PortNumber(80))},
			Weight:                 p(int32(2000)),
		}},
		{BackendRef: gwv1.BackendRef{
			BackendObjectReference: gwv1.BackendObjectReference{Group: p(gwv1.Group("")), Kind: p(gwv1.Kind("Service")), Name: "b", Namespace: p(gwv1.Namespace("legacy")), Port: p(gwv1.PortNumber(8080))},
			Weight:                 p(int32(6000)),
		}},
		{BackendRef: gwv1.BackendRef{
			BackendObjectReference: gwv1.BackendObjectReference{Group: p(gwv1.Group("proxy.example.io")), Kind: p(gwv1.Kind("AuthProxy")), Name: "auth", Namespace: p(gwv1.Namespace("auth"))},
			Weight:                 p(int32(2000)),
		}, Filters: proxyFilters},
		{BackendRef: gwv1.BackendRef{
			BackendObjectReference: gwv1.BackendObjectReference{Group: p(gwv1.Group("")), Kind: p(gwv1.Kind("Service")), Name: "zero", Port: p(gwv1.PortNumber(81))},
			Weight:                 p(int32(0)),
		}},
	}
	if got := route.Spec.Rules[0].BackendRefs; !reflect.DeepEqual(got, want) {
		t.Errorf("backendRefs =\n%s\nwant\n%s", refsString(got), refsString(want))
	}
}

func TestDesiredSpecHash(t *testing.T) {
	r, c := newRouter(t), newCanary()
	hash := func(t *testing.T, r *gatewayapi.Router, c *v1alpha1.Canary, s router.Split) string {
		t.Helper()
		route, err := r.Desired(c, s)
		if err != nil {
			t.Fatal(err)
		}
		h := route.Annotations[router.SpecHashAnnotation]
		if h == "" {
			t.Fatalf("no %s annotation", router.SpecHashAnnotation)
		}
		return h
	}
	base := hash(t, r, c, defaultSplit(c, 30))

	t.Run("same input, same hash", func(t *testing.T) {
		if h := hash(t, r, c, defaultSplit(c, 30)); h != base {
			t.Errorf("hash %s, then %s", base, h)
		}
	})
	t.Run("every weight has its own hash", func(t *testing.T) {
		seen := map[string]int32{}
		for w := int32(0); w <= 100; w++ {
			h := hash(t, r, c, defaultSplit(c, w))
			if prev, ok := seen[h]; ok {
				t.Fatalf("weights %d and %d have the same hash %s", prev, w, h)
			}
			seen[h] = w
		}
		if seen[base] != 30 {
			t.Errorf("hash of weight 30 is not stable")
		}
	})
	t.Run("metadata does not change the hash", func(t *testing.T) {
		r2 := newRouter(t)
		r2.Labels = map[string]string{"other": "label"}
		c2 := newCanary()
		c2.UID = "another-uid"
		c2.Annotations = map[string]string{"x": "y"}
		c2.Status.CanaryWeight = 77
		if h := hash(t, r2, c2, defaultSplit(c2, 30)); h != base {
			t.Errorf("hash changed from %s to %s with only metadata/status changes", base, h)
		}
	})
	t.Run("route spec changes change the hash", func(t *testing.T) {
		for name, mutate := range map[string]func(c *v1alpha1.Canary){
			"hostname": func(c *v1alpha1.Canary) { c.Spec.Router.GatewayAPI.Hostnames = c.Spec.Router.GatewayAPI.Hostnames[:1] },
			"timeout":  func(c *v1alpha1.Canary) { c.Spec.Router.GatewayAPI.Timeouts.Request = p(gwv1.Duration("11s")) },
			"port":     func(c *v1alpha1.Canary) { c.Spec.Service.Port = 81 },
		} {
			c2 := newCanary()
			mutate(c2)
			if h := hash(t, r, c2, defaultSplit(c2, 30)); h == base {
				t.Errorf("%s changed but the hash did not", name)
			}
		}
	})
}

func TestDesiredErrors(t *testing.T) {
	t.Run("no gatewayAPI router", func(t *testing.T) {
		c := newCanary()
		c.Spec.Router.GatewayAPI = nil
		_, err := newRouter(t).Desired(c, defaultSplit(c, 10))
		if err == nil || !strings.Contains(err.Error(), "shop/web") || !strings.Contains(err.Error(), "spec.router.gatewayAPI") {
			t.Fatalf("err = %v, want one naming shop/web and spec.router.gatewayAPI", err)
		}
	})
	t.Run("scheme without Canary", func(t *testing.T) {
		c := newCanary()
		s := runtime.NewScheme()
		if err := gwv1.Install(s); err != nil {
			t.Fatal(err)
		}
		r := &gatewayapi.Router{Scheme: s}
		_, err := r.Desired(c, defaultSplit(c, 10))
		if err == nil || !strings.Contains(err.Error(), "owner") {
			t.Fatalf("err = %v, want an owner error", err)
		}
	})
}

func TestRouteName(t *testing.T) {
	if got := gatewayapi.RouteName(newCanary()); got != "web" {
		t.Fatalf("RouteName = %q, want web", got)
	}
}

func refsString(refs []gwv1.HTTPBackendRef) string {
	deref := func(v any) string {
		rv := reflect.ValueOf(v)
		if rv.IsNil() {
			return "<nil>"
		}
		return fmt.Sprint(rv.Elem().Interface())
	}
	var b strings.Builder
	for _, r := range refs {
		fmt.Fprintf(&b, "  group=%s kind=%s ns=%s name=%s port=%s weight=%s filters=%v\n",
			deref(r.Group), deref(r.Kind), deref(r.Namespace), r.Name, deref(r.Port), deref(r.Weight), r.Filters)
	}
	return b.String()
}
