package nginx_test

import (
	"context"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/engine"
	"github.com/sluice-dev/sluice/internal/router"
	"github.com/sluice-dev/sluice/internal/router/nginx"
	"github.com/sluice-dev/sluice/internal/testenv"
)

// Against the local control plane's real Ingress API (no ingress-nginx
// runs here: what ingress-nginx would do with the annotations is its
// documented behaviour, not tested).

func ingress(ns, name string, backends ...string) *networkingv1.Ingress {
	prefix := networkingv1.PathTypePrefix
	var paths []networkingv1.HTTPIngressPath
	for i, svc := range backends {
		paths = append(paths, networkingv1.HTTPIngressPath{
			Path: "/" + strings.Repeat("p", i), PathType: &prefix,
			Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: svc, Port: networkingv1.ServiceBackendPort{Number: 80}}},
		})
	}
	return &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: map[string]string{"nginx.ingress.kubernetes.io/proxy-body-size": "8m"}},
		Spec: networkingv1.IngressSpec{IngressClassName: ptr.To("nginx"), Rules: []networkingv1.IngressRule{{
			Host: "shop.example.com", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: paths}},
		}}},
	}
}

func canaryFor(t *testing.T, cl client.Client, ns, ing string) *v1alpha1.Canary {
	t.Helper()
	c := &v1alpha1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns, Labels: map[string]string{"sluice.dev/instance": "none"}},
		Spec: v1alpha1.CanarySpec{TargetRef: v1alpha1.TargetRef{Name: "web"}, Service: v1alpha1.ServiceSpec{Port: 80},
			Router:   v1alpha1.RouterSpec{NGINX: &v1alpha1.NGINXRouter{Ingress: ing}},
			Strategy: v1alpha1.Strategy{Steps: []v1alpha1.Step{{SetWeight: ptr.To(int32(10))}}}},
	}
	if err := cl.Create(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCheckNamesTheIngressProblem(t *testing.T) {
	env := testenv.Get(t)
	cl, ns := env.SluiceClient(t), env.Namespace(t)
	r := &nginx.Router{Client: cl, Scheme: cl.Scheme(), Apex: "web"}
	c := canaryFor(t, cl, ns, "front")
	reason, msg, err := r.Check(t.Context(), c)
	if err != nil || reason != v1alpha1.ReasonIngressNotFound || !strings.Contains(msg, "spec.router.nginx.ingress") {
		t.Fatalf("Check without the Ingress = %q, %q, %v; want IngressNotFound naming the field", reason, msg, err)
	}
	if err := cl.Create(t.Context(), ingress(ns, "front", "other")); err != nil {
		t.Fatal(err)
	}
	reason, msg, err = r.Check(t.Context(), c)
	if err != nil || reason != v1alpha1.ReasonIngressBackendMismatch || !strings.Contains(msg, `"web"`) {
		t.Fatalf("Check with an Ingress to another Service = %q, %q, %v; want IngressBackendMismatch naming the apex", reason, msg, err)
	}
}

// The canary Ingress copies the user's rules with only the apex backend
// changed to the canary Service, carries the weight and the header route,
// is written only when it changes, reads back what it carries, and goes on
// release; the user's Ingress is never written.
func TestCanaryIngressFollowsTheSplit(t *testing.T) {
	env := testenv.Get(t)
	cl, ns := env.SluiceClient(t), env.Namespace(t)
	ctx := t.Context()
	user := ingress(ns, "front", "web", "other")
	if err := cl.Create(ctx, user); err != nil {
		t.Fatal(err)
	}
	before := *user.DeepCopy()
	r := &nginx.Router{Client: cl, Scheme: cl.Scheme(), Apex: "web", Labels: map[string]string{"sluice.dev/canary": "web"}}
	c := canaryFor(t, cl, ns, "front")
	if reason, msg, err := r.Check(ctx, c); err != nil || reason != "" {
		t.Fatalf("Check = %q, %q, %v; want nothing", reason, msg, err)
	}

	yes := "yes"
	split := router.Split{CanaryWeight: 30, HeaderRoute: &v1alpha1.HeaderRoute{Match: []v1alpha1.HeaderMatch{{Name: "X-Canary", Exact: &yes}}}}
	if err := r.Apply(ctx, c, split); err != nil {
		t.Fatal(err)
	}
	var got networkingv1.Ingress
	if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: "front-canary"}, &got); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{nginx.AnnotationCanary: "true", nginx.AnnotationWeight: "30", nginx.AnnotationHeader: "X-Canary", nginx.AnnotationHeaderValue: "yes"} {
		if got.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, got.Annotations[k], v)
		}
	}
	if _, ok := got.Annotations["nginx.ingress.kubernetes.io/proxy-body-size"]; ok {
		t.Error("the user's own annotations were copied: ingress-nginx takes them from the main Ingress")
	}
	paths := got.Spec.Rules[0].HTTP.Paths
	if len(paths) != 2 || paths[0].Backend.Service.Name != "web-canary" || paths[1].Backend.Service.Name != "other" ||
		ptr.Deref(got.Spec.IngressClassName, "") != "nginx" || got.Spec.Rules[0].Host != "shop.example.com" {
		t.Errorf("canary rules %+v (class %v): want the user's with web replaced by web-canary", got.Spec.Rules, got.Spec.IngressClassName)
	}
	if ref := metav1.GetControllerOf(&got); ref == nil || ref.Kind != "Canary" || ref.Name != "web" {
		t.Errorf("controller of the canary Ingress = %+v, want the Canary", ref)
	}
	route, err := r.Observe(ctx, c, split)
	if err != nil || !route.Exists || route.CanaryWeight != 30 || route.HeaderRoute != "X-Canary=yes" {
		t.Errorf("Observe = %+v, %v; want weight 30 and header route X-Canary=yes", route, err)
	}

	// The same split again writes nothing.
	rv := got.ResourceVersion
	if err := r.Apply(ctx, c, split); err != nil {
		t.Fatal(err)
	}
	if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: "front-canary"}, &got); err != nil || got.ResourceVersion != rv {
		t.Errorf("the same split rewrote the canary Ingress (resourceVersion %s, was %s; %v)", got.ResourceVersion, rv, err)
	}

	// A regex header, then back to 0 without one.
	pattern := "^(beta|canary)$"
	split = router.Split{CanaryWeight: 60, HeaderRoute: &v1alpha1.HeaderRoute{Match: []v1alpha1.HeaderMatch{{Name: "X-Group", Regex: &pattern}}}}
	if err := r.Apply(ctx, c, split); err != nil {
		t.Fatal(err)
	}
	if route, err := r.Observe(ctx, c, split); err != nil || route.CanaryWeight != 60 || route.HeaderRoute != "X-Group~"+pattern {
		t.Errorf("Observe = %+v, %v; want weight 60 and the regex header route", route, err)
	}
	// A cookie: canary-by-cookie, and no header annotation left.
	cookie := &v1alpha1.HeaderRoute{Cookie: &v1alpha1.CookieMatch{Name: "shop_canary"}}
	split = router.Split{CanaryWeight: 20, HeaderRoute: cookie}
	if err := r.Apply(ctx, c, split); err != nil {
		t.Fatal(err)
	}
	if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: "front-canary"}, &got); err != nil {
		t.Fatal(err)
	}
	if got.Annotations[nginx.AnnotationCookie] != "shop_canary" || got.Annotations[nginx.AnnotationHeader] != "" || got.Annotations[nginx.AnnotationHeaderPattern] != "" {
		t.Errorf("cookie step annotations %v", got.Annotations)
	}
	if route, err := r.Observe(ctx, c, split); err != nil || route.CanaryWeight != 20 || route.HeaderRoute != engine.HeaderRouteKey(cookie) {
		t.Errorf("Observe = %+v, %v; want weight 20 and the cookie route %q", route, err, engine.HeaderRouteKey(cookie))
	}
	if err := r.Apply(ctx, c, router.Split{}); err != nil {
		t.Fatal(err)
	}
	if route, err := r.Observe(ctx, c, router.Split{}); err != nil || !route.Exists || route.CanaryWeight != 0 || route.HeaderRoute != "" {
		t.Errorf("Observe at 0 = %+v, %v; want the canary Ingress at weight 0 without a header", route, err)
	}

	if err := r.Release(ctx, c, router.Backend{}); err != nil {
		t.Fatal(err)
	}
	if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: "front-canary"}, &got); !apierrors.IsNotFound(err) {
		t.Errorf("canary Ingress after release: %v, want gone", err)
	}
	var after networkingv1.Ingress
	if err := cl.Get(context.Background(), client.ObjectKeyFromObject(user), &after); err != nil {
		t.Fatal(err)
	}
	if after.ResourceVersion != before.ResourceVersion || !equality.Semantic.DeepEqual(after.Spec, before.Spec) || !equality.Semantic.DeepEqual(after.Annotations, before.Annotations) {
		t.Errorf("the user's Ingress was written: %+v", after)
	}
}

// The CRD admits a cookie step with nginx only alone and with the value
// always (what canary-by-cookie means), and no step without a match or a
// cookie with any router.
func TestCookieStepAdmission(t *testing.T) {
	env := testenv.Get(t)
	cl := env.SluiceClient(t)
	ns := env.Namespace(t)
	yes := "yes"
	for name, tc := range map[string]struct {
		hr v1alpha1.HeaderRoute
		ok bool
	}{
		"cookie":              {v1alpha1.HeaderRoute{Cookie: &v1alpha1.CookieMatch{Name: "c"}}, true},
		"cookie-always":       {v1alpha1.HeaderRoute{Cookie: &v1alpha1.CookieMatch{Name: "c", Value: "always"}}, true},
		"cookie-other-value":  {v1alpha1.HeaderRoute{Cookie: &v1alpha1.CookieMatch{Name: "c", Value: "beta"}}, false},
		"cookie-and-a-header": {v1alpha1.HeaderRoute{Cookie: &v1alpha1.CookieMatch{Name: "c"}, Match: []v1alpha1.HeaderMatch{{Name: "x", Exact: &yes}}}, false},
		"nothing":             {v1alpha1.HeaderRoute{}, false},
	} {
		c := &v1alpha1.Canary{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"sluice.dev/instance": "none"}},
			Spec: v1alpha1.CanarySpec{TargetRef: v1alpha1.TargetRef{Name: "web"}, Service: v1alpha1.ServiceSpec{Port: 80},
				Router:   v1alpha1.RouterSpec{NGINX: &v1alpha1.NGINXRouter{Ingress: "front"}},
				Strategy: v1alpha1.Strategy{Steps: []v1alpha1.Step{{SetHeaderRoute: &tc.hr}}}},
		}
		err := cl.Create(t.Context(), c)
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s: refused: %v", name, err)
		case !tc.ok && !apierrors.IsInvalid(err):
			t.Errorf("%s: want refused as invalid, got %v", name, err)
		}
	}
}
