package controller

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/workload"
)

// The transforms below trim objects before they enter the informer cache
// (CacheOptions), to what the controller reads from it. Every write the controller makes
// from a cached object is a merge patch computed against a copy of that
// same trimmed object, so a dropped field never appears in a patch and is
// never lost on the server; objects the controller builds whole (the
// primary, the Services) are server-side applied from scratch, never from
// the cache. docs/architecture.md ("Caches") lists what each keeps;
// docs/performance.md what the trim saved.

// trimMeta drops what no reconcile reads from any object's metadata: the
// managed fields and kubectl's last-applied-configuration annotation (a
// whole second copy of the object as the user last applied it).
func trimMeta(m *metav1.ObjectMeta) {
	m.ManagedFields = nil
	if _, ok := m.Annotations[corev1.LastAppliedConfigAnnotation]; ok {
		delete(m.Annotations, corev1.LastAppliedConfigAnnotation)
		if len(m.Annotations) == 0 {
			m.Annotations = nil
		}
	}
}

// StripCanary trims a Canary's metadata (see trimMeta).
func StripCanary(obj any) (any, error) {
	if c, ok := obj.(*v1alpha1.Canary); ok {
		trimMeta(&c.ObjectMeta)
	}
	return obj, nil
}

// StripDeployment trims a cached Deployment.
//   - Every Deployment: trimMeta, and the reason and message of each
//     condition that reports no problem (workload.Observe reads only a
//     problem's message).
//   - A primary (controlled by a Canary) also loses its pod template but
//     for the revision annotation and each container's name, image and
//     resources: all that drift detection compares. The primary is always
//     built from the target and the CanaryRevision record, never from its
//     own cached copy. A target keeps its whole template: its hash is the
//     release revision.
func StripDeployment(obj any) (any, error) {
	d, ok := obj.(*appsv1.Deployment)
	if !ok {
		return obj, nil
	}
	trimMeta(&d.ObjectMeta)
	for i := range d.Status.Conditions {
		if c := &d.Status.Conditions[i]; !workload.ProblemCondition(*c) {
			c.Reason, c.Message = "", ""
		}
	}
	if !controlledByCanary(d) {
		return d, nil
	}
	t := &d.Spec.Template
	rev, hasRev := t.Annotations[workload.RevisionAnnotation]
	containers := make([]corev1.Container, len(t.Spec.Containers))
	for i, c := range t.Spec.Containers {
		containers[i] = corev1.Container{Name: c.Name, Image: c.Image, Resources: c.Resources}
	}
	*t = corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: containers}}
	if hasRev {
		t.Annotations = map[string]string{workload.RevisionAnnotation: rev}
	}
	return d, nil
}

func controlledByCanary(o metav1.Object) bool {
	ref := metav1.GetControllerOfNoCopy(o)
	if ref == nil || ref.Kind != "Canary" {
		return false
	}
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	return err == nil && gv.Group == v1alpha1.GroupVersion.Group
}

// StripService trims a cached Service to its metadata (trimMeta), type,
// selector and ports: applyServices compares only the selector, the ports'
// names, numbers and target ports, and the canary label; releaseApex
// patches the selector, owners and labels. Cluster IPs, IP families,
// session affinity and the status are dropped.
func StripService(obj any) (any, error) {
	s, ok := obj.(*corev1.Service)
	if !ok {
		return obj, nil
	}
	trimMeta(&s.ObjectMeta)
	ports := make([]corev1.ServicePort, len(s.Spec.Ports))
	for i, p := range s.Spec.Ports {
		ports[i] = corev1.ServicePort{Name: p.Name, Protocol: p.Protocol, Port: p.Port, TargetPort: p.TargetPort}
	}
	s.Spec = corev1.ServiceSpec{Type: s.Spec.Type, Selector: s.Spec.Selector, Ports: ports}
	s.Status = corev1.ServiceStatus{}
	return s, nil
}

// StripRecordTemplate drops a CanaryRevision's pod template before the
// record enters the cache: up to ten records per Canary each carry a whole
// template, and the controller needs one only to restore a primary, which
// reads that record past the cache (restoredPrimary). Records are only
// ever changed by merge patches, which never touch the template.
func StripRecordTemplate(obj any) (any, error) {
	if rec, ok := obj.(*v1alpha1.CanaryRevision); ok {
		rec.Spec.Template.Raw, rec.Spec.Template.Object = nil, nil
		rec.ManagedFields = nil
	}
	return obj, nil
}

// StripConfigData replaces a ConfigMap's or Secret's data by its hash (in
// the sluice.dev/data-hash annotation) before the object enters the cache:
// a release only needs to know that the data changed.
//
// It is idempotent: informers may hand it an object it already stripped
// (seen on the local control plane: ConfigMaps cached with the hash of no
// data), and hashing that again would record an empty hash, so a change of
// the data would be missed. An object without data that already carries
// the annotation is left as it is.
func StripConfigData(obj any) (any, error) {
	switch o := obj.(type) {
	case *corev1.ConfigMap:
		if o.Data == nil && o.BinaryData == nil && workload.DataHashOf(o) != "" {
			return obj, nil
		}
		workload.SetDataHash(o, workload.ConfigMapHash(o))
		o.Data, o.BinaryData = nil, nil
		o.ManagedFields = nil
	case *corev1.Secret:
		if o.Data == nil && workload.DataHashOf(o) != "" {
			return obj, nil
		}
		workload.SetDataHash(o, workload.SecretHash(o))
		o.Data, o.StringData = nil, nil
		o.ManagedFields = nil
	}
	return obj, nil
}
