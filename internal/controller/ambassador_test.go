package controller_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/testenv"
)

var mappingGVK = schema.GroupVersionKind{Group: "getambassador.io", Version: "v3alpha1", Kind: "Mapping"}

func ambassadorCanary(ns, name string, mappings []string, steps ...v1alpha1.Step) *v1alpha1.Canary {
	c := canary(ns, name, steps...)
	c.Spec.Router = v1alpha1.RouterSpec{Ambassador: &v1alpha1.AmbassadorRouter{Mappings: mappings}}
	return c
}

func stableMapping(ns, name, service string, extra map[string]any) *unstructured.Unstructured {
	spec := map[string]any{"hostname": "*", "prefix": "/" + name + "/", "service": service}
	for k, v := range extra {
		spec[k] = v
	}
	u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	u.SetGroupVersionKind(mappingGVK)
	u.SetNamespace(ns)
	u.SetName(name)
	return u
}

// mappingWeight is the canary Mapping's weight, -1 when it does not exist.
func mappingWeight(ctx context.Context, cl client.Client, ns, name string) (int64, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(mappingGVK)
	if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
		if apierrors.IsNotFound(err) {
			return -1, nil
		}
		return 0, err
	}
	w, _, _ := unstructured.NestedInt64(u.Object, "spec", "weight")
	return w, nil
}

// mappingService is a Mapping's spec.service, "" when it does not exist.
func mappingService(ctx context.Context, cl client.Client, ns, name string) string {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(mappingGVK)
	if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
		return ""
	}
	svc, _, _ := unstructured.NestedString(u.Object, "spec", "service")
	return svc
}

// Releases through Emissary Mappings, for an http service, an https one
// and a namespaced one with a port: the canary Mapping walks the weights
// with the service rewritten in the stable's form (scheme, namespace and
// port kept), and is gone at the end; the http release starts with a
// mirror step, whose shadow Mapping lives until the release ends; an
// abort zeroes and removes the canary Mapping too.
func TestAmbassadorRelease(t *testing.T) {
	_, ns, cl := setup(t)
	cases := []struct {
		name, service, canaryService string
		mirror                       bool
	}{
		{"amb-http", "http://amb-http", "http://amb-http-canary", true},
		{"amb-https", "https://amb-https:8443", "https://amb-https-canary:8443", false},
		{"amb-ns", "amb-ns." + ns + ".svc.cluster.local:8080", "amb-ns-canary." + ns + ".svc.cluster.local:8080", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			steps := []v1alpha1.Step{weightStep(20), pauseStep(time.Second), weightStep(40), pauseStep(time.Second)}
			if tc.mirror {
				steps = append([]v1alpha1.Step{{SetMirror: &v1alpha1.MirrorStep{Percent: 50}}, pauseStep(time.Second)}, steps...)
			}
			create(t, cl, stableMapping(ns, tc.name, tc.service, nil), app(ns, tc.name, "example.com/amb:1", 1),
				ambassadorCanary(ns, tc.name, []string{tc.name}, steps...))
			waitPhase(t, cl, ns, tc.name, v1alpha1.PhaseInitialized, 60*time.Second)

			list, item := unstructuredKind(mappingGVK)
			seenRec := recordStates(t, list, item, ns, tc.name+"-canary", weightOf)
			shadowRec := recordStates(t, list, item, ns, tc.name+"-canary-shadow", weightOf)
			servicesRec := recordStates(t, list, item, ns, tc.name+"-canary", func(o client.Object) (string, bool) {
				u, ok := o.(*unstructured.Unstructured)
				if !ok || u == nil {
					return "", false
				}
				svc, _, _ := unstructured.NestedString(u.Object, "spec", "service")
				return svc, true
			})
			setImage(t, cl, ns, tc.name, "example.com/amb:2")
			waitPhase(t, cl, ns, tc.name, v1alpha1.PhaseSucceeded, 90*time.Second)
			// The canary Mapping is deleted after its drain.
			testenv.Eventually(t, 30*time.Second, "the canary Mapping gone", func(ctx context.Context) error {
				if w, err := mappingWeight(ctx, cl, ns, tc.name+"-canary"); err != nil || w != -1 {
					return fmt.Errorf("weight %d (%v)", w, err)
				}
				return nil
			})
			seen, shadow := seenRec.states(), shadowRec.states()
			services := map[string]bool{}
			for _, svc := range servicesRec.states() {
				services[svc] = true
			}
			// -1: no canary Mapping; 0: zeroed and draining before it is deleted.
			if want := []int64{-1, 20, 40, 100, 0, -1}; !slices.Equal(seen, want) {
				t.Errorf("canary Mapping weights: %v, want %v", seen, want)
			}
			if len(services) != 1 || !services[tc.canaryService] {
				t.Errorf("canary Mapping services %v, want only %q", services, tc.canaryService)
			}
			wantShadow := []int64{-1}
			if tc.mirror {
				wantShadow = []int64{-1, 50, -1}
			}
			if !slices.Equal(shadow, wantShadow) {
				t.Errorf("shadow Mapping weights: %v, want %v", shadow, wantShadow)
			}
			if got := mappingService(t.Context(), cl, ns, tc.name); got != tc.service {
				t.Errorf("the stable Mapping's service changed: %q", got)
			}
			if tc.name != "amb-https" {
				return
			}
			setImage(t, cl, ns, tc.name, "example.com/amb:3")
			testenv.Eventually(t, 30*time.Second, "canary mapping at 20", func(ctx context.Context) error {
				if w, err := mappingWeight(ctx, cl, ns, tc.name+"-canary"); err != nil || w != 20 {
					return fmt.Errorf("weight %d (%v)", w, err)
				}
				return nil
			})
			request(t, cl, ns, tc.name, v1alpha1.RequestAbort)
			waitPhase(t, cl, ns, tc.name, v1alpha1.PhaseFailed, 30*time.Second)
			testenv.Eventually(t, 60*time.Second, "canary mapping gone after the abort", func(ctx context.Context) error {
				if w, err := mappingWeight(ctx, cl, ns, tc.name+"-canary"); err != nil || w != -1 {
					return fmt.Errorf("weight %d (%v)", w, err)
				}
				return nil
			})
			expectTargetReplicas(t, cl, ns, tc.name, 0)
		})
	}
}

// A stable Mapping that carries a weight is refused with a clear reason,
// and no canary Mapping is written.
func TestAmbassadorWeightedStableMappingIsRefused(t *testing.T) {
	_, ns, cl := setup(t)
	create(t, cl, stableMapping(ns, "heavy", "heavy", map[string]any{"weight": int64(30)}), app(ns, "heavy", "example.com/heavy:1", 1),
		ambassadorCanary(ns, "heavy", []string{"heavy"}, weightStep(20)))
	testenv.Eventually(t, 30*time.Second, "the reason in status", func(ctx context.Context) error {
		c, err := getCanary(ctx, cl, ns, "heavy")
		if err != nil {
			return err
		}
		if !strings.Contains(c.Status.Message, "already carries a weight") || !strings.Contains(c.Status.Message, "remove spec.weight from the stable Mapping") {
			return fmt.Errorf("%s: %s", c.Status.Phase, c.Status.Message)
		}
		return nil
	})
	if w, _ := mappingWeight(t.Context(), cl, ns, "heavy-canary"); w != -1 {
		t.Errorf("a canary mapping was written (weight %d)", w)
	}
}

// An A/B step through Emissary: a header-route copy of the Mapping while
// the release runs, gone after it.
func TestAmbassadorHeaderRouteStep(t *testing.T) {
	_, ns, cl := setup(t)
	v := "insider"
	create(t, cl, stableMapping(ns, "abm", "abm", nil), app(ns, "abm", "example.com/abm:1", 1),
		ambassadorCanary(ns, "abm", []string{"abm"},
			v1alpha1.Step{SetHeaderRoute: &v1alpha1.HeaderRoute{Match: []v1alpha1.HeaderMatch{{Name: "x-canary", Exact: &v}}}},
			untilPromoted()))
	releaseToPausedStep(t, cl, ns, "abm")
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(mappingGVK)
	if err := cl.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "abm-canary-headers"}, u); err != nil {
		t.Fatalf("header-route mapping: %v", err)
	}
	if h, _, _ := unstructured.NestedStringMap(u.Object, "spec", "headers"); h["x-canary"] != "insider" || u.Object["spec"].(map[string]any)["service"] != "abm-canary" {
		t.Errorf("header-route mapping spec %v", u.Object["spec"])
	}
	request(t, cl, ns, "abm", v1alpha1.RequestPromote)
	waitPhase(t, cl, ns, "abm", v1alpha1.PhaseSucceeded, 60*time.Second)
	if err := cl.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "abm-canary-headers"}, u); !apierrors.IsNotFound(err) {
		t.Errorf("header-route mapping still there after the release (%v)", err)
	}
}

// A gRPC Mapping (grpc: true) through a release with a header step: every
// copy Sluice writes (the header-route copy, the weighted canary copy)
// keeps grpc: true and every other field of the stable Mapping, with only
// the service rewritten to the canary's in the stable's form; the canary
// copy walks the weights and is gone at the end, as is the header copy,
// and the stable Mapping is untouched.
func TestAmbassadorGRPCMapping(t *testing.T) {
	_, ns, cl := setup(t)
	v := "beta"
	stable := stableMapping(ns, "amb-grpc", "amb-grpc:50051", map[string]any{
		"grpc": true, "prefix": "/echo.v1.Echo/", "rewrite": "/echo.v1.Echo/", "timeout_ms": int64(0),
	})
	create(t, cl, stable, app(ns, "amb-grpc", "example.com/grpc:1", 1),
		ambassadorCanary(ns, "amb-grpc", []string{"amb-grpc"},
			v1alpha1.Step{SetHeaderRoute: &v1alpha1.HeaderRoute{Match: []v1alpha1.HeaderMatch{{Name: "x-track", Exact: &v}}}},
			pauseStep(time.Second), weightStep(20), pauseStep(time.Second), weightStep(40), pauseStep(time.Second)))
	// The stable as the apiserver keeps it; a copy is that, service aside.
	stableSpec := func() map[string]any {
		t.Helper()
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(mappingGVK)
		if err := cl.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "amb-grpc"}, u); err != nil {
			t.Fatal(err)
		}
		return u.Object["spec"].(map[string]any)
	}
	kept := stableSpec()
	if kept["grpc"] != true {
		t.Fatalf("the apiserver did not keep grpc: true on the stable Mapping: %v", kept)
	}
	want := runtime.DeepCopyJSON(kept)
	want["service"] = "amb-grpc-canary:50051"
	waitPhase(t, cl, ns, "amb-grpc", v1alpha1.PhaseInitialized, 60*time.Second)

	var mu sync.Mutex
	var bad []string
	copies := map[string]int{} // samples of each copy
	// check compares a copy's spec with the stable's, less the fields the
	// copy is meant to change.
	check := func(name string, spec map[string]any, own ...string) {
		got := runtime.DeepCopyJSON(spec)
		for _, k := range own {
			delete(got, k)
		}
		copies[name]++
		if !equality.Semantic.DeepEqual(got, want) {
			bad = append(bad, fmt.Sprintf("%s: %v", name, spec))
		}
	}
	sample := func(ctx context.Context) {
		read := func(name string) map[string]any {
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(mappingGVK)
			if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
				return nil
			}
			spec, _ := u.Object["spec"].(map[string]any)
			return spec
		}
		canarySpec, headerSpec := read("amb-grpc-canary"), read("amb-grpc-canary-headers")
		mu.Lock()
		defer mu.Unlock()
		if canarySpec != nil {
			check("amb-grpc-canary", canarySpec, "weight")
		}
		if headerSpec != nil {
			check("amb-grpc-canary-headers", headerSpec, "headers")
		}
	}
	list, item := unstructuredKind(mappingGVK)
	weightsRec := recordStates(t, list, item, ns, "amb-grpc-canary", weightOf)
	stop := inBackground(t, sample)
	setImage(t, cl, ns, "amb-grpc", "example.com/grpc:2")
	waitPhase(t, cl, ns, "amb-grpc", v1alpha1.PhaseSucceeded, 90*time.Second)
	testenv.Eventually(t, 30*time.Second, "the copies gone", func(ctx context.Context) error {
		for _, name := range []string{"amb-grpc-canary", "amb-grpc-canary-headers"} {
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(mappingGVK)
			if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, u); !apierrors.IsNotFound(err) {
				return fmt.Errorf("%s: %v", name, err)
			}
		}
		return nil
	})
	stop()
	sample(t.Context())
	weights := weightsRec.states()

	mu.Lock()
	defer mu.Unlock()
	// -1: no canary copy; 0: zeroed and draining before it is deleted.
	if want := []int64{-1, 20, 40, 100, 0, -1}; !slices.Equal(weights, want) {
		t.Errorf("canary Mapping weights: %v, want %v", weights, want)
	}
	if copies["amb-grpc-canary"] == 0 || copies["amb-grpc-canary-headers"] == 0 {
		t.Errorf("samples of each copy: %v; the check proves nothing without both", copies)
	}
	if len(bad) > 0 {
		t.Errorf("%d samples of a copy that is not the stable gRPC Mapping with the canary's service, first: %s", len(bad), bad[0])
	}
	if after := stableSpec(); !equality.Semantic.DeepEqual(after, kept) {
		t.Errorf("the stable Mapping changed: %v, was %v", after, kept)
	}
}
