package controller_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/controller"
	"github.com/sluice-dev/sluice/internal/routers"
	"github.com/sluice-dev/sluice/internal/serviceaccount"
	"github.com/sluice-dev/sluice/internal/testenv"
)

// limitedController runs a second controller in this process as a user
// holding exactly the shipped ClusterRole (config/rbac/role.yaml), with
// one worker, for the Canaries labelled with the returned instance id.
// Its Canaries are deleted (and finalized by it) before it stops.
func limitedController(t *testing.T, c *testenv.Cluster, cl client.Client, ns string) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	shipped, err := serviceaccount.ShippedRole(root)
	if err != nil {
		t.Fatal(err)
	}
	role := *shipped
	user := "sluice-limited-" + ns
	role.ObjectMeta = metav1.ObjectMeta{Name: user}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: user},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: user},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}
	create(t, cl, &role, binding)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = cl.Delete(ctx, binding)
		_ = cl.Delete(ctx, &role)
	})

	cfg := rest.CopyConfig(c.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	instance := "limited-" + ns
	testenv.StartController(t, cfg, controller.ManagerConfig{
		Manager:      ctrl.Options{Scheme: scheme},
		InstanceID:   instance,
		MaxQueries:   8,
		RecorderName: "sluice-limited",
		TargetPoll:   2 * time.Second,
		Options:      controller.Options{Workers: 1},
		Routers:      routers.All(),
	})
	// Runs before the controller stops: its Canaries need it to go.
	t.Cleanup(func() { deleteCanaries(t, cl, ns, instance) })
	return instance
}

// deleteCanaries deletes the instance's Canaries and waits until their
// controller let them go; past 30 s it takes the finalizers off itself
// (and says so), so the namespace can go.
func deleteCanaries(t *testing.T, cl client.Client, ns, instance string) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	sel := client.MatchingLabels{controller.InstanceLabel: instance}
	if err := cl.DeleteAllOf(ctx, &v1alpha1.Canary{}, client.InNamespace(ns), sel); err != nil {
		t.Errorf("delete canaries: %v", err)
		return
	}
	err := poll(ctx, 30*time.Second, func(ctx context.Context) error {
		var list v1alpha1.CanaryList
		if err := cl.List(ctx, &list, client.InNamespace(ns), sel); err != nil {
			return err
		}
		if len(list.Items) > 0 {
			return fmt.Errorf("%d canaries left", len(list.Items))
		}
		return nil
	})
	if err == nil {
		return
	}
	t.Errorf("canaries of %s not finalized by their controller: %v; removing the finalizers", instance, err)
	var list v1alpha1.CanaryList
	if err := cl.List(ctx, &list, client.InNamespace(ns), sel); err != nil {
		return
	}
	for i := range list.Items {
		c := &list.Items[i]
		patch := client.MergeFrom(c.DeepCopy())
		c.Finalizers = nil
		_ = cl.Patch(ctx, c, patch)
	}
}

// poll calls cond every 100 ms until it returns nil or timeout passes.
func poll(ctx context.Context, timeout time.Duration, cond func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := cond(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// A backend of a kind the controller's RBAC does not let it list and
// watch (an Istio ServiceEntry; the shipped ClusterRole does not name it)
// stalls its Canary at once, saying which kind and which verbs are
// missing, and writes no route; the controller's only worker goes on to
// other Canaries instead of waiting for an informer that can never sync.
func TestBackendKindWithoutRBACFailsFast(t *testing.T) {
	c, ns, cl := setup(t)
	entry := &unstructured.Unstructured{}
	entry.SetAPIVersion("networking.istio.io/v1")
	entry.SetKind("ServiceEntry")
	entry.SetName("payments-ext")
	entry.SetNamespace(ns)
	_ = unstructured.SetNestedStringSlice(entry.Object, []string{"payments.example.com"}, "spec", "hosts")
	_ = unstructured.SetNestedSlice(entry.Object, []any{map[string]any{"number": int64(443), "name": "https", "protocol": "TLS"}}, "spec", "ports")
	create(t, cl, entry)
	instance := limitedController(t, c, cl, ns)

	ext := canary(ns, "ext", weightStep(20))
	ext.Labels[controller.InstanceLabel] = instance
	ext.Spec.Service.BackendRefs = &v1alpha1.PhaseBackendRefs{Canary: []v1alpha1.BackendRef{{
		Group: ptr.To("networking.istio.io"), Kind: ptr.To("ServiceEntry"), Name: "payments-ext", Port: ptr.To(int32(443)),
	}}}
	create(t, cl, app(ns, "ext", "example.com/ext:1", 1), ext)
	// Created after it: reconciled by the same single worker.
	plain := canary(ns, "plain", weightStep(20))
	plain.Labels[controller.InstanceLabel] = instance
	create(t, cl, app(ns, "plain", "example.com/plain:1", 1), plain)

	testenv.Eventually(t, 60*time.Second, "forbidden backend kind reported, the other Canary initialised", func(ctx context.Context) error {
		got, err := getCanary(ctx, cl, ns, "ext")
		if err != nil {
			return err
		}
		other, err := getCanary(ctx, cl, ns, "plain")
		if err != nil {
			return err
		}
		var problems []string
		st := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionStalled)
		switch {
		case st == nil || st.Status != metav1.ConditionTrue || st.Reason != "BackendKindForbidden":
			problems = append(problems, fmt.Sprintf("ext: phase %q (%s: %s)", got.Status.Phase, got.Status.Reason, got.Status.Message))
		default:
			for _, want := range []string{"spec.service.backendRefs.canary[0]", "may not list or watch serviceentries.networking.istio.io", "ServiceEntry"} {
				if !strings.Contains(st.Message, want) {
					problems = append(problems, fmt.Sprintf("ext: Stalled message %q lacks %q", st.Message, want))
				}
			}
		}
		if other.Status.Phase != v1alpha1.PhaseInitialized {
			problems = append(problems, fmt.Sprintf("plain: phase %q (%s: %s)", other.Status.Phase, other.Status.Reason, other.Status.Message))
		}
		if len(problems) > 0 {
			return errors.New(strings.Join(problems, "; "))
		}
		return nil
	})
	if got, err := getCanary(t.Context(), cl, ns, "ext"); err == nil {
		t.Logf("ext: %s", meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionStalled).Message)
	}
	if _, err := routeSplit(t.Context(), cl, ns, "ext"); err == nil {
		t.Errorf("an HTTPRoute was written for a backend the controller cannot read")
	}
	assertEvents(t, cl, ns, "ext", "BackendKindForbidden")
}
