package router

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// SpecHashAnnotation records the hash of what Sluice last applied to an
// object it owns (SpecHash), so an unchanged one is never written again.
const SpecHashAnnotation = "sluice.dev/route-spec-hash"

// SpecHash is the value of SpecHashAnnotation for what is applied: 16 hex
// digits of the SHA-256 of v as JSON.
func SpecHash(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("hash spec: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8]), nil
}

// Owned is an object of a router's kind that a Canary owns, handled as
// unstructured: its spec, labels and annotations (besides the hash).
type Owned struct {
	GVK         schema.GroupVersionKind
	Name        string
	Labels      map[string]string
	Annotations map[string]string
	Spec        map[string]any
}

// ApplyOwned server-side applies o in the Canary's namespace, controlled by
// the Canary, unless have (the object as read, nil when absent) already
// carries it: the hash of its spec and annotations is kept in
// SpecHashAnnotation.
func ApplyOwned(ctx context.Context, cl client.Client, scheme *runtime.Scheme, c *v1alpha1.Canary, have *unstructured.Unstructured, o Owned) error {
	hash, err := SpecHash([]any{o.Spec, o.Annotations})
	if err != nil {
		return fmt.Errorf("%s %s/%s: %w", o.GVK.Kind, c.Namespace, o.Name, err)
	}
	if have != nil && have.GetAnnotations()[SpecHashAnnotation] == hash {
		return nil
	}
	want := &unstructured.Unstructured{Object: map[string]any{"spec": o.Spec}}
	want.SetGroupVersionKind(o.GVK)
	want.SetNamespace(c.Namespace)
	want.SetName(o.Name)
	want.SetLabels(o.Labels)
	ann := map[string]string{SpecHashAnnotation: hash}
	maps.Copy(ann, o.Annotations)
	want.SetAnnotations(ann)
	if err := controllerutil.SetControllerReference(c, want, scheme); err != nil {
		return fmt.Errorf("%s %s/%s: owner: %w", o.GVK.Kind, c.Namespace, o.Name, err)
	}
	if err := cl.Patch(ctx, want, client.Apply, client.FieldOwner(v1alpha1.FieldOwner), client.ForceOwnership); err != nil {
		return fmt.Errorf("apply %s %s/%s: %w", o.GVK.Kind, c.Namespace, o.Name, err)
	}
	return nil
}

// Disown hands an object Sluice owned over to the user when a Canary is
// deleted: the Canary's owner reference, the labels (Deps.Labels' keys) and
// the spec hash come off, so it is neither garbage collected with the
// Canary nor cached as Sluice's.
func Disown(o metav1.Object, c *v1alpha1.Canary, labels map[string]string) {
	var owners []metav1.OwnerReference
	for _, ref := range o.GetOwnerReferences() {
		if ref.UID != c.UID {
			owners = append(owners, ref)
		}
	}
	o.SetOwnerReferences(owners)
	l := o.GetLabels()
	for k := range labels {
		delete(l, k)
	}
	o.SetLabels(l)
	ann := o.GetAnnotations()
	delete(ann, SpecHashAnnotation)
	o.SetAnnotations(ann)
}

// OwnedBy reports whether the Canary is among an object's owners.
func OwnedBy(o metav1.Object, c *v1alpha1.Canary) bool {
	for _, ref := range o.GetOwnerReferences() {
		if ref.UID == c.UID {
			return true
		}
	}
	return false
}
