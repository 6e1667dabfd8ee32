package controller_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/router/consul"
	"github.com/sluice-dev/sluice/internal/testenv"
)

// warnings counts the Warning Events of a reason recorded for a Canary,
// repetitions folded into one Event (its count or series) included.
func warnings(ctx context.Context, cl client.Client, ns, name, reason string) (int, error) {
	var list corev1.EventList
	if err := cl.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return 0, err
	}
	n := 0
	for _, e := range list.Items {
		if e.InvolvedObject.Kind != "Canary" || e.InvolvedObject.Name != name || e.Type != corev1.EventTypeWarning || e.Reason != reason {
			continue
		}
		switch {
		case e.Series != nil && e.Series.Count > 1:
			n += int(e.Series.Count)
		case e.Count > 1:
			n += int(e.Count)
		default:
			n++
		}
	}
	return n, nil
}

// waitStalled waits until the Canary is Stalled with reason while in phase,
// its message containing msgHas, and one Warning Event of that reason;
// then it changes the Canary's spec and waits for a decision on the new
// generation, after which there must still be exactly one such Event.
func waitStalled(t *testing.T, cl client.Client, ns, name string, phase v1alpha1.CanaryPhase, reason, msgHas string) {
	t.Helper()
	testenv.Eventually(t, 60*time.Second, fmt.Sprintf("%s/%s Stalled %s in %s with one Warning", ns, name, reason, phase), func(ctx context.Context) error {
		c, err := getCanary(ctx, cl, ns, name)
		if err != nil {
			return err
		}
		st := meta.FindStatusCondition(c.Status.Conditions, v1alpha1.ConditionStalled)
		if c.Status.Phase != phase || st == nil || st.Status != metav1.ConditionTrue || st.Reason != reason || !strings.Contains(st.Message, msgHas) {
			return fmt.Errorf("phase %s, Stalled %+v", c.Status.Phase, st)
		}
		if n, err := warnings(ctx, cl, ns, name, reason); err != nil || n != 1 {
			return fmt.Errorf("%d Warning events %s (%v)", n, reason, err)
		}
		return nil
	})
	c, err := getCanary(t.Context(), cl, ns, name)
	if err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(c.DeepCopy())
	c.Spec.ProgressDeadline = &metav1.Duration{Duration: 61 * time.Second}
	if err := cl.Patch(t.Context(), c, patch); err != nil {
		t.Fatal(err)
	}
	gen := c.Generation // as the patch left it
	testenv.Eventually(t, 30*time.Second, "a decision on the new generation", func(ctx context.Context) error {
		got, err := getCanary(ctx, cl, ns, name)
		if err != nil {
			return err
		}
		// The Stalled condition records the generation decided on; the
		// status's observedGeneration moves only once an apply succeeds,
		// which a refused configuration may prevent (Consul's splitter).
		if st := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionStalled); st == nil || st.ObservedGeneration < gen || st.Reason != reason {
			return fmt.Errorf("Stalled %+v, Ready %+v", st, meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady))
		}
		return nil
	})
	if n, err := warnings(t.Context(), cl, ns, name, reason); err != nil || n != 1 {
		t.Errorf("after another decision: %d Warning events %s (%v), want 1", n, reason, err)
	}
}

// Every router's refusal of its configuration stalls the Canary with a
// named reason and one Warning Event, Initializing included (issue 21,
// item 10: an Emissary Mapping naming another Service used to leave the
// Canary Initializing, Stalled=False, without an Event).
func TestRefusedConfigurationStallsEveryRouter(t *testing.T) {
	_, ns, cl := setup(t)
	t.Run("gateway-api", func(t *testing.T) {
		other := testenv.Get(t).Namespace(t)
		create(t, cl, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "shared", Namespace: other},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}})
		cv := canary(ns, "gw", weightStep(50))
		cv.Spec.Service.BackendRefs = &v1alpha1.PhaseBackendRefs{Canary: []v1alpha1.BackendRef{
			{Name: "shared", Namespace: ptr.To(other), Port: ptr.To(int32(80))},
		}}
		create(t, cl, app(ns, "gw", "example.com/gw:1", 1), cv)
		waitStalled(t, cl, ns, "gw", v1alpha1.PhaseInitializing, "ReferenceNotPermitted", "spec.service.backendRefs.canary[0]")
	})
	t.Run("traefik", func(t *testing.T) {
		route := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(`apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: front-tr}
spec:
  entryPoints: [web]
  routes:
  - match: Host(`+"`tr.example.com`"+`)
    kind: Rule
    services: [{kind: TraefikService, name: tr}]
`), &route.Object); err != nil {
			t.Fatal(err)
		}
		route.SetNamespace(ns)
		yes := "yes"
		create(t, cl, route, app(ns, "tr", "example.com/tr:1", 1), traefikCanary(ns, "tr",
			v1alpha1.TraefikRouter{CanaryMiddlewares: []v1alpha1.TraefikMiddlewareRef{{Name: "missing-tag"}}},
			v1alpha1.Step{SetHeaderRoute: &v1alpha1.HeaderRoute{Match: []v1alpha1.HeaderMatch{{Name: "X-Canary", Exact: &yes}}}},
			untilPromoted()))
		waitStalled(t, cl, ns, "tr", v1alpha1.PhaseInitializing, "MiddlewareNotFound", "spec.router.traefik.canaryMiddlewares[0]")
	})
	t.Run("ambassador", func(t *testing.T) {
		create(t, cl, stableMapping(ns, "amb", "https://somebody-else:8443", nil), app(ns, "amb", "example.com/amb:1", 1),
			ambassadorCanary(ns, "amb", []string{"amb"}, weightStep(20)))
		waitStalled(t, cl, ns, "amb", v1alpha1.PhaseInitializing, "MappingNotUsable", `names Service "somebody-else", not the stable Service "amb"`)
		if w, _ := mappingWeight(t.Context(), cl, ns, "amb-canary"); w != -1 {
			t.Errorf("a canary mapping was written (weight %d)", w)
		}
	})
	t.Run("consul", func(t *testing.T) {
		sp := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"splits": []any{
			map[string]any{"weight": int64(50), "serviceSubset": "stable"},
			map[string]any{"weight": int64(50), "service": "legacy"},
		}}}}
		sp.SetGroupVersionKind(consul.GVK(consul.Splitter))
		sp.SetNamespace(ns)
		sp.SetName("cs")
		c := canary(ns, "cs", weightStep(20))
		c.Spec.Router = v1alpha1.RouterSpec{Consul: &v1alpha1.ConsulRouter{WaitForSync: ptr.To(false)}}
		create(t, cl, sp, app(ns, "cs", "example.com/cs:1", 1), c)
		waitStalled(t, cl, ns, "cs", v1alpha1.PhaseInitializing, "SplitterNotOwned", "legacy/(default subset)")
	})
}

// A canary backend deleted mid-release never keeps its share: an abort
// takes the route back to the primary, leaving the missing backend out
// (issue 21, item 3: the route kept 50% on it).
func TestAbortTakesTrafficOffAMissingCanaryBackend(t *testing.T) {
	_, ns, cl := setup(t)
	create(t, cl, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "canary-b", Namespace: ns},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}})
	cv := canary(ns, "pay", weightStep(50), untilPromoted())
	cv.Spec.Service.BackendRefs = &v1alpha1.PhaseBackendRefs{Canary: []v1alpha1.BackendRef{{Name: "canary-b", Port: ptr.To(int32(80))}}}
	create(t, cl, app(ns, "pay", "example.com/pay:1", 1), cv)
	releaseToPausedStep(t, cl, ns, "pay")
	expectSplit(t, cl, ns, "pay", map[string]int32{"pay-primary": 5000, "canary-b": 5000})

	if err := cl.Delete(t.Context(), &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "canary-b", Namespace: ns}}); err != nil {
		t.Fatal(err)
	}
	// The request wakes the Canary (nothing watches a custom backend for
	// it); the missing backend is seen in that same decision.
	request(t, cl, ns, "pay", v1alpha1.RequestAbort)
	waitPhase(t, cl, ns, "pay", v1alpha1.PhaseFailed, 30*time.Second)
	expectSplit(t, cl, ns, "pay", map[string]int32{"pay-primary": 10000})
	testenv.Eventually(t, 30*time.Second, "missing canary backend reported", func(ctx context.Context) error {
		c, err := getCanary(ctx, cl, ns, "pay")
		if err != nil {
			return err
		}
		if st := meta.FindStatusCondition(c.Status.Conditions, v1alpha1.ConditionStalled); st == nil || st.Reason != "BackendNotFound" {
			return fmt.Errorf("Stalled %+v", st)
		}
		return nil
	})
}

// A target deleted mid-release ends the release, and the route takes the
// traffic back from its pods (the controller used to apply nothing
// without a target, so the route kept the canary's share on a copy that
// was gone).
func TestDeletedTargetMidReleaseTakesTrafficBack(t *testing.T) {
	_, ns, cl := setup(t)
	create(t, cl, app(ns, "gone", "example.com/gone:1", 1), canary(ns, "gone", weightStep(50), untilPromoted()))
	releaseToPausedStep(t, cl, ns, "gone")
	expectShare(t, cl, ns, "gone", 50)
	if err := cl.Delete(t.Context(), &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "gone", Namespace: ns}}); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, cl, ns, "gone", v1alpha1.PhaseFailed, 60*time.Second)
	expectShare(t, cl, ns, "gone", 0)
}
