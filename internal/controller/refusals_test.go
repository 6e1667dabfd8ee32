package controller_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/testenv"
)

// stalledWith reports whether the Canary is Stalled=True with reason.
func stalledWith(c *v1alpha1.Canary, reason string) bool {
	st := meta.FindStatusCondition(c.Status.Conditions, v1alpha1.ConditionStalled)
	return st != nil && st.Status == metav1.ConditionTrue && st.Reason == reason
}

// waitStalledWith waits until the Canary is Stalled=True with reason and a
// message containing every one of words; it returns the condition. more,
// when set, adds what the test is watching to the report of a timeout.
func waitStalledWith(t *testing.T, cl client.Client, ns, name, reason string, timeout time.Duration, more func() string, words ...string) *metav1.Condition {
	t.Helper()
	var got *metav1.Condition
	testenv.Eventually(t, timeout, fmt.Sprintf("canary %s/%s Stalled %s", ns, name, reason), func(ctx context.Context) error {
		c, err := getCanary(ctx, cl, ns, name)
		if err != nil {
			return err
		}
		st := meta.FindStatusCondition(c.Status.Conditions, v1alpha1.ConditionStalled)
		extra := ""
		if more != nil {
			extra = "; " + more()
		}
		if st == nil || st.Status != metav1.ConditionTrue || st.Reason != reason {
			return fmt.Errorf("phase %s (%s: %s), Stalled %+v%s", c.Status.Phase, c.Status.Reason, c.Status.Message, st, extra)
		}
		for _, w := range words {
			if !strings.Contains(st.Message, w) {
				return fmt.Errorf("Stalled message %q does not say %q%s", st.Message, w, extra)
			}
		}
		got = st
		return nil
	})
	return got
}

// A backend whose group and kind the cluster does not serve (a CRD that is
// not installed, a typo in the kind) stalls the Canary with
// BackendKindUnknown naming the field, and no route is written; once the
// reference names a real Service the Canary initializes.
func TestUnknownBackendKindMovesNoTraffic(t *testing.T) {
	_, ns, cl := setup(t)
	cv := canary(ns, "kinds", weightStep(50))
	cv.Spec.Service.BackendRefs = &v1alpha1.PhaseBackendRefs{Canary: []v1alpha1.BackendRef{
		{Group: ptr.To("widgets.example.com"), Kind: ptr.To("Widget"), Name: "blue"},
	}}
	create(t, cl, app(ns, "kinds", "example.com/kinds:1", 1), cv)
	waitStalledWith(t, cl, ns, "kinds", "BackendKindUnknown", 60*time.Second, nil,
		"spec.service.backendRefs.canary[0]", "kind Widget", `group "widgets.example.com"`)
	if _, err := routeSplit(t.Context(), cl, ns, "kinds"); err == nil {
		t.Fatalf("an HTTPRoute was written while a backend's kind is unknown")
	}

	// A kind misspelt in the core group is just as unknown.
	got, err := getCanary(t.Context(), cl, ns, "kinds")
	if err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(got.DeepCopy())
	got.Spec.Service.BackendRefs.Canary[0] = v1alpha1.BackendRef{Kind: ptr.To("Servic"), Name: "blue", Port: ptr.To(int32(80))}
	if err := cl.Patch(t.Context(), got, patch); err != nil {
		t.Fatal(err)
	}
	waitStalledWith(t, cl, ns, "kinds", "BackendKindUnknown", 30*time.Second, nil,
		"spec.service.backendRefs.canary[0]", "kind Servic", `group ""`)
	if _, err := routeSplit(t.Context(), cl, ns, "kinds"); err == nil {
		t.Fatalf("an HTTPRoute was written while a backend's kind is unknown")
	}

	// Fixed: a Service that exists. The refusal lifts and the route is
	// written with it.
	create(t, cl, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "blue", Namespace: ns},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}})
	got, err = getCanary(t.Context(), cl, ns, "kinds")
	if err != nil {
		t.Fatal(err)
	}
	patch = client.MergeFrom(got.DeepCopy())
	got.Spec.Service.BackendRefs.Canary[0].Kind = ptr.To("Service")
	if err := cl.Patch(t.Context(), got, patch); err != nil {
		t.Fatal(err)
	}
	c := waitPhase(t, cl, ns, "kinds", v1alpha1.PhaseInitialized, 60*time.Second)
	if stalledWith(c, "BackendKindUnknown") {
		t.Errorf("still Stalled BackendKindUnknown after the fix: %+v", c.Status.Conditions)
	}
	expectSplit(t, cl, ns, "kinds", map[string]int32{"kinds-primary": 10000, "blue": 0})
}
