package controller_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/testenv"
	"github.com/sluice-dev/sluice/internal/workload"
)

// The controller caches only the Deployments that belong to Canaries: a
// target created after its Canary is found by a poll, labelled, cached and
// released; a Deployment no Canary targets never enters the cache; the
// label goes when the Canary is deleted.
func TestCacheHoldsOnlyCanaryDeployments(t *testing.T) {
	_, ns, cl := setup(t)
	// The Canary first: its Deployment does not exist yet, so no event
	// will ever say it appeared (it is not labelled when created).
	create(t, cl, canary(ns, "late", weightStep(50)))
	waitPhase(t, cl, ns, "late", v1alpha1.PhaseInitializing, 30*time.Second)
	create(t, cl, app(ns, "late", "example.com/late:1", 1), app(ns, "bystander", "example.com/bystander:1", 1))
	waitPhase(t, cl, ns, "late", v1alpha1.PhaseInitialized, 60*time.Second)

	var target appsv1.Deployment
	if err := cl.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "late"}, &target); err != nil {
		t.Fatal(err)
	}
	if got := target.Labels[workload.CanaryLabel]; got != "late" {
		t.Errorf("target label %s=%q, want %q", workload.CanaryLabel, got, "late")
	}
	for name, cached := range map[string]bool{"late": true, "late-primary": true, "bystander": false} {
		var d appsv1.Deployment
		err := mgrCache.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, &d)
		switch {
		case cached && err != nil:
			t.Errorf("deployment %s not in the controller's cache: %v", name, err)
		case !cached && !apierrors.IsNotFound(err):
			t.Errorf("deployment %s, which no Canary targets, is in the controller's cache (err %v)", name, err)
		}
	}
	var bystander appsv1.Deployment
	if err := cl.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "bystander"}, &bystander); err != nil {
		t.Fatal(err)
	}
	if _, has := bystander.Labels[workload.CanaryLabel]; has {
		t.Errorf("a Deployment no Canary targets was labelled: %v", bystander.Labels)
	}

	// The label taken off by hand comes back.
	patch := client.MergeFrom(target.DeepCopy())
	delete(target.Labels, workload.CanaryLabel)
	if err := cl.Patch(t.Context(), &target, patch); err != nil {
		t.Fatal(err)
	}
	setImage(t, cl, ns, "late", "example.com/late:2")
	waitPhase(t, cl, ns, "late", v1alpha1.PhaseSucceeded, 60*time.Second)
	if err := cl.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "late"}, &target); err != nil {
		t.Fatal(err)
	}
	if got := target.Labels[workload.CanaryLabel]; got != "late" {
		t.Errorf("after the label was removed and a release ran: label %q, want %q", got, "late")
	}

	var c v1alpha1.Canary
	if err := cl.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "late"}, &c); err != nil {
		t.Fatal(err)
	}
	if err := cl.Delete(t.Context(), &c); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, "label removed after the Canary is deleted", func(ctx context.Context) error {
		var d appsv1.Deployment
		if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: "late"}, &d); err != nil {
			return err
		}
		if v, has := d.Labels[workload.CanaryLabel]; has {
			return fmt.Errorf("label still %q", v)
		}
		return nil
	})
}
