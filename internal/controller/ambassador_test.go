package controller_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
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

			var seen, shadow []int64
			services := map[string]bool{}
			stop := inBackground(t, func(ctx context.Context) {
				if w, err := mappingWeight(ctx, cl, ns, tc.name+"-canary"); err == nil && (len(seen) == 0 || seen[len(seen)-1] != w) {
					seen = append(seen, w)
				}
				if w, err := mappingWeight(ctx, cl, ns, tc.name+"-canary-shadow"); err == nil && (len(shadow) == 0 || shadow[len(shadow)-1] != w) {
					shadow = append(shadow, w)
				}
				if svc := mappingService(ctx, cl, ns, tc.name+"-canary"); svc != "" {
					services[svc] = true
				}
			})
			setImage(t, cl, ns, tc.name, "example.com/amb:2")
			waitPhase(t, cl, ns, tc.name, v1alpha1.PhaseSucceeded, 90*time.Second)
			stop()
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
	waitPhase(t, cl, ns, "abm", v1alpha1.PhaseInitialized, 60*time.Second)
	setImage(t, cl, ns, "abm", "example.com/abm:2")
	waitPhase(t, cl, ns, "abm", v1alpha1.PhaseWaitingPromotion, 60*time.Second)
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
