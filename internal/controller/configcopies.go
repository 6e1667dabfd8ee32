package controller

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/workload"
)

// configReadTimeout bounds each read of a ConfigMap's or Secret's data
// past the cache.
const configReadTimeout = 10 * time.Second

// isolateConfig gives a primary about to be written its own copies of the
// ConfigMaps and Secrets its template references (see workload.CopyName):
// each copy is created when missing, the template is rewritten to read
// the copies, and the primary's CopiesAnnotation lists them. hashes are
// the data hashes of the revision the template is built from.
//
// From the target (exact), a copy is made from the user's object only if
// its data still hashes to the revision's: otherwise the object changed
// after the revision was computed, and the error makes the next reconcile
// see the new revision. Restoring a recorded revision (not exact), a copy
// that is gone and cannot be made again (the user's object holds other
// data now) leaves that reference on the user's object, as before copies
// existed.
func (r *CanaryReconciler) isolateConfig(ctx context.Context, c *v1alpha1.Canary, want *appsv1.Deployment, hashes map[string]string, exact bool) error {
	names := map[string]string{}
	var copies []string
	for _, ref := range slices.Sorted(maps.Keys(hashes)) {
		name := workload.CopyName(want.Name, ref, hashes[ref])
		ok, err := r.ensureCopy(ctx, c, ref, name, hashes[ref], exact)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		kind, _, _ := strings.Cut(ref, "/")
		names[ref] = name
		copies = append(copies, kind+"/"+name)
	}
	workload.RewriteConfigRefs(&want.Spec.Template, names)
	if len(copies) > 0 {
		want.Annotations[workload.CopiesAnnotation] = strings.Join(copies, ",")
	}
	return nil
}

// ensureCopy makes sure the copy name of ref (whose data must hash to
// hash) exists; false when there is no copy to read (see isolateConfig).
// The cache holds every ConfigMap and Secret, stripped to a hash of its
// data, which is enough to know a copy is there and holds that data; the
// data itself is read past the cache, only when a copy is made.
func (r *CanaryReconciler) ensureCopy(ctx context.Context, c *v1alpha1.Canary, ref, name, hash string, exact bool) (bool, error) {
	kind, orig, _ := strings.Cut(ref, "/")
	have, src := newConfigObject(kind), newConfigObject(kind)
	err := r.Client.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: name}, have)
	switch {
	case err == nil:
		if have.GetLabels()[workload.CanaryLabel] != c.Name || workload.DataHashOf(have) != hash {
			return false, fmt.Errorf("%s %s/%s is in the way of the primary's copy of %s: it is not Sluice's copy for canary %s", kind, c.Namespace, name, orig, c.Name)
		}
		return true, nil
	case !apierrors.IsNotFound(err):
		return false, fmt.Errorf("read %s %s/%s: %w", kind, c.Namespace, name, err)
	}
	if r.APIReader == nil {
		return false, fmt.Errorf("copy %s %s/%s: the reconciler has no APIReader to read its data past the cache", kind, c.Namespace, orig)
	}
	rctx, cancel := context.WithTimeout(ctx, configReadTimeout)
	defer cancel()
	err = r.APIReader.Get(rctx, types.NamespacedName{Namespace: c.Namespace, Name: orig}, src)
	switch {
	case apierrors.IsNotFound(err) && !exact:
		return false, nil
	case err != nil:
		return false, fmt.Errorf("read %s %s/%s to copy it for the primary: %w", kind, c.Namespace, orig, err)
	}
	var cp client.Object
	switch o := src.(type) {
	case *corev1.ConfigMap:
		if got := workload.ConfigMapHash(o); got != hash {
			return false, changed(exact, kind, c.Namespace, orig, got, hash)
		}
		cp = workload.ConfigMapCopy(o, name, c.Name)
	case *corev1.Secret:
		if !workload.CopyableSecret(o) {
			return false, nil
		}
		if got := workload.SecretHash(o); got != hash {
			return false, changed(exact, kind, c.Namespace, orig, got, hash)
		}
		cp = workload.SecretCopy(o, name, c.Name)
	}
	if err := controllerutil.SetControllerReference(c, cp, r.Scheme); err != nil {
		return false, fmt.Errorf("%s %s/%s: owner: %w", kind, c.Namespace, name, err)
	}
	if err := r.Client.Create(ctx, cp, client.FieldOwner(v1alpha1.FieldOwner)); err != nil && !apierrors.IsAlreadyExists(err) {
		return false, fmt.Errorf("create %s %s/%s (the primary's copy of %s): %w", kind, c.Namespace, name, orig, err)
	}
	log.FromContext(ctx).V(1).Info("Config copied for the primary", kind, orig, "copy", name)
	return true, nil
}

// changed is the answer when a user's object no longer holds the data of
// the revision: an error from the target (retry), no copy on a restore.
func changed(exact bool, kind, ns, name, got, want string) error {
	if !exact {
		return nil
	}
	return fmt.Errorf("%s %s/%s changed since its revision was computed (data hash %s, expected %s): the next reconcile releases the new data", kind, ns, name, got, want)
}

func newConfigObject(kind string) client.Object {
	if kind == "secret" {
		return &corev1.Secret{}
	}
	return &corev1.ConfigMap{}
}

// collectCopies deletes the Canary's copies that nothing may read again:
// neither the primary (its CopiesAnnotation, and the copies of the
// target's current data, which a primary just written from it reads) nor
// a primary restored from a kept record. Only deletions are written.
func (r *CanaryReconciler) collectCopies(ctx context.Context, c *v1alpha1.Canary, s *scope, kept []v1alpha1.CanaryRevision) error {
	primary := workload.PrimaryName(c.Spec.TargetRef.Name)
	keep := map[string]bool{}
	mark := func(refs []string) {
		for _, ref := range refs {
			keep[ref] = true
		}
	}
	if s.primary != nil {
		if a := s.primary.Annotations[workload.CopiesAnnotation]; a != "" {
			mark(strings.Split(a, ","))
		}
	}
	mark(workload.CopyRefs(primary, s.configHashes))
	for _, rec := range kept {
		mark(workload.CopyRefs(primary, workload.ConfigHashes(rec.Spec.Config)))
	}
	sel := client.MatchingLabels{workload.CanaryLabel: c.Name}
	var cms corev1.ConfigMapList
	if err := r.Client.List(ctx, &cms, client.InNamespace(c.Namespace), sel); err != nil {
		return fmt.Errorf("list configmaps of canary %s/%s: %w", c.Namespace, c.Name, err)
	}
	var secs corev1.SecretList
	if err := r.Client.List(ctx, &secs, client.InNamespace(c.Namespace), sel); err != nil {
		return fmt.Errorf("list secrets of canary %s/%s: %w", c.Namespace, c.Name, err)
	}
	var garbage []client.Object
	for i := range cms.Items {
		garbage = append(garbage, &cms.Items[i])
	}
	for i := range secs.Items {
		garbage = append(garbage, &secs.Items[i])
	}
	for _, o := range garbage {
		kind := "configmap"
		if _, ok := o.(*corev1.Secret); ok {
			kind = "secret"
		}
		if keep[kind+"/"+o.GetName()] || o.GetAnnotations()[workload.CopyOfAnnotation] == "" || !metav1.IsControlledBy(o, c) {
			continue
		}
		uid := o.GetUID()
		if err := r.Client.Delete(ctx, o, client.Preconditions{UID: &uid}); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("delete %s %s/%s (an unused copy): %w", kind, o.GetNamespace(), o.GetName(), err)
		}
	}
	return nil
}

// orphanCopies lets the copies a kept primary reads outlive the Canary
// (see finalize): no longer owned by it, nor labelled.
func (r *CanaryReconciler) orphanCopies(ctx context.Context, c *v1alpha1.Canary, primary *appsv1.Deployment) error {
	a := primary.Annotations[workload.CopiesAnnotation]
	if a == "" {
		return nil
	}
	for _, ref := range strings.Split(a, ",") {
		kind, name, _ := strings.Cut(ref, "/")
		o := newConfigObject(kind)
		if err := r.Client.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: name}, o); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return fmt.Errorf("read %s %s/%s: %w", kind, c.Namespace, name, err)
		}
		if !metav1.IsControlledBy(o, c) {
			continue
		}
		patch := client.MergeFromWithOptions(o.DeepCopyObject().(client.Object), client.MergeFromWithOptimisticLock{})
		o.SetOwnerReferences(withoutOwner(o.GetOwnerReferences(), c.UID))
		labels := o.GetLabels()
		delete(labels, workload.CanaryLabel)
		o.SetLabels(labels)
		if err := r.Client.Patch(ctx, o, patch, client.FieldOwner(v1alpha1.FieldOwner)); err != nil {
			return fmt.Errorf("keep %s %s/%s for the kept primary: %w", kind, c.Namespace, name, err)
		}
	}
	return nil
}
