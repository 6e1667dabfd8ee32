package router

import (
	"context"
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// Backends resolves the phases' backends: spec.service.backendRefs where
// given, else the generated <svc>-primary / <svc>-canary Services.
func Backends(c *v1alpha1.Canary, serviceName string) (primary, canary []Backend) {
	def := func(name string) []Backend {
		return []Backend{{Kind: "Service", Name: name, Namespace: c.Namespace, Port: &c.Spec.Service.Port, Weight: 1}}
	}
	primary, canary = def(serviceName+"-primary"), def(serviceName+"-canary")
	if refs := c.Spec.Service.BackendRefs; refs != nil {
		if len(refs.Primary) > 0 {
			primary = resolve(c, refs.Primary)
		}
		if len(refs.Canary) > 0 {
			canary = resolve(c, refs.Canary)
		}
	}
	return primary, canary
}

func resolve(c *v1alpha1.Canary, refs []v1alpha1.BackendRef) []Backend {
	out := make([]Backend, 0, len(refs))
	for _, r := range refs {
		out = append(out, Backend{Group: r.GetGroup(), Kind: r.GetKind(), Name: r.Name, Namespace: r.GetNamespace(c.Namespace),
			Port: r.Port, Weight: r.GetWeight(), Filters: r.Filters})
	}
	return out
}

// KindForbiddenError says the controller may not read a backend's kind:
// its RBAC lacks Verbs on Resource cluster-wide, so an informer for it
// could never sync. A reader given to CheckBackends returns it instead of
// waiting for such an informer.
type KindForbiddenError struct {
	// Group and Kind are the backend's; Resource is the kind's resource,
	// with its group ("serviceentries.networking.istio.io").
	Group, Kind, Resource string
	// Verbs are the verbs the controller lacks (list, watch).
	Verbs []string
}

func (e *KindForbiddenError) Error() string {
	return fmt.Sprintf("the controller may not %s %s (kind %s in group %q) cluster-wide",
		strings.Join(e.Verbs, " or "), e.Resource, e.Kind, e.Group)
}

// CheckBackends verifies that every user-supplied backend exists and that a
// reference into another namespace is allowed by a ReferenceGrant there.
// It returns a reason and a message naming the backend and the fix, or two
// empty strings. objects answers existence (metadata) checks; grants lists
// ReferenceGrants; both should be informer caches.
func CheckBackends(ctx context.Context, objects, grants client.Reader, mapper meta.RESTMapper, c *v1alpha1.Canary, routeKind string, phases map[string][]Backend) (string, string, error) {
	for _, phase := range []string{"primary", "canary"} {
		for i, b := range phases[phase] {
			field := fmt.Sprintf("spec.service.backendRefs.%s[%d]", phase, i)
			gvk, err := backendGVK(mapper, b)
			if err != nil {
				return v1alpha1.ReasonBackendKindUnknown, fmt.Sprintf("%s: the cluster serves no kind %s in group %q; install its CRD or fix group/kind", field, b.Kind, b.Group), nil
			}
			obj := &metav1.PartialObjectMetadata{}
			obj.SetGroupVersionKind(gvk)
			err = objects.Get(ctx, client.ObjectKey{Namespace: b.Namespace, Name: b.Name}, obj)
			var forbidden *KindForbiddenError
			switch {
			case errors.As(err, &forbidden):
				return v1alpha1.ReasonBackendKindForbidden, fmt.Sprintf("%s: %v; grant the controller's ClusterRole %s on %s",
					field, forbidden, strings.Join(forbidden.Verbs, " and "), forbidden.Resource), nil
			case apierrors.IsNotFound(err):
				return v1alpha1.ReasonBackendNotFound, fmt.Sprintf("%s: %s %s/%s not found; create it or fix the reference", field, b.Kind, b.Namespace, b.Name), nil
			case err != nil:
				return "", "", fmt.Errorf("canary %s/%s: check backend %s %s/%s: %w", c.Namespace, c.Name, b.Kind, b.Namespace, b.Name, err)
			}
			if b.Namespace == c.Namespace {
				continue
			}
			ok, err := granted(ctx, grants, c.Namespace, routeKind, b)
			if err != nil {
				return "", "", fmt.Errorf("canary %s/%s: read ReferenceGrants in %s: %w", c.Namespace, c.Name, b.Namespace, err)
			}
			if !ok {
				return v1alpha1.ReasonReferenceNotPermitted, fmt.Sprintf("%s: %s %s/%s is in another namespace and no ReferenceGrant in %s allows %s from namespace %s to reference it",
					field, b.Kind, b.Namespace, b.Name, b.Namespace, routeKind, c.Namespace), nil
			}
		}
	}
	return "", "", nil
}

func backendGVK(mapper meta.RESTMapper, b Backend) (schema.GroupVersionKind, error) {
	if b.Group == "" && b.Kind == "Service" {
		return schema.GroupVersionKind{Version: "v1", Kind: "Service"}, nil
	}
	// A reference names no version: take the one the cluster prefers.
	m, err := mapper.RESTMapping(schema.GroupKind{Group: b.Group, Kind: b.Kind})
	if err != nil {
		return schema.GroupVersionKind{}, err
	}
	return m.GroupVersionKind, nil
}

func granted(ctx context.Context, reader client.Reader, fromNS, routeKind string, b Backend) (bool, error) {
	var grants gwv1.ReferenceGrantList
	if err := reader.List(ctx, &grants, client.InNamespace(b.Namespace)); err != nil {
		return false, err
	}
	for _, g := range grants.Items {
		from := false
		for _, f := range g.Spec.From {
			if string(f.Group) == gwv1.GroupName && string(f.Kind) == routeKind && string(f.Namespace) == fromNS {
				from = true
			}
		}
		if !from {
			continue
		}
		for _, t := range g.Spec.To {
			if string(t.Group) == b.Group && string(t.Kind) == b.Kind && (t.Name == nil || string(*t.Name) == b.Name) {
				return true, nil
			}
		}
	}
	return false, nil
}
