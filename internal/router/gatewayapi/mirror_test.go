package gatewayapi_test

import (
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/router"
	"github.com/sluice-dev/sluice/internal/router/gatewayapi"
	"github.com/sluice-dev/sluice/internal/testenv"
)

// Against the local control plane with Gateway API's real CRDs (their CEL
// checks the mirror filter): a mirror step adds a RequestMirror filter with
// the percent to the weighted rule, after the user's filters; it is read
// back, and removed when the mirror ends and on release.
func TestMirrorFilter(t *testing.T) {
	env := testenv.Get(t)
	cl := env.SluiceClient(t)
	ns := env.Namespace(t)
	c := newCanary()
	c.ObjectMeta = metav1.ObjectMeta{Name: "web", Namespace: ns}
	c.Spec.Router.GatewayAPI.ParentRefs = []gwv1.ParentReference{{Name: "public"}}
	c.Spec.Strategy = v1alpha1.Strategy{Steps: []v1alpha1.Step{{SetMirror: &v1alpha1.MirrorStep{Percent: 25}}}}
	if err := cl.Create(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	r := &gatewayapi.Router{Client: cl, Scheme: cl.Scheme(), Labels: map[string]string{"sluice.dev/canary": "web"}}
	s := defaultSplit(c, 10)
	s.MirrorPercent = 25
	if err := r.Apply(t.Context(), c, s); err != nil {
		t.Fatal(err)
	}
	var route gwv1.HTTPRoute
	if err := cl.Get(t.Context(), keyOf(ns, "web"), &route); err != nil {
		t.Fatal(err)
	}
	filters := route.Spec.Rules[0].Filters
	if len(filters) != 2 || filters[0].Type != gwv1.HTTPRouteFilterRequestHeaderModifier || filters[1].Type != gwv1.HTTPRouteFilterRequestMirror ||
		filters[1].RequestMirror.BackendRef.Name != "web-canary" || *filters[1].RequestMirror.BackendRef.Port != 80 || *filters[1].RequestMirror.Percent != 25 {
		t.Fatalf("filters %+v", filters)
	}
	if obs, err := r.Observe(t.Context(), c, s); err != nil || obs.MirrorPercent != 25 || obs.CanaryWeight != 10 {
		t.Fatalf("observe: %+v %v", obs, err)
	}
	if err := r.Apply(t.Context(), c, defaultSplit(c, 10)); err != nil {
		t.Fatal(err)
	}
	if err := cl.Get(t.Context(), keyOf(ns, "web"), &route); err != nil {
		t.Fatal(err)
	}
	if len(route.Spec.Rules[0].Filters) != 1 {
		t.Errorf("the mirror filter outlived the mirror: %+v", route.Spec.Rules[0].Filters)
	}
	if obs, _ := r.Observe(t.Context(), c, s); obs.MirrorPercent != 0 {
		t.Errorf("observe after: %+v", obs)
	}
	// Released while mirroring: the filter goes with the canary.
	if err := r.Apply(t.Context(), c, s); err != nil {
		t.Fatal(err)
	}
	apex := router.Backend{Kind: "Service", Name: "web", Namespace: ns, Port: p(int32(80)), Weight: 1}
	if err := r.Release(t.Context(), c, apex); err != nil {
		t.Fatal(err)
	}
	if err := cl.Get(t.Context(), keyOf(ns, "web"), &route); err != nil {
		t.Fatal(err)
	}
	for _, f := range route.Spec.Rules[0].Filters {
		if f.Type == gwv1.HTTPRouteFilterRequestMirror {
			t.Errorf("a mirror filter survives the release: %+v", f)
		}
	}
	// The CRD refuses a percent out of range.
	bad := c.DeepCopy()
	bad.ObjectMeta = metav1.ObjectMeta{Name: "bad", Namespace: ns}
	bad.Spec.Strategy.Steps[0].SetMirror.Percent = 101
	if err := cl.Create(t.Context(), bad); !apierrors.IsInvalid(err) {
		t.Errorf("percent 101: %v", err)
	}
}

func keyOf(ns, name string) client.ObjectKey { return client.ObjectKey{Namespace: ns, Name: name} }
