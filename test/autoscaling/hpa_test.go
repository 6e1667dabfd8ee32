// Package autoscaling_test releases a Deployment that a
// HorizontalPodAutoscaler scales, on the local control plane, with the
// real kube-controller-manager's HPA controller (1 s sync) reading an
// external metric the test serves.
package autoscaling_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kptr "k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/controller"
	"github.com/sluice-dev/sluice/internal/testenv"
)

// sample is one moment of the release: the Canary and the replica counts.
type sample struct {
	at                       time.Time
	phase                    v1alpha1.CanaryPhase
	step, weight             int32
	target, primary          int32 // spec.replicas
	hpaTarget, hpaPrimary    int32 // status.desiredReplicas
	targetReady, primaryRead int32
}

func (s sample) key() string {
	return fmt.Sprintf("%s/%d/%d %d %d %d %d", s.phase, s.step, s.weight, s.target, s.primary, s.hpaTarget, s.hpaPrimary)
}

// TestReleaseWithHPA: the user's HPA scales the target, Sluice's copy
// scales the primary. Between releases the target stays at 0 (an HPA
// leaves a target at 0 alone); during the release the canary starts at
// the primary's count, the real HPA controller moves both copies when the
// load changes, nothing is fought over (Sluice never sets a count an HPA
// has set, the weights never go back), the release promotes, the canary
// ends at 0, and the primary's HPA ends with the user's settings.
func TestReleaseWithHPA(t *testing.T) {
	cl, ns, instance := setup(t, "autoscaling")
	metrics := serveMetrics(t, cl)
	ctx := t.Context()

	// 20 units of load, 10 a replica: 2 replicas.
	metrics.set(ns, "shop_load", 20)
	labels := map[string]string{"app": "shop"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: ns},
		Spec: appsv1.DeploymentSpec{Replicas: kptr.To(int32(2)), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.org/shop:1",
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}}}},
	}
	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: ns, Labels: map[string]string{"team": "shop"}},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "shop"},
			MinReplicas:    kptr.To(int32(2)), MaxReplicas: 6,
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ExternalMetricSourceType, External: &autoscalingv2.ExternalMetricSource{
				Metric: autoscalingv2.MetricIdentifier{Name: "shop_load"},
				Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: kptr.To(resource.MustParse("10"))},
			}}},
			Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{
				ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: kptr.To(int32(60))},
			},
		},
	}
	canary := &v1alpha1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: ns, Labels: map[string]string{controller.InstanceLabel: instance}},
		Spec: v1alpha1.CanarySpec{
			TargetRef:     v1alpha1.TargetRef{Name: "shop"},
			Service:       v1alpha1.ServiceSpec{Port: 80, TargetPort: "http"},
			AutoscalerRef: &v1alpha1.AutoscalerRef{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler", Name: "shop"},
			// No router: the apex Service's endpoints carry the shares.
			Strategy: v1alpha1.Strategy{Steps: []v1alpha1.Step{
				{SetWeight: kptr.To(int32(20))}, {Pause: &v1alpha1.PauseStep{}},
				{SetWeight: kptr.To(int32(50))}, {Pause: &v1alpha1.PauseStep{Duration: &metav1.Duration{Duration: 5 * time.Second}}},
			}},
		},
	}
	for _, o := range []client.Object{dep, hpa, canary} {
		if err := cl.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	waitPhase(t, cl, ns, v1alpha1.PhaseInitialized, 2*time.Minute)

	// The primary's copy of the HPA, with the user's settings.
	checkCopy(t, cl, ns, hpa)
	// Between releases the user's HPA leaves the target at 0: it reports
	// scaling disabled, and the target stays there.
	testenv.Eventually(t, time.Minute, "the user's HPA reporting ScalingDisabled", func(ctx context.Context) error {
		var h autoscalingv2.HorizontalPodAutoscaler
		if err := cl.Get(ctx, client.ObjectKeyFromObject(hpa), &h); err != nil {
			return err
		}
		for _, c := range h.Status.Conditions {
			if c.Type == autoscalingv2.ScalingActive && c.Status == corev1.ConditionFalse && c.Reason == "ScalingDisabled" {
				return nil
			}
		}
		return fmt.Errorf("conditions %+v", h.Status.Conditions)
	})
	if n := replicas(t, cl, ns, "shop"); n != 0 {
		t.Fatalf("idle target at %d replicas, want 0", n)
	}

	// The release, sampled every 200 ms.
	var mu sync.Mutex
	var timeline []sample
	stop := make(chan struct{})
	done := make(chan struct{})
	first := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if s, err := observe(ctx, cl, ns); err == nil {
				mu.Lock()
				if n := len(timeline); n == 0 || timeline[n-1].key() != s.key() {
					timeline = append(timeline, s)
					if n == 0 {
						close(first)
					}
				}
				mu.Unlock()
			}
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	// The timeline starts before the release does.
	select {
	case <-first:
	case <-time.After(30 * time.Second):
		t.Fatal("no sample of the replicas in 30s")
	}
	patchImage(t, cl, ns, "example.org/shop:2")
	// At the hold after 20%: the load rises to 50 (5 replicas); both HPAs
	// must move their copies before the release goes on.
	waitPhase(t, cl, ns, v1alpha1.PhaseWaitingPromotion, 2*time.Minute)
	metrics.set(ns, "shop_load", 50)
	testenv.Eventually(t, 90*time.Second, "both HPAs scaling their copies to 5", func(ctx context.Context) error {
		tgt, pri := replicas(t, cl, ns, "shop"), replicas(t, cl, ns, "shop-primary")
		if tgt != 5 || pri != 5 {
			return fmt.Errorf("target %d, primary %d", tgt, pri)
		}
		return nil
	})
	var c v1alpha1.Canary
	if err := cl.Get(ctx, client.ObjectKeyFromObject(canary), &c); err != nil {
		t.Fatal(err)
	}
	if c.Status.Phase != v1alpha1.PhaseWaitingPromotion || c.Status.CanaryWeight != 20 {
		t.Errorf("after the HPAs scaled: phase %s weight %d (%s), want still WaitingPromotion at 20%%", c.Status.Phase, c.Status.CanaryWeight, c.Status.Message)
	}
	patch := client.MergeFrom(c.DeepCopy())
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	c.Annotations[v1alpha1.RequestAnnotation] = "promote/1"
	if err := cl.Patch(ctx, &c, patch); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, cl, ns, v1alpha1.PhaseSucceeded, 3*time.Minute)
	// The canary stays at 0 after the release.
	testenv.Eventually(t, time.Minute, "the canary at 0", func(ctx context.Context) error {
		if n := replicas(t, cl, ns, "shop"); n != 0 {
			return fmt.Errorf("%d replicas", n)
		}
		return nil
	})
	<-time.After(5 * time.Second) // several HPA syncs: it must stay there
	close(stop)
	<-done

	var b strings.Builder
	fmt.Fprintf(&b, "\nreplica timeline of the release (every change, sampled each 200 ms)\n| t (s) | phase/step | weight | target | primary | user HPA desired | primary HPA desired |\n|---|---|---|---|---|---|---|\n")
	t0 := timeline[0].at
	for _, s := range timeline {
		fmt.Fprintf(&b, "| %5.1f | %s/%d | %d | %d (%d ready) | %d (%d ready) | %d | %d |\n", s.at.Sub(t0).Seconds(), s.phase, s.step, s.weight,
			s.target, s.targetReady, s.primary, s.primaryRead, s.hpaTarget, s.hpaPrimary)
	}
	t.Log(b.String())

	// Nothing fought: the canary's count went up from 0 once (to the
	// primary's 2), then followed its HPA (to 5), then down to 0 once;
	// the weights never went back.
	var counts []int32
	var weights []int32
	for _, s := range timeline {
		if n := len(counts); n == 0 || counts[n-1] != s.target {
			counts = append(counts, s.target)
		}
		if n := len(weights); n == 0 || weights[n-1] != s.weight {
			weights = append(weights, s.weight)
		}
	}
	if got := fmt.Sprint(counts); got != "[0 2 5 0]" {
		t.Errorf("the canary's replicas went %s, want [0 2 5 0]: scaled up from 0 to the primary's count, moved by its HPA, scaled down at the end", got)
	}
	for i := 1; i+1 < len(weights); i++ {
		if weights[i] < weights[i-1] {
			t.Errorf("weights %v went back mid-release", weights)
		}
	}
	if err := cl.Get(ctx, client.ObjectKeyFromObject(canary), &c); err != nil {
		t.Fatal(err)
	}
	if pri := replicas(t, cl, ns, "shop-primary"); pri != 5 {
		t.Errorf("primary ends at %d replicas, want 5 (its HPA's count for 50 units of load)", pri)
	}
	checkCopy(t, cl, ns, hpa)
}

// setup gives a test the local control plane with Sluice's CRDs, a
// client, a fresh namespace and a controller for the Canaries labelled
// with the instance id it returns.
func setup(t *testing.T, name string) (client.Client, string, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("local control plane")
	}
	env := testenv.Get(t)
	if err := env.InstallSluiceCRDs(); err != nil {
		t.Fatal(err)
	}
	return env.SluiceClient(t), env.Namespace(t), env.StartInstance(t, name)
}

func waitPhase(t *testing.T, cl client.Client, ns string, phase v1alpha1.CanaryPhase, timeout time.Duration) {
	t.Helper()
	testenv.Eventually(t, timeout, "canary "+string(phase), func(ctx context.Context) error {
		var c v1alpha1.Canary
		if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop"}, &c); err != nil {
			return err
		}
		if c.Status.Phase != phase {
			return fmt.Errorf("phase %s (%s: %s)", c.Status.Phase, c.Status.Reason, c.Status.Message)
		}
		return nil
	})
}

// checkCopy: the primary's HPA scales the primary with the user's bounds,
// metrics and behaviour, and carries the user's labels.
func checkCopy(t *testing.T, cl client.Client, ns string, user *autoscalingv2.HorizontalPodAutoscaler) {
	t.Helper()
	var cp, u autoscalingv2.HorizontalPodAutoscaler
	testenv.Eventually(t, 30*time.Second, "the primary's HPA", func(ctx context.Context) error {
		return cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop-primary"}, &cp)
	})
	if err := cl.Get(t.Context(), client.ObjectKeyFromObject(user), &u); err != nil {
		t.Fatal(err)
	}
	if ref := cp.Spec.ScaleTargetRef; ref.Kind != "Deployment" || ref.Name != "shop-primary" {
		t.Errorf("primary HPA scales %s %s, want Deployment shop-primary", ref.Kind, ref.Name)
	}
	if !equality.Semantic.DeepEqual(cp.Spec.MinReplicas, u.Spec.MinReplicas) || cp.Spec.MaxReplicas != u.Spec.MaxReplicas ||
		!equality.Semantic.DeepEqual(cp.Spec.Metrics, u.Spec.Metrics) || !equality.Semantic.DeepEqual(cp.Spec.Behavior, u.Spec.Behavior) {
		t.Errorf("primary HPA spec %+v differs from the user's %+v", cp.Spec, u.Spec)
	}
	if cp.Labels["team"] != "shop" {
		t.Errorf("primary HPA labels %v lack the user's team=shop", cp.Labels)
	}
}

func replicas(t *testing.T, cl client.Client, ns, name string) int32 {
	t.Helper()
	var d appsv1.Deployment
	if err := cl.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, &d); err != nil {
		return -1
	}
	return kptr.Deref(d.Spec.Replicas, 1)
}

func observe(ctx context.Context, cl client.Client, ns string) (sample, error) {
	s := sample{at: time.Now()}
	var c v1alpha1.Canary
	if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop"}, &c); err != nil {
		return s, err
	}
	s.phase, s.step, s.weight = c.Status.Phase, c.Status.CurrentStep, c.Status.CanaryWeight
	for _, d := range []struct {
		name        string
		spec, ready *int32
		hpa         string
		hpaDesired  *int32
	}{{"shop", &s.target, &s.targetReady, "shop", &s.hpaTarget}, {"shop-primary", &s.primary, &s.primaryRead, "shop-primary", &s.hpaPrimary}} {
		var dep appsv1.Deployment
		if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: d.name}, &dep); err != nil {
			return s, err
		}
		*d.spec, *d.ready = kptr.Deref(dep.Spec.Replicas, 1), dep.Status.ReadyReplicas
		var h autoscalingv2.HorizontalPodAutoscaler
		if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: d.hpa}, &h); err == nil {
			*d.hpaDesired = h.Status.DesiredReplicas
		}
	}
	return s, nil
}

func patchImage(t *testing.T, cl client.Client, ns, image string) {
	t.Helper()
	var d appsv1.Deployment
	if err := cl.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "shop"}, &d); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(d.DeepCopy())
	d.Spec.Template.Spec.Containers[0].Image = image
	if err := cl.Patch(t.Context(), &d, patch); err != nil {
		t.Fatal(err)
	}
}
