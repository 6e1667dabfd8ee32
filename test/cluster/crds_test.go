package cluster_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/internal/testenv"
)

// create decodes a manifest, creates it in ns and returns the stored object.
func create(ctx context.Context, t *testing.T, dyn dynamic.Interface, ns, manifest string) (*unstructured.Unstructured, *unstructured.Unstructured, error) {
	t.Helper()
	obj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(manifest), &obj.Object); err != nil {
		t.Fatalf("bad test manifest: %v", err)
	}
	obj.SetNamespace(ns)
	gvk := obj.GroupVersionKind()
	gvr := schema.GroupVersionResource{Group: gvk.Group, Version: gvk.Version, Resource: strings.ToLower(gvk.Kind) + "s"}
	stored, err := dyn.Resource(gvr).Namespace(ns).Create(ctx, obj, metav1.CreateOptions{})
	return obj, stored, err
}

func dynamicClient(t *testing.T, c *testenv.Cluster) dynamic.Interface {
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	return dyn
}

func TestHTTPRouteValidationIsTheAPIServers(t *testing.T) {
	c := testenv.Get(t)
	ns := c.Namespace(t)
	dyn := dynamicClient(t, c)
	route := func(name, backends string) string {
		return `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: ` + name + `}
spec:
  parentRefs: [{name: gw}]
  rules:
  - backendRefs: ` + backends + "\n"
	}
	cases := []struct {
		name, backends string
		wantErr        string // empty: accepted
	}{
		{"weighted", `[{name: web-primary, port: 80, weight: 90}, {name: web-canary, port: 80, weight: 10}]`, ""},
		{"negative-weight", `[{name: web-primary, port: 80, weight: -1}]`, "spec.rules[0].backendRefs[0].weight"},
		{"no-port", `[{name: web-primary, weight: 1}]`, "Must have port for Service reference"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, stored, err := create(t.Context(), t, dyn, ns, route(tc.name, tc.backends))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("valid HTTPRoute rejected: %v", err)
				}
				refs, _, _ := unstructured.NestedSlice(stored.Object, "spec", "rules")
				backends := refs[0].(map[string]any)["backendRefs"].([]any)
				if w := backends[1].(map[string]any)["weight"]; w != int64(10) {
					t.Errorf("stored canary weight %v, want 10", w)
				}
				return
			}
			if !apierrors.IsInvalid(err) {
				t.Fatalf("want the apiserver to reject it as Invalid, got %v", err)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not mention %q", err, tc.wantErr)
			}
		})
	}
}

// Each router's object, as users write them, passes the real CRD schema and
// reads back unchanged.
func TestRouterCRDsRoundTrip(t *testing.T) {
	c := testenv.Get(t)
	ns := c.Namespace(t)
	dyn := dynamicClient(t, c)
	manifests := map[string]string{
		"traefik-v3-ingressroute": `apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: web}
spec:
  entryPoints: [web]
  routes:
  - match: Host(` + "`app.example.com`" + `) && Header(` + "`X-Canary`, `insider`" + `)
    kind: Rule
    priority: 100
    services: [{name: web-canary, port: 80}]
  - match: Host(` + "`app.example.com`" + `)
    kind: Rule
    services:
    - {name: web-primary, port: 80, weight: 90}
    - {name: web-canary, port: 80, weight: 10}
`,
		"traefik-v2-traefikservice": `apiVersion: traefik.containo.us/v1alpha1
kind: TraefikService
metadata: {name: web-wrr}
spec:
  weighted:
    services:
    - {name: web-primary, port: 80, weight: 90}
    - {name: web-canary, port: 80, weight: 10}
`,
		"emissary-mapping": `apiVersion: getambassador.io/v3alpha1
kind: Mapping
metadata: {name: web-canary}
spec: {hostname: "*", prefix: /web/, service: "https://web-canary.test:8443", weight: 10}
`,
		"consul-splitter": `apiVersion: consul.hashicorp.com/v1alpha1
kind: ServiceSplitter
metadata: {name: web}
spec:
  splits:
  - {weight: 90, serviceSubset: stable}
  - {weight: 10, serviceSubset: canary}
`,
		"istio-virtualservice": `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web}
spec:
  hosts: [web]
  http:
  - route:
    - {destination: {host: web-primary}, weight: 90}
    - {destination: {host: web-canary}, weight: 10}
`,
		"smi-trafficsplit": `apiVersion: split.smi-spec.io/v1alpha2
kind: TrafficSplit
metadata: {name: web}
spec:
  service: web
  backends:
  - {service: web-primary, weight: 90}
  - {service: web-canary, weight: 10}
`,
	}
	for name, m := range manifests {
		t.Run(name, func(t *testing.T) {
			sent, stored, err := create(t.Context(), t, dyn, ns, m)
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			if !equality.Semantic.DeepEqual(normalize(t, sent.Object["spec"]), normalize(t, stored.Object["spec"])) {
				t.Errorf("spec changed on the way through the apiserver:\nsent   %v\nstored %v", sent.Object["spec"], stored.Object["spec"])
			}
		})
	}

	// The schema is enforced, not just stored: a Mapping without its
	// required service is refused.
	_, _, err := create(t.Context(), t, dyn, ns, `apiVersion: getambassador.io/v3alpha1
kind: Mapping
metadata: {name: broken}
spec: {prefix: /x/}
`)
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.service") {
		t.Errorf("Mapping without service: want Invalid naming spec.service, got %v", err)
	}
}

// normalize gives numbers one type (YAML decodes them as float64, the
// apiserver's JSON as int64) so specs compare by value.
func normalize(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
