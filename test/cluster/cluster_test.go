// Tests that the local control plane is a real Kubernetes: Deployments roll
// out on kwok nodes, EndpointSlices follow Ready pods, quota admission stops
// pods, and the routers' real CRDs validate (CEL included) and round-trip.
package cluster_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/sluice-dev/sluice/internal/testenv"
)

func deployment(ns, name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: "example.com/app:1",
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				}}},
			},
		},
	}
}

func waitAvailable(t *testing.T, c *testenv.Cluster, ns, name string, want int32) {
	t.Helper()
	testenv.Eventually(t, 60*time.Second, fmt.Sprintf("deployment %s/%s available=%d", ns, name, want), func(ctx context.Context) error {
		d, err := c.Client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		s := d.Status
		if s.ObservedGeneration != d.Generation || s.AvailableReplicas != want || s.ReadyReplicas != want || s.UpdatedReplicas != want {
			return fmt.Errorf("generation %d observed %d, ready %d, available %d, updated %d",
				d.Generation, s.ObservedGeneration, s.ReadyReplicas, s.AvailableReplicas, s.UpdatedReplicas)
		}
		return nil
	})
}

func TestDeploymentRollsOutAndScalesWithEndpointSlices(t *testing.T) {
	c := testenv.Get(t)
	ns := c.Namespace(t)
	ctx := t.Context()

	start := time.Now()
	if _, err := c.Client.AppsV1().Deployments(ns).Create(ctx, deployment(ns, "web", 3), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitAvailable(t, c, ns, "web", 3)
	t.Logf("3-replica Deployment available after %s", time.Since(start).Round(10*time.Millisecond))

	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
		},
	}
	svc, err := c.Client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(svc.Spec.ClusterIP, "127.2.") {
		t.Errorf("ClusterIP %s is not in the loopback Service range 127.2.0.0/16", svc.Spec.ClusterIP)
	}

	scale, err := c.Client.AppsV1().Deployments(ns).GetScale(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	scale.Spec.Replicas = 5
	if _, err := c.Client.AppsV1().Deployments(ns).UpdateScale(ctx, "web", scale, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	waitAvailable(t, c, ns, "web", 5)
	t.Logf("scaled to 5 available after %s", time.Since(start).Round(10*time.Millisecond))

	pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	readyIPs := map[string]bool{}
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodRunning || !podReady(&p) || p.Spec.NodeName == "" || p.Status.PodIP == "" {
			t.Errorf("pod %s: phase %s, ready %v, node %q, ip %q", p.Name, p.Status.Phase, podReady(&p), p.Spec.NodeName, p.Status.PodIP)
			continue
		}
		readyIPs[p.Status.PodIP] = true
	}
	if len(readyIPs) != 5 {
		t.Fatalf("want 5 Running and Ready pods with distinct IPs, got %d", len(readyIPs))
	}

	start = time.Now()
	defer func() {
		t.Logf("EndpointSlices listed the 5 pods after %s", time.Since(start).Round(10*time.Millisecond))
	}()
	testenv.Eventually(t, 30*time.Second, "EndpointSlices list the 5 Ready pods", func(ctx context.Context) error {
		slices, err := c.Client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{
			LabelSelector: discoveryv1.LabelServiceName + "=web"})
		if err != nil {
			return err
		}
		got := map[string]bool{}
		for _, s := range slices.Items {
			for _, ep := range s.Endpoints {
				if ep.Conditions.Ready != nil && *ep.Conditions.Ready {
					for _, a := range ep.Addresses {
						got[a] = true
					}
				}
			}
		}
		if !equality.Semantic.DeepEqual(got, readyIPs) {
			return fmt.Errorf("ready endpoints %v, want %v", got, readyIPs)
		}
		return nil
	})
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func TestResourceQuotaStopsScaleUp(t *testing.T) {
	c := testenv.Get(t)
	ns := c.Namespace(t)
	ctx := t.Context()

	quota := &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: "two-pods", Namespace: ns},
		Spec:       corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("2")}},
	}
	if _, err := c.Client.CoreV1().ResourceQuotas(ns).Create(ctx, quota, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The quota controller must have computed usage before admission
	// enforces it.
	testenv.Eventually(t, 30*time.Second, "quota status computed", func(ctx context.Context) error {
		q, err := c.Client.CoreV1().ResourceQuotas(ns).Get(ctx, "two-pods", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if _, ok := q.Status.Used[corev1.ResourcePods]; !ok {
			return fmt.Errorf("no usage yet")
		}
		return nil
	})
	if _, err := c.Client.AppsV1().Deployments(ns).Create(ctx, deployment(ns, "big", 3), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, "ReplicaSet and Deployment report the quota", func(ctx context.Context) error {
		d, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "big", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if d.Status.AvailableReplicas != 2 {
			return fmt.Errorf("available %d, want 2", d.Status.AvailableReplicas)
		}
		if !hasQuotaFailure(d.Status.Conditions) {
			return fmt.Errorf("deployment has no ReplicaFailure condition naming the quota: %+v", d.Status.Conditions)
		}
		rss, err := c.Client.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=big"})
		if err != nil {
			return err
		}
		if len(rss.Items) != 1 {
			return fmt.Errorf("%d ReplicaSets", len(rss.Items))
		}
		var rsConds []appsv1.DeploymentCondition
		for _, rc := range rss.Items[0].Status.Conditions {
			rsConds = append(rsConds, appsv1.DeploymentCondition{Type: appsv1.DeploymentConditionType(rc.Type), Status: rc.Status, Reason: rc.Reason, Message: rc.Message})
		}
		if !hasQuotaFailure(rsConds) {
			return fmt.Errorf("replicaset has no ReplicaFailure condition naming the quota: %+v", rss.Items[0].Status.Conditions)
		}
		return nil
	})
	pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 2 {
		t.Fatalf("quota allows 2 pods, found %d", len(pods.Items))
	}
}

func hasQuotaFailure(conds []appsv1.DeploymentCondition) bool {
	for _, c := range conds {
		if c.Type == appsv1.DeploymentReplicaFailure && c.Status == corev1.ConditionTrue &&
			c.Reason == "FailedCreate" && strings.Contains(c.Message, "exceeded quota") {
			return true
		}
	}
	return false
}

func TestNamespaceDeletionRemovesContents(t *testing.T) {
	c := testenv.Get(t)
	ctx := t.Context()
	ns := c.Namespace(t)
	if _, err := c.Client.AppsV1().Deployments(ns).Create(ctx, deployment(ns, "gone", 1), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitAvailable(t, c, ns, "gone", 1)
	if err := c.Client.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// The namespace controller and garbage collector empty it, then it goes.
	testenv.Eventually(t, 90*time.Second, "namespace removed", func(ctx context.Context) error {
		_, err := c.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there (err %v)", err)
	})
}

func TestNeverReadyPodsRunButStayUnready(t *testing.T) {
	c := testenv.Get(t)
	ns := c.Namespace(t)
	ctx := t.Context()
	d := deployment(ns, "broken", 2)
	d.Spec.Template.Annotations = map[string]string{testenv.NeverReadyAnnotation: "true"}
	if _, err := c.Client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "2 pods Running but not Ready", func(ctx context.Context) error {
		pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=broken"})
		if err != nil {
			return err
		}
		running := 0
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning && !podReady(&p) {
				running++
			}
		}
		if running != 2 {
			return fmt.Errorf("%d of %d pods Running and not Ready", running, len(pods.Items))
		}
		return nil
	})
	got, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "broken", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.AvailableReplicas != 0 || got.Status.ReadyReplicas != 0 {
		t.Errorf("never-ready Deployment reports %d available, %d ready", got.Status.AvailableReplicas, got.Status.ReadyReplicas)
	}
}

// Pods labelled UnreadyPrimaryLabel are Ready, unless they also carry
// Sluice's revision annotation (a primary copy): those never are.
func TestUnreadyPrimaryLabelFailsOnlyPrimaryCopies(t *testing.T) {
	c := testenv.Get(t)
	ns := c.Namespace(t)
	ctx := t.Context()
	canary := deployment(ns, "canary", 1)
	canary.Spec.Template.Labels[testenv.UnreadyPrimaryLabel] = "true"
	primary := deployment(ns, "primary", 1)
	primary.Spec.Template.Labels[testenv.UnreadyPrimaryLabel] = "true"
	primary.Spec.Template.Annotations = map[string]string{"sluice.dev/revision": "r2"}
	for _, d := range []*appsv1.Deployment{canary, primary} {
		if _, err := c.Client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitAvailable(t, c, ns, "canary", 1)
	testenv.Eventually(t, 30*time.Second, "the primary copy's pod Running but not Ready", func(ctx context.Context) error {
		pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=primary"})
		if err != nil {
			return err
		}
		if len(pods.Items) != 1 || pods.Items[0].Status.Phase != corev1.PodRunning || podReady(&pods.Items[0]) {
			return fmt.Errorf("pods %d, want 1 Running and not Ready", len(pods.Items))
		}
		return nil
	})
}
