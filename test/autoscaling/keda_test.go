package autoscaling_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kptr "k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/controller"
	"github.com/sluice-dev/sluice/internal/testenv"
)

// TestReleaseWithScaledObject: a KEDA ScaledObject (KEDA's real CRD; no
// KEDA operator runs here, so nothing acts on these objects but Sluice and
// the test reads them as KEDA would). Sluice keeps a copy scaling the
// primary, with the trigger query primaryScalerQueries gives and KEDA's
// HPA name suffixed; the user's ScaledObject is paused at 0 while the
// canary is idle, not during the release, and again after it.
func TestReleaseWithScaledObject(t *testing.T) {
	cl, ns, instance := setup(t, "keda")
	ctx := t.Context()
	labels := map[string]string{"app": "shop"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: ns},
		Spec: appsv1.DeploymentSpec{Replicas: kptr.To(int32(3)), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.org/shop:1"}}}}},
	}
	so := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
		"metadata": map[string]any{"name": "shop", "namespace": ns},
		"spec": map[string]any{
			"scaleTargetRef":  map[string]any{"name": "shop"},
			"minReplicaCount": int64(2), "maxReplicaCount": int64(8),
			"advanced": map[string]any{"horizontalPodAutoscalerConfig": map[string]any{"name": "shop-hpa"}},
			"triggers": []any{
				map[string]any{"type": "prometheus", "name": "requests", "metadata": map[string]any{
					"serverAddress": "http://prometheus:9090", "threshold": "100", "query": `sum(rate(http_requests_total{app="shop"}[1m]))`}},
				map[string]any{"type": "cpu", "metricType": "Utilization", "metadata": map[string]any{"value": "70"}},
			},
		},
	}}
	canary := &v1alpha1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: ns, Labels: map[string]string{controller.InstanceLabel: instance}},
		Spec: v1alpha1.CanarySpec{
			TargetRef: v1alpha1.TargetRef{Name: "shop"},
			Service:   v1alpha1.ServiceSpec{Port: 80},
			AutoscalerRef: &v1alpha1.AutoscalerRef{APIVersion: "keda.sh/v1alpha1", Kind: "ScaledObject", Name: "shop",
				PrimaryScalerQueries: map[string]string{"requests": `sum(rate(http_requests_total{app="shop-primary"}[1m]))`}},
			Strategy: v1alpha1.Strategy{Steps: []v1alpha1.Step{{SetWeight: kptr.To(int32(50))}, {Pause: &v1alpha1.PauseStep{}}}},
		},
	}
	for _, o := range []client.Object{dep, so, canary} {
		if err := cl.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	waitPhase(t, cl, ns, v1alpha1.PhaseInitialized, 2*time.Minute)
	paused := func(want bool) {
		t.Helper()
		testenv.Eventually(t, time.Minute, fmt.Sprintf("user's ScaledObject paused=%v", want), func(ctx context.Context) error {
			got := so.DeepCopy()
			if err := cl.Get(ctx, client.ObjectKeyFromObject(so), got); err != nil {
				return err
			}
			v, ok := got.GetAnnotations()["autoscaling.keda.sh/paused-replicas"]
			if ok != want || (ok && v != "0") {
				return fmt.Errorf("paused-replicas %q (present %v)", v, ok)
			}
			return nil
		})
	}
	paused(true)
	cp := so.DeepCopy()
	if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop-primary"}, cp); err != nil {
		t.Fatalf("the primary's ScaledObject: %v", err)
	}
	for path, want := range map[string]any{
		"spec.scaleTargetRef.name":                         "shop-primary",
		"spec.advanced.horizontalPodAutoscalerConfig.name": "shop-hpa-primary",
		"spec.minReplicaCount":                             int64(2),
		"spec.maxReplicaCount":                             int64(8),
	} {
		got, _, _ := unstructured.NestedFieldNoCopy(cp.Object, strings.Split(path, ".")...)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("primary ScaledObject %s = %v, want %v", path, got, want)
		}
	}
	triggers, _, _ := unstructured.NestedSlice(cp.Object, "spec", "triggers")
	if len(triggers) != 2 {
		t.Fatalf("primary ScaledObject triggers %v, want 2", triggers)
	}
	if q, _, _ := unstructured.NestedString(triggers[0].(map[string]any), "metadata", "query"); q != `sum(rate(http_requests_total{app="shop-primary"}[1m]))` {
		t.Errorf("primary ScaledObject query %q, want the primaryScalerQueries one", q)
	}
	if v, _, _ := unstructured.NestedString(triggers[1].(map[string]any), "metadata", "value"); v != "70" {
		t.Errorf("primary ScaledObject cpu trigger value %q, want the user's 70", v)
	}
	// A release: the user's ScaledObject scales the canary meanwhile.
	patchImage(t, cl, ns, "example.org/shop:2")
	waitPhase(t, cl, ns, v1alpha1.PhaseWaitingPromotion, 2*time.Minute)
	paused(false)
	if n := replicas(t, cl, ns, "shop"); n != 3 {
		t.Errorf("canary started at %d replicas, want the primary's 3", n)
	}
	var c v1alpha1.Canary
	if err := cl.Get(ctx, client.ObjectKeyFromObject(canary), &c); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(c.DeepCopy())
	c.Annotations = map[string]string{v1alpha1.RequestAnnotation: "promote/1"}
	if err := cl.Patch(ctx, &c, patch); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, cl, ns, v1alpha1.PhaseSucceeded, 2*time.Minute)
	paused(true)
}
