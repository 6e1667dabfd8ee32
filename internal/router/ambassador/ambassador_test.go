package ambassador_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/engine"
	"github.com/sluice-dev/sluice/internal/router"
	"github.com/sluice-dev/sluice/internal/router/ambassador"
	"github.com/sluice-dev/sluice/internal/testenv"
)

// Against the local control plane with Emissary's real CRDs (v3alpha1
// served, conversion set to None because no conversion webhook runs here).

var mappingGVK = schema.GroupVersionKind{Group: "getambassador.io", Version: "v3alpha1", Kind: "Mapping"}

func setup(t *testing.T) (client.Client, string) {
	t.Helper()
	c := testenv.Get(t)
	cl := c.SluiceClient(t)
	return cl, c.Namespace(t)
}

func mapping(t *testing.T, cl client.Client, ns, name string, spec map[string]any) {
	t.Helper()
	u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	u.SetGroupVersionKind(mappingGVK)
	u.SetNamespace(ns)
	u.SetName(name)
	if err := cl.Create(t.Context(), u); err != nil {
		t.Fatal(err)
	}
}

func getMapping(t *testing.T, cl client.Client, ns, name string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(mappingGVK)
	if err := cl.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
		return nil
	}
	return u
}

func canaryObj(t *testing.T, cl client.Client, ns string, mappings ...string) *v1alpha1.Canary {
	t.Helper()
	w := int32(10)
	c := &v1alpha1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns, Labels: map[string]string{"sluice.dev/instance": "none"}},
		Spec: v1alpha1.CanarySpec{TargetRef: v1alpha1.TargetRef{Name: "web"}, Service: v1alpha1.ServiceSpec{Port: 80},
			Router:   v1alpha1.RouterSpec{Ambassador: &v1alpha1.AmbassadorRouter{Mappings: mappings}},
			Strategy: v1alpha1.Strategy{Steps: []v1alpha1.Step{{SetWeight: &w}}}},
	}
	if err := cl.Create(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	return c
}

// For an http, an https and a namespaced service with a port, the canary
// Mapping copies the stable one with only the service name changed and
// carries the weight; at 0 it drains, then goes.
func TestCanaryMappingFollowsTheSplit(t *testing.T) {
	cl, ns := setup(t)
	cases := map[string]string{
		"plain":    "web",
		"https":    "https://web:8443",
		"namespce": "web." + ns + ".svc.cluster.local:9898",
	}
	var names []string
	for name, svc := range cases {
		mapping(t, cl, ns, name, map[string]any{"hostname": "*", "prefix": "/" + name + "/", "service": svc,
			"timeout_ms": int64(3000), "add_request_headers": map[string]any{"x-from": map[string]any{"value": "edge"}}})
		names = append(names, name)
	}
	c := canaryObj(t, cl, ns, names...)
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	r := &ambassador.Router{Client: cl, Scheme: cl.Scheme(), Mapper: cl.RESTMapper(), Apex: "web",
		Labels: map[string]string{"sluice.dev/canary": "web"}, Now: func() time.Time { return now }}
	p, cn := router.Backends(c, "web")
	split := func(w int32) router.Split { return router.Split{Primary: p, Canary: cn, CanaryWeight: w} }

	for _, w := range []int32{20, 50} {
		if err := r.Apply(t.Context(), c, split(w)); err != nil {
			t.Fatal(err)
		}
		if got, err := r.Observe(t.Context(), c, split(w)); err != nil || got.CanaryWeight != w || got.Pending != "" {
			t.Fatalf("observe at %d%%: %+v %v", w, got, err)
		}
	}
	for name, svc := range cases {
		m := getMapping(t, cl, ns, name+"-canary")
		if m == nil {
			t.Fatalf("no canary mapping for %s", name)
		}
		spec := m.Object["spec"].(map[string]any)
		want := strings.Replace(svc, "web", "web-canary", 1) // the name is the first "web" in every case here
		if spec["service"] != want || spec["weight"] != int64(50) || spec["prefix"] != "/"+name+"/" || spec["timeout_ms"] != int64(3000) ||
			fmt.Sprint(spec["add_request_headers"]) != "map[x-from:map[value:edge]]" || len(m.GetOwnerReferences()) != 1 {
			t.Errorf("%s: canary mapping %v", name, spec)
		}
		if stable := getMapping(t, cl, ns, name); stable.Object["spec"].(map[string]any)["service"] != svc {
			t.Errorf("%s: the stable mapping changed", name)
		}
	}
	rv := getMapping(t, cl, ns, "plain-canary").GetResourceVersion()
	if err := r.Apply(t.Context(), c, split(50)); err != nil {
		t.Fatal(err)
	}
	if getMapping(t, cl, ns, "plain-canary").GetResourceVersion() != rv {
		t.Errorf("an unchanged split was written again")
	}

	// At 0: weight 0 and pending while the proxy drains; deleted after.
	if err := r.Apply(t.Context(), c, split(0)); err != nil {
		t.Fatal(err)
	}
	got, _ := r.Observe(t.Context(), c, split(0))
	if got.CanaryWeight != 0 || !strings.Contains(got.Pending, "draining") {
		t.Errorf("at 0 before the drain: %+v", got)
	}
	now = now.Add(ambassador.DefaultDrain)
	if err := r.Apply(t.Context(), c, split(0)); err != nil {
		t.Fatal(err)
	}
	for name := range cases {
		if getMapping(t, cl, ns, name+"-canary") != nil {
			t.Errorf("%s-canary still there after the drain", name)
		}
	}
	if got, _ := r.Observe(t.Context(), c, split(0)); got.CanaryWeight != 0 || got.Pending != "" {
		t.Errorf("after the drain: %+v", got)
	}
}

// A stable Mapping that already carries a weight is refused with a reason
// naming it; so is one whose service is not the apex Service. Check
// reports each with its reason (the Canary stalls on it), and a
// withdrawal (weight 0) still takes away the copies a Mapping had before
// it became unusable.
func TestStableMappingProblemsAreReported(t *testing.T) {
	cl, ns := setup(t)
	mapping(t, cl, ns, "weighted", map[string]any{"hostname": "*", "prefix": "/w/", "service": "web", "weight": int64(30)})
	mapping(t, cl, ns, "other", map[string]any{"hostname": "*", "prefix": "/o/", "service": "https://myapp-web.shop:8443"})
	r := &ambassador.Router{Client: cl, Scheme: cl.Scheme(), Mapper: cl.RESTMapper(), Apex: "web"}
	for mappingName, want := range map[string]struct{ reason, msg string }{
		"weighted": {"MappingNotUsable", "(spec.router.ambassador.mappings[0]) already carries a weight; Sluice puts the canary's weight on weighted-canary: remove spec.weight from the stable Mapping"},
		"other":    {"MappingNotUsable", `(spec.router.ambassador.mappings[0]) spec.service: service "https://myapp-web.shop:8443" names Service "myapp-web", not the stable Service "web"; point it at web`},
		"missing":  {"MappingNotFound", "mapping " + ns + "/missing not found (spec.router.ambassador.mappings[0])"},
	} {
		c := &v1alpha1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
			Spec: v1alpha1.CanarySpec{Router: v1alpha1.RouterSpec{Ambassador: &v1alpha1.AmbassadorRouter{Mappings: []string{mappingName}}}}}
		p, cn := router.Backends(c, "web")
		err := r.Apply(t.Context(), c, router.Split{Primary: p, Canary: cn, CanaryWeight: 10})
		got, _ := r.Observe(t.Context(), c, router.Split{Primary: p, Canary: cn})
		if err == nil || !strings.Contains(err.Error(), want.msg) || !strings.Contains(got.Pending, want.msg) {
			t.Errorf("%s: apply %v, observe pending %q; want %q", mappingName, err, got.Pending, want.msg)
		}
		if getMapping(t, cl, ns, mappingName+"-canary") != nil {
			t.Errorf("%s: a canary mapping was written", mappingName)
		}
		reason, msg, err := r.Check(t.Context(), c)
		if err != nil || reason != want.reason || !strings.Contains(msg, want.msg) {
			t.Errorf("%s: Check = %q, %q, %v; want %s, %q", mappingName, reason, msg, err, want.reason, want.msg)
		}
	}

	// A usable Mapping carries a copy; made unusable mid-release, its
	// copies can still be withdrawn.
	mapping(t, cl, ns, "later", map[string]any{"hostname": "*", "prefix": "/l/", "service": "web"})
	c := canaryObj(t, cl, ns, "later")
	p, cn := router.Backends(c, "web")
	if err := r.Apply(t.Context(), c, router.Split{Primary: p, Canary: cn, CanaryWeight: 30}); err != nil {
		t.Fatal(err)
	}
	if getMapping(t, cl, ns, "later-canary") == nil {
		t.Fatal("no canary copy written for a usable Mapping")
	}
	later := getMapping(t, cl, ns, "later")
	_ = unstructured.SetNestedField(later.Object, "elsewhere", "spec", "service")
	if err := cl.Update(t.Context(), later); err != nil {
		t.Fatal(err)
	}
	if reason, _, _ := r.Check(t.Context(), c); reason != "MappingNotUsable" {
		t.Errorf("Check after the service changed: %q, want MappingNotUsable", reason)
	}
	if err := r.Apply(t.Context(), c, router.Split{Primary: p, Canary: cn, CanaryWeight: 0}); err != nil {
		t.Fatalf("withdrawing from an unusable Mapping: %v", err)
	}
	if w, _, _ := unstructured.NestedInt64(getMapping(t, cl, ns, "later-canary").Object, "spec", "weight"); w != 0 {
		t.Errorf("canary copy of an unusable Mapping kept weight %d after the withdrawal", w)
	}
}

// A header route is a second copy with the headers and no weight; it is
// read back as the same key and deleted when no longer asked for.
func TestHeaderRouteMapping(t *testing.T) {
	cl, ns := setup(t)
	mapping(t, cl, ns, "ab", map[string]any{"hostname": "*", "prefix": "/ab/", "service": "web:8080"})
	c := canaryObj(t, cl, ns, "ab")
	r := &ambassador.Router{Client: cl, Scheme: cl.Scheme(), Mapper: cl.RESTMapper(), Apex: "web"}
	p, cn := router.Backends(c, "web")
	exact, re := "insider", "^beta-[0-9]+$"
	hr := &v1alpha1.HeaderRoute{Match: []v1alpha1.HeaderMatch{{Name: "x-canary", Exact: &exact}, {Name: "x-build", Regex: &re}}}
	if err := r.Apply(t.Context(), c, router.Split{Primary: p, Canary: cn, CanaryWeight: 10, HeaderRoute: hr}); err != nil {
		t.Fatal(err)
	}
	m := getMapping(t, cl, ns, "ab-canary-headers")
	if m == nil {
		t.Fatal("no header-route mapping")
	}
	spec := m.Object["spec"].(map[string]any)
	if spec["service"] != "web-canary:8080" || spec["weight"] != nil || fmt.Sprint(spec["headers"]) != "map[x-canary:insider]" ||
		fmt.Sprint(spec["regex_headers"]) != "map[x-build:^beta-[0-9]+$]" {
		t.Errorf("header-route mapping spec %v", spec)
	}
	got, err := r.Observe(t.Context(), c, router.Split{Primary: p, Canary: cn})
	if err != nil || got.HeaderRoute != engine.HeaderRouteKey(hr) || got.CanaryWeight != 10 {
		t.Errorf("observe: %+v %v; want header route %q", got, err, engine.HeaderRouteKey(hr))
	}
	if err := r.Apply(t.Context(), c, router.Split{Primary: p, Canary: cn, CanaryWeight: 10}); err != nil {
		t.Fatal(err)
	}
	if getMapping(t, cl, ns, "ab-canary-headers") != nil {
		t.Errorf("the header-route mapping outlived its step")
	}
}

// A mirror step is a shadow copy of the stable Mapping (keeping its scheme,
// namespace and port) whose weight is the mirrored percent; it goes at
// once when the mirror ends (a shadow carries no client traffic to drain),
// and on release.
func TestShadowMapping(t *testing.T) {
	cl, ns := setup(t)
	mapping(t, cl, ns, "sh", map[string]any{"hostname": "*", "prefix": "/sh/", "service": "https://web." + ns + ":8443"})
	c := canaryObj(t, cl, ns, "sh")
	r := &ambassador.Router{Client: cl, Scheme: cl.Scheme(), Mapper: cl.RESTMapper(), Apex: "web"}
	p, cn := router.Backends(c, "web")
	s := router.Split{Primary: p, Canary: cn, CanaryWeight: 0, MirrorPercent: 30}
	if err := r.Apply(t.Context(), c, s); err != nil {
		t.Fatal(err)
	}
	m := getMapping(t, cl, ns, "sh-canary-shadow")
	if m == nil {
		t.Fatal("no shadow mapping")
	}
	spec := m.Object["spec"].(map[string]any)
	if spec["service"] != "https://web-canary."+ns+":8443" || spec["shadow"] != true || fmt.Sprint(spec["weight"]) != "30" || spec["prefix"] != "/sh/" {
		t.Errorf("shadow mapping spec %v", spec)
	}
	if getMapping(t, cl, ns, "sh-canary") != nil {
		t.Error("a weighted canary mapping at weight 0")
	}
	if got, err := r.Observe(t.Context(), c, s); err != nil || got.MirrorPercent != 30 || got.CanaryWeight != 0 {
		t.Errorf("observe: %+v %v", got, err)
	}
	s.MirrorPercent = 0
	if err := r.Apply(t.Context(), c, s); err != nil {
		t.Fatal(err)
	}
	if getMapping(t, cl, ns, "sh-canary-shadow") != nil {
		t.Error("the shadow mapping outlived the mirror")
	}
	s.MirrorPercent = 10
	if err := r.Apply(t.Context(), c, s); err != nil {
		t.Fatal(err)
	}
	if err := r.Release(t.Context(), c, router.Backend{}); err != nil {
		t.Fatal(err)
	}
	if getMapping(t, cl, ns, "sh-canary-shadow") != nil {
		t.Error("the shadow mapping survives the release")
	}
}

// getambassador.io/v2, for clusters that serve only it: the same copies,
// written and read back in v2.
func TestMappingV2(t *testing.T) {
	cl, ns := setup(t)
	v2 := schema.GroupVersionKind{Group: "getambassador.io", Version: "v2", Kind: "Mapping"}
	u := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"prefix": "/v2/", "service": "web." + ns + ":8080"}}}
	u.SetGroupVersionKind(v2)
	u.SetNamespace(ns)
	u.SetName("old")
	if err := cl.Create(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	c := canaryObj(t, cl, ns, "old")
	r := &ambassador.Router{Client: cl, Scheme: cl.Scheme(), Mapper: cl.RESTMapper(), Apex: "web", Versions: []string{"v2"}}
	if gvk, err := r.GVK(); err != nil || gvk != v2 {
		t.Fatalf("GVK %v %v", gvk, err)
	}
	p, cn := router.Backends(c, "web")
	v := "yes"
	s := router.Split{Primary: p, Canary: cn, CanaryWeight: 20, MirrorPercent: 10,
		HeaderRoute: &v1alpha1.HeaderRoute{Match: []v1alpha1.HeaderMatch{{Name: "x-canary", Exact: &v}}}}
	if err := r.Apply(t.Context(), c, s); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"old-canary": "20", "old-canary-shadow": "10", "old-canary-headers": "<nil>"} {
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(v2)
		if err := cl.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, got); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		spec := got.Object["spec"].(map[string]any)
		if fmt.Sprint(spec["weight"]) != want || spec["service"] != "web-canary."+ns+":8080" {
			t.Errorf("%s: spec %v", name, spec)
		}
	}
	if obs, err := r.Observe(t.Context(), c, s); err != nil || obs.CanaryWeight != 20 || obs.MirrorPercent != 10 || obs.HeaderRoute != "x-canary=yes" {
		t.Errorf("observe: %+v %v", obs, err)
	}
}

// Copies written together must read back together: when one Mapping's copy
// carries another weight (a write that did not land, or was undone), the
// route is pending, not carried.
func TestCopiesThatDisagreeArePending(t *testing.T) {
	cl, ns := setup(t)
	mapping(t, cl, ns, "one", map[string]any{"hostname": "*", "prefix": "/one/", "service": "web"})
	mapping(t, cl, ns, "two", map[string]any{"hostname": "*", "prefix": "/two/", "service": "web"})
	c := canaryObj(t, cl, ns, "one", "two")
	r := &ambassador.Router{Client: cl, Scheme: cl.Scheme(), Mapper: cl.RESTMapper(), Apex: "web"}
	p, cn := router.Backends(c, "web")
	s := router.Split{Primary: p, Canary: cn, CanaryWeight: 20}
	if err := r.Apply(t.Context(), c, s); err != nil {
		t.Fatal(err)
	}
	if got, err := r.Observe(t.Context(), c, s); err != nil || got.CanaryWeight != 20 || got.Pending != "" {
		t.Fatalf("observe: %+v %v", got, err)
	}
	two := getMapping(t, cl, ns, "two-canary")
	_ = unstructured.SetNestedField(two.Object, int64(10), "spec", "weight")
	if err := cl.Update(t.Context(), two); err != nil {
		t.Fatal(err)
	}
	got, err := r.Observe(t.Context(), c, s)
	if err != nil || !strings.Contains(got.Pending, "the copies of mapping "+ns+"/two carry weight 10%") {
		t.Errorf("disagreeing copies: %+v %v", got, err)
	}
}
