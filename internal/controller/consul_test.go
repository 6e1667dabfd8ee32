package controller_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

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

// canarySplit is the canary subset's weight in the ServiceSplitter, -1
// without one.
func canarySplit(ctx context.Context, cl client.Client, ns, name string) int64 {
	u, err := consulEntry(ctx, cl, consul.Splitter, ns, name)
	if err != nil || u == nil {
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
	create(t, cl, app(ns, "cns", "example.com/cns:1", 1), c)
	first := waitPhase(t, cl, ns, "cns", v1alpha1.PhaseInitialized, 60*time.Second)
	meta := workload.ConsulMetaPrefix + "version"
	primary, err := deployment(t.Context(), cl, ns, "cns-primary")
	if err != nil || primary.Spec.Template.Annotations[meta] != first.Status.StableRevision {
		t.Fatalf("primary's service meta %q, want the stable revision %q (%v)", primary.Spec.Template.Annotations[meta], first.Status.StableRevision, err)
	}

	var seen []int64
	headerSeen := false
	stop := inBackground(t, func(ctx context.Context) {
		if w := canarySplit(ctx, cl, ns, "cns"); len(seen) == 0 || seen[len(seen)-1] != w {
			seen = append(seen, w)
		}
		if rt, _ := consulEntry(ctx, cl, consul.Routes, ns, "cns"); rt != nil {
			headerSeen = true
		}
	})
	setImage(t, cl, ns, "cns", "example.com/cns:2")
	done := waitPhase(t, cl, ns, "cns", v1alpha1.PhaseSucceeded, 90*time.Second)
	stop()
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
	create(t, cl, app(ns, "syn", "example.com/syn:1", 1), c)
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
	// Still held a moment later: nothing else moves it on.
	<-time.After(3 * time.Second)
	if got, _ := getCanary(t.Context(), cl, ns, "syn"); got.Status.Phase != v1alpha1.PhaseInitializing {
		t.Fatalf("moved on without Synced: %s %s", got.Status.Phase, got.Status.Message)
	}
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
