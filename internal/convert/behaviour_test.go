package convert

import (
	"context"
	"os"
	"slices"
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

// TestConvertedCanariesWalkTheSourcesWeights converts Flagger Canaries
// (stepWeight/maxWeight/interval, stepWeights) and Argo Rollouts
// (setWeight and pause steps) through the Gateway API, Istio and NGINX,
// runs a release of each on the local control plane with a Sluice
// controller of this process, and checks that the canary weights the
// Canary walks (status.canaryWeight, from the first step to promotion)
// are the ones the source walks by its own semantics. The objects of a
// file that convert does not read (the user's Ingress) are created as
// they are; the routers' objects are written to the real CRDs, and no
// proxy runs (the walk does not need one).
func TestConvertedCanariesWalkTheSourcesWeights(t *testing.T) {
	c := testenv.Get(t)
	cl := c.SluiceClient(t)
	instance := startController(t, c)
	for _, tc := range []struct {
		file string
		// want is the source's walk, from its documented semantics:
		// Flagger adds stepWeight while below maxWeight (so 20, 40, 60
		// with maxWeight 50); Argo sets each setWeight in turn.
		want []int32
	}{
		{file: "testdata/behaviour/flagger.yaml", want: []int32{20, 40, 60}},
		{file: "testdata/behaviour/argo.yaml", want: []int32{10, 30, 60}},
		// Flagger walks its stepWeights list as written.
		{file: "testdata/behaviour/flagger-istio.yaml", want: []int32{5, 15, 30}},
		// 25 while below 60: 25, 50, 75.
		{file: "testdata/behaviour/flagger-nginx.yaml", want: []int32{25, 50, 75}},
		{file: "testdata/behaviour/argo-istio.yaml", want: []int32{20, 50}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			ns := c.Namespace(t)
			r := convertFile(t, tc.file)
			var cn *v1alpha1.Canary
			var target *appsv1.Deployment
			for _, o := range r.Outputs {
				obj := o.Object.DeepCopyObject().(client.Object)
				obj.SetNamespace(ns)
				switch x := obj.(type) {
				case *v1alpha1.Canary:
					x.Labels = map[string]string{controller.InstanceLabel: instance}
					cn = x
				case *appsv1.Deployment:
					target = x
				}
			}
			if cn == nil {
				t.Fatalf("no Canary converted from %s", tc.file)
			}
			if target == nil {
				target = deploymentFor(ns, cn.Spec.TargetRef.Name)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			objs := []client.Object{target, cn}
			for _, ref := range r.Ignored {
				objs = append(objs, ignoredObject(t, tc.file, ref, ns))
			}
			for _, o := range objs {
				if err := cl.Create(ctx, o); err != nil {
					t.Fatalf("create %s: %v", o.GetName(), err)
				}
			}
			t.Cleanup(func() { deleteCanary(t, cl, cn) })
			waitFor(t, ctx, cl, cn, func(s v1alpha1.CanaryStatus) bool { return s.Phase == v1alpha1.PhaseInitialized })

			// A new revision: record the weights until it is promoted.
			patch := client.MergeFrom(target.DeepCopy())
			target.Spec.Template.Spec.Containers[0].Image = "example.org/app:2"
			if err := cl.Patch(ctx, target, patch); err != nil {
				t.Fatal(err)
			}
			var walk []int32
			waitFor(t, ctx, cl, cn, func(s v1alpha1.CanaryStatus) bool {
				if s.Phase == v1alpha1.PhaseProgressing && s.CanaryWeight > 0 && (len(walk) == 0 || walk[len(walk)-1] != s.CanaryWeight) {
					walk = append(walk, s.CanaryWeight)
				}
				return s.Phase == v1alpha1.PhaseSucceeded
			})
			t.Logf("%s: source walks %v, the converted Canary walked %v", tc.file, tc.want, walk)
			if !slices.Equal(walk, tc.want) {
				t.Errorf("the converted Canary walked %v, the source walks %v", walk, tc.want)
			}
		})
	}
}

// ignoredObject is the object ref ("Kind namespace/name") of file that
// convert did not read, in namespace ns.
func ignoredObject(t *testing.T, file, ref, ns string) client.Object {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	objs, err := Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		name, _ := nameOf(o)
		if k, _ := o["kind"].(string); ref == k+" "+name || strings.HasPrefix(ref, k+" ") && strings.HasSuffix(ref, "/"+name) {
			u := &unstructured.Unstructured{Object: o}
			u.SetNamespace(ns)
			return u
		}
	}
	t.Fatalf("%s: %s not found", file, ref)
	return nil
}

// startController runs a Sluice controller in this process for the
// Canaries labelled with the instance id it returns.
func startController(t *testing.T, c *testenv.Cluster) string {
	t.Helper()
	return c.StartInstance(t, "convert")
}

// deploymentFor is the Deployment a Flagger Canary targets, as its user
// had it.
func deploymentFor(ns, name string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: kptr.To(int32(2)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: "example.org/app:1",
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				}}},
			},
		},
	}
}

// waitFor polls the Canary's status every 100 ms until done says so.
func waitFor(t *testing.T, ctx context.Context, cl client.Client, cn *v1alpha1.Canary, done func(v1alpha1.CanaryStatus) bool) {
	t.Helper()
	var last v1alpha1.CanaryStatus
	for ctx.Err() == nil {
		var got v1alpha1.Canary
		if err := cl.Get(ctx, client.ObjectKeyFromObject(cn), &got); err == nil {
			last = got.Status
			if done(got.Status) {
				return
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("canary %s/%s: gave up in phase %s (%s: %s), weight %d", cn.Namespace, cn.Name, last.Phase, last.Reason, last.Message, last.CanaryWeight)
}

// deleteCanary deletes the Canary while the controller runs (it removes
// the finalizer).
func deleteCanary(t *testing.T, cl client.Client, cn *v1alpha1.Canary) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.Delete(ctx, cn); err != nil {
		return
	}
	for ctx.Err() == nil {
		if err := cl.Get(ctx, client.ObjectKeyFromObject(cn), &v1alpha1.Canary{}); err != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("canary %s/%s not finalized within 30s", cn.Namespace, cn.Name)
}
