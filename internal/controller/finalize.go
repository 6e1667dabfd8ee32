package controller

import (
	"context"
	"fmt"
	"maps"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/engine"
	"github.com/sluice-dev/sluice/internal/router"
	"github.com/sluice-dev/sluice/internal/workload"
)

// finalize hands a deleted Canary's traffic back before the objects Sluice
// made are garbage collected. Which copy serves is decided by
// engine.DecideHandover: the user's Deployment when it runs the last good
// revision (scaled back to the primary's replicas and available within the
// progress deadline), else (or with spec.handBackOnDeletion: Target, the
// user's Deployment whatever it runs) the primary, orphaned so that it
// outlives the Canary. Then:
//
//  1. the apex Service is released (no longer owned by the Canary),
//     selecting the pods of the copy that serves;
//  2. the route is released too, sending everything to the apex Service;
//  3. the finalizer is removed; the primary (unless kept) and the
//     -primary/-canary Services go with the Canary.
func (r *CanaryReconciler) finalize(ctx context.Context, c *v1alpha1.Canary) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(c, Finalizer) {
		return ctrl.Result{}, nil
	}
	target, _, err := r.getTarget(ctx, c, false)
	if err != nil {
		return ctrl.Result{}, err
	}
	if target != nil {
		// Past the cache when it is not there: a primary kept by an
		// earlier try (orphaned, unlabelled) has left the cache, and
		// must still be found, or the apex Service would be pointed at
		// the target that cannot serve.
		primary, err := r.getFresh(ctx, types.NamespacedName{Namespace: c.Namespace, Name: workload.PrimaryName(target.Name)})
		if err != nil {
			return ctrl.Result{}, err
		}
		rev, _, err := r.revisionAndConfig(ctx, c, target)
		if err != nil {
			return ctrl.Result{}, err
		}
		h := engine.DecideHandover(engine.HandoverInput{Canary: c, Target: workload.Observe(target, rev),
			Primary: workload.Observe(primary, workload.PrimaryRevision(primary)), Now: r.now()})
		if h.ScaleTarget != nil {
			patch := client.MergeFrom(target.DeepCopy())
			target.Spec.Replicas = h.ScaleTarget
			if err := r.Client.Patch(ctx, target, patch, client.FieldOwner(v1alpha1.FieldOwner)); err != nil {
				return ctrl.Result{}, fmt.Errorf("scale deployment %s/%s back to %d: %w", target.Namespace, target.Name, *h.ScaleTarget, err)
			}
		}
		if h.Action == engine.HandoverWait {
			return ctrl.Result{RequeueAfter: h.RequeueAfter}, nil
		}
		selector := target.Spec.Selector.MatchLabels
		if h.Action == engine.HandoverKeepPrimary {
			if err := r.orphan(ctx, c, primary); err != nil {
				return ctrl.Result{}, err
			}
			if err := r.orphanCopies(ctx, c, primary); err != nil {
				return ctrl.Result{}, err
			}
			selector = primary.Spec.Selector.MatchLabels
		}
		if err := r.releaseApex(ctx, c, selector); err != nil {
			return ctrl.Result{}, err
		}
		apex := router.Backend{Kind: "Service", Name: workload.ServiceName(c), Namespace: c.Namespace, Port: &c.Spec.Service.Port, Weight: 1}
		route, err := r.router(c)
		if err != nil {
			return ctrl.Result{}, err
		}
		if err := route.Release(ctx, c, apex); err != nil {
			return ctrl.Result{}, err
		}
		if err := r.unlabelRouterObjects(ctx, c); err != nil {
			return ctrl.Result{}, err
		}
		if err := r.unlabel(ctx, c, target); err != nil {
			return ctrl.Result{}, err
		}
		if e := h.Event; e.Reason != "" {
			r.Recorder.Eventf(c, nil, e.Type(), e.Reason, "Finalize", "%s", e.Message)
		}
	}
	r.Checks.Forget(client.ObjectKeyFromObject(c))
	r.status.Forget(client.ObjectKeyFromObject(c))
	r.forgetMetrics(c)
	patch := client.MergeFrom(c.DeepCopy())
	controllerutil.RemoveFinalizer(c, Finalizer)
	if err := r.Client.Patch(ctx, c, patch, client.FieldOwner(v1alpha1.FieldOwner)); err != nil {
		return ctrl.Result{}, fmt.Errorf("remove finalizer of canary %s/%s: %w", c.Namespace, c.Name, err)
	}
	return ctrl.Result{}, nil
}

// unlabel takes Sluice's label off the target (see getTarget), if this
// Canary put it there.
func (r *CanaryReconciler) unlabel(ctx context.Context, c *v1alpha1.Canary, d *appsv1.Deployment) error {
	if d.Labels[workload.CanaryLabel] != c.Name {
		return nil
	}
	patch := client.MergeFromWithOptions(d.DeepCopy(), client.MergeFromWithOptimisticLock{})
	delete(d.Labels, workload.CanaryLabel)
	if err := r.Client.Patch(ctx, d, patch, client.FieldOwner(v1alpha1.FieldOwner)); err != nil {
		return fmt.Errorf("remove label %s from deployment %s/%s: %w", workload.CanaryLabel, d.Namespace, d.Name, err)
	}
	return nil
}

// orphan takes the Canary's ownership off a Deployment so that it outlives
// the Canary.
func (r *CanaryReconciler) orphan(ctx context.Context, c *v1alpha1.Canary, d *appsv1.Deployment) error {
	patch := client.MergeFromWithOptions(d.DeepCopy(), client.MergeFromWithOptimisticLock{})
	d.OwnerReferences = withoutOwner(d.OwnerReferences, c.UID)
	delete(d.Labels, workload.CanaryLabel)
	if err := r.Client.Patch(ctx, d, patch, client.FieldOwner(v1alpha1.FieldOwner)); err != nil {
		return fmt.Errorf("keep deployment %s/%s: %w", d.Namespace, d.Name, err)
	}
	return nil
}

// releaseApex makes the apex Service the user's again: selecting the
// target's pods, not owned by the Canary, without Sluice's label.
func (r *CanaryReconciler) releaseApex(ctx context.Context, c *v1alpha1.Canary, selector map[string]string) error {
	name := workload.ServiceName(c)
	var svc corev1.Service
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: name}, &svc); err != nil {
		return client.IgnoreNotFound(err)
	}
	patch := client.MergeFromWithOptions(svc.DeepCopy(), client.MergeFromWithOptimisticLock{})
	svc.Spec.Selector = maps.Clone(selector)
	svc.OwnerReferences = withoutOwner(svc.OwnerReferences, c.UID)
	delete(svc.Labels, workload.CanaryLabel)
	if err := r.Client.Patch(ctx, &svc, patch, client.FieldOwner(v1alpha1.FieldOwner)); err != nil {
		return fmt.Errorf("release service %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	return nil
}

func withoutOwner(refs []metav1.OwnerReference, uid types.UID) []metav1.OwnerReference {
	out := refs[:0:0]
	for _, o := range refs {
		if o.UID != uid {
			out = append(out, o)
		}
	}
	return out
}
