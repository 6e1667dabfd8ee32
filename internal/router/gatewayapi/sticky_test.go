package gatewayapi_test

import (
	"regexp"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/engine"
	"github.com/sluice-dev/sluice/internal/router"
	"github.com/sluice-dev/sluice/internal/router/gatewayapi"
	"github.com/sluice-dev/sluice/internal/testenv"
)

// Against the local control plane with Gateway API's real CRDs (their
// validation takes the cookie rule and the backend filter): a sticky
// canary with a share gets a rule before the weighted one that sends the
// requests carrying its cookie to the canary alone, and its backend in the
// weighted rule sets the cookie on its answers; both are read back as
// neither a header route nor a change of weight, go at weight 0, and sit
// beside a header route. The Canary CRD refuses sessionAffinity with a
// router that cannot keep it.
func TestStickyCanary(t *testing.T) {
	env := testenv.Get(t)
	cl := env.SluiceClient(t)
	ns := env.Namespace(t)
	c := newCanary()
	c.ObjectMeta = metav1.ObjectMeta{Name: "web", Namespace: ns}
	c.Spec.Router.GatewayAPI.ParentRefs = []gwv1.ParentReference{{Name: "public"}}
	c.Spec.Strategy = v1alpha1.Strategy{Steps: []v1alpha1.Step{{SetWeight: p(int32(20))}},
		SessionAffinity: &v1alpha1.SessionAffinity{CookieName: "shop-canary", MaxAge: &metav1.Duration{Duration: time.Hour}}}
	if err := cl.Create(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	r := &gatewayapi.Router{Client: cl, Scheme: cl.Scheme(), Labels: map[string]string{"sluice.dev/canary": "web"}}
	sticky := &router.Sticky{Cookie: "shop-canary", MaxAge: time.Hour, Value: "rev2"}
	s := defaultSplit(c, 20)
	s.Sticky = sticky
	if err := r.Apply(t.Context(), c, s); err != nil {
		t.Fatal(err)
	}
	var route gwv1.HTTPRoute
	if err := cl.Get(t.Context(), keyOf(ns, "web"), &route); err != nil {
		t.Fatal(err)
	}
	rules := route.Spec.Rules
	if len(rules) != 2 {
		t.Fatalf("%d rules, want the cookie rule and the weighted one: %+v", len(rules), rules)
	}
	cookie := rules[0].Matches[0].Headers[len(rules[0].Matches[0].Headers)-1]
	if cookie.Name != "Cookie" || *cookie.Type != gwv1.HeaderMatchRegularExpression || len(rules[0].BackendRefs) != 1 ||
		rules[0].BackendRefs[0].Name != "web-canary" {
		t.Fatalf("cookie rule %+v", rules[0])
	}
	re := regexp.MustCompile(cookie.Value)
	for header, want := range map[string]bool{
		"shop-canary=rev2": true, "a=1; shop-canary=rev2": true, "shop-canary=rev2; b=2": true,
		"shop-canary=rev1": false, "xshop-canary=rev2": false, "shop-canary=rev22": false, "": false,
	} {
		if got := re.MatchString(header); got != want {
			t.Errorf("cookie regex %q on %q: %v, want %v", cookie.Value, header, got, want)
		}
	}
	var setCookie string
	for _, ref := range rules[1].BackendRefs {
		for _, f := range ref.Filters {
			if f.Type == gwv1.HTTPRouteFilterResponseHeaderModifier {
				if ref.Name != "web-canary" {
					t.Errorf("backend %s sets a cookie: %+v", ref.Name, f)
				}
				setCookie = f.ResponseHeaderModifier.Add[0].Value
			}
		}
	}
	if setCookie != "shop-canary=rev2; Max-Age=3600; Path=/; HttpOnly" {
		t.Errorf("the canary's answers set %q", setCookie)
	}
	if obs, err := r.Observe(t.Context(), c, s); err != nil || obs.CanaryWeight != 20 || obs.HeaderRoute != "" {
		t.Fatalf("observe: %+v %v", obs, err)
	}

	// Beside a header route: the header rule first, the cookie rule next.
	yes := "yes"
	hr := &v1alpha1.HeaderRoute{Match: []v1alpha1.HeaderMatch{{Name: "x-canary", Exact: &yes}}}
	s.HeaderRoute = hr
	if err := r.Apply(t.Context(), c, s); err != nil {
		t.Fatal(err)
	}
	if obs, err := r.Observe(t.Context(), c, s); err != nil || obs.CanaryWeight != 20 || obs.HeaderRoute != engine.HeaderRouteKey(hr) {
		t.Fatalf("observe with a header route: %+v %v", obs, err)
	}

	// At 0 the canary keeps nobody.
	s = defaultSplit(c, 0)
	s.Sticky = sticky
	if err := r.Apply(t.Context(), c, s); err != nil {
		t.Fatal(err)
	}
	if err := cl.Get(t.Context(), keyOf(ns, "web"), &route); err != nil {
		t.Fatal(err)
	}
	if len(route.Spec.Rules) != 1 {
		t.Errorf("at weight 0: %d rules", len(route.Spec.Rules))
	}
	for _, ref := range route.Spec.Rules[0].BackendRefs {
		if len(ref.Filters) != 0 {
			t.Errorf("at weight 0 backend %s has filters %+v", ref.Name, ref.Filters)
		}
	}

	bad := c.DeepCopy()
	bad.ObjectMeta = metav1.ObjectMeta{Name: "bad", Namespace: ns}
	bad.Spec.Router = v1alpha1.RouterSpec{Traefik: &v1alpha1.TraefikRouter{IngressRoute: &v1alpha1.TraefikIngressRouteRef{Name: "front"}}}
	if err := cl.Create(t.Context(), bad); !apierrors.IsInvalid(err) {
		t.Errorf("sessionAffinity with an in-place IngressRoute: %v", err)
	}
	bad.Spec.Router = v1alpha1.RouterSpec{GatewayAPI: c.Spec.Router.GatewayAPI}
	bad.Spec.Strategy.SessionAffinity.CookieName = "no spaces"
	if err := cl.Create(t.Context(), bad); !apierrors.IsInvalid(err) {
		t.Errorf("cookie name with a space: %v", err)
	}
}
