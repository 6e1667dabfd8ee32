package controller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/router/traefik"
	"github.com/sluice-dev/sluice/internal/testenv"
	"github.com/sluice-dev/sluice/internal/workload"
)

// The user's IngressRoute, which the Traefik router patches in place, is
// labelled when Sluice first reads it (so the controller's router cache
// holds it) and otherwise left as written. While a release waits for
// promotion, with nothing requeued, another writer's change to its
// weights is undone: only the IngressRoute's watch event can have woken
// the Canary. Deleting the Canary takes the label off again.
func TestRouterObjectsAreWatched(t *testing.T) {
	_, ns, cl := setup(t)
	route := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(`apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: watched}
spec:
  entryPoints: [web]
  routes:
  - match: Host(`+"`watched.example.com`"+`)
    kind: Rule
    services: [{name: wtc, port: 80}]
`), &route.Object); err != nil {
		t.Fatal(err)
	}
	route.SetNamespace(ns)
	create(t, cl, route)
	before, err := traefikObject(t.Context(), cl, "IngressRoute", ns, "watched")
	if err != nil {
		t.Fatal(err)
	}
	create(t, cl, app(ns, "wtc", "example.com/wtc:1", 1), traefikCanary(ns, "wtc",
		v1alpha1.TraefikRouter{IngressRoute: &v1alpha1.TraefikIngressRouteRef{Name: "watched"}}, weightStep(50), untilPromoted()))
	waitPhase(t, cl, ns, "wtc", v1alpha1.PhaseInitialized, 60*time.Second)

	var settled *unstructured.Unstructured
	testenv.Eventually(t, 30*time.Second, "the IngressRoute labelled", func(ctx context.Context) error {
		u, err := traefikObject(ctx, cl, "IngressRoute", ns, "watched")
		if err != nil {
			return err
		}
		if got := u.GetLabels()[workload.CanaryLabel]; got != "wtc" {
			return fmt.Errorf("label %s=%q", workload.CanaryLabel, got)
		}
		settled = u
		return nil
	})
	if !userObjectUnchanged(withoutRouteServices(before), withoutRouteServices(settled)) {
		t.Errorf("besides its services, the user's IngressRoute changed:\nbefore %v\nafter  %v", before.Object, settled.Object)
	}
	routeServices := func(u *unstructured.Unstructured) []any {
		routes, _, _ := unstructured.NestedSlice(u.Object, "spec", "routes")
		s, _ := routes[0].(map[string]any)["services"].([]any)
		return s
	}

	releaseToPausedStep(t, cl, ns, "wtc")
	var paused *unstructured.Unstructured
	testenv.Eventually(t, 30*time.Second, "canary share 50", func(ctx context.Context) error {
		u, err := traefikObject(ctx, cl, "IngressRoute", ns, "watched")
		if err != nil {
			return err
		}
		if share := testenv.Share(routeServices(u), "weight", "wtc-canary"); share != 50 {
			return fmt.Errorf("share %d", share)
		}
		paused = u
		return nil
	})
	want, _ := json.Marshal(routeServices(paused))

	// Another writer takes the canary's share away.
	tampered := paused.DeepCopy()
	routes, _, _ := unstructured.NestedSlice(tampered.Object, "spec", "routes")
	for _, x := range routes[0].(map[string]any)["services"].([]any) {
		if e := x.(map[string]any); e["name"] == "wtc-canary" {
			e["weight"] = int64(0)
		}
	}
	if err := unstructured.SetNestedSlice(tampered.Object, routes, "spec", "routes"); err != nil {
		t.Fatal(err)
	}
	if err := cl.Update(t.Context(), tampered); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "the route's services restored", func(ctx context.Context) error {
		u, err := traefikObject(ctx, cl, "IngressRoute", ns, "watched")
		if err != nil {
			return err
		}
		if got, _ := json.Marshal(routeServices(u)); string(got) != string(want) {
			return fmt.Errorf("services %s, want %s", got, want)
		}
		return nil
	})

	c, err := getCanary(t.Context(), cl, ns, "wtc")
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Delete(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, "the Canary gone and its label off the IngressRoute", func(ctx context.Context) error {
		if _, err := getCanary(ctx, cl, ns, "wtc"); !apierrors.IsNotFound(err) {
			return fmt.Errorf("canary still there (%v)", err)
		}
		u, err := traefikObject(ctx, cl, "IngressRoute", ns, "watched")
		if err != nil {
			return err
		}
		if got, has := u.GetLabels()[workload.CanaryLabel]; has {
			return fmt.Errorf("label %s=%q", workload.CanaryLabel, got)
		}
		return nil
	})
}

// withoutRouteServices is an IngressRoute without its routes' services
// and the annotation Sluice keeps the user's weights in.
func withoutRouteServices(u *unstructured.Unstructured) *unstructured.Unstructured {
	u = u.DeepCopy()
	routes, _, _ := unstructured.NestedSlice(u.Object, "spec", "routes")
	for _, r := range routes {
		delete(r.(map[string]any), "services")
	}
	_ = unstructured.SetNestedSlice(u.Object, routes, "spec", "routes")
	ann := u.GetAnnotations()
	delete(ann, traefik.ApexWeightsAnnotation)
	if len(ann) == 0 {
		ann = nil
	}
	u.SetAnnotations(ann)
	return u
}
