package controller_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/testenv"
)

// fakeGateway stands in for a Gateway API implementation's status writer:
// no Gateway controller runs on the local cluster in this package's tests
// (the real-proxy tests use Traefik). It writes the route's parent status
// for every new generation: Accepted=True when accept is set, else
// Accepted=False.
func fakeGateway(t *testing.T, cl client.Client, ns, name string, accept *atomic.Bool) {
	fakeParent(t, cl, ns, name, gwv1.ParentReference{Name: "public"}, "example.com/fake-gateway", "NotAllowedByListeners", accept)
}

// fakeParent is fakeGateway for any parent: a Gateway, or the Service of a
// mesh route, reported by controllerName, refusing with refusal.
func fakeParent(t *testing.T, cl client.Client, ns, name string, parent gwv1.ParentReference, controllerName, refusal string, accept *atomic.Bool) {
	inBackground(t, func(ctx context.Context) {
		var r gwv1.HTTPRoute
		if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &r); err != nil {
			return
		}
		status, reason := metav1.ConditionFalse, refusal
		if accept.Load() {
			status, reason = metav1.ConditionTrue, "Accepted"
		}
		cur := r.Status.Parents
		if len(cur) == 1 && len(cur[0].Conditions) == 1 && cur[0].Conditions[0].ObservedGeneration == r.Generation &&
			cur[0].Conditions[0].Status == status {
			return
		}
		r.Status.Parents = []gwv1.RouteParentStatus{{
			ParentRef:      parent,
			ControllerName: gwv1.GatewayController(controllerName),
			Conditions: []metav1.Condition{{Type: string(gwv1.RouteConditionAccepted), Status: status,
				Reason: reason, Message: "set by the test's fake " + controllerName, ObservedGeneration: r.Generation,
				LastTransitionTime: metav1.Now()}},
		}}
		_ = cl.Status().Update(ctx, &r)
	})
}

func TestGatewayMustAcceptTheRouteBeforeAStepCounts(t *testing.T) {
	_, ns, cl := setup(t)
	create(t, cl, app(ns, "gw", "example.com/gw:1", 1), canary(ns, "gw", weightStep(25), weightStep(75)))
	var accept atomic.Bool
	accept.Store(true)
	fakeGateway(t, cl, ns, "gw", &accept)
	waitPhase(t, cl, ns, "gw", v1alpha1.PhaseInitialized, 60*time.Second)

	accept.Store(false)
	setImage(t, cl, ns, "gw", "example.com/gw:2")
	heldWhileRefused(t, cl, ns, "gw", "does not accept the route")
	accept.Store(true)
	waitPhase(t, cl, ns, "gw", v1alpha1.PhaseSucceeded, 60*time.Second)
}

// heldWhileRefused waits until the release holds its first step with the
// parent's refusal (msg) in its status, and checks it does not move while
// refused.
func heldWhileRefused(t *testing.T, cl client.Client, ns, name, msg string) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, "step held while the parent refuses the route", func(ctx context.Context) error {
		c, err := getCanary(ctx, cl, ns, name)
		if err != nil {
			return err
		}
		if c.Status.CurrentStep != 0 || !strings.Contains(c.Status.Message, msg) {
			return fmt.Errorf("step %d: %s", c.Status.CurrentStep, c.Status.Message)
		}
		return nil
	})
	holdsStill(t, cl, ns, name, 3, func(_ context.Context, c *v1alpha1.Canary) error {
		if c.Status.CurrentStep != 0 || c.Status.Phase != v1alpha1.PhaseProgressing {
			return fmt.Errorf("release moved past a refused route: phase %s step %d", c.Status.Phase, c.Status.CurrentStep)
		}
		return nil
	})
}
