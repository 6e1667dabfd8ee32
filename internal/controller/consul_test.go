package controller_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/router/consul"
	"github.com/sluice-dev/sluice/internal/testenv"
	"github.com/sluice-dev/sluice/internal/workload"
)

// consulEntry reads a consul-k8s entry (nil when absent).
func consulEntry(ctx context.Context, cl client.Client, kind, ns, name string) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(consul.GVK(kind))
	if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	return u, nil
}

// connectService is the pod annotation naming the Consul service a pod
// registers as; without it consul-k8s names the service after each
// Kubernetes Service that selects the pod.
const connectService = "consul.hashicorp.com/connect-service"

// consulApp is a Deployment whose pods join the mesh as Consul service
// svc, as the Consul router needs of its target.
func consulApp(ns, name, image string, replicas int32, svc string) *appsv1.Deployment {
	d := app(ns, name, image, replicas)
	d.Spec.Template.Annotations = map[string]string{"consul.hashicorp.com/connect-inject": "true", connectService: svc}
	return d
}

// canarySplit is the canary subset's weight in the ServiceSplitter, -1
// without one.
func canarySplit(ctx context.Context, cl client.Client, ns, name string) int64 {
	u, err := consulEntry(ctx, cl, consul.Splitter, ns, name)
	if err != nil {
		return -1
	}
	return canarySplitOf(u)
}

// canarySplitOf is a splitter's canary subset weight, -1 when there is no
// splitter or no canary split.
func canarySplitOf(u *unstructured.Unstructured) int64 {
	if u == nil {
		return -1
	}
	splits, _, _ := unstructured.NestedSlice(u.Object, "spec", "splits")
	for _, x := range splits {
		if e := x.(map[string]any); e["serviceSubset"] == "canary" {
			w, _ := e["weight"].(int64)
			return w
		}
	}
	return -1
}

// A release through consul-k8s entries (no consul-k8s controller here, so
// waitForSync is off): the primary's and the canary's pod templates carry
// their revisions as service meta, the resolver's subsets follow them, the
// splitter walks the steps (read at every step by a sampler), a header
// step is a ServiceRouter while the release runs, and an abort sends
// everything back to the stable subset.
func TestConsulRelease(t *testing.T) {
	_, ns, cl := setup(t)
	yes := "yes"
	c := canary(ns, "cns",
		v1alpha1.Step{SetHeaderRoute: &v1alpha1.HeaderRoute{Match: []v1alpha1.HeaderMatch{{Name: "x-canary", Exact: &yes}}}},
		weightStep(20), pauseStep(time.Second), weightStep(60), pauseStep(time.Second))
	c.Spec.Router = v1alpha1.RouterSpec{Consul: &v1alpha1.ConsulRouter{WaitForSync: ptr.To(false)}}
	create(t, cl, consulApp(ns, "cns", "example.com/cns:1", 1, "cns"), c)
	first := waitPhase(t, cl, ns, "cns", v1alpha1.PhaseInitialized, 60*time.Second)
	meta := consul.MetaPrefix + "version"
	primary, err := deployment(t.Context(), cl, ns, "cns-primary")
	if err != nil || primary.Spec.Template.Annotations[meta] != first.Status.StableRevision {
		t.Fatalf("primary's service meta %q, want the stable revision %q (%v)", primary.Spec.Template.Annotations[meta], first.Status.StableRevision, err)
	}

	list, item := unstructuredKind(consul.GVK(consul.Splitter))
	seenRec := recordStates(t, list, item, ns, "cns", func(o client.Object) (int64, bool) {
		u, _ := o.(*unstructured.Unstructured)
		return canarySplitOf(u), true
	})
	rlist, ritem := unstructuredKind(consul.GVK(consul.Routes))
	routerRec := recordStates(t, rlist, ritem, ns, "cns", func(o client.Object) (bool, bool) { return o != nil, true })
	setImage(t, cl, ns, "cns", "example.com/cns:2")
	done := waitPhase(t, cl, ns, "cns", v1alpha1.PhaseSucceeded, 90*time.Second)
	seen := seenRec.states()
	headerSeen := slices.Contains(routerRec.states(), true)
	if want := []int64{0, 20, 60, 100, 0}; !slices.Equal(seen, want) {
		t.Errorf("canary subset weights: %v, want %v", seen, want)
	}
	if !headerSeen {
		t.Error("no ServiceRouter while the header step was in force")
	}
	if rt, _ := consulEntry(t.Context(), cl, consul.Routes, ns, "cns"); rt != nil {
		t.Error("the ServiceRouter outlives the release")
	}
	target, err := deployment(t.Context(), cl, ns, "cns")
	if err != nil || target.Spec.Template.Annotations[meta] != done.Status.StableRevision {
		t.Errorf("canary's service meta %q, want its revision %q", target.Spec.Template.Annotations[meta], done.Status.StableRevision)
	}
	res, _ := consulEntry(t.Context(), cl, consul.Resolver, ns, "cns")
	if f, _, _ := unstructured.NestedString(res.Object, "spec", "subsets", "stable", "filter"); f != consul.Filter("version", done.Status.StableRevision) {
		t.Errorf("stable subset filter %q after promotion", f)
	}

	setImage(t, cl, ns, "cns", "example.com/cns:3")
	testenv.Eventually(t, 30*time.Second, "canary subset at 20", func(ctx context.Context) error {
		if w := canarySplit(ctx, cl, ns, "cns"); w != 20 {
			return fmt.Errorf("weight %d", w)
		}
		return nil
	})
	request(t, cl, ns, "cns", v1alpha1.RequestAbort)
	waitPhase(t, cl, ns, "cns", v1alpha1.PhaseFailed, 30*time.Second)
	testenv.Eventually(t, 30*time.Second, "everything back on the stable subset", func(ctx context.Context) error {
		if w := canarySplit(ctx, cl, ns, "cns"); w != 0 {
			return fmt.Errorf("weight %d", w)
		}
		return nil
	})
	expectTargetReplicas(t, cl, ns, "cns", 0)
}

// With waitForSync (the default), the release holds until consul-k8s
// reports every entry Synced after Sluice's write; here the test plays
// consul-k8s and sets the condition.
func TestConsulWaitsForSync(t *testing.T) {
	_, ns, cl := setup(t)
	c := canary(ns, "syn", weightStep(50))
	c.Spec.Router = v1alpha1.RouterSpec{Consul: &v1alpha1.ConsulRouter{}}
	create(t, cl, consulApp(ns, "syn", "example.com/syn:1", 1, "syn"), c)
	testenv.Eventually(t, 30*time.Second, "held for Synced", func(ctx context.Context) error {
		got, err := getCanary(ctx, cl, ns, "syn")
		if err != nil {
			return err
		}
		if got.Status.Phase != v1alpha1.PhaseInitializing || !strings.Contains(got.Status.Message, "has not reported") {
			return fmt.Errorf("%s: %s", got.Status.Phase, got.Status.Message)
		}
		return nil
	})
	// Still held however often it is reconciled: nothing else moves it on.
	holdsStill(t, cl, ns, "syn", 3, func(_ context.Context, got *v1alpha1.Canary) error {
		if got.Status.Phase != v1alpha1.PhaseInitializing {
			return fmt.Errorf("moved on without Synced: %s %s", got.Status.Phase, got.Status.Message)
		}
		return nil
	})
	for _, kind := range []string{consul.Resolver, consul.Splitter} {
		u, err := consulEntry(t.Context(), cl, kind, ns, "syn")
		if err != nil || u == nil {
			t.Fatalf("%s: %v", kind, err)
		}
		at := time.Now().Add(time.Second).UTC().Format(time.RFC3339)
		_ = unstructured.SetNestedSlice(u.Object, []any{map[string]any{"type": "Synced", "status": "True", "lastTransitionTime": at}}, "status", "conditions")
		_ = unstructured.SetNestedField(u.Object, at, "status", "lastSyncedTime")
		if err := cl.Status().Update(t.Context(), u); err != nil {
			t.Fatal(err)
		}
	}
	waitPhase(t, cl, ns, "syn", v1alpha1.PhaseInitialized, 60*time.Second)
}

// splitSampler records every version of the ServiceSplitter by watching
// it: the canary subset's weight, each value once per change (-1: no
// splitter).
type splitSampler struct {
	rec *stateRecorder[int64]
}

func sampleSplit(t *testing.T, _ client.Client, ns, name string) *splitSampler {
	list, item := unstructuredKind(consul.GVK(consul.Splitter))
	return &splitSampler{rec: recordStates(t, list, item, ns, name, func(o client.Object) (int64, bool) {
		u, _ := o.(*unstructured.Unstructured)
		return canarySplitOf(u), true
	})}
}

func (s *splitSampler) stop() { s.rec.stop() }

// weights stops the watch and returns the weights written, in order.
func (s *splitSampler) weights() []int64 { return s.rec.states() }

func (s *splitSampler) String() string {
	return fmt.Sprintf("canary subset weights so far %v", s.rec.sofar())
}

// userObjectUnchanged reports whether a user's object is as it was, but
// for the sluice.dev/canary label and the fields the apiserver keeps
// (resourceVersion, managedFields): spec, status, owners, other labels and
// annotations compared whole.
func userObjectUnchanged(before, after *unstructured.Unstructured) bool {
	strip := func(u *unstructured.Unstructured) map[string]any {
		u = u.DeepCopy()
		l := u.GetLabels()
		delete(l, workload.CanaryLabel)
		if len(l) == 0 {
			l = nil
		}
		u.SetLabels(l)
		u.SetResourceVersion("")
		u.SetManagedFields(nil)
		return u.Object
	}
	return reflect.DeepEqual(strip(before), strip(after))
}

// waitSettledOrStalled waits until the Canary has initialized (a
// router's refusal stalls it once a release runs) or is already Stalled
// with reason (in Initializing).
func waitSettledOrStalled(t *testing.T, cl client.Client, ns, name, reason string) {
	t.Helper()
	testenv.Eventually(t, 60*time.Second, "initialized, or stalled with "+reason, func(ctx context.Context) error {
		c, err := getCanary(ctx, cl, ns, name)
		if err != nil {
			return err
		}
		if c.Status.Phase != v1alpha1.PhaseInitialized && !stalledWith(c, reason) {
			return fmt.Errorf("phase %s (%s: %s)", c.Status.Phase, c.Status.Reason, c.Status.Message)
		}
		return nil
	})
}

// A ServiceRouter of the user's named after the service, with a Canary
// that has header steps: Sluice would have to overwrite it, so the release
// stalls with RouterNotOwned naming it and the fix, the canary subset gets
// no traffic and the user's router stays exactly as written (but for the
// sluice.dev/canary label Sluice puts on what it reads). Once it is
// deleted the refusal lifts and the next release walks its steps with a
// ServiceRouter Sluice owns.
func TestConsulUserRouterWithHeaderStepsStalls(t *testing.T) {
	_, ns, cl := setup(t)
	yes := "yes"
	c := canary(ns, "rtr",
		v1alpha1.Step{SetHeaderRoute: &v1alpha1.HeaderRoute{Match: []v1alpha1.HeaderMatch{{Name: "x-canary", Exact: &yes}}}},
		pauseStep(time.Second), weightStep(50))
	c.Spec.Router = v1alpha1.RouterSpec{Consul: &v1alpha1.ConsulRouter{WaitForSync: ptr.To(false)}}
	theirs := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"routes": []any{map[string]any{
		"match":       map[string]any{"http": map[string]any{"pathPrefix": "/admin"}},
		"destination": map[string]any{"service": "admin"},
	}}}}}
	theirs.SetGroupVersionKind(consul.GVK(consul.Routes))
	theirs.SetNamespace(ns)
	theirs.SetName("rtr")
	create(t, cl, theirs, consulApp(ns, "rtr", "example.com/rtr:1", 1, "rtr"), c)
	before, err := consulEntry(t.Context(), cl, consul.Routes, ns, "rtr")
	if err != nil || before == nil {
		t.Fatalf("the user's ServiceRouter: %v", err)
	}
	waitSettledOrStalled(t, cl, ns, "rtr", "RouterNotOwned")

	split := sampleSplit(t, cl, ns, "rtr")
	setImage(t, cl, ns, "rtr", "example.com/rtr:2")
	waitStalledWith(t, cl, ns, "rtr", "RouterNotOwned", 60*time.Second, split.String,
		"servicerouter "+ns+"/rtr is not Sluice's", "setHeaderRoute")
	after, err := consulEntry(t.Context(), cl, consul.Routes, ns, "rtr")
	if err != nil || after == nil {
		t.Fatalf("the user's ServiceRouter after the refusal: %v", err)
	}
	// Sluice labels what it reads of the user's (its cache then holds
	// it); nothing else may change.
	if !userObjectUnchanged(before, after) {
		t.Errorf("the user's ServiceRouter was written:\nbefore %v\nafter  %v", before.Object, after.Object)
	}
	if got, _ := getCanary(t.Context(), cl, ns, "rtr"); got.Status.CurrentStep != 0 || got.Status.CanaryWeight != 0 {
		t.Errorf("the release moved past its header step: step %d, weight %d", got.Status.CurrentStep, got.Status.CanaryWeight)
	}
	if w := split.weights(); maxWeight(w) > 0 {
		t.Errorf("the canary subset got traffic while refused: %v", w)
	}

	// The user's router gone, the refusal lifts; the next release walks
	// its steps with a ServiceRouter Sluice owns for the header step.
	if err := cl.Delete(t.Context(), after); err != nil {
		t.Fatal(err)
	}
	settled := waitSettledClear(t, cl, ns, "rtr")
	split.stop()
	split = sampleSplit(t, cl, ns, "rtr")
	owned := false
	stop := inBackground(t, func(ctx context.Context) {
		if rt, _ := consulEntry(ctx, cl, consul.Routes, ns, "rtr"); rt != nil && len(rt.GetOwnerReferences()) == 1 {
			owned = true
		}
	})
	setImage(t, cl, ns, "rtr", "example.com/rtr:3")
	waitReleased(t, cl, ns, "rtr", settled)
	stop()
	split.stop()
	if !owned {
		t.Error("no ServiceRouter of Sluice's during the header step")
	}
	if w := split.weights(); !slices.Contains(w, 50) {
		t.Errorf("canary subset weights %v: the release did not walk its steps once the router was gone", w)
	}
}

// waitSettledClear waits until the Canary is settled (Initialized or
// Succeeded) and not Stalled, and returns it.
func waitSettledClear(t *testing.T, cl client.Client, ns, name string) *v1alpha1.Canary {
	t.Helper()
	var got *v1alpha1.Canary
	testenv.Eventually(t, 90*time.Second, "settled and not stalled", func(ctx context.Context) error {
		c, err := getCanary(ctx, cl, ns, name)
		if err != nil {
			return err
		}
		st := meta.FindStatusCondition(c.Status.Conditions, v1alpha1.ConditionStalled)
		if (c.Status.Phase != v1alpha1.PhaseInitialized && c.Status.Phase != v1alpha1.PhaseSucceeded) || (st != nil && st.Status == metav1.ConditionTrue) {
			return fmt.Errorf("phase %s (%s: %s), Stalled %+v", c.Status.Phase, c.Status.Reason, c.Status.Message, st)
		}
		got = c
		return nil
	})
	return got
}

// waitReleased waits until a release after from has been promoted: the
// Canary Succeeded at a stable revision other than from's.
func waitReleased(t *testing.T, cl client.Client, ns, name string, from *v1alpha1.Canary) *v1alpha1.Canary {
	t.Helper()
	var got *v1alpha1.Canary
	testenv.Eventually(t, 90*time.Second, "a new revision promoted", func(ctx context.Context) error {
		c, err := getCanary(ctx, cl, ns, name)
		if err != nil {
			return err
		}
		if c.Status.Phase != v1alpha1.PhaseSucceeded || c.Status.StableRevision == from.Status.StableRevision {
			return fmt.Errorf("phase %s (%s: %s) at stable revision %s", c.Status.Phase, c.Status.Reason, c.Status.Message, c.Status.StableRevision)
		}
		got = c
		return nil
	})
	return got
}

// maxWeight is the largest weight seen, -1 when none was.
func maxWeight(w []int64) int64 {
	if len(w) == 0 {
		return -1
	}
	return slices.Max(w)
}

// consul-k8s registers a pod as the Consul service its connect-service
// annotation names, else as each Kubernetes Service that selects it: a
// target without the annotation has its canary pods registered as
// "<apex>-canary", so the canary subset of the Consul service Sluice
// splits holds no pod and every request sent to it fails. Sluice refuses
// such a target (Stalled ConnectServiceMismatch naming the annotation,
// the field and the fix) and the canary subset gets no traffic; with the
// annotation set the release goes through.
func TestConsulTargetWithoutConnectServiceStalls(t *testing.T) {
	_, ns, cl := setup(t)
	c := canary(ns, "mesh", weightStep(50))
	c.Spec.Router = v1alpha1.RouterSpec{Consul: &v1alpha1.ConsulRouter{WaitForSync: ptr.To(false)}}
	create(t, cl, app(ns, "mesh", "example.com/mesh:1", 1), c)
	waitSettledOrStalled(t, cl, ns, "mesh", "ConnectServiceMismatch")

	split := sampleSplit(t, cl, ns, "mesh")
	setImage(t, cl, ns, "mesh", "example.com/mesh:2")
	waitStalledWith(t, cl, ns, "mesh", "ConnectServiceMismatch", 60*time.Second, split.String,
		"deployment "+ns+"/mesh", `spec.template.metadata.annotations["consul.hashicorp.com/connect-service"] is not set`,
		`"mesh-canary"`, "spec.router.consul.serviceName", `set it to "mesh"`)
	if w := split.weights(); maxWeight(w) > 0 {
		t.Errorf("the canary subset got traffic although no canary pod joins Consul service mesh: %v", w)
	}

	// With the annotation set the refusal lifts, and a release walks its
	// step.
	d, err := deployment(t.Context(), cl, ns, "mesh")
	if err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(d.DeepCopy())
	if d.Spec.Template.Annotations == nil {
		d.Spec.Template.Annotations = map[string]string{}
	}
	d.Spec.Template.Annotations[connectService] = "mesh"
	if err := cl.Patch(t.Context(), d, patch); err != nil {
		t.Fatal(err)
	}
	settled := waitSettledClear(t, cl, ns, "mesh")
	split.stop()
	split = sampleSplit(t, cl, ns, "mesh")
	setImage(t, cl, ns, "mesh", "example.com/mesh:3")
	waitReleased(t, cl, ns, "mesh", settled)
	split.stop()
	if w := split.weights(); !slices.Contains(w, 50) {
		t.Errorf("canary subset weights %v: the fixed release did not walk its step", w)
	}
	primary, err := deployment(t.Context(), cl, ns, "mesh-primary")
	if err != nil || primary.Spec.Template.Annotations[connectService] != "mesh" {
		t.Errorf("the promoted primary's pods do not join Consul service mesh: %v (%v)", primary.Spec.Template.Annotations, err)
	}
}
