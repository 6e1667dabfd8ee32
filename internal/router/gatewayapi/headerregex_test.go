package gatewayapi_test

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/router"
	"github.com/sluice-dev/sluice/internal/router/gatewayapi"
	"github.com/sluice-dev/sluice/internal/testenv"
)

// A Gateway may take a route but drop a rule it cannot use, a header
// route whose regex its dialect refuses for one: Accepted stays True for
// the current generation and PartiallyInvalid says what was dropped
// (Gateway API's "Ignore" approach). The header route is then not carried,
// and reading it back must say so.
func TestPartiallyInvalidRouteIsNotTaken(t *testing.T) {
	env := testenv.Get(t)
	cl := env.SluiceClient(t)
	ns := env.Namespace(t)
	c := newCanary()
	c.ObjectMeta = metav1.ObjectMeta{Name: "web", Namespace: ns}
	c.Spec.Router.GatewayAPI.ParentRefs = []gwv1.ParentReference{{Name: "public"}}
	re := "ios-[0-9]+"
	hr := &v1alpha1.HeaderRoute{Match: []v1alpha1.HeaderMatch{{Name: "User-Agent", Regex: &re}}}
	c.Spec.Strategy = v1alpha1.Strategy{Steps: []v1alpha1.Step{{SetHeaderRoute: hr}}}
	if err := cl.Create(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	r := &gatewayapi.Router{Client: cl, Scheme: cl.Scheme(), Labels: map[string]string{"sluice.dev/canary": "web"}}
	s := defaultSplit(c, 0)
	s.HeaderRoute = hr
	if err := r.Apply(t.Context(), c, s); err != nil {
		t.Fatal(err)
	}
	setParentStatus := func(ctx context.Context, conds ...metav1.Condition) {
		t.Helper()
		var route gwv1.HTTPRoute
		if err := cl.Get(ctx, keyOf(ns, "web"), &route); err != nil {
			t.Fatal(err)
		}
		for i := range conds {
			conds[i].ObservedGeneration, conds[i].LastTransitionTime = route.Generation, metav1.Now()
		}
		route.Status.Parents = []gwv1.RouteParentStatus{{ParentRef: gwv1.ParentReference{Name: "public"},
			ControllerName: "example.com/gateway", Conditions: conds}}
		if err := cl.Status().Update(ctx, &route); err != nil {
			t.Fatal(err)
		}
	}
	accepted := metav1.Condition{Type: string(gwv1.RouteConditionAccepted), Status: metav1.ConditionTrue, Reason: "Accepted", Message: "ok"}
	setParentStatus(t.Context(), accepted, metav1.Condition{Type: string(gwv1.RouteConditionPartiallyInvalid), Status: metav1.ConditionTrue,
		Reason: "UnsupportedValue", Message: "rule 0: unsupported header regex"})
	obs, err := r.Observe(t.Context(), c, s)
	if err != nil {
		t.Fatal(err)
	}
	if obs.HeaderRoute == "" || !strings.Contains(obs.Pending, "public") || !strings.Contains(obs.Pending, "unsupported header regex") {
		t.Errorf("a route the gateway took only in part reads back %+v, want it pending with the gateway's words", obs)
	}
	setParentStatus(t.Context(), accepted)
	if obs, err := r.Observe(t.Context(), c, s); err != nil || obs.Pending != "" {
		t.Errorf("a route taken whole reads back %+v, %v", obs, err)
	}
}

// Canaries stored before the CRD checked regexes: the router refuses one
// that is not RE2 syntax before anything is written.
func TestCheckRefusesARegexThatIsNotRE2(t *testing.T) {
	c := newCanary()
	re := "(?<!beta)x"
	c.Spec.Strategy = v1alpha1.Strategy{Steps: []v1alpha1.Step{{SetHeaderRoute: &v1alpha1.HeaderRoute{Match: []v1alpha1.HeaderMatch{{Name: "X-A", Regex: &re}}}}}}
	ch, ok := any(&gatewayapi.Router{}).(router.Checker)
	if !ok {
		t.Fatal("the gatewayapi router checks nothing before it writes")
	}
	reason, msg, err := ch.Check(t.Context(), c)
	if err != nil || reason != "InvalidHeaderRegex" || !strings.Contains(msg, "spec.strategy.steps[0].setHeaderRoute.match[0].regex: error parsing regexp") {
		t.Errorf("Check: %q %q %v", reason, msg, err)
	}
	ok2 := "beta|canary"
	c.Spec.Strategy.Steps[0].SetHeaderRoute.Match[0].Regex = &ok2
	if reason, msg, err := ch.Check(t.Context(), c); reason != "" || msg != "" || err != nil {
		t.Errorf("a good regex: %q %q %v", reason, msg, err)
	}
}
