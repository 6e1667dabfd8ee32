package router_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/router"
)

func p[T any](v T) *T { return &v }

func canaryWithRefs(refs *v1alpha1.PhaseBackendRefs) *v1alpha1.Canary {
	return &v1alpha1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "web-release", Namespace: "shop"},
		Spec: v1alpha1.CanarySpec{
			TargetRef: v1alpha1.TargetRef{Name: "web"},
			Service:   v1alpha1.ServiceSpec{Port: 8080, BackendRefs: refs},
		},
	}
}

func generated(name string, port int32) []router.Backend {
	return []router.Backend{{Kind: "Service", Name: name, Namespace: "shop", Port: p(port), Weight: 1}}
}

func TestBackends(t *testing.T) {
	headerFilter := []gwv1.HTTPRouteFilter{{
		Type: gwv1.HTTPRouteFilterRequestHeaderModifier,
		RequestHeaderModifier: &gwv1.HTTPHeaderFilter{
			Set: []gwv1.HTTPHeader{{Name: "X-Canary", Value: "true"}},
		},
	}}
	tests := []struct {
		name        string
		refs        *v1alpha1.PhaseBackendRefs
		wantPrimary []router.Backend
		wantCanary  []router.Backend
	}{
		{
			name:        "no backendRefs: generated Services",
			refs:        nil,
			wantPrimary: generated("apex-primary", 8080),
			wantCanary:  generated("apex-canary", 8080),
		},
		{
			name:        "empty backendRefs: generated Services",
			refs:        &v1alpha1.PhaseBackendRefs{},
			wantPrimary: generated("apex-primary", 8080),
			wantCanary:  generated("apex-canary", 8080),
		},
		{
			name: "canary only: primary stays generated",
			refs: &v1alpha1.PhaseBackendRefs{
				Canary: []v1alpha1.BackendRef{{Name: "auth-proxy", Port: p(int32(9000))}},
			},
			wantPrimary: generated("apex-primary", 8080),
			wantCanary:  []router.Backend{{Kind: "Service", Name: "auth-proxy", Namespace: "shop", Port: p(int32(9000)), Weight: 1}},
		},
		{
			name: "primary only: canary stays generated",
			refs: &v1alpha1.PhaseBackendRefs{
				Primary: []v1alpha1.BackendRef{{Name: "stable", Port: p(int32(81)), Weight: p(int32(4))}},
			},
			wantPrimary: []router.Backend{{Kind: "Service", Name: "stable", Namespace: "shop", Port: p(int32(81)), Weight: 4}},
			wantCanary:  generated("apex-canary", 8080),
		},
		{
			name: "group, kind, namespace, weight and filters resolved",
			refs: &v1alpha1.PhaseBackendRefs{
				Primary: []v1alpha1.BackendRef{
					// group "core" is the core group.
					{Group: p("core"), Name: "a", Port: p(int32(80))},
					// explicit "" is the core group too.
					{Group: p(""), Kind: p("Service"), Name: "b", Port: p(int32(81)), Weight: p(int32(3))},
					// explicit weight 0 is kept, not defaulted to 1.
					{Name: "c", Namespace: p("other"), Port: p(int32(82)), Weight: p(int32(0))},
				},
				Canary: []v1alpha1.BackendRef{
					{Group: p("gateway.example.io"), Kind: p("Proxy"), Name: "auth", Namespace: p("auth-ns"), Weight: p(int32(1000)), Filters: headerFilter},
					{Name: "d", Port: p(int32(83)), Namespace: p("shop")},
				},
			},
			wantPrimary: []router.Backend{
				{Group: "", Kind: "Service", Name: "a", Namespace: "shop", Port: p(int32(80)), Weight: 1},
				{Group: "", Kind: "Service", Name: "b", Namespace: "shop", Port: p(int32(81)), Weight: 3},
				{Group: "", Kind: "Service", Name: "c", Namespace: "other", Port: p(int32(82)), Weight: 0},
			},
			wantCanary: []router.Backend{
				{Group: "gateway.example.io", Kind: "Proxy", Name: "auth", Namespace: "auth-ns", Port: nil, Weight: 1000, Filters: headerFilter},
				{Kind: "Service", Name: "d", Namespace: "shop", Port: p(int32(83)), Weight: 1},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := canaryWithRefs(tt.refs)
			primary, canary := router.Backends(c, "apex")
			if !reflect.DeepEqual(primary, tt.wantPrimary) {
				t.Errorf("primary = %s\nwant      %s", dump(primary), dump(tt.wantPrimary))
			}
			if !reflect.DeepEqual(canary, tt.wantCanary) {
				t.Errorf("canary = %s\nwant     %s", dump(canary), dump(tt.wantCanary))
			}
		})
	}
}

// TestBackendsUsesCanaryNamespaceAndPort: the generated backends follow the
// Canary's namespace and port, not fixed values.
func TestBackendsUsesCanaryNamespaceAndPort(t *testing.T) {
	c := canaryWithRefs(nil)
	c.Namespace = "payments"
	c.Spec.Service.Port = 443
	primary, canary := router.Backends(c, "api")
	for _, tc := range []struct {
		got  []router.Backend
		name string
	}{{primary, "api-primary"}, {canary, "api-canary"}} {
		if len(tc.got) != 1 {
			t.Fatalf("got %d backends, want 1: %s", len(tc.got), dump(tc.got))
		}
		b := tc.got[0]
		if b.Name != tc.name || b.Namespace != "payments" || b.Port == nil || *b.Port != 443 || b.Kind != "Service" || b.Group != "" || b.Weight != 1 {
			t.Errorf("backend = %s, want Service %s/payments port 443 weight 1", dump(tc.got), tc.name)
		}
	}
}

func dump(bs []router.Backend) string {
	s := "["
	for i, b := range bs {
		if i > 0 {
			s += ", "
		}
		port := "nil"
		if b.Port != nil {
			port = fmt.Sprint(*b.Port)
		}
		s += fmt.Sprintf("{group=%q kind=%s %s/%s port=%s weight=%d filters=%v}", b.Group, b.Kind, b.Namespace, b.Name, port, b.Weight, b.Filters)
	}
	return s + "]"
}

// forbiddenKinds answers every read with the KindForbiddenError of a
// reader whose controller may not watch the backend's kind.
type forbiddenKinds struct{ client.Reader }

func (forbiddenKinds) Get(_ context.Context, _ client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	gvk := obj.GetObjectKind().GroupVersionKind()
	return &router.KindForbiddenError{Group: gvk.Group, Kind: gvk.Kind, Resource: "serviceentries.networking.istio.io", Verbs: []string{"watch"}}
}

// A backend kind the controller may not read stalls the Canary with a
// reason naming the field, the kind and the verbs to grant.
func TestCheckBackendsKindForbidden(t *testing.T) {
	gv := schema.GroupVersion{Group: "networking.istio.io", Version: "v1"}
	mapper := meta.NewDefaultRESTMapper([]schema.GroupVersion{gv})
	mapper.Add(gv.WithKind("ServiceEntry"), meta.RESTScopeNamespace)
	c := canaryWithRefs(&v1alpha1.PhaseBackendRefs{Canary: []v1alpha1.BackendRef{
		{Group: p("networking.istio.io"), Kind: p("ServiceEntry"), Name: "payments-ext"},
	}})
	primary, canary := router.Backends(c, "web")
	reason, msg, err := router.CheckBackends(context.Background(), forbiddenKinds{}, nil, mapper, c, "HTTPRoute",
		map[string][]router.Backend{"primary": primary[:0], "canary": canary})
	want := `spec.service.backendRefs.canary[0]: the controller may not watch serviceentries.networking.istio.io (kind ServiceEntry in group "networking.istio.io") cluster-wide; grant the controller's ClusterRole watch on serviceentries.networking.istio.io`
	if err != nil || reason != "BackendKindForbidden" || msg != want {
		t.Errorf("CheckBackends = %q, %q, %v; want BackendKindForbidden, %q", reason, msg, err, want)
	}
}
