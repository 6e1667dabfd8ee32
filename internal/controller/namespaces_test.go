package controller_test

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/controller"
	"github.com/sluice-dev/sluice/internal/routers"
	"github.com/sluice-dev/sluice/internal/testenv"
)

// A controller started with --watch-namespaces handles the Canaries of
// those namespaces only: one in another namespace, created first, is
// never touched (no status, no primary copy), while the watched one is
// initialized.
func TestWatchNamespaces(t *testing.T) {
	c, watched, cl := setup(t)
	other := c.Namespace(t)
	instance := "watch-" + watched
	testenv.StartController(t, c.ControllerConfig(t), controller.ManagerConfig{
		Manager:    ctrl.Options{Scheme: scheme},
		InstanceID: instance,
		Namespaces: []string{watched},
		TargetPoll: 2 * time.Second,
		Options:    controller.Options{Workers: 1},
		Routers:    routers.All(),
	})
	mine := func(ns string) *v1alpha1.Canary {
		cv := canary(ns, "shop", weightStep(50))
		cv.Labels[controller.InstanceLabel] = instance
		return cv
	}
	outside := mine(other)
	create(t, cl, app(other, "shop", "example.com/shop:1", 1), outside)
	inside := mine(watched)
	create(t, cl, app(watched, "shop", "example.com/shop:1", 1), inside)
	t.Cleanup(func() { deleteCanaries(t, cl, watched, instance) })
	// The outside one carries no finalizer (it was never reconciled), so
	// its namespace can go without a controller.

	waitPhase(t, cl, watched, "shop", v1alpha1.PhaseInitialized, 60*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got v1alpha1.Canary
	if err := cl.Get(ctx, client.ObjectKeyFromObject(outside), &got); err != nil {
		t.Fatal(err)
	}
	if got.Status.Phase != "" || len(got.Finalizers) > 0 {
		t.Errorf("the Canary outside the watched namespace was handled: phase %q, finalizers %v", got.Status.Phase, got.Finalizers)
	}
	if err := cl.Get(ctx, client.ObjectKey{Namespace: other, Name: "shop-primary"}, &appsv1.Deployment{}); !apierrors.IsNotFound(err) {
		t.Errorf("a primary copy was made outside the watched namespace (%v)", err)
	}
}
