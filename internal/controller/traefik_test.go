package controller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/testenv"
)

func traefikCanary(ns, name string, tr v1alpha1.TraefikRouter, steps ...v1alpha1.Step) *v1alpha1.Canary {
	c := canary(ns, name, steps...)
	c.Spec.Router = v1alpha1.RouterSpec{Traefik: &tr}
	return c
}

func traefikObject(ctx context.Context, cl client.Client, kind, ns, name string) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(schema.GroupVersionKind{Group: "traefik.io", Version: "v1alpha1", Kind: kind})
	err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, u)
	return u, err
}

// recordTraefik records the canary shares a Traefik object walks (see
// recordShares).
func recordTraefik(t *testing.T, kind, ns, name string, services func(*unstructured.Unstructured) []any, canarySvc string) *stateRecorder[int32] {
	gvk := schema.GroupVersionKind{Group: "traefik.io", Version: "v1alpha1", Kind: kind}
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(gvk.GroupVersion().WithKind(kind + "List"))
	item := func() client.Object {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		return u
	}
	return recordShares(t, list, item, ns, name, func(o client.Object) (int32, bool) {
		u, ok := o.(*unstructured.Unstructured)
		if !ok {
			return 0, false
		}
		return testenv.Share(services(u), "weight", canarySvc), true
	})
}

func weightedServices(u *unstructured.Unstructured) []any {
	s, _, _ := unstructured.NestedSlice(u.Object, "spec", "weighted", "services")
	return s
}

// A release through a TraefikService Sluice owns: the weights walk the
// steps; deleting the Canary leaves the TraefikService sending everything
// to the apex Service, no longer owned, so the user's IngressRoute that
// references it keeps working.
func TestTraefikServiceRelease(t *testing.T) {
	_, ns, cl := setup(t)
	create(t, cl, app(ns, "tsv", "example.com/tsv:1", 1), traefikCanary(ns, "tsv", v1alpha1.TraefikRouter{}, weightStep(20), pauseStep(time.Second), weightStep(60), pauseStep(time.Second)))
	waitPhase(t, cl, ns, "tsv", v1alpha1.PhaseInitialized, 60*time.Second)
	rec := recordTraefik(t, "TraefikService", ns, "tsv", weightedServices, "tsv-canary")
	setImage(t, cl, ns, "tsv", "example.com/tsv:2")
	waitPhase(t, cl, ns, "tsv", v1alpha1.PhaseSucceeded, 60*time.Second)
	if shares, want := rec.states(), []int32{0, 20, 60, 100, 0}; !slices.Equal(shares, want) {
		t.Errorf("canary shares on the TraefikService: %v, want %v", shares, want)
	}

	c, _ := getCanary(t.Context(), cl, ns, "tsv")
	if err := cl.Delete(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, "canary gone", func(ctx context.Context) error {
		if _, err := getCanary(ctx, cl, ns, "tsv"); !apierrors.IsNotFound(err) {
			return fmt.Errorf("still there (%v)", err)
		}
		return nil
	})
	u, err := traefikObject(t.Context(), cl, "TraefikService", ns, "tsv")
	if err != nil {
		t.Fatalf("the TraefikService went with the Canary: %v", err)
	}
	b, _ := json.Marshal(weightedServices(u))
	if string(b) != `[{"name":"tsv","port":80,"weight":10000}]` || len(u.GetOwnerReferences()) != 0 {
		t.Errorf("after deletion: services %s, owners %v", b, u.GetOwnerReferences())
	}
}

// A release that splits a route of the user's own IngressRoute, while
// another writer keeps changing the object's metadata (a conflict storm on
// Sluice's read-modify-write): the weights walk the steps, every change of
// the other writer is kept, and after promotion the IngressRoute's spec is
// byte for byte what the user wrote (the apex entry's weight of the user's
// included), with no annotation of Sluice's left; so it is after an abort.
func TestTraefikIngressRouteRelease(t *testing.T) {
	_, ns, cl := setup(t)
	route := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(`apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: front}
spec:
  entryPoints: [web]
  routes:
  - match: Host(`+"`front.example.com`"+`)
    kind: Rule
    middlewares: [{name: compress}]
    services: [{name: irt, port: 80, passHostHeader: true, weight: 2}]
`), &route.Object); err != nil {
		t.Fatal(err)
	}
	route.SetNamespace(ns)
	create(t, cl, route)
	before, err := traefikObject(t.Context(), cl, "IngressRoute", ns, "front")
	if err != nil {
		t.Fatal(err)
	}
	origSpec, _ := json.Marshal(before.Object["spec"])

	create(t, cl, app(ns, "irt", "example.com/irt:1", 1), traefikCanary(ns, "irt",
		v1alpha1.TraefikRouter{IngressRoute: &v1alpha1.TraefikIngressRouteRef{Name: "front"}}, weightStep(25), pauseStep(time.Second), weightStep(50), pauseStep(time.Second)))
	waitPhase(t, cl, ns, "irt", v1alpha1.PhaseInitialized, 60*time.Second)
	routeServices := func(u *unstructured.Unstructured) []any {
		routes, _, _ := unstructured.NestedSlice(u.Object, "spec", "routes")
		s, _ := routes[0].(map[string]any)["services"].([]any)
		return s
	}
	rec := recordTraefik(t, "IngressRoute", ns, "front", routeServices, "irt-canary")
	var landed int
	stopStorm := inBackground(t, func(ctx context.Context) {
		u, err := traefikObject(ctx, cl, "IngressRoute", ns, "front")
		if err != nil {
			return
		}
		ann := u.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann["other-writer"] = fmt.Sprint(landed + 1)
		u.SetAnnotations(ann)
		if cl.Update(ctx, u) == nil {
			landed++
		}
	})
	setImage(t, cl, ns, "irt", "example.com/irt:2")
	waitPhase(t, cl, ns, "irt", v1alpha1.PhaseSucceeded, 60*time.Second)
	stopStorm()
	if shares, want := rec.states(), []int32{0, 25, 50, 100, 0}; !slices.Equal(shares, want) {
		t.Errorf("canary shares on the IngressRoute: %v, want %v", shares, want)
	}
	after, err := traefikObject(t.Context(), cl, "IngressRoute", ns, "front")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := json.Marshal(after.Object["spec"]); string(got) != string(origSpec) {
		t.Errorf("after the release the IngressRoute spec is\n%s\nwas\n%s", got, origSpec)
	}
	if landed < 10 || after.GetAnnotations()["other-writer"] != fmt.Sprint(landed) {
		t.Errorf("the other writer landed %d changes; the object says %q", landed, after.GetAnnotations()["other-writer"])
	}
	if len(after.GetAnnotations()) != 1 {
		t.Errorf("annotations after the release: %v, want only the other writer's", after.GetAnnotations())
	}

	// An abort mid-release: the route goes back to the user's spec.
	setImage(t, cl, ns, "irt", "example.com/irt:3")
	testenv.Eventually(t, 30*time.Second, "canary share 25", func(ctx context.Context) error {
		u, err := traefikObject(ctx, cl, "IngressRoute", ns, "front")
		if err != nil {
			return err
		}
		if share := testenv.Share(routeServices(u), "weight", "irt-canary"); share != 25 {
			return fmt.Errorf("share %d", share)
		}
		return nil
	})
	request(t, cl, ns, "irt", v1alpha1.RequestAbort)
	waitPhase(t, cl, ns, "irt", v1alpha1.PhaseFailed, 30*time.Second)
	testenv.Eventually(t, 30*time.Second, "the user's spec back", func(ctx context.Context) error {
		u, err := traefikObject(ctx, cl, "IngressRoute", ns, "front")
		if err != nil {
			return err
		}
		if got, _ := json.Marshal(u.Object["spec"]); string(got) != string(origSpec) {
			return fmt.Errorf("spec %s", got)
		}
		return nil
	})
}

// An A/B step with a canary middleware and a mirror step, through a
// TraefikService the user's IngressRoute references. A missing middleware
// is reported in status when the release reaches the header step, and
// nothing moves until it exists; while the
// release holds, a header IngressRoute narrows the user's route to the
// canary (with the middleware) and the TraefikService mirrors 30% to it;
// the middleware deleted mid-release is reported while the routing stays;
// after promotion the header route, the mirror and the split service are
// gone.
func TestTraefikHeaderRouteAndMirrorSteps(t *testing.T) {
	_, ns, cl := setup(t)
	route := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(`apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: front}
spec:
  entryPoints: [web]
  routes:
  - match: Host(`+"`ab.example.com`"+`)
    kind: Rule
    services: [{kind: TraefikService, name: hdr}]
`), &route.Object); err != nil {
		t.Fatal(err)
	}
	route.SetNamespace(ns)
	yes := "yes"
	create(t, cl, route, app(ns, "hdr", "example.com/hdr:1", 1), traefikCanary(ns, "hdr",
		v1alpha1.TraefikRouter{CanaryMiddlewares: []v1alpha1.TraefikMiddlewareRef{{Name: "canary-tag"}}},
		v1alpha1.Step{SetHeaderRoute: &v1alpha1.HeaderRoute{Match: []v1alpha1.HeaderMatch{{Name: "X-Canary", Exact: &yes}}}},
		v1alpha1.Step{SetMirror: &v1alpha1.MirrorStep{Percent: 30}},
		untilPromoted()))
	waitMessage := func(want string) {
		t.Helper()
		testenv.Eventually(t, 30*time.Second, "status says "+want, func(ctx context.Context) error {
			c, err := getCanary(ctx, cl, ns, "hdr")
			if err != nil {
				return err
			}
			if c.Status.Reason != "MiddlewareNotFound" || !strings.Contains(c.Status.Message, want) {
				return fmt.Errorf("%s %s: %s", c.Status.Phase, c.Status.Reason, c.Status.Message)
			}
			return nil
		})
	}
	// Initialising sends everything to the primary and needs no
	// middleware; the release stops at the header step until it exists.
	waitPhase(t, cl, ns, "hdr", v1alpha1.PhaseInitialized, 60*time.Second)
	setImage(t, cl, ns, "hdr", "example.com/hdr:2")
	waitMessage("Middleware " + ns + "/canary-tag not found")
	if _, err := traefikObject(t.Context(), cl, "IngressRoute", ns, "front-hdr-headers"); !apierrors.IsNotFound(err) {
		t.Errorf("a header route was written while its middleware is missing (%v)", err)
	}

	mw := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"headers": map[string]any{"customRequestHeaders": map[string]any{"X-Canary-Route": "1"}}}}}
	mw.SetGroupVersionKind(schema.GroupVersionKind{Group: "traefik.io", Version: "v1alpha1", Kind: "Middleware"})
	mw.SetNamespace(ns)
	mw.SetName("canary-tag")
	create(t, cl, mw.DeepCopy())
	waitPhase(t, cl, ns, "hdr", v1alpha1.PhaseWaitingPromotion, 60*time.Second)

	hdr, err := traefikObject(t.Context(), cl, "IngressRoute", ns, "front-hdr-headers")
	if err != nil {
		t.Fatalf("header IngressRoute: %v", err)
	}
	if got, _ := json.Marshal(hdr.Object["spec"]); !strings.Contains(string(got), `"match":"(Host(`+"`ab.example.com`"+`)) \u0026\u0026 Header(\"X-Canary\", \"yes\")"`) ||
		!strings.Contains(string(got), `"middlewares":[{"name":"canary-tag"}]`) || !strings.Contains(string(got), `"services":[{"name":"hdr-canary"`) {
		t.Errorf("header IngressRoute spec %s", got)
	}
	ts, err := traefikObject(t.Context(), cl, "TraefikService", ns, "hdr")
	if err != nil {
		t.Fatal(err)
	}
	mirrorSpec, _ := json.Marshal(ts.Object["spec"])
	if string(mirrorSpec) != `{"mirroring":{"kind":"TraefikService","mirrors":[{"name":"hdr-canary","percent":30,"port":80}],"name":"hdr-split"}}` {
		t.Errorf("TraefikService spec %s", mirrorSpec)
	}

	// The middleware goes mid-release: at the next reconcile (the promote
	// request) it is reported, and nothing moves.
	if err := cl.Delete(t.Context(), mw); err != nil {
		t.Fatal(err)
	}
	request(t, cl, ns, "hdr", v1alpha1.RequestPromote)
	waitMessage("canaryMiddlewares[0]")
	if ts, err := traefikObject(t.Context(), cl, "TraefikService", ns, "hdr"); err != nil {
		t.Fatal(err)
	} else if got, _ := json.Marshal(ts.Object["spec"]); string(got) != string(mirrorSpec) {
		t.Errorf("the routing moved while the middleware was missing: %s", got)
	}
	create(t, cl, mw.DeepCopy())
	waitPhase(t, cl, ns, "hdr", v1alpha1.PhaseSucceeded, 60*time.Second)
	if _, err := traefikObject(t.Context(), cl, "IngressRoute", ns, "front-hdr-headers"); !apierrors.IsNotFound(err) {
		t.Errorf("header IngressRoute after the release: %v", err)
	}
	if _, err := traefikObject(t.Context(), cl, "TraefikService", ns, "hdr-split"); !apierrors.IsNotFound(err) {
		t.Errorf("split TraefikService after the release: %v", err)
	}
	ts, _ = traefikObject(t.Context(), cl, "TraefikService", ns, "hdr")
	if got, _ := json.Marshal(ts.Object["spec"]); string(got) != `{"weighted":{"services":[{"name":"hdr-primary","port":80,"weight":10000}]}}` {
		t.Errorf("TraefikService after the release: %s", got)
	}
}
