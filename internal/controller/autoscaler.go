package controller

import (
	"context"
	"fmt"
	"maps"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/engine"
	"github.com/sluice-dev/sluice/internal/workload"
)

// The RBAC of the primary's copy of an autoscaler (controller-gen collects
// it into config/rbac/role.yaml):
//
// +kubebuilder:rbac:groups=autoscaling,resources=horizontalpodautoscalers,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=keda.sh,resources=scaledobjects,verbs=get;list;watch;create;update;patch;delete

// KEDA's pause annotation: a ScaledObject carrying it scales its target to
// the count given and stops autoscaling until it is removed.
const kedaPausedReplicas = "autoscaling.keda.sh/paused-replicas"

var scaledObjectGVK = schema.GroupVersionKind{Group: "keda.sh", Version: "v1alpha1", Kind: "ScaledObject"}

// autoscalerState is the Canary's autoscaler as observed.
type autoscalerState struct {
	// hpa is the user's HorizontalPodAutoscaler, so the user's
	// ScaledObject (one of them, per spec.autoscalerRef.kind).
	hpa *autoscalingv2.HorizontalPodAutoscaler
	so  *unstructured.Unstructured
	// min is the autoscaler's minimum (at least 1: a copy that serves
	// runs one replica at least).
	min int32
}

// PrimaryAutoscalerName is the name of the primary's copy of the
// autoscaler named name.
func PrimaryAutoscalerName(name string) string { return name + workload.PrimarySuffix }

// observeAutoscaler reads the autoscaler spec.autoscalerRef names and
// fills the engine's view: who owns the copies' counts, where the canary
// starts, the readiness floor. A missing autoscaler, or one that scales
// something else, blocks traffic with the field and the fix named.
func (r *CanaryReconciler) observeAutoscaler(ctx context.Context, c *v1alpha1.Canary, s *scope) error {
	ref := c.Spec.AutoscalerRef
	if ref == nil || s.target == nil {
		return nil
	}
	st := &autoscalerState{}
	var targetKind, targetName string
	switch ref.Kind {
	case "HorizontalPodAutoscaler":
		var h autoscalingv2.HorizontalPodAutoscaler
		if err := r.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: ref.Name}, &h); err != nil {
			if apierrors.IsNotFound(err) {
				return r.autoscalerBlocked(s, v1alpha1.ReasonAutoscalerNotFound, fmt.Sprintf("spec.autoscalerRef: HorizontalPodAutoscaler %s/%s not found; create it for Deployment %s, or remove autoscalerRef", c.Namespace, ref.Name, s.target.Name))
			}
			return fmt.Errorf("read horizontalpodautoscaler %s/%s: %w", c.Namespace, ref.Name, err)
		}
		st.hpa = &h
		st.min = 1
		if h.Spec.MinReplicas != nil && *h.Spec.MinReplicas > 0 {
			st.min = *h.Spec.MinReplicas
		}
		targetKind, targetName = h.Spec.ScaleTargetRef.Kind, h.Spec.ScaleTargetRef.Name
	case "ScaledObject":
		if r.APIReader == nil {
			return fmt.Errorf("canary %s/%s: a ScaledObject is read past the cache, and this controller has no APIReader", c.Namespace, c.Name)
		}
		so := &unstructured.Unstructured{}
		so.SetGroupVersionKind(scaledObjectGVK)
		if err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: ref.Name}, so); err != nil {
			if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) { // or KEDA is not installed
				return r.autoscalerBlocked(s, v1alpha1.ReasonAutoscalerNotFound, fmt.Sprintf("spec.autoscalerRef: ScaledObject %s/%s not found (is KEDA installed?); create it for Deployment %s, or remove autoscalerRef", c.Namespace, ref.Name, s.target.Name))
			}
			return fmt.Errorf("read scaledobject %s/%s: %w", c.Namespace, ref.Name, err)
		}
		st.so = so
		st.min = 1
		if n, ok, _ := unstructured.NestedInt64(so.Object, "spec", "minReplicaCount"); ok && n > 0 {
			st.min = int32(n)
		}
		targetKind, _, _ = unstructured.NestedString(so.Object, "spec", "scaleTargetRef", "kind")
		if targetKind == "" {
			targetKind = "Deployment" // KEDA's default
		}
		targetName, _, _ = unstructured.NestedString(so.Object, "spec", "scaleTargetRef", "name")
	}
	if targetKind != "Deployment" || targetName != s.target.Name {
		return r.autoscalerBlocked(s, v1alpha1.ReasonAutoscalerMismatch, fmt.Sprintf("spec.autoscalerRef: %s %s/%s scales %s %q, not the target Deployment %q; point its scaleTargetRef at the target", ref.Kind, c.Namespace, ref.Name, targetKind, targetName, s.target.Name))
	}
	s.autoscaler = st
	a := &engine.Autoscaling{RaiseBeforeSwitch: ref.CanaryReplicas != v1alpha1.CanaryReplicasAutoscaler}
	if p := s.primary; p != nil && p.Spec.Replicas != nil && *p.Spec.Replicas > 0 {
		// The primary's copy of the autoscaler sets the count a copy runs.
		s.obs.ReleaseReplicas = *p.Spec.Replicas
	}
	a.CanaryStart = s.obs.ReleaseReplicas
	if !a.RaiseBeforeSwitch {
		a.CanaryStart = st.min
	}
	s.obs.Autoscaler = a
	s.obs.Target.ReadyFloor, s.obs.Primary.ReadyFloor = st.min, st.min
	return nil
}

// autoscalerBlocked reports a problem of the autoscaler as what stops
// traffic (unless another was found first); the reconcile goes on.
func (r *CanaryReconciler) autoscalerBlocked(s *scope, reason, msg string) error {
	if s.obs.Blocked == "" {
		s.obs.Blocked, s.obs.BlockedReason = msg, reason
	}
	return nil
}

// applyAutoscaler keeps the primary's copy of the autoscaler (created once
// the primary exists; its settings copied again whenever no release runs,
// so at each promotion) and, for KEDA, pauses the user's ScaledObject at
// zero while the canary is scaled down and lets it scale during a release.
func (r *CanaryReconciler) applyAutoscaler(ctx context.Context, c *v1alpha1.Canary, s *scope, out engine.Output) error {
	st := s.autoscaler
	if c.Spec.AutoscalerRef == nil {
		return r.dropPrimaryHPAs(ctx, c)
	}
	if st == nil || s.primary == nil {
		return nil
	}
	sync := !releaseRuns(out.Status.Phase)
	switch {
	case st.hpa != nil:
		return r.applyPrimaryHPA(ctx, c, s, st.hpa, sync)
	case st.so != nil:
		if err := r.applyPrimaryScaledObject(ctx, c, s, st.so, sync); err != nil {
			return err
		}
		return r.pauseScaledObject(ctx, st.so, out)
	}
	return nil
}

// releaseRuns says whether a release is under way: the primary keeps the
// autoscaler settings it had until it is promoted.
func releaseRuns(p v1alpha1.CanaryPhase) bool {
	switch p {
	case v1alpha1.PhaseProgressing, v1alpha1.PhasePaused, v1alpha1.PhaseWaitingPromotion, v1alpha1.PhasePromoting:
		return true
	}
	return false
}

func (r *CanaryReconciler) applyPrimaryHPA(ctx context.Context, c *v1alpha1.Canary, s *scope, user *autoscalingv2.HorizontalPodAutoscaler, sync bool) error {
	name := PrimaryAutoscalerName(user.Name)
	var have autoscalingv2.HorizontalPodAutoscaler
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: name}, &have)
	switch {
	case err == nil && !sync:
		return nil
	case err != nil && !apierrors.IsNotFound(err):
		return fmt.Errorf("read horizontalpodautoscaler %s/%s: %w", c.Namespace, name, err)
	}
	spec := *user.Spec.DeepCopy()
	spec.ScaleTargetRef = autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: s.primary.Name}
	if err == nil && equality.Semantic.DeepEqual(have.Spec, spec) && have.Labels[workload.CanaryLabel] == c.Name {
		return nil
	}
	want := &autoscalingv2.HorizontalPodAutoscaler{
		TypeMeta:   metav1.TypeMeta{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.Namespace, Labels: copyLabels(user.Labels, c.Name)},
		Spec:       spec,
	}
	if err := controllerutil.SetControllerReference(c, want, r.Scheme); err != nil {
		return fmt.Errorf("horizontalpodautoscaler %s/%s: owner: %w", c.Namespace, name, err)
	}
	if err := r.Client.Patch(ctx, want, client.Apply, client.FieldOwner(v1alpha1.FieldOwner), client.ForceOwnership); err != nil {
		return fmt.Errorf("apply horizontalpodautoscaler %s/%s: %w", c.Namespace, name, err)
	}
	return nil
}

// copyLabels are the user's autoscaler's labels on its copy, with Sluice's.
func copyLabels(user map[string]string, canary string) map[string]string {
	out := maps.Clone(user)
	if out == nil {
		out = map[string]string{}
	}
	out[workload.CanaryLabel] = canary
	return out
}

func (r *CanaryReconciler) applyPrimaryScaledObject(ctx context.Context, c *v1alpha1.Canary, s *scope, user *unstructured.Unstructured, sync bool) error {
	name := PrimaryAutoscalerName(user.GetName())
	have := &unstructured.Unstructured{}
	have.SetGroupVersionKind(scaledObjectGVK)
	if r.APIReader == nil {
		return fmt.Errorf("canary %s/%s: no APIReader to read scaledobject %s", c.Namespace, c.Name, name)
	}
	err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: name}, have)
	exists := err == nil
	switch {
	case exists && !sync:
		return nil
	case !exists && !apierrors.IsNotFound(err):
		return fmt.Errorf("read scaledobject %s/%s: %w", c.Namespace, name, err)
	}
	spec, err := PrimaryScaledObjectSpec(user, s.primary.Name, c.Spec.AutoscalerRef.PrimaryScalerQueries)
	if err != nil {
		return fmt.Errorf("scaledobject %s/%s: %w", c.Namespace, user.GetName(), err)
	}
	if haveSpec, ok, _ := unstructured.NestedMap(have.Object, "spec"); exists && ok && equality.Semantic.DeepEqual(haveSpec, spec) {
		return nil
	}
	want := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	want.SetGroupVersionKind(scaledObjectGVK)
	want.SetName(name)
	want.SetNamespace(c.Namespace)
	want.SetLabels(copyLabels(user.GetLabels(), c.Name))
	if err := controllerutil.SetControllerReference(c, want, r.Scheme); err != nil {
		return fmt.Errorf("scaledobject %s/%s: owner: %w", c.Namespace, name, err)
	}
	if err := r.Client.Patch(ctx, want, client.Apply, client.FieldOwner(v1alpha1.FieldOwner), client.ForceOwnership); err != nil {
		return fmt.Errorf("apply scaledobject %s/%s: %w", c.Namespace, name, err)
	}
	return nil
}

// PrimaryScaledObjectSpec is the spec of the primary's copy of a
// ScaledObject: the user's, scaling the primary, with the triggers named
// in queries given those queries, and KEDA's own HPA renamed when the user
// named it (two ScaledObjects cannot share one).
func PrimaryScaledObjectSpec(user *unstructured.Unstructured, primary string, queries map[string]string) (map[string]any, error) {
	spec, _, err := unstructured.NestedMap(user.Object, "spec")
	if err != nil {
		return nil, fmt.Errorf("spec: %w", err)
	}
	spec = runtime.DeepCopyJSON(spec)
	if err := unstructured.SetNestedField(spec, primary, "scaleTargetRef", "name"); err != nil {
		return nil, err
	}
	if n, ok, _ := unstructured.NestedString(spec, "advanced", "horizontalPodAutoscalerConfig", "name"); ok && n != "" {
		if err := unstructured.SetNestedField(spec, PrimaryAutoscalerName(n), "advanced", "horizontalPodAutoscalerConfig", "name"); err != nil {
			return nil, err
		}
	}
	triggers, _, _ := unstructured.NestedSlice(spec, "triggers")
	for i, t := range triggers {
		tm, ok := t.(map[string]any)
		if !ok {
			continue
		}
		name, _ := tm["name"].(string)
		if q, ok := queries[name]; ok && name != "" {
			if err := unstructured.SetNestedField(tm, q, "metadata", "query"); err != nil {
				return nil, err
			}
			triggers[i] = tm
		}
	}
	if len(triggers) > 0 {
		if err := unstructured.SetNestedSlice(spec, triggers, "triggers"); err != nil {
			return nil, err
		}
	}
	return spec, nil
}

// pauseScaledObject holds the user's ScaledObject at zero (KEDA's
// paused-replicas) while the canary is scaled down, and lets it scale
// while a release runs: KEDA, unlike an HPA, would scale an idle target
// back up.
func (r *CanaryReconciler) pauseScaledObject(ctx context.Context, so *unstructured.Unstructured, out engine.Output) error {
	_, paused := so.GetAnnotations()[kedaPausedReplicas]
	var patch string
	switch {
	case out.Desired.TargetReplicas != nil && *out.Desired.TargetReplicas == 0 && !releaseRuns(out.Status.Phase) && !paused:
		patch = fmt.Sprintf(`{"metadata":{"annotations":{%q:"0"}}}`, kedaPausedReplicas)
	case releaseRuns(out.Status.Phase) && paused:
		patch = fmt.Sprintf(`{"metadata":{"annotations":{%q:null}}}`, kedaPausedReplicas)
	default:
		return nil
	}
	if err := r.Client.Patch(ctx, so, client.RawPatch(types.MergePatchType, []byte(patch)), client.FieldOwner(v1alpha1.FieldOwner)); err != nil {
		return fmt.Errorf("annotate scaledobject %s/%s (%s): %w", so.GetNamespace(), so.GetName(), kedaPausedReplicas, err)
	}
	return nil
}

// dropPrimaryHPAs deletes the primary's copies of an HPA a Canary no
// longer names (spec.autoscalerRef removed): the primary is then scaled
// by Sluice alone.
func (r *CanaryReconciler) dropPrimaryHPAs(ctx context.Context, c *v1alpha1.Canary) error {
	var list autoscalingv2.HorizontalPodAutoscalerList
	if err := r.Client.List(ctx, &list, client.InNamespace(c.Namespace), client.MatchingLabels{workload.CanaryLabel: c.Name}); err != nil {
		return fmt.Errorf("list horizontalpodautoscalers of canary %s/%s: %w", c.Namespace, c.Name, err)
	}
	for i := range list.Items {
		h := &list.Items[i]
		if !metav1.IsControlledBy(h, c) {
			continue
		}
		if err := r.Client.Delete(ctx, h); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("delete horizontalpodautoscaler %s/%s: %w", h.Namespace, h.Name, err)
		}
	}
	return nil
}
