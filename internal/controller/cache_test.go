package controller_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
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

// The cache holds trimmed copies (cachetrim.go) and nothing is lost on the
// server for it: through a whole release, which labels and scales the
// target, builds, scales and re-applies the primary and patches the
// Services, every field the cache dropped stays on the server, and the
// primary carries the target's full template.
func TestCacheHoldsTrimmedCopiesAndNothingIsLost(t *testing.T) {
	_, ns, cl := setup(t)
	d := app(ns, "trim", "example.com/trim:1", 1)
	d.Annotations = map[string]string{corev1.LastAppliedConfigAnnotation: `{"kind":"Deployment"}`, "team": "checkout"}
	d.Spec.Template.Annotations = map[string]string{"checksum/config": "abc"}
	pod := &d.Spec.Template.Spec
	pod.Containers[0].Env = []corev1.EnvVar{{Name: "MODE", Value: "strict"}}
	pod.Containers[0].ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromString("http")}}}
	pod.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m")}
	pod.Volumes = []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	pod.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "scratch", MountPath: "/tmp"}}
	c := canary(ns, "trim", weightStep(50))
	c.Annotations = map[string]string{corev1.LastAppliedConfigAnnotation: `{"kind":"Canary"}`}
	create(t, cl, d, c)
	waitPhase(t, cl, ns, "trim", v1alpha1.PhaseInitialized, 60*time.Second)

	// What the cache holds.
	var target, primary appsv1.Deployment
	for name, into := range map[string]*appsv1.Deployment{"trim": &target, "trim-primary": &primary} {
		if err := mgrCache.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, into); err != nil {
			t.Fatalf("deployment %s in the cache: %v", name, err)
		}
	}
	if _, has := target.Annotations[corev1.LastAppliedConfigAnnotation]; has || target.Annotations["team"] != "checkout" {
		t.Errorf("cached target annotations %v: want team kept and last-applied dropped", target.Annotations)
	}
	if got := target.Spec.Template.Spec.Containers[0]; len(got.Env) != 1 || got.ReadinessProbe == nil || len(target.Spec.Template.Spec.Volumes) != 1 {
		t.Errorf("cached target lost part of its template (its hash is the revision): %+v", target.Spec.Template.Spec)
	}
	pc := primary.Spec.Template.Spec.Containers
	if len(pc) != 1 || pc[0].Name != "app" || pc[0].Image != "example.com/trim:1" || pc[0].Resources.Requests.Cpu().String() != "10m" {
		t.Errorf("cached primary containers %+v: want name, image and resources kept", pc)
	}
	if len(pc) == 1 && (pc[0].Env != nil || pc[0].ReadinessProbe != nil || pc[0].VolumeMounts != nil) || primary.Spec.Template.Spec.Volumes != nil {
		t.Errorf("cached primary template not trimmed: %+v", primary.Spec.Template.Spec)
	}
	if rev := primary.Spec.Template.Annotations[workload.RevisionAnnotation]; rev == "" || len(primary.Spec.Template.Annotations) != 1 {
		t.Errorf("cached primary template annotations %v: want only %s", primary.Spec.Template.Annotations, workload.RevisionAnnotation)
	}
	for _, cond := range primary.Status.Conditions {
		if !workload.ProblemCondition(cond) && cond.Message != "" {
			t.Errorf("cached primary condition %s kept its message %q", cond.Type, cond.Message)
		}
	}
	var svc corev1.Service
	if err := mgrCache.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "trim-primary"}, &svc); err != nil {
		t.Fatal(err)
	}
	if svc.Spec.ClusterIP != "" || len(svc.Spec.Selector) == 0 || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 80 {
		t.Errorf("cached Service spec %+v: want the selector and ports only", svc.Spec)
	}
	var cachedCanary v1alpha1.Canary
	if err := mgrCache.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "trim"}, &cachedCanary); err != nil {
		t.Fatal(err)
	}
	if _, has := cachedCanary.Annotations[corev1.LastAppliedConfigAnnotation]; has {
		t.Errorf("cached Canary kept its last-applied-configuration")
	}

	// A release: the target is scaled up and down, the primary rebuilt
	// and rescaled, all from trimmed copies.
	setImage(t, cl, ns, "trim", "example.com/trim:2")
	waitPhase(t, cl, ns, "trim", v1alpha1.PhaseSucceeded, 90*time.Second)

	full, err := deployment(t.Context(), cl, ns, "trim")
	if err != nil {
		t.Fatal(err)
	}
	if full.Annotations[corev1.LastAppliedConfigAnnotation] != `{"kind":"Deployment"}` {
		t.Errorf("the target's last-applied-configuration on the server is %q after a release", full.Annotations[corev1.LastAppliedConfigAnnotation])
	}
	served, err := deployment(t.Context(), cl, ns, "trim-primary")
	if err != nil {
		t.Fatal(err)
	}
	want, got := full.Spec.Template.Spec, served.Spec.Template.Spec
	if got.Containers[0].Image != "example.com/trim:2" || len(got.Containers[0].Env) != 1 || got.Containers[0].ReadinessProbe == nil ||
		len(got.Volumes) != 1 || len(got.Containers[0].VolumeMounts) != 1 || !equality.Semantic.DeepEqual(got.Containers[0].Resources, want.Containers[0].Resources) {
		t.Errorf("the primary on the server lost part of the target's template:\n got %+v\nwant %+v", got, want)
	}
	if served.Spec.Template.Annotations["checksum/config"] != "abc" {
		t.Errorf("primary template annotations on the server %v: want the target's kept", served.Spec.Template.Annotations)
	}
	var apex corev1.Service
	if err := cl.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "trim"}, &apex); err != nil {
		t.Fatal(err)
	}
	if apex.Spec.ClusterIP == "" || len(apex.Spec.IPFamilies) == 0 {
		t.Errorf("the apex Service on the server lost its allocated fields: %+v", apex.Spec)
	}
}
