package consul_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/engine"
	"github.com/sluice-dev/sluice/internal/router"
	"github.com/sluice-dev/sluice/internal/router/consul"
	"github.com/sluice-dev/sluice/internal/testenv"
)

// Against the local control plane with consul-k8s's real CRDs (v0.26.0,
// from its Go module). No consul-k8s controller runs here, so the Synced
// condition is written by the test where it matters.

func setup(t *testing.T, cr v1alpha1.ConsulRouter) (client.Client, *v1alpha1.Canary, *consul.Router) {
	t.Helper()
	env := testenv.Get(t)
	cl := env.SluiceClient(t)
	ns := env.Namespace(t)
	c := &v1alpha1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns, Labels: map[string]string{"sluice.dev/instance": "none"}},
		Spec: v1alpha1.CanarySpec{TargetRef: v1alpha1.TargetRef{Name: "web"}, Service: v1alpha1.ServiceSpec{Port: 80},
			Router:   v1alpha1.RouterSpec{Consul: &cr},
			Strategy: v1alpha1.Strategy{Steps: []v1alpha1.Step{{SetWeight: ptr(int32(10))}}}},
	}
	if err := cl.Create(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	return cl, c, &consul.Router{Client: cl, Reader: cl, Scheme: cl.Scheme(), Labels: map[string]string{"sluice.dev/canary": "web"}, Apex: "web"}
}

func ptr[T any](v T) *T { return &v }

func split(w int32, hr *v1alpha1.HeaderRoute) router.Split {
	return router.Split{CanaryWeight: w, HeaderRoute: hr, PrimaryRevision: "r1", CanaryRevision: "r2"}
}

func get(t *testing.T, cl client.Client, kind, ns, name string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(consul.GVK(kind))
	if err := cl.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
		if client.IgnoreNotFound(err) == nil {
			return nil
		}
		t.Fatal(err)
	}
	return u
}

func specJSON(u *unstructured.Unstructured) string {
	b, _ := json.Marshal(u.Object["spec"])
	return string(b)
}

func noWait() v1alpha1.ConsulRouter { return v1alpha1.ConsulRouter{WaitForSync: ptr(false)} }

// With nothing of the user's, Sluice owns all three entries: the resolver's
// subsets select the revisions, the splitter carries the weights, and a
// header step is a ServiceRouter to the canary subset; all read back, and
// all gone on release.
func TestOwnedEntries(t *testing.T) {
	cl, c, r := setup(t, noWait())
	ns := c.Namespace
	v := "insider"
	hr := &v1alpha1.HeaderRoute{Match: []v1alpha1.HeaderMatch{{Name: "x-canary", Exact: &v}}}
	if err := r.Apply(t.Context(), c, split(20, hr)); err != nil {
		t.Fatal(err)
	}
	if got := specJSON(get(t, cl, consul.Resolver, ns, "web")); got != `{"defaultSubset":"stable","subsets":{"canary":{"filter":"Service.Meta.version == \"r2\"","onlyPassing":true},"stable":{"filter":"Service.Meta.version == \"r1\"","onlyPassing":true}}}` {
		t.Errorf("resolver %s", got)
	}
	if got := specJSON(get(t, cl, consul.Splitter, ns, "web")); got != `{"splits":[{"serviceSubset":"stable","weight":80},{"serviceSubset":"canary","weight":20}]}` {
		t.Errorf("splitter %s", got)
	}
	if got := specJSON(get(t, cl, consul.Routes, ns, "web")); got != `{"routes":[{"destination":{"service":"web","serviceSubset":"canary"},"match":{"http":{"header":[{"exact":"insider","name":"x-canary"}]}}}]}` {
		t.Errorf("router %s", got)
	}
	obs, err := r.Observe(t.Context(), c, split(20, nil))
	if err != nil || obs.CanaryWeight != 20 || obs.HeaderRoute != engine.HeaderRouteKey(hr) || obs.Pending != "" {
		t.Fatalf("observe: %+v %v", obs, err)
	}
	// Unchanged: no write.
	rv := get(t, cl, consul.Splitter, ns, "web").GetResourceVersion()
	if err := r.Apply(t.Context(), c, split(20, hr)); err != nil {
		t.Fatal(err)
	}
	if get(t, cl, consul.Splitter, ns, "web").GetResourceVersion() != rv {
		t.Error("an unchanged split was written again")
	}
	// The subsets follow the revisions: read back as pending until written.
	moved := split(20, hr)
	moved.PrimaryRevision = "r2"
	if obs, _ := r.Observe(t.Context(), c, moved); !strings.Contains(obs.Pending, "subset stable filters") {
		t.Errorf("a resolver behind the revisions is not pending: %+v", obs)
	}
	if err := r.Apply(t.Context(), c, split(0, nil)); err != nil {
		t.Fatal(err)
	}
	if get(t, cl, consul.Routes, ns, "web") != nil {
		t.Error("the ServiceRouter outlives the header step")
	}
	if err := r.Release(t.Context(), c, router.Backend{}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{consul.Resolver, consul.Splitter} {
		if get(t, cl, k, ns, "web") != nil {
			t.Errorf("%s survives the release", k)
		}
	}
}

// A resolver of the user's: Sluice changes only its two subsets' filters,
// and every other subset and field stays as written; it is never owned
// nor deleted.
func TestUserResolverKeepsEverythingElse(t *testing.T) {
	cl, c, r := setup(t, v1alpha1.ConsulRouter{WaitForSync: ptr(false), StableSubset: "blue", CanarySubset: "green", MetaKey: "build"})
	ns := c.Namespace
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(`apiVersion: consul.hashicorp.com/v1alpha1
kind: ServiceResolver
metadata: {name: web, annotations: {team: payments}}
spec:
  defaultSubset: blue
  connectTimeout: 5s
  subsets:
    blue: {filter: 'Service.Meta.build == "old"', onlyPassing: false}
    green: {filter: 'Service.Meta.build == "older"'}
    legacy: {filter: 'Service.Meta.build == "v0"', onlyPassing: true}
`), &u.Object); err != nil {
		t.Fatal(err)
	}
	u.SetNamespace(ns)
	if err := cl.Create(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	if err := r.Apply(t.Context(), c, split(30, nil)); err != nil {
		t.Fatal(err)
	}
	got := get(t, cl, consul.Resolver, ns, "web")
	if s := specJSON(got); s != `{"connectTimeout":"5s","defaultSubset":"blue","subsets":{"blue":{"filter":"Service.Meta.build == \"r1\"","onlyPassing":false},"green":{"filter":"Service.Meta.build == \"r2\""},"legacy":{"filter":"Service.Meta.build == \"v0\"","onlyPassing":true}}}` {
		t.Errorf("user resolver after apply: %s", s)
	}
	if len(got.GetOwnerReferences()) != 0 || got.GetAnnotations()["team"] != "payments" {
		t.Errorf("metadata changed: owners %v annotations %v", got.GetOwnerReferences(), got.GetAnnotations())
	}
	if s := specJSON(get(t, cl, consul.Splitter, ns, "web")); s != `{"splits":[{"serviceSubset":"blue","weight":70},{"serviceSubset":"green","weight":30}]}` {
		t.Errorf("splitter %s", s)
	}
	if err := r.Release(t.Context(), c, router.Backend{}); err != nil {
		t.Fatal(err)
	}
	if get(t, cl, consul.Resolver, ns, "web") == nil {
		t.Error("the user's resolver was deleted")
	}
}

// A splitter of the user's that splits to anything besides Sluice's two
// subsets is reported by Check, and Apply leaves it exactly as it was.
func TestForeignSplitterIsReported(t *testing.T) {
	cl, c, r := setup(t, noWait())
	ns := c.Namespace
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(`apiVersion: consul.hashicorp.com/v1alpha1
kind: ServiceSplitter
metadata: {name: web}
spec:
  splits:
  - {weight: 90, serviceSubset: stable}
  - {weight: 10, service: web-v2}
`), &u.Object); err != nil {
		t.Fatal(err)
	}
	u.SetNamespace(ns)
	if err := cl.Create(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	before := specJSON(get(t, cl, consul.Splitter, ns, "web"))
	reason, msg, err := r.Check(t.Context(), c)
	if err != nil || reason != "SplitterNotOwned" || !strings.Contains(msg, "splits to web-v2/(default subset)") {
		t.Fatalf("check: %q %q %v", reason, msg, err)
	}
	if err := r.Apply(t.Context(), c, split(20, nil)); err == nil || !strings.Contains(err.Error(), "not overwritten") {
		t.Errorf("apply over a foreign splitter: %v", err)
	}
	if after := specJSON(get(t, cl, consul.Splitter, ns, "web")); after != before {
		t.Errorf("the user's splitter changed: %s, was %s", after, before)
	}
}

// With waitForSync, a route counts as carried only once every entry is
// Synced no earlier than Sluice's last write to it.
func TestWaitsForSynced(t *testing.T) {
	cl, c, r := setup(t, v1alpha1.ConsulRouter{})
	ns := c.Namespace
	if err := r.Apply(t.Context(), c, split(20, nil)); err != nil {
		t.Fatal(err)
	}
	obs, err := r.Observe(t.Context(), c, split(20, nil))
	if err != nil || !strings.Contains(obs.Pending, "has not reported") || !strings.Contains(obs.Pending, "Synced") {
		t.Fatalf("before any status: %+v %v", obs, err)
	}
	setSynced := func(at time.Time) {
		t.Helper()
		for _, k := range []string{consul.Resolver, consul.Splitter} {
			u := get(t, cl, k, ns, "web")
			_ = unstructured.SetNestedSlice(u.Object, []any{map[string]any{"type": "Synced", "status": "True", "lastTransitionTime": at.UTC().Format(time.RFC3339)}}, "status", "conditions")
			_ = unstructured.SetNestedField(u.Object, at.UTC().Format(time.RFC3339), "status", "lastSyncedTime")
			if err := cl.Status().Update(t.Context(), u); err != nil {
				t.Fatal(err)
			}
		}
	}
	setSynced(time.Now().Add(-time.Minute)) // synced, but before Sluice's write
	if obs, _ := r.Observe(t.Context(), c, split(20, nil)); !strings.Contains(obs.Pending, "has not synced") {
		t.Fatalf("synced before the write: %+v", obs)
	}
	setSynced(time.Now().Add(time.Second))
	if obs, err := r.Observe(t.Context(), c, split(20, nil)); obs.Pending != "" || err != nil || obs.CanaryWeight != 20 {
		t.Fatalf("synced after the write: %+v %v", obs, err)
	}
}

// target creates the Canary's Deployment with these pod-template
// annotations.
func target(t *testing.T, cl client.Client, ns, name string, annotations map[string]string) {
	t.Helper()
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: annotations},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/app:1"}}},
			},
		},
	}
	if err := cl.Create(t.Context(), d); err != nil {
		t.Fatal(err)
	}
}

// The target's pods must register as the Consul service Sluice splits:
// consul-k8s names a pod's service after its connect-service annotation,
// else after each Kubernetes Service selecting it (the canary's pods would
// be "web-canary"). Check refuses a target without it, or naming another
// service or several, with the field and the fix; a target that is
// missing is the engine's to report.
func TestTargetMustJoinTheConsulService(t *testing.T) {
	const annotation = "consul.hashicorp.com/connect-service"
	cases := []struct {
		name        string
		router      v1alpha1.ConsulRouter
		annotations map[string]string // nil: no target at all
		want        []string          // words of the refusal; none: accepted
	}{
		{"no target", noWait(), nil, nil},
		{"named", noWait(), map[string]string{annotation: "web"}, nil},
		{"named as serviceName", v1alpha1.ConsulRouter{ServiceName: "shop"}, map[string]string{annotation: "shop"}, nil},
		{"missing", noWait(), map[string]string{"consul.hashicorp.com/connect-inject": "true"},
			[]string{`deployment %s/web: spec.template.metadata.annotations["consul.hashicorp.com/connect-service"] is not set`,
				`"web-canary"`, `Consul service "web" (spec.router.consul.serviceName)`, `set it to "web"`}},
		{"another service", v1alpha1.ConsulRouter{ServiceName: "shop"}, map[string]string{annotation: "web"},
			[]string{`spec.template.metadata.annotations["consul.hashicorp.com/connect-service"] is "web"`,
				`Consul service "shop" (spec.router.consul.serviceName)`, `set it to "shop"`, `spec.router.consul.serviceName to "web"`}},
		{"several services", noWait(), map[string]string{annotation: "web,web-admin"},
			[]string{`is "web,web-admin"`, "several", `set it to "web"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cl, c, r := setup(t, tc.router)
			if tc.annotations != nil {
				target(t, cl, c.Namespace, "web", tc.annotations)
			}
			reason, msg, err := r.Check(t.Context(), c)
			if err != nil {
				t.Fatal(err)
			}
			if len(tc.want) == 0 {
				if reason != "" || msg != "" {
					t.Errorf("refused: %s: %s", reason, msg)
				}
				return
			}
			if reason != "ConnectServiceMismatch" {
				t.Errorf("reason %q (%s), want ConnectServiceMismatch", reason, msg)
			}
			for _, w := range tc.want {
				if strings.Contains(w, "%s") {
					w = fmt.Sprintf(w, c.Namespace)
				}
				if !strings.Contains(msg, w) {
					t.Errorf("message %q does not say %q", msg, w)
				}
			}
		})
	}
}
