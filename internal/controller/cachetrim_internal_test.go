package controller

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/workload"
)

func trimmedDeployment(owner *metav1.OwnerReference) *appsv1.Deployment {
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web-primary", Namespace: "shop", Generation: 3},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(2)),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}, Annotations: map[string]string{workload.RevisionAnnotation: "r1", "x": "y"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "web:1", Env: []corev1.EnvVar{{Name: "A", Value: "b"}}}}},
			},
		},
		Status: appsv1.DeploymentStatus{ObservedGeneration: 3, Replicas: 2, UpdatedReplicas: 2, AvailableReplicas: 1, Conditions: []appsv1.DeploymentCondition{
			{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionFalse, Reason: "MinimumReplicasUnavailable", Message: "Deployment does not have minimum availability."},
			{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded", Message: "ReplicaSet web-abc has timed out progressing."},
			{Type: appsv1.DeploymentReplicaFailure, Status: corev1.ConditionTrue, Reason: "FailedCreate", Message: `pods "web-abc-" is forbidden: exceeded quota`},
		}},
	}
	if owner != nil {
		d.OwnerReferences = []metav1.OwnerReference{*owner}
	}
	return d
}

// What the controller reads of a Deployment is the same before and after
// the trim, problems included; only a Canary's primary loses its template.
func TestStripDeploymentKeepsWhatIsRead(t *testing.T) {
	canaryOwner := &metav1.OwnerReference{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Canary", Name: "web", UID: "u1", Controller: ptr.To(true)}
	otherOwner := &metav1.OwnerReference{APIVersion: "argoproj.io/v1alpha1", Kind: "Canary", Name: "web", UID: "u2", Controller: ptr.To(true)}
	for name, tc := range map[string]struct {
		owner   *metav1.OwnerReference
		trimmed bool
	}{
		"primary":                     {canaryOwner, true},
		"target (no owner)":           {nil, false},
		"another group's Canary kind": {otherOwner, false},
	} {
		t.Run(name, func(t *testing.T) {
			before := trimmedDeployment(tc.owner)
			after := before.DeepCopy()
			if _, err := StripDeployment(after); err != nil {
				t.Fatal(err)
			}
			if got, want := workload.Observe(after, "r1"), workload.Observe(before, "r1"); got != want {
				t.Errorf("Observe after the trim %+v, before %+v", got, want)
			}
			if workload.PrimaryRevision(after) != "r1" {
				t.Errorf("revision %q after the trim, want r1", workload.PrimaryRevision(after))
			}
			if after.Status.Conditions[0].Message != "" {
				t.Errorf("a healthy-or-plain condition kept its message %q", after.Status.Conditions[0].Message)
			}
			whole := equality.Semantic.DeepEqual(after.Spec.Template, before.Spec.Template)
			if whole == tc.trimmed {
				t.Errorf("template kept whole: %v, want %v: %+v", whole, !tc.trimmed, after.Spec.Template)
			}
			if c := after.Spec.Template.Spec.Containers[0]; c.Name != "app" || c.Image != "web:1" {
				t.Errorf("container after the trim %+v", c)
			}
		})
	}
}

func TestStripServiceKeepsSelectorAndPorts(t *testing.T) {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{workload.CanaryLabel: "web"},
			Annotations: map[string]string{corev1.LastAppliedConfigAnnotation: "{}"}},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web-primary"}, ClusterIP: "10.0.0.7", ClusterIPs: []string{"10.0.0.7"},
			IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol}, SessionAffinity: corev1.ServiceAffinityNone,
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP, AppProtocol: ptr.To("http")}},
		},
	}
	out, err := StripService(s.DeepCopy())
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*corev1.Service)
	if !servicePortsMatch(got.Spec.Ports, s.Spec.Ports) || !equality.Semantic.DeepEqual(got.Spec.Selector, s.Spec.Selector) || got.Labels[workload.CanaryLabel] != "web" {
		t.Errorf("what applyServices compares changed: %+v", got)
	}
	if got.Spec.ClusterIP != "" || got.Spec.IPFamilies != nil || got.Annotations != nil {
		t.Errorf("not trimmed: %+v", got)
	}
}

// An informer may hand the transform an object it already stripped; the
// hash must stay the hash of the data, not become the hash of none.
func TestStripConfigDataIsIdempotent(t *testing.T) {
	cm := &corev1.ConfigMap{Data: map[string]string{"a": "1"}}
	sec := &corev1.Secret{Data: map[string][]byte{"a": []byte("1")}}
	wantCM, wantSec := workload.ConfigMapHash(cm), workload.SecretHash(sec)
	for i := range 2 {
		if _, err := StripConfigData(cm); err != nil {
			t.Fatal(err)
		}
		if _, err := StripConfigData(sec); err != nil {
			t.Fatal(err)
		}
		if got := cm.Annotations[workload.DataHashAnnotation]; got != wantCM || cm.Data != nil {
			t.Errorf("configmap after %d strips: hash %s (want %s), data %v", i+1, got, wantCM, cm.Data)
		}
		if got := sec.Annotations[workload.DataHashAnnotation]; got != wantSec || sec.Data != nil {
			t.Errorf("secret after %d strips: hash %s (want %s), data %v", i+1, got, wantSec, sec.Data)
		}
	}
	empty := &corev1.ConfigMap{}
	if _, err := StripConfigData(empty); err != nil || empty.Annotations[workload.DataHashAnnotation] != workload.DataHash(nil) {
		t.Errorf("an empty ConfigMap: %v %v", empty.Annotations, err)
	}
}
