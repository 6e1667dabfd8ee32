package scale

import (
	"fmt"
	"os"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/router/consul"
	"github.com/sluice-dev/sluice/internal/testenv"
)

// benchRouter is how the bench drives one router (SLUICE_BENCH_ROUTER):
// the Canary's spec.router, the user's objects the router needs beside
// the Deployment, and the object whose writes carry the canary's share.
type benchRouter struct {
	name string
	spec func(name string) v1alpha1.RouterSpec
	// user are the user's objects for a Canary named name (nil: none).
	user func(ns, name string) []client.Object
	// template adds what the router needs on the pod template.
	template func(d *appsv1.Deployment)
	// route is the kind whose objects carry the shares; canaryOf names
	// the Canary an object of it belongs to ("" for none) and share reads
	// the canary's share from it.
	route    schema.GroupVersionKind
	canaryOf func(u *unstructured.Unstructured) string
	share    func(u *unstructured.Unstructured, canary string) (int32, bool)
}

// routeResources are the resources whose writes the bench counts as
// route writes, for every router.
var routeResources = []string{"httproutes.", "traefikservices.", "ingressroutes.", "servicesplitters.",
	"serviceresolvers.", "servicerouters.", "mappings.", "ingresses."}

func isRouteResource(resource string) bool {
	return slices.ContainsFunc(routeResources, func(p string) bool { return strings.HasPrefix(resource, p) })
}

// benchRouters are the routers the bench can drive, by name.
func benchRouters() map[string]benchRouter {
	traefik := func(kind string) schema.GroupVersionKind {
		return schema.GroupVersionKind{Group: "traefik.io", Version: "v1alpha1", Kind: kind}
	}
	sameName := func(u *unstructured.Unstructured) string { return u.GetName() }
	return map[string]benchRouter{
		"gatewayapi": {
			name: "gatewayapi",
			spec: func(string) v1alpha1.RouterSpec {
				return v1alpha1.RouterSpec{GatewayAPI: &v1alpha1.GatewayAPIRouter{ParentRefs: []gwv1.ParentReference{{Name: "public"}}}}
			},
			route:    gwv1.SchemeGroupVersion.WithKind("HTTPRoute"),
			canaryOf: sameName,
			share: func(u *unstructured.Unstructured, canary string) (int32, bool) {
				rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
				if len(rules) == 0 {
					return 0, false
				}
				refs, _ := rules[len(rules)-1].(map[string]any)["backendRefs"].([]any)
				return testenv.Share(refs, "weight", canary+"-canary"), true
			},
		},
		"traefik": {
			name: "traefik (TraefikService)",
			spec: func(string) v1alpha1.RouterSpec {
				return v1alpha1.RouterSpec{Traefik: &v1alpha1.TraefikRouter{}}
			},
			route:    traefik("TraefikService"),
			canaryOf: sameName,
			share: func(u *unstructured.Unstructured, canary string) (int32, bool) {
				s, ok, _ := unstructured.NestedSlice(u.Object, "spec", "weighted", "services")
				return testenv.Share(s, "weight", canary+"-canary"), ok
			},
		},
		"traefik-ingressroute": {
			name: "traefik (IngressRoute in place)",
			spec: func(name string) v1alpha1.RouterSpec {
				return v1alpha1.RouterSpec{Traefik: &v1alpha1.TraefikRouter{IngressRoute: &v1alpha1.TraefikIngressRouteRef{Name: name}}}
			},
			user: func(ns, name string) []client.Object {
				u := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{
					"entryPoints": []any{"web"},
					"routes": []any{map[string]any{"kind": "Rule", "match": "Host(`" + name + ".example.com`)",
						"services": []any{map[string]any{"name": name, "port": int64(80)}}}},
				}}}
				u.SetGroupVersionKind(traefik("IngressRoute"))
				u.SetNamespace(ns)
				u.SetName(name)
				return []client.Object{u}
			},
			route:    traefik("IngressRoute"),
			canaryOf: sameName,
			share: func(u *unstructured.Unstructured, canary string) (int32, bool) {
				routes, _, _ := unstructured.NestedSlice(u.Object, "spec", "routes")
				if len(routes) == 0 {
					return 0, false
				}
				s, _ := routes[0].(map[string]any)["services"].([]any)
				return testenv.Share(s, "weight", canary+"-canary"), true
			},
		},
		"consul": {
			name: "consul",
			spec: func(string) v1alpha1.RouterSpec {
				return v1alpha1.RouterSpec{Consul: &v1alpha1.ConsulRouter{WaitForSync: ptr.To(false)}}
			},
			template: func(d *appsv1.Deployment) {
				d.Spec.Template.Annotations = map[string]string{consul.ConnectServiceAnnotation: d.Name}
			},
			route:    consul.GVK(consul.Splitter),
			canaryOf: sameName,
			share: func(u *unstructured.Unstructured, _ string) (int32, bool) {
				s, ok, _ := unstructured.NestedSlice(u.Object, "spec", "splits")
				var total, canary float64
				for _, x := range s {
					e, _ := x.(map[string]any)
					w := testenv.Number(e["weight"])
					total += w
					if e["serviceSubset"] == "canary" {
						canary += w
					}
				}
				if total == 0 {
					return 0, ok
				}
				return int32(canary * 100 / total), ok
			},
		},
		"ambassador": {
			name: "ambassador (Emissary Mapping)",
			spec: func(name string) v1alpha1.RouterSpec {
				return v1alpha1.RouterSpec{Ambassador: &v1alpha1.AmbassadorRouter{Mappings: []string{name}}}
			},
			user: func(ns, name string) []client.Object {
				u := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{
					"hostname": "*", "prefix": "/" + name + "/", "service": name + ":80"}}}
				u.SetGroupVersionKind(mappingGVK)
				u.SetNamespace(ns)
				u.SetName(name)
				return []client.Object{u}
			},
			route: mappingGVK,
			// The canary copy <mapping>-canary carries the weight.
			canaryOf: func(u *unstructured.Unstructured) string {
				name, ok := strings.CutSuffix(u.GetName(), "-canary")
				if !ok {
					return ""
				}
				return name
			},
			share: func(u *unstructured.Unstructured, _ string) (int32, bool) {
				w, ok, _ := unstructured.NestedInt64(u.Object, "spec", "weight")
				return int32(w), ok
			},
		},
	}
}

var mappingGVK = schema.GroupVersionKind{Group: "getambassador.io", Version: "v3alpha1", Kind: "Mapping"}

// benchRouterFrom reads SLUICE_BENCH_ROUTER (gatewayapi when empty).
func benchRouterFrom() (benchRouter, error) {
	name := cmp(os.Getenv("SLUICE_BENCH_ROUTER"), "gatewayapi")
	all := benchRouters()
	r, ok := all[name]
	if !ok {
		names := make([]string, 0, len(all))
		for n := range all {
			names = append(names, n)
		}
		slices.Sort(names)
		return benchRouter{}, fmt.Errorf("SLUICE_BENCH_ROUTER %q: want one of %s", name, strings.Join(names, ", "))
	}
	return r, nil
}
