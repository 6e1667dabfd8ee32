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
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/testenv"
)

// What the controller cannot apply reaches the Canary's Ready condition
// (False, ApplyFailed, the apiserver's words), and observedGeneration is
// not moved to a spec that is not in force. The apiserver's own
// ResourceQuota admission refuses the Services here.
func TestApplyErrorReachesReadyAndKeepsObservedGeneration(t *testing.T) {
	_, ns, cl := setup(t)
	quota := limitQuota(t, cl, ns, "no-services", corev1.ResourceServices, "0")
	create(t, cl, app(ns, "quota", "example.com/quota:1", 1), canary(ns, "quota", weightStep(50)))

	readyFailed := func(c *v1alpha1.Canary) (*metav1.Condition, error) {
		r := meta.FindStatusCondition(c.Status.Conditions, v1alpha1.ConditionReady)
		if r == nil || r.Status != metav1.ConditionFalse || r.Reason != v1alpha1.ReasonApplyFailed {
			return nil, fmt.Errorf("phase %s (%s), Ready %+v", c.Status.Phase, c.Status.Reason, r)
		}
		if !strings.Contains(r.Message, "exceeded quota") {
			return nil, fmt.Errorf("Ready message %q does not say the quota refused the Service", r.Message)
		}
		return r, nil
	}
	testenv.Eventually(t, 60*time.Second, "Ready=False ApplyFailed", func(ctx context.Context) error {
		c, err := getCanary(ctx, cl, ns, "quota")
		if err != nil {
			return err
		}
		_, err = readyFailed(c)
		return err
	})

	// A spec change while the apply still fails: the Ready condition
	// says it was seen (its observedGeneration), the status does not
	// claim the new generation is in force.
	c, err := getCanary(t.Context(), cl, ns, "quota")
	if err != nil {
		t.Fatal(err)
	}
	before := c.Status.ObservedGeneration
	patch := client.MergeFrom(c.DeepCopy())
	c.Spec.ProgressDeadline = &metav1.Duration{Duration: 7 * time.Minute}
	if err := cl.Patch(t.Context(), c, patch); err != nil {
		t.Fatal(err)
	}
	gen := c.Generation
	if gen <= before {
		t.Fatalf("generation %d after a spec change, observed %d before it", gen, before)
	}
	testenv.Eventually(t, 60*time.Second, "the new generation seen but not in force", func(ctx context.Context) error {
		c, err := getCanary(ctx, cl, ns, "quota")
		if err != nil {
			return err
		}
		r, err := readyFailed(c)
		if err != nil {
			return err
		}
		if r.ObservedGeneration != gen {
			return fmt.Errorf("Ready observedGeneration %d, want %d", r.ObservedGeneration, gen)
		}
		if c.Status.ObservedGeneration >= gen {
			return fmt.Errorf("status.observedGeneration %d while generation %d is not applied: want it left at %d", c.Status.ObservedGeneration, gen, before)
		}
		return nil
	})

	// The quota gone, the apply goes through and the status says so.
	if err := cl.Delete(t.Context(), quota); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, "initialized once the Services can be created", func(ctx context.Context) error {
		c, err := getCanary(ctx, cl, ns, "quota")
		if err != nil {
			return err
		}
		r := meta.FindStatusCondition(c.Status.Conditions, v1alpha1.ConditionReady)
		if c.Status.Phase != v1alpha1.PhaseInitialized || r == nil || r.Status != metav1.ConditionTrue || c.Status.ObservedGeneration != gen {
			return fmt.Errorf("phase %s, Ready %+v, observedGeneration %d (want %d)", c.Status.Phase, r, c.Status.ObservedGeneration, gen)
		}
		return nil
	})
}
