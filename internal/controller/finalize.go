package controller

import (
	"context"
	"fmt"
	"maps"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/router"
	"github.com/sluice-dev/sluice/internal/workload"
)

// finalize hands a deleted Canary's traffic back to the user's Deployment
// before the objects Sluice made are garbage collected:
//
//  1. the target is scaled back to the primary's replicas and must become
//     available; if it is not within the progress deadline (its template
//     cannot serve), the primary is kept instead: orphaned, it outlives the
//     Canary and the apex Service keeps selecting it;
//  2. the apex Service is released (no longer owned by the Canary) with its
//     selector back on the target's pods;
//  3. the HTTPRoute is released too, sending everything to the apex
//     Service;
//  4. the finalizer is removed; the primary copy and the -primary/-canary
//     Services go with the Canary.
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
		want := int32(1)
		if primary != nil && primary.Spec.Replicas != nil && *primary.Spec.Replicas > 0 {
			want = *primary.Spec.Replicas
		}
		if target.Spec.Replicas == nil || *target.Spec.Replicas < want {
			patch := client.MergeFrom(target.DeepCopy())
			target.Spec.Replicas = &want
			if err := r.Client.Patch(ctx, target, patch, client.FieldOwner(FieldOwner)); err != nil {
				return ctrl.Result{}, fmt.Errorf("scale deployment %s/%s back to %d: %w", target.Namespace, target.Name, want, err)
			}
			return ctrl.Result{RequeueAfter: time.Second}, nil
		}
		w := workload.Observe(target, "")
		available := w.Current && w.UpdatedReplicas >= w.Replicas && w.AvailableReplicas >= w.Replicas
		deadline := c.DeletionTimestamp.Add(deletionDeadline(c))
		if !available && time.Now().Before(deadline) {
			return ctrl.Result{RequeueAfter: time.Second}, nil
		}
		selector := target.Spec.Selector.MatchLabels
		if !available {
			// The Deployment's own template cannot serve (a failed release,
			// say): keep the stable primary serving instead, no longer
			// owned by the Canary, so nothing is lost.
			if primary == nil {
				r.Recorder.Eventf(c, nil, corev1.EventTypeWarning, "HandoverUnready", "Finalize",
					"deployment %s/%s not available %s after deletion and there is no primary to keep", target.Namespace, target.Name, deletionDeadline(c))
			} else {
				if err := r.orphan(ctx, c, primary); err != nil {
					return ctrl.Result{}, err
				}
				selector = primary.Spec.Selector.MatchLabels
				r.Recorder.Eventf(c, nil, corev1.EventTypeWarning, "PrimaryKept", "Finalize",
					"deployment %s/%s not available %s after deletion; %s keeps serving and is no longer managed by Sluice", target.Namespace, target.Name, deletionDeadline(c), primary.Name)
			}
		}
		if err := r.releaseApex(ctx, c, selector); err != nil {
			return ctrl.Result{}, err
		}
		apex := router.Backend{Kind: "Service", Name: workload.ServiceName(c), Namespace: c.Namespace, Port: &c.Spec.Service.Port, Weight: 1}
		if err := r.router(c).Release(ctx, c, apex); err != nil {
			return ctrl.Result{}, err
		}
		if err := r.unlabel(ctx, c, target); err != nil {
			return ctrl.Result{}, err
		}
		r.Recorder.Eventf(c, nil, corev1.EventTypeNormal, "HandedBack", "Finalize",
			"traffic handed back to deployment %s/%s (%d replicas) through Service %s", target.Namespace, target.Name, want, workload.ServiceName(c))
	}
	r.Checks.Forget(client.ObjectKeyFromObject(c))
	r.written.forget(client.ObjectKeyFromObject(c))
	r.held.forget(client.ObjectKeyFromObject(c))
	r.forgetMetrics(c)
	patch := client.MergeFrom(c.DeepCopy())
	controllerutil.RemoveFinalizer(c, Finalizer)
	if err := r.Client.Patch(ctx, c, patch, client.FieldOwner(FieldOwner)); err != nil {
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
	if err := r.Client.Patch(ctx, d, patch, client.FieldOwner(FieldOwner)); err != nil {
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
	if err := r.Client.Patch(ctx, d, patch, client.FieldOwner(FieldOwner)); err != nil {
		return fmt.Errorf("keep deployment %s/%s: %w", d.Namespace, d.Name, err)
	}
	return nil
}

func deletionDeadline(c *v1alpha1.Canary) time.Duration {
	if c.Spec.ProgressDeadline != nil && c.Spec.ProgressDeadline.Duration > 0 {
		return c.Spec.ProgressDeadline.Duration
	}
	return 10 * time.Minute
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
	if err := r.Client.Patch(ctx, &svc, patch, client.FieldOwner(FieldOwner)); err != nil {
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
