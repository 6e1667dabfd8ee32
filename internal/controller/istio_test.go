package controller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/router/istio"
	"github.com/sluice-dev/sluice/internal/testenv"
	"github.com/sluice-dev/sluice/internal/workload"
)

// Releases through Istio on the real CRDs (no istiod or Envoy runs here):
// every version of the VirtualService is recorded, and its canary share
// walks the steps and ends at 0, in both shapes.
func TestIstioRelease(t *testing.T) {
	t.Run("owned", func(t *testing.T) {
		_, ns, cl := setup(t)
		cv := canary(ns, "shop", weightStep(20), pauseStep(time.Second), weightStep(60), pauseStep(time.Second))
		cv.Spec.Router = v1alpha1.RouterSpec{Istio: &v1alpha1.IstioRouter{Hosts: []string{"shop.example.com"}, Gateways: []string{"istio-system/public"},
			TrafficPolicy: &runtime.RawExtension{Raw: []byte(`{"loadBalancer":{"simple":"LEAST_REQUEST"}}`)}}}
		create(t, cl, app(ns, "shop", "example.com/shop:1", 1), cv)
		waitPhase(t, cl, ns, "shop", v1alpha1.PhaseInitialized, 60*time.Second)
		rec := recordIstio(t, ns, "shop", "split", "shop-canary")
		setImage(t, cl, ns, "shop", "example.com/shop:2")
		waitPhase(t, cl, ns, "shop", v1alpha1.PhaseSucceeded, 60*time.Second)
		if got, want := rec.states(), []int32{0, 20, 60, 100, 0}; !slices.Equal(got, want) {
			t.Errorf("canary shares of the VirtualService Sluice owns %v, want %v", got, want)
		}
		for _, name := range []string{"shop-primary", "shop-canary"} {
			dr := istioObject(t, cl, istio.DestinationRule, ns, name)
			if got := specJSON(t, dr); got != `{"host":"`+name+`","trafficPolicy":{"loadBalancer":{"simple":"LEAST_REQUEST"}}}` {
				t.Errorf("destinationrule %s: %s", name, got)
			}
		}
	})

	// The user's VirtualService and DestinationRule, while another writer
	// keeps changing the VirtualService's metadata (Sluice's updates
	// conflict and are retried): the split route's weights walk the steps
	// (an A/B step on a cookie and a mirror among them), every change of
	// the other writer is kept, and after the release both specs are byte
	// for byte the user's, but for the subsets Sluice gave the
	// DestinationRule.
	t.Run("in place", func(t *testing.T) {
		_, ns, cl := setup(t)
		vs, dr := istioUserObjects(t, ns)
		create(t, cl, vs, dr)
		vsBefore, drBefore := istioObject(t, cl, istio.VirtualService, ns, "front"), istioObject(t, cl, istio.DestinationRule, ns, "shop-all")

		// Both copies' pods carry service=shop-all, outside the
		// Deployment's selector: the user's Service shop-all, the
		// DestinationRule's host, selects them all.
		d := app(ns, "shop", "example.com/shop:1", 1)
		d.Spec.Template.Labels = map[string]string{"app": "shop", "service": "shop-all"} // app's selector shares its map
		create(t, cl, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "shop-all", Namespace: ns},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"service": "shop-all"}, Ports: []corev1.ServicePort{{Port: 80}}}})
		cv := canary(ns, "shop", v1alpha1.Step{SetHeaderRoute: &v1alpha1.HeaderRoute{Cookie: &v1alpha1.CookieMatch{Name: "shop-beta", Value: "1"}}},
			v1alpha1.Step{SetMirror: &v1alpha1.MirrorStep{Percent: 50}},
			weightStep(20), pauseStep(time.Second), weightStep(60), pauseStep(time.Second))
		cv.Spec.Router = v1alpha1.RouterSpec{Istio: &v1alpha1.IstioRouter{
			VirtualService:  &v1alpha1.IstioVirtualServiceRef{Name: "front", Routes: []string{"main"}},
			DestinationRule: &v1alpha1.IstioDestinationRuleRef{Name: "shop-all"},
		}}
		create(t, cl, d, cv)
		waitPhase(t, cl, ns, "shop", v1alpha1.PhaseInitialized, 60*time.Second)

		list, item := unstructuredKind(istio.GVK(istio.VirtualService))
		rec := recordStates(t, list, item, ns, "front", func(o client.Object) (string, bool) {
			u, ok := o.(*unstructured.Unstructured)
			if !ok || u == nil {
				return "", false
			}
			return inPlaceState(u), true
		})
		var landed int
		stopStorm := inBackground(t, func(ctx context.Context) {
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(istio.GVK(istio.VirtualService))
			if cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: "front"}, u) != nil {
				return
			}
			ann := u.GetAnnotations()
			ann["other-writer"] = fmt.Sprint(landed + 1)
			u.SetAnnotations(ann)
			if cl.Update(ctx, u) == nil {
				landed++
			}
		})
		setImage(t, cl, ns, "shop", "example.com/shop:2")
		waitPhase(t, cl, ns, "shop", v1alpha1.PhaseSucceeded, 60*time.Second)
		stopStorm()
		want := []string{"0", "0 headers", "0 headers mirror 50", "20 headers mirror 50", "60 headers mirror 50", "100", "0"}
		if got := rec.states(); !slices.Equal(got, want) {
			t.Errorf("the split route's states %q,\nwant %q", got, want)
		}

		vsAfter := istioObject(t, cl, istio.VirtualService, ns, "front")
		if a, b := specJSON(t, vsAfter), specJSON(t, vsBefore); a != b {
			t.Errorf("after the release the VirtualService spec is\n%s\nwas\n%s", a, b)
		}
		if landed < 10 || vsAfter.GetAnnotations()["other-writer"] != fmt.Sprint(landed) || vsAfter.GetAnnotations()["team"] != "shop" {
			t.Errorf("the other writer landed %d changes; the annotations are %v", landed, vsAfter.GetAnnotations())
		}
		drAfter := istioObject(t, cl, istio.DestinationRule, ns, "shop-all")
		subsets, _, _ := unstructured.NestedSlice(drAfter.Object, "spec", "subsets")
		wantSubsets := `[{"labels":{"track":"legacy"},"name":"legacy"},{"labels":{"app":"shop-primary"},"name":"stable"},{"labels":{"app":"shop"},"name":"canary"}]`
		if b, _ := json.Marshal(subsets); string(b) != wantSubsets {
			t.Errorf("subsets after the release %s, want %s", b, wantSubsets)
		}
		unstructured.RemoveNestedField(drAfter.Object, "spec", "subsets")
		unstructured.RemoveNestedField(drBefore.Object, "spec", "subsets")
		if a, b := specJSON(t, drAfter), specJSON(t, drBefore); a != b {
			t.Errorf("after the release the DestinationRule spec (subsets aside) is\n%s\nwas\n%s", a, b)
		}
	})
}

// istioUserObjects are the user's VirtualService, with a route Sluice
// splits (retries, timeout, corsPolicy, header manipulation) among
// others, and DestinationRule, with a policy and a subset of its own.
func istioUserObjects(t *testing.T, ns string) (vs, dr *unstructured.Unstructured) {
	t.Helper()
	docs := []string{`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: front, annotations: {team: shop}}
spec:
  hosts: [shop.example.com, shop-all]
  gateways: [istio-system/public, mesh]
  http:
  - name: health
    match: [{uri: {exact: /healthz}}]
    directResponse: {status: 200}
  - name: main
    match: [{uri: {prefix: /}}]
    retries: {attempts: 3, perTryTimeout: 2s, retryOn: 5xx}
    timeout: 10s
    corsPolicy: {allowOrigins: [{exact: "https://shop.example.com"}], allowMethods: [GET]}
    headers: {request: {set: {x-env: prod}}}
    route:
    - {destination: {host: shop-all, subset: stable}, weight: 100}
    - {destination: {host: shop-all, subset: canary}, weight: 0}
`, `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: shop-all}
spec:
  host: shop-all
  trafficPolicy: {connectionPool: {http: {http1MaxPendingRequests: 10}}}
  subsets: [{name: legacy, labels: {track: legacy}}]
`}
	var out []*unstructured.Unstructured
	for _, doc := range docs {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatal(err)
		}
		u.SetNamespace(ns)
		out = append(out, u)
	}
	return out[0], out[1]
}

func istioObject(t *testing.T, cl client.Client, kind, ns, name string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(istio.GVK(kind))
	if err := cl.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
		t.Fatal(err)
	}
	return u
}

func specJSON(t *testing.T, u *unstructured.Unstructured) string {
	t.Helper()
	b, err := json.Marshal(u.Object["spec"])
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// inPlaceState is the user's route main as Sluice splits it: the canary
// share, "headers" while Sluice's header route stands before it, and the
// mirror's percent.
func inPlaceState(u *unstructured.Unstructured) string {
	http, _, _ := unstructured.NestedSlice(u.Object, "spec", "http")
	share, headers, mirror := "?", "", ""
	for _, x := range http {
		rt := x.(map[string]any)
		switch rt["name"] {
		case "main" + istio.HeaderRouteSuffix:
			headers = " headers"
		case "main":
			var total, canary float64
			for _, d := range rt["route"].([]any) {
				dm := d.(map[string]any)
				w, _ := dm["weight"].(int64)
				total += float64(w)
				if sub, _, _ := unstructured.NestedString(dm, "destination", "subset"); sub == istio.CanarySubset {
					canary += float64(w)
				}
			}
			share = fmt.Sprint(int(math.Round(canary * 100 / total)))
			if p, ok, _ := unstructured.NestedFieldNoCopy(rt, "mirrorPercentage", "value"); ok {
				mirror = fmt.Sprintf(" mirror %v", p)
			}
		}
	}
	return share + headers + mirror
}

// recordIstio records the canary share of the route named route of the
// VirtualService Sluice owns: the weight of the destination whose host is
// canaryHost.
func recordIstio(t *testing.T, ns, name, route, canaryHost string) *stateRecorder[int32] {
	list, item := unstructuredKind(istio.GVK(istio.VirtualService))
	return recordShares(t, list, item, ns, name, func(o client.Object) (int32, bool) {
		u, ok := o.(*unstructured.Unstructured)
		if !ok || u == nil {
			return 0, false
		}
		http, _, _ := unstructured.NestedSlice(u.Object, "spec", "http")
		for _, x := range http {
			rt := x.(map[string]any)
			if rt["name"] != route {
				continue
			}
			var total, canary int64
			for _, d := range rt["route"].([]any) {
				dm := d.(map[string]any)
				w, _ := dm["weight"].(int64)
				total += w
				if host, _, _ := unstructured.NestedString(dm, "destination", "host"); host == canaryHost {
					canary += w
				}
			}
			if total > 0 {
				return int32(canary * 100 / total), true
			}
		}
		return 0, false
	})
}

// In place, the user's VirtualService and DestinationRule are labelled on
// Sluice's first read and watched: while a release waits for promotion,
// with nothing requeued, another writer's change to the split route's
// weights is undone. Deleting the Canary mid-release hands the routes
// back (weights 100 and 0), points both subsets at the pods the apex
// Service then selects, and takes the labels off.
func TestIstioInPlaceWatchedAndReleased(t *testing.T) {
	_, ns, cl := setup(t)
	vs, dr := istioUserObjects(t, ns)
	create(t, cl, vs, dr)
	vsBefore := istioObject(t, cl, istio.VirtualService, ns, "front")
	d := app(ns, "shop", "example.com/shop:1", 1)
	d.Spec.Template.Labels = map[string]string{"app": "shop", "service": "shop-all"}
	create(t, cl, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "shop-all", Namespace: ns},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"service": "shop-all"}, Ports: []corev1.ServicePort{{Port: 80}}}})
	cv := canary(ns, "shop", weightStep(40), untilPromoted())
	cv.Spec.Router = v1alpha1.RouterSpec{Istio: &v1alpha1.IstioRouter{
		VirtualService:  &v1alpha1.IstioVirtualServiceRef{Name: "front", Routes: []string{"main"}},
		DestinationRule: &v1alpha1.IstioDestinationRuleRef{Name: "shop-all"},
	}}
	create(t, cl, d, cv)
	for _, o := range []struct{ kind, name string }{{istio.VirtualService, "front"}, {istio.DestinationRule, "shop-all"}} {
		testenv.Eventually(t, 60*time.Second, o.kind+" labelled", func(ctx context.Context) error {
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(istio.GVK(o.kind))
			if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: o.name}, u); err != nil {
				return err
			}
			if got := u.GetLabels()[workload.CanaryLabel]; got != "shop" {
				return fmt.Errorf("label %s=%q", workload.CanaryLabel, got)
			}
			return nil
		})
	}

	releaseToPausedStep(t, cl, ns, "shop")
	share := func(ctx context.Context) (string, *unstructured.Unstructured, error) {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(istio.GVK(istio.VirtualService))
		if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: "front"}, u); err != nil {
			return "", nil, err
		}
		return inPlaceState(u), u, nil
	}
	var paused *unstructured.Unstructured
	testenv.Eventually(t, 30*time.Second, "canary share 40", func(ctx context.Context) error {
		s, u, err := share(ctx)
		if err == nil && s != "40" {
			err = fmt.Errorf("state %q", s)
		}
		paused = u
		return err
	})
	// Another writer takes the canary's share away.
	http, _, _ := unstructured.NestedSlice(paused.Object, "spec", "http")
	for _, x := range http[1].(map[string]any)["route"].([]any) {
		dest := x.(map[string]any)
		dest["weight"] = int64(100)
		if sub, _, _ := unstructured.NestedString(dest, "destination", "subset"); sub == istio.CanarySubset {
			dest["weight"] = int64(0)
		}
	}
	_ = unstructured.SetNestedSlice(paused.Object, http, "spec", "http")
	if err := cl.Update(t.Context(), paused); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "the share restored", func(ctx context.Context) error {
		if s, _, err := share(ctx); err != nil || s != "40" {
			return fmt.Errorf("state %q (%v)", s, err)
		}
		return nil
	})

	c, err := getCanary(t.Context(), cl, ns, "shop")
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Delete(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, "the Canary gone, its labels off", func(ctx context.Context) error {
		if _, err := getCanary(ctx, cl, ns, "shop"); !apierrors.IsNotFound(err) {
			return fmt.Errorf("canary still there (%v)", err)
		}
		for _, o := range []struct{ kind, name string }{{istio.VirtualService, "front"}, {istio.DestinationRule, "shop-all"}} {
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(istio.GVK(o.kind))
			if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: o.name}, u); err != nil {
				return err
			}
			if got, has := u.GetLabels()[workload.CanaryLabel]; has {
				return fmt.Errorf("%s: label %s=%q", o.kind, workload.CanaryLabel, got)
			}
		}
		return nil
	})
	if a, b := specJSON(t, istioObject(t, cl, istio.VirtualService, ns, "front")), specJSON(t, vsBefore); a != b {
		t.Errorf("after deletion the VirtualService spec is\n%s\nwas\n%s", a, b)
	}
	// Deleted mid-release with the canary's revision, the primary is kept
	// serving: the apex Service, and both subsets, select its pods.
	var apex corev1.Service
	if err := cl.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "shop"}, &apex); err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(apex.Spec.Selector)
	subsets, _, _ := unstructured.NestedSlice(istioObject(t, cl, istio.DestinationRule, ns, "shop-all").Object, "spec", "subsets")
	for _, x := range subsets[1:] { // legacy, the user's, stays first
		if got, _ := json.Marshal(x.(map[string]any)["labels"]); string(got) != string(want) {
			t.Errorf("subset %v after deletion selects %s, want the apex Service's %s", x.(map[string]any)["name"], got, want)
		}
	}
}
