package controller_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/testenv"
)

// A revision whose pods never become Ready gets no traffic, and the
// progress deadline rolls it back.
func TestUnreadyCanaryGetsNoTrafficAndFailsAtDeadline(t *testing.T) {
	_, ns, cl := setup(t)
	cv := canary(ns, "bad", weightStep(20), weightStep(60))
	cv.Spec.ProgressDeadline = &metav1.Duration{Duration: 5 * time.Second}
	create(t, cl, app(ns, "bad", "example.com/bad:1", 2), cv)
	waitPhase(t, cl, ns, "bad", v1alpha1.PhaseInitialized, 60*time.Second)

	m := monitor(t, cl, ns, "bad")
	d, err := deployment(t.Context(), cl, ns, "bad")
	if err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(d.DeepCopy())
	d.Spec.Template.Annotations = map[string]string{testenv.NeverReadyAnnotation: "true"}
	d.Spec.Template.Spec.Containers[0].Image = "example.com/bad:2"
	if err := cl.Patch(t.Context(), d, patch); err != nil {
		t.Fatal(err)
	}
	c := waitPhase(t, cl, ns, "bad", v1alpha1.PhaseFailed, 60*time.Second)
	shares, violations := m.result()
	if c.Status.Reason != "ProgressDeadlineExceeded" || !strings.Contains(c.Status.Message, "canary 0/2 available") {
		t.Errorf("failure reason %s: %s", c.Status.Reason, c.Status.Message)
	}
	for _, s := range shares {
		if s != 0 {
			t.Errorf("a never-ready canary got %d%% of traffic (shares %v)", s, shares)
		}
	}
	if len(violations) > 0 {
		t.Errorf("violations: %v", violations)
	}
	expectTargetReplicas(t, cl, ns, "bad", 0)
}

// Taking over a Deployment that already serves through its own Service
// never leaves that Service without a Ready endpoint.
func TestTakeoverKeepsTheServiceServing(t *testing.T) {
	_, ns, cl := setup(t)
	create(t, cl, app(ns, "live", "example.com/live:1", 2), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "live", Namespace: ns},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "live"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	})
	testenv.Eventually(t, 30*time.Second, "user Service has endpoints", func(ctx context.Context) error {
		if n, err := readyEndpointsOf(ctx, cl, ns, "live"); err != nil || n != 2 {
			return fmt.Errorf("%d ready endpoints (%v)", n, err)
		}
		return nil
	})

	empty := countWhile(t, func(ctx context.Context) bool {
		n, err := readyEndpointsOf(ctx, cl, ns, "live")
		return err == nil && n == 0
	})
	create(t, cl, canary(ns, "live", weightStep(50)))
	waitPhase(t, cl, ns, "live", v1alpha1.PhaseInitialized, 60*time.Second)
	expectTargetReplicas(t, cl, ns, "live", 0)
	testenv.Eventually(t, 30*time.Second, "Service serves the primary pods", func(ctx context.Context) error {
		var svc corev1.Service
		if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: "live"}, &svc); err != nil {
			return err
		}
		n, err := readyEndpointsOf(ctx, cl, ns, "live")
		if err != nil || svc.Spec.Selector["app"] != "live-primary" || n != 2 {
			return fmt.Errorf("selector %v, %d ready endpoints (%v)", svc.Spec.Selector, n, err)
		}
		return nil
	})
	if n := empty(); n > 0 {
		t.Errorf("the Service had no Ready endpoint in %d samples during the takeover", n)
	}
}

// A change of a ConfigMap the target references is a new revision.
func TestConfigMapChangeIsANewRevision(t *testing.T) {
	_, ns, cl := setup(t)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: ns}, Data: map[string]string{"greeting": "hello"}}
	d := app(ns, "cfg", "example.com/cfg:1", 1)
	d.Spec.Template.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}}}
	create(t, cl, cm, d, canary(ns, "cfg", weightStep(50)))
	before := waitPhase(t, cl, ns, "cfg", v1alpha1.PhaseInitialized, 60*time.Second).Status.StableRevision

	patch := client.MergeFrom(cm.DeepCopy())
	cm.Data["greeting"] = "bonjour"
	if err := cl.Patch(t.Context(), cm, patch); err != nil {
		t.Fatal(err)
	}
	after := waitPhase(t, cl, ns, "cfg", v1alpha1.PhaseSucceeded, 60*time.Second).Status.StableRevision
	if after == before || after == "" {
		t.Errorf("revision %q -> %q: a ConfigMap change must release a new revision", before, after)
	}
}

// Invalid specs are refused by the apiserver, with the field and the fix
// in the message.
func TestInvalidCanariesAreRejected(t *testing.T) {
	_, ns, cl := setup(t)
	cases := []struct {
		name   string
		mutate func(*v1alpha1.Canary)
		want   []string
	}{
		{"two routers", func(c *v1alpha1.Canary) { c.Spec.Router.NGINX = &v1alpha1.NGINXRouter{Ingress: "web"} },
			[]string{"spec.router", "at most one router", "consul"}},
		{"header step without a router", func(c *v1alpha1.Canary) {
			c.Spec.Router = v1alpha1.RouterSpec{}
			c.Spec.Strategy.Steps = []v1alpha1.Step{{SetHeaderRoute: &v1alpha1.HeaderRoute{Cookie: &v1alpha1.CookieMatch{Name: "beta"}}}}
		}, []string{"spec.strategy.steps[]", "need a router"}},
		{"blue/green with steps", func(c *v1alpha1.Canary) {
			c.Spec.Strategy.BlueGreen = &v1alpha1.BlueGreen{}
		}, []string{"spec.strategy.blueGreen", "excludes steps"}},
		{"preview Service is the canary Service", func(c *v1alpha1.Canary) {
			c.Spec.Strategy = v1alpha1.Strategy{BlueGreen: &v1alpha1.BlueGreen{PreviewService: c.Spec.GetServiceName() + "-canary"}}
		}, []string{"previewService", "must differ"}},
		{"weights decrease", func(c *v1alpha1.Canary) {
			c.Spec.Strategy.Steps = []v1alpha1.Step{weightStep(50), weightStep(20)}
		}, []string{"spec.strategy.steps", "must increase"}},
		{"weight above 100", func(c *v1alpha1.Canary) {
			c.Spec.Strategy.Steps = []v1alpha1.Step{weightStep(120)}
		}, []string{"spec.strategy.steps[0].setWeight", "100"}},
		{"two actions in a step", func(c *v1alpha1.Canary) {
			s := weightStep(10)
			s.Pause = &v1alpha1.PauseStep{}
			c.Spec.Strategy.Steps = []v1alpha1.Step{s}
		}, []string{"spec.strategy.steps[0]", "exactly one action"}},
		{"no steps", func(c *v1alpha1.Canary) { c.Spec.Strategy = v1alpha1.Strategy{} },
			[]string{"spec.strategy", "give steps"}},
		{"steps and shorthand", func(c *v1alpha1.Canary) { c.Spec.Strategy.StepWeight = ptr.To(int32(10)) },
			[]string{"spec.strategy", "not both"}},
		{"shorthand without interval", func(c *v1alpha1.Canary) {
			c.Spec.Strategy = v1alpha1.Strategy{StepWeight: ptr.To(int32(10))}
		}, []string{"spec.strategy.interval is required"}},
		{"service backend without port", func(c *v1alpha1.Canary) {
			c.Spec.Service.BackendRefs = &v1alpha1.PhaseBackendRefs{Canary: []v1alpha1.BackendRef{{Name: "proxy"}}}
		}, []string{"spec.service.backendRefs.canary[0]", "port is required"}},
		{"a phase whose backends all weigh 0", func(c *v1alpha1.Canary) {
			c.Spec.Service.BackendRefs = &v1alpha1.PhaseBackendRefs{Canary: []v1alpha1.BackendRef{
				{Name: "a", Port: ptr.To(int32(80)), Weight: ptr.To(int32(0))}}}
		}, []string{"spec.service.backendRefs.canary", "weight above 0"}},
		{"stepWeight above maxWeight", func(c *v1alpha1.Canary) {
			c.Spec.Strategy = v1alpha1.Strategy{StepWeight: ptr.To(int32(60)), Interval: &metav1.Duration{Duration: time.Minute}}
		}, []string{"spec.strategy.stepWeight must not exceed maxWeight"}},
		{"a mesh route whose parent is its own backend", func(c *v1alpha1.Canary) {
			c.Spec.Router.GatewayAPI.ParentRefs = []gwv1.ParentReference{{Group: ptr.To(gwv1.Group("")), Kind: ptr.To(gwv1.Kind("Service")), Name: gwv1.ObjectName(c.Name + "-canary")}}
		}, []string{"spec.router.gatewayAPI.parentRefs", "must not be the -primary or -canary Service", "apex Service"}},
		{"nginx with a mirror step", func(c *v1alpha1.Canary) {
			c.Spec.Router = v1alpha1.RouterSpec{NGINX: &v1alpha1.NGINXRouter{Ingress: "front"}}
			c.Spec.Strategy.Steps = []v1alpha1.Step{{SetMirror: &v1alpha1.MirrorStep{Percent: 10}}}
		}, []string{"spec.strategy.steps[].setMirror", "ingress-nginx", "cannot mirror"}},
		{"nginx with two header matches", func(c *v1alpha1.Canary) {
			v := "a"
			c.Spec.Router = v1alpha1.RouterSpec{NGINX: &v1alpha1.NGINXRouter{Ingress: "front"}}
			c.Spec.Strategy.Steps = []v1alpha1.Step{{SetHeaderRoute: &v1alpha1.HeaderRoute{Match: []v1alpha1.HeaderMatch{{Name: "X-A", Exact: &v}, {Name: "X-B", Exact: &v}}}}}
		}, []string{"spec.strategy.steps[].setHeaderRoute", "one header"}},
		{"a compared metric without a template", func(c *v1alpha1.Canary) {
			c.Spec.Analysis = &v1alpha1.Analysis{Metrics: []v1alpha1.MetricCheck{{Name: "request-duration", Compare: &v1alpha1.Comparison{}}}}
		}, []string{"spec.analysis.metrics[0]", "compare needs a templateRef"}},
		{"a compared metric with a threshold too", func(c *v1alpha1.Canary) {
			c.Spec.Analysis = &v1alpha1.Analysis{Metrics: []v1alpha1.MetricCheck{{Name: "p99", TemplateRef: &v1alpha1.TemplateRef{Name: "p99"},
				Compare: &v1alpha1.Comparison{Direction: "Increase"}, ThresholdRange: &v1alpha1.ThresholdRange{Max: ptr.To(500.0)}}}}
		}, []string{"spec.analysis.metrics[0]", "compare judges against the primary; drop thresholdRange"}},
		{"a metric named judge", func(c *v1alpha1.Canary) {
			c.Spec.Analysis = &v1alpha1.Analysis{Metrics: []v1alpha1.MetricCheck{{Name: "judge", TemplateRef: &v1alpha1.TemplateRef{Name: "t"}, SuccessCondition: "result > 1"}}}
		}, []string{"spec.analysis.metrics[0]", "judge is the statistical judge's"}},
		{"a marginal score above the pass score", func(c *v1alpha1.Canary) {
			c.Spec.Analysis = &v1alpha1.Analysis{Judge: &v1alpha1.Judge{MarginalScore: ptr.To(int32(98))}}
		}, []string{"spec.analysis.judge", "marginalScore must not be above passScore"}},
		{"an unknown direction", func(c *v1alpha1.Canary) {
			c.Spec.Analysis = &v1alpha1.Analysis{Metrics: []v1alpha1.MetricCheck{{Name: "p99", TemplateRef: &v1alpha1.TemplateRef{Name: "p99"}, Compare: &v1alpha1.Comparison{Direction: "Up"}}}}
		}, []string{"spec.analysis.metrics[0].compare.direction", "Increase"}},
		{"bad port", func(c *v1alpha1.Canary) { c.Spec.Service.Port = 70000 },
			[]string{"spec.service.port", "65535"}},
		{"a header match with both exact and regex", func(c *v1alpha1.Canary) {
			v := "a"
			c.Spec.Strategy.Steps = []v1alpha1.Step{{SetHeaderRoute: &v1alpha1.HeaderRoute{Match: []v1alpha1.HeaderMatch{{Name: "X-A", Exact: &v, Regex: &v}}}}}
		}, []string{"spec.strategy.steps[0].setHeaderRoute.match[0]", "exactly one of exact or regex"}},
		{"an empty exact header value", func(c *v1alpha1.Canary) {
			v := ""
			c.Spec.Strategy.Steps = []v1alpha1.Step{{SetHeaderRoute: &v1alpha1.HeaderRoute{Match: []v1alpha1.HeaderMatch{{Name: "X-A", Exact: &v}}}}}
		}, []string{"spec.strategy.steps[0].setHeaderRoute.match[0].exact", "at least 1"}},
		{"a header regex that does not compile", func(c *v1alpha1.Canary) {
			v := "(beta|canary"
			c.Spec.Strategy.Steps = []v1alpha1.Step{weightStep(10), {SetHeaderRoute: &v1alpha1.HeaderRoute{Match: []v1alpha1.HeaderMatch{{Name: "X-A", Exact: &v}, {Name: "X-B", Regex: &v}}}}}
		}, []string{"spec.strategy.steps[1].setHeaderRoute.match[1].regex", "missing closing )", "RE2"}},
		{"a header regex with a Perl-only construct", func(c *v1alpha1.Canary) {
			v := "(?!beta).*"
			c.Spec.Strategy.Steps = []v1alpha1.Step{{SetHeaderRoute: &v1alpha1.HeaderRoute{Match: []v1alpha1.HeaderMatch{{Name: "X-A", Regex: &v}}}}}
		}, []string{"spec.strategy.steps[0].setHeaderRoute.match[0].regex", "invalid or unsupported Perl syntax"}},
		{"a header regex with a named group older parsers refuse", func(c *v1alpha1.Canary) {
			v := "(?<os>ios|android)-[0-9]+"
			c.Spec.Strategy.Steps = []v1alpha1.Step{{SetHeaderRoute: &v1alpha1.HeaderRoute{Match: []v1alpha1.HeaderMatch{{Name: "X-A", Regex: &v}}}}}
		}, []string{"spec.strategy.steps[0].setHeaderRoute.match[0].regex", "(?<name>re) is refused", "(?P<name>re)"}},
		{"a mirror step with the Traefik router in IngressRoute mode", func(c *v1alpha1.Canary) {
			c.Spec.Router = v1alpha1.RouterSpec{Traefik: &v1alpha1.TraefikRouter{IngressRoute: &v1alpha1.TraefikIngressRouteRef{Name: "shop"}}}
			c.Spec.Strategy.Steps = []v1alpha1.Step{{SetMirror: &v1alpha1.MirrorStep{Percent: 10}}}
		}, []string{"spec.strategy.steps[].setMirror", "TraefikService mode", "remove spec.router.traefik.ingressRoute"}},
		{"a mirror step and a weight in one step", func(c *v1alpha1.Canary) {
			s := weightStep(10)
			s.SetMirror = &v1alpha1.MirrorStep{Percent: 10}
			c.Spec.Strategy.Steps = []v1alpha1.Step{s}
		}, []string{"spec.strategy.steps[0]", "setWeight, pause, setHeaderRoute or setMirror"}},
		{"a mirror step with the Consul router", func(c *v1alpha1.Canary) {
			c.Spec.Router = v1alpha1.RouterSpec{Consul: &v1alpha1.ConsulRouter{}}
			c.Spec.Strategy.Steps = []v1alpha1.Step{{SetMirror: &v1alpha1.MirrorStep{Percent: 10}}}
		}, []string{"spec.strategy.steps[].setMirror", "Consul", "cannot mirror"}},
		{"the same Consul subset twice", func(c *v1alpha1.Canary) {
			c.Spec.Router = v1alpha1.RouterSpec{Consul: &v1alpha1.ConsulRouter{StableSubset: "v", CanarySubset: "v"}}
		}, []string{"spec.router.consul", "must differ"}},
		{"a canary middleware without a name", func(c *v1alpha1.Canary) {
			c.Spec.Router = v1alpha1.RouterSpec{Traefik: &v1alpha1.TraefikRouter{CanaryMiddlewares: []v1alpha1.TraefikMiddlewareRef{{}}}}
		}, []string{"spec.router.traefik.canaryMiddlewares[0].name"}},
		{"webhook URL without a scheme", func(c *v1alpha1.Canary) {
			c.Spec.Analysis = &v1alpha1.Analysis{Webhooks: []v1alpha1.Webhook{{Name: "gate", Type: v1alpha1.WebhookConfirmRollout, URL: "gates.example.com/ok"}}}
		}, []string{"spec.analysis.webhooks[0]", "absolute http:// or https:// URL"}},
		{"webhook of an unknown type", func(c *v1alpha1.Canary) {
			c.Spec.Analysis = &v1alpha1.Analysis{Webhooks: []v1alpha1.Webhook{{Name: "gate", Type: "confirm", URL: "http://gates/ok"}}}
		}, []string{"spec.analysis.webhooks[0].type", "confirm-rollout"}},
		{"webhook named like a metric", func(c *v1alpha1.Canary) {
			c.Spec.Analysis = &v1alpha1.Analysis{
				Metrics:  []v1alpha1.MetricCheck{{Name: "request-success-rate", ThresholdRange: &v1alpha1.ThresholdRange{Min: ptr.To(99.0)}}},
				Webhooks: []v1alpha1.Webhook{{Name: "request-success-rate", URL: "http://checks/ok"}},
			}
		}, []string{"spec.analysis", "unique across metrics and webhooks"}},
		{"too many webhook retries", func(c *v1alpha1.Canary) {
			c.Spec.Analysis = &v1alpha1.Analysis{Webhooks: []v1alpha1.Webhook{{Name: "gate", URL: "http://gates/ok", Retries: ptr.To(int32(50))}}}
		}, []string{"spec.analysis.webhooks[0].retries", "10"}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := canary(ns, fmt.Sprintf("bad-%d", i), weightStep(10))
			tc.mutate(c)
			err := cl.Create(t.Context(), c)
			if !apierrors.IsInvalid(err) {
				t.Fatalf("want Invalid from the apiserver, got %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
	// Durations are checked too; typed clients cannot send a bad one, so
	// send raw JSON.
	raw := fmt.Sprintf(`{"apiVersion":"sluice.dev/v1alpha1","kind":"Canary","metadata":{"name":"bad-duration","namespace":%q},
	"spec":{"targetRef":{"name":"x"},"service":{"port":80},"router":{"gatewayAPI":{"parentRefs":[{"name":"gw"}]}},
	"strategy":{"steps":[{"pause":{"duration":"ten minutes"}}]}}}`, ns)
	err := cl.Create(t.Context(), rawCanary(t, raw))
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.strategy.steps[0].pause.duration") {
		t.Errorf("bad duration: want Invalid naming the field, got %v", err)
	}
}

// Deleting a Canary hands its traffic back: the Deployment is scaled up and
// available before the apex Service and the route move to it, and both
// outlive the Canary; the Service never loses its last Ready endpoint.
func TestDeletingACanaryHandsTrafficBack(t *testing.T) {
	_, ns, cl := setup(t)
	create(t, cl, app(ns, "bye", "example.com/bye:1", 2), canary(ns, "bye", weightStep(50)))
	waitPhase(t, cl, ns, "bye", v1alpha1.PhaseInitialized, 60*time.Second)
	expectTargetReplicas(t, cl, ns, "bye", 0)
	testenv.Eventually(t, 20*time.Second, "apex endpoints", func(ctx context.Context) error {
		if n, err := readyEndpointsOf(ctx, cl, ns, "bye"); err != nil || n != 2 {
			return fmt.Errorf("%d (%v)", n, err)
		}
		return nil
	})

	empty := countWhile(t, func(ctx context.Context) bool {
		n, err := readyEndpointsOf(ctx, cl, ns, "bye")
		return err == nil && n == 0
	})
	c, err := getCanary(t.Context(), cl, ns, "bye")
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Delete(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, "canary gone, primary collected", func(ctx context.Context) error {
		if _, err := getCanary(ctx, cl, ns, "bye"); !apierrors.IsNotFound(err) {
			return fmt.Errorf("canary still there (%v)", err)
		}
		if _, err := deployment(ctx, cl, ns, "bye-primary"); !apierrors.IsNotFound(err) {
			return fmt.Errorf("primary still there (%v)", err)
		}
		return nil
	})
	emptySamples := empty()

	d, err := deployment(t.Context(), cl, ns, "bye")
	if err != nil || ptr.Deref(d.Spec.Replicas, 0) != 2 || d.Status.AvailableReplicas != 2 {
		t.Errorf("deployment after deletion: %v replicas, %d available (%v)", d.Spec.Replicas, d.Status.AvailableReplicas, err)
	}
	var svc corev1.Service
	if err := cl.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "bye"}, &svc); err != nil {
		t.Fatalf("apex Service deleted with the Canary: %v", err)
	}
	if svc.Spec.Selector["app"] != "bye" || len(svc.OwnerReferences) != 0 {
		t.Errorf("apex Service not handed back: selector %v, owners %v", svc.Spec.Selector, svc.OwnerReferences)
	}
	split, err := routeSplit(t.Context(), cl, ns, "bye")
	if err != nil || fmt.Sprint(split) != "map[bye:1]" {
		t.Errorf("route after deletion: %v (%v), want everything to the apex Service", split, err)
	}
	if emptySamples > 0 {
		t.Errorf("the apex Service had no Ready endpoint in %d samples during the handover", emptySamples)
	}
}

func readyEndpointsOf(ctx context.Context, cl client.Client, ns, svc string) (int, error) {
	var slices discoveryv1.EndpointSliceList
	if err := cl.List(ctx, &slices, client.InNamespace(ns), client.MatchingLabels{discoveryv1.LabelServiceName: svc}); err != nil {
		return 0, err
	}
	n := 0
	for _, s := range slices.Items {
		for _, ep := range s.Endpoints {
			if ptr.Deref(ep.Conditions.Ready, false) {
				n++
			}
		}
	}
	return n, nil
}

// Deleting a Canary whose Deployment cannot serve (its last release failed)
// keeps the stable primary serving instead of handing traffic to broken pods.
func TestDeletingAfterAFailedReleaseKeepsThePrimary(t *testing.T) {
	_, ns, cl := setup(t)
	cv := canary(ns, "keep", weightStep(50))
	cv.Spec.ProgressDeadline = &metav1.Duration{Duration: 3 * time.Second}
	create(t, cl, app(ns, "keep", "example.com/keep:1", 2), cv)
	waitPhase(t, cl, ns, "keep", v1alpha1.PhaseInitialized, 60*time.Second)
	d, err := deployment(t.Context(), cl, ns, "keep")
	if err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(d.DeepCopy())
	d.Spec.Template.Annotations = map[string]string{testenv.NeverReadyAnnotation: "true"}
	if err := cl.Patch(t.Context(), d, patch); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, cl, ns, "keep", v1alpha1.PhaseFailed, 60*time.Second)

	c, _ := getCanary(t.Context(), cl, ns, "keep")
	if err := cl.Delete(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	// The -primary and -canary Services are owned by the Canary: once they
	// are gone, the garbage collector has acted on the Canary's dependents.
	// A primary still there then with no owner is out of its reach.
	testenv.Eventually(t, 60*time.Second, "canary gone, its owned Services collected", func(ctx context.Context) error {
		if _, err := getCanary(ctx, cl, ns, "keep"); !apierrors.IsNotFound(err) {
			return fmt.Errorf("canary still there (%v)", err)
		}
		for _, name := range []string{"keep-primary", "keep-canary"} {
			var svc corev1.Service
			if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &svc); !apierrors.IsNotFound(err) {
				return fmt.Errorf("service %s still there (%v)", name, err)
			}
		}
		return nil
	})
	primary, err := deployment(t.Context(), cl, ns, "keep-primary")
	if err != nil || len(primary.OwnerReferences) != 0 || primary.Status.AvailableReplicas != 2 {
		t.Fatalf("primary not kept serving: %v", err)
	}
	var svc corev1.Service
	if err := cl.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "keep"}, &svc); err != nil || svc.Spec.Selector["app"] != "keep-primary" {
		t.Fatalf("apex Service should keep selecting the primary: %v %v", svc.Spec.Selector, err)
	}
	if n, err := readyEndpointsOf(t.Context(), cl, ns, "keep"); err != nil || n != 2 {
		t.Errorf("apex Service has %d ready endpoints (%v), want 2", n, err)
	}
}

// Deleting a Canary whose Deployment runs a revision that is not the last
// good one keeps the primary serving, even though the Deployment's pods
// are Ready; only spec.handBackOnDeletion: Target hands them the traffic
// (issue 21, item 4: an aborted revision, or one deleted mid-release at
// 50%, used to get all the traffic and the primary was deleted).
func TestDeletingKeepsTheLastGoodRevisionServing(t *testing.T) {
	_, ns, cl := setup(t)
	cases := []struct {
		name     string
		handBack v1alpha1.HandBack
		abort    bool
		serving  string // the apex Service's selector after deletion
		event    string
	}{
		{name: "aborted", abort: true, serving: "aborted-primary", event: "PrimaryKept"},
		{name: "midway", serving: "midway-primary", event: "PrimaryKept"},
		{name: "optin", handBack: v1alpha1.HandBackTarget, serving: "optin", event: "HandedBack"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cv := canary(ns, tc.name, weightStep(50), untilPromoted())
			cv.Spec.HandBackOnDeletion = tc.handBack
			create(t, cl, app(ns, tc.name, "example.com/"+tc.name+":1", 2), cv)
			releaseToPausedStep(t, cl, ns, tc.name)
			if tc.abort {
				request(t, cl, ns, tc.name, v1alpha1.RequestAbort)
				waitPhase(t, cl, ns, tc.name, v1alpha1.PhaseFailed, 30*time.Second)
				expectShare(t, cl, ns, tc.name, 0)
			}
			c, err := getCanary(t.Context(), cl, ns, tc.name)
			if err != nil {
				t.Fatal(err)
			}
			if err := cl.Delete(t.Context(), c); err != nil {
				t.Fatal(err)
			}
			testenv.Eventually(t, 60*time.Second, "canary gone, the serving copy Ready behind the apex Service", func(ctx context.Context) error {
				if _, err := getCanary(ctx, cl, ns, tc.name); !apierrors.IsNotFound(err) {
					return fmt.Errorf("canary still there (%v)", err)
				}
				var svc corev1.Service
				if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: tc.name}, &svc); err != nil {
					return err
				}
				if svc.Spec.Selector["app"] != tc.serving || len(svc.OwnerReferences) != 0 {
					return fmt.Errorf("apex Service selects %v, owners %v", svc.Spec.Selector, svc.OwnerReferences)
				}
				if n, err := readyEndpointsOf(ctx, cl, ns, tc.name); err != nil || n != 2 {
					return fmt.Errorf("apex Service has %d Ready endpoints (%v)", n, err)
				}
				split, err := routeSplit(ctx, cl, ns, tc.name)
				if err != nil || fmt.Sprint(split) != fmt.Sprintf("map[%s:1]", tc.name) {
					return fmt.Errorf("route %v (%v), want everything to the apex Service", split, err)
				}
				return nil
			})
			assertEvents(t, cl, ns, tc.name, tc.event)
			primary, err := deployment(t.Context(), cl, ns, tc.name+"-primary")
			if tc.serving == tc.name {
				return
			}
			if err != nil || len(primary.OwnerReferences) != 0 || primary.Spec.Template.Spec.Containers[0].Image != "example.com/"+tc.name+":1" {
				t.Errorf("primary not kept at the last good revision: %v", err)
			}
		})
	}
}
