package controller_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/testenv"
)

// trafficMonitor watches the generated route, the primary and the canary
// Deployment, and afterwards replays every version of them in the order
// the apiserver wrote them (by resourceVersion: one etcd, one revision
// counter), so that its verdicts do not depend on how often a loaded
// machine let it look. It records each distinct canary share and any
// moment the route gave the canary traffic while it had no available
// replica, or the primary's template changed while the route did not send
// all traffic to the canary.
type trafficMonitor struct {
	mu     sync.Mutex
	events []monitorEvent
	cancel context.CancelFunc
	done   sync.WaitGroup
	final  func()
}

// monitorEvent is one version of a watched object.
type monitorEvent struct {
	rv        int64
	route     bool
	share     int32  // route: the canary's share
	primary   bool   // a version of the primary
	image     string // primary: its first container's image
	available int32  // canary Deployment: its available replicas
}

func monitor(t *testing.T, cl client.Client, ns, name string) *trafficMonitor {
	t.Helper()
	wcl, err := client.NewWithWatch(testenv.Get(t).Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &trafficMonitor{cancel: cancel}
	record := func(obj client.Object) {
		rv, err := strconv.ParseInt(obj.GetResourceVersion(), 10, 64)
		if err != nil {
			return
		}
		e := monitorEvent{rv: rv}
		switch o := obj.(type) {
		case *gwv1.HTTPRoute:
			if len(o.Spec.Rules) == 0 {
				return
			}
			e.route, e.share = true, canaryShare(splitOf(o), name)
		case *appsv1.Deployment:
			if o.Name == name+"-primary" {
				e.primary, e.image = true, o.Spec.Template.Spec.Containers[0].Image
			} else {
				e.available = o.Status.AvailableReplicas
			}
		}
		m.mu.Lock()
		m.events = append(m.events, e)
		m.mu.Unlock()
	}
	follow := func(list client.ObjectList, objName string) {
		defer m.done.Done()
		watchObject(ctx, wcl, list, ns, objName, func(_ watch.EventType, o client.Object) { record(o) })
	}
	m.done.Add(3)
	go follow(&gwv1.HTTPRouteList{}, name)
	go follow(&appsv1.DeploymentList{}, name+"-primary")
	go follow(&appsv1.DeploymentList{}, name)
	// The end state, read once the watches stop: however late a watch
	// event would have come, these reads are at least as new.
	m.final = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var r gwv1.HTTPRoute
		if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &r); err == nil {
			record(&r)
		}
		for _, n := range []string{name + "-primary", name} {
			var d appsv1.Deployment
			if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: n}, &d); err == nil {
				record(&d)
			}
		}
	}
	t.Cleanup(m.halt)
	return m
}

// waitFirstSample waits until the monitor has seen the route, so that the
// share before a change is among those it saw.
func (m *trafficMonitor) waitFirstSample(t *testing.T) {
	t.Helper()
	testenv.Eventually(t, 20*time.Second, "the monitor's first sample", func(context.Context) error {
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, e := range m.events {
			if e.route {
				return nil
			}
		}
		return errors.New("no route seen yet")
	})
}

func (m *trafficMonitor) halt() {
	m.cancel()
	m.done.Wait()
}

// result stops the watches, reads the end state, and replays every
// version seen in the order it was written.
func (m *trafficMonitor) result() ([]int32, []string) {
	m.halt()
	m.final()
	m.mu.Lock()
	events := slices.Clone(m.events)
	m.mu.Unlock()
	return replay(events)
}

// replay orders the versions seen by resourceVersion and walks them: the
// distinct canary shares, and the violations.
func replay(events []monitorEvent) ([]int32, []string) {
	slices.SortStableFunc(events, func(a, b monitorEvent) int { return cmp.Compare(a.rv, b.rv) })
	var shares []int32
	var violations []string
	share, image, available, seenRoute, seenCanary := int32(0), "", int32(0), false, false
	for _, e := range events {
		switch {
		case e.route:
			share, seenRoute = e.share, true
			if len(shares) == 0 || shares[len(shares)-1] != share {
				shares = append(shares, share)
			}
		case e.primary:
			if image != "" && e.image != image && seenRoute && share < 100 {
				violations = append(violations, fmt.Sprintf("primary template changed to %s while it carried %d%%", e.image, 100-share))
			}
			image = e.image
		default:
			available, seenCanary = e.available, true
		}
		if share > 0 && seenCanary && available == 0 {
			violations = append(violations, fmt.Sprintf("canary share %d%% with 0 available canary replicas (resourceVersion %d)", share, e.rv))
		}
	}
	return shares, violations
}

// The replay judges by the order of writes, not by when they were seen:
// the same versions in any arrival order give the same verdict, and each
// kind of violation is found.
func TestMonitorReplay(t *testing.T) {
	route := func(rv int64, share int32) monitorEvent { return monitorEvent{rv: rv, route: true, share: share} }
	primary := func(rv int64, image string) monitorEvent { return monitorEvent{rv: rv, primary: true, image: image} }
	canary := func(rv int64, available int32) monitorEvent { return monitorEvent{rv: rv, available: available} }
	good := []monitorEvent{primary(1, "v1"), route(2, 0), canary(3, 1), route(4, 20), route(5, 100), primary(6, "v2"), route(7, 0), canary(8, 0)}
	for _, tc := range []struct {
		name   string
		events []monitorEvent
		shares []int32
		bad    string
	}{
		{"a release in order", good, []int32{0, 20, 100, 0}, ""},
		{"the same, seen out of order", []monitorEvent{good[7], good[2], good[6], good[0], good[5], good[3], good[1], good[4]}, []int32{0, 20, 100, 0}, ""},
		{"primary replaced before the route carried 100%", []monitorEvent{primary(1, "v1"), route(2, 0), canary(3, 1), route(4, 20), primary(5, "v2"), route(6, 100)}, []int32{0, 20, 100},
			"primary template changed to v2 while it carried 80%"},
		{"traffic on a canary without available replicas", []monitorEvent{primary(1, "v1"), canary(2, 0), route(3, 20)}, []int32{20},
			"canary share 20% with 0 available canary replicas"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			shares, violations := replay(slices.Clone(tc.events))
			if !slices.Equal(shares, tc.shares) {
				t.Errorf("shares %v, want %v", shares, tc.shares)
			}
			switch {
			case tc.bad == "" && len(violations) > 0:
				t.Errorf("violations %v, want none", violations)
			case tc.bad != "" && (len(violations) == 0 || !strings.Contains(violations[0], tc.bad)):
				t.Errorf("violations %v, want one saying %q", violations, tc.bad)
			}
		})
	}
}

func TestReleaseWalksStepsToSucceeded(t *testing.T) {
	_, ns, cl := setup(t)
	create(t, cl, app(ns, "web", "example.com/web:1", 2),
		canary(ns, "web", weightStep(20), pauseStep(2*time.Second), weightStep(50), pauseStep(2*time.Second)))

	c := waitPhase(t, cl, ns, "web", v1alpha1.PhaseInitialized, 60*time.Second)
	ctx := t.Context()
	primary, err := deployment(ctx, cl, ns, "web-primary")
	if err != nil {
		t.Fatalf("primary copy: %v", err)
	}
	if img := primary.Spec.Template.Spec.Containers[0].Image; img != "example.com/web:1" || primary.Status.AvailableReplicas != 2 {
		t.Fatalf("primary runs %s with %d available, want example.com/web:1 with 2", img, primary.Status.AvailableReplicas)
	}
	testenv.Eventually(t, 20*time.Second, "target scaled to zero after initialisation", func(ctx context.Context) error {
		d, err := deployment(ctx, cl, ns, "web")
		if err != nil {
			return err
		}
		if ptr.Deref(d.Spec.Replicas, 1) != 0 {
			return fmt.Errorf("target replicas %d", ptr.Deref(d.Spec.Replicas, 1))
		}
		return nil
	})
	var apex corev1.Service
	if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, &apex); err != nil {
		t.Fatalf("apex service: %v", err)
	}
	if apex.Spec.Selector["app"] != "web-primary" {
		t.Errorf("apex Service selects %v, want the primary pods (app=web-primary)", apex.Spec.Selector)
	}
	if !meta.IsStatusConditionTrue(c.Status.Conditions, v1alpha1.ConditionReady) {
		t.Errorf("Initialized canary not Ready: %+v", c.Status.Conditions)
	}

	m := monitor(t, cl, ns, "web")
	m.waitFirstSample(t)
	setImage(t, cl, ns, "web", "example.com/web:2")
	c = waitPhase(t, cl, ns, "web", v1alpha1.PhaseSucceeded, 90*time.Second)
	shares, violations := m.result()

	// 100 while the primary is updated: its pods never serve while they
	// are replaced.
	if want := []int32{0, 20, 50, 100, 0}; !slices.Equal(shares, want) {
		t.Errorf("canary shares seen on the HTTPRoute: %v, want %v", shares, want)
	}
	if len(violations) > 0 {
		t.Errorf("traffic went to a copy being replaced or with no available replica: %v", violations)
	}
	primary, _ = deployment(ctx, cl, ns, "web-primary")
	if img := primary.Spec.Template.Spec.Containers[0].Image; img != "example.com/web:2" {
		t.Errorf("primary runs %s after promotion, want example.com/web:2", img)
	}
	if c.Status.StableRevision != c.Status.CanaryRevision || c.Status.CanaryWeight != 0 {
		t.Errorf("status after promotion: stable %s canary %s weight %d", c.Status.StableRevision, c.Status.CanaryRevision, c.Status.CanaryWeight)
	}
	target, _ := deployment(ctx, cl, ns, "web")
	if ptr.Deref(target.Spec.Replicas, 1) != 0 {
		t.Errorf("canary not scaled down after promotion: %d replicas", *target.Spec.Replicas)
	}
	assertEvents(t, cl, ns, "web", "NewRevision", "WeightSet", "Promoting", "Promoted")
}

// assertEvents checks that Events with these reasons were recorded on the
// Canary.
func assertEvents(t *testing.T, cl client.Client, ns, name string, reasons ...string) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, "events recorded", func(ctx context.Context) error {
		var list corev1.EventList
		if err := cl.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, e := range list.Items {
			if e.InvolvedObject.Name == name && e.InvolvedObject.Kind == "Canary" {
				seen[e.Reason] = true
			}
		}
		for _, r := range reasons {
			if !seen[r] {
				return fmt.Errorf("no %s event (seen %v)", r, seen)
			}
		}
		return nil
	})
}

func TestAbortThenRetryThenPromote(t *testing.T) {
	_, ns, cl := setup(t)
	create(t, cl, app(ns, "shop", "example.com/shop:1", 2), canary(ns, "shop", weightStep(30), untilPromoted()))
	releaseToPausedStep(t, cl, ns, "shop")
	expectShare(t, cl, ns, "shop", 30)

	request(t, cl, ns, "shop", v1alpha1.RequestAbort)
	c := waitPhase(t, cl, ns, "shop", v1alpha1.PhaseFailed, 30*time.Second)
	if c.Status.Reason != "Aborted" || !meta.IsStatusConditionTrue(c.Status.Conditions, v1alpha1.ConditionStalled) ||
		meta.IsStatusConditionTrue(c.Status.Conditions, v1alpha1.ConditionReady) {
		t.Errorf("after abort: reason %s, conditions %+v", c.Status.Reason, c.Status.Conditions)
	}
	expectShare(t, cl, ns, "shop", 0)
	expectTargetReplicas(t, cl, ns, "shop", 0)
	primary, _ := deployment(t.Context(), cl, ns, "shop-primary")
	if img := primary.Spec.Template.Spec.Containers[0].Image; img != "example.com/shop:1" {
		t.Errorf("primary changed by an aborted release: %s", img)
	}

	// Retry runs the same revision again, without touching the Deployment.
	request(t, cl, ns, "shop", v1alpha1.RequestRetry)
	waitPhase(t, cl, ns, "shop", v1alpha1.PhaseWaitingPromotion, 60*time.Second)
	expectShare(t, cl, ns, "shop", 30)

	// Promote leaves the pause; it was the last step, so the release is
	// promoted.
	request(t, cl, ns, "shop", v1alpha1.RequestPromote)
	waitPhase(t, cl, ns, "shop", v1alpha1.PhaseSucceeded, 60*time.Second)
	primary, _ = deployment(t.Context(), cl, ns, "shop-primary")
	if img := primary.Spec.Template.Spec.Containers[0].Image; img != "example.com/shop:2" {
		t.Errorf("primary after retry and promote: %s, want example.com/shop:2", img)
	}
	expectShare(t, cl, ns, "shop", 0)
	assertEvents(t, cl, ns, "shop", "Aborted", "Retry", "PromoteRequested", "Promoted")
}

func expectShare(t *testing.T, cl client.Client, ns, name string, want int32) {
	t.Helper()
	testenv.Eventually(t, 20*time.Second, fmt.Sprintf("route %s/%s canary share %d%%", ns, name, want), func(ctx context.Context) error {
		split, err := routeSplit(ctx, cl, ns, name)
		if err != nil {
			return err
		}
		if got := canaryShare(split, name); got != want {
			return fmt.Errorf("share %d%% (%v)", got, split)
		}
		return nil
	})
}

func expectTargetReplicas(t *testing.T, cl client.Client, ns, name string, want int32) {
	t.Helper()
	testenv.Eventually(t, 20*time.Second, fmt.Sprintf("deployment %s/%s replicas %d", ns, name, want), func(ctx context.Context) error {
		d, err := deployment(ctx, cl, ns, name)
		if err != nil {
			return err
		}
		if got := ptr.Deref(d.Spec.Replicas, 1); got != want {
			return fmt.Errorf("replicas %d", got)
		}
		return nil
	})
}

func TestPauseHoldsUntilResumed(t *testing.T) {
	_, ns, cl := setup(t)
	create(t, cl, app(ns, "api", "example.com/api:1", 1),
		canary(ns, "api", weightStep(10), untilPromoted(), weightStep(40), pauseStep(time.Second)))
	releaseToPausedStep(t, cl, ns, "api")
	// The apiserver keeps the step's start to the microsecond (a whole
	// second would let a pause end up to a second early).
	raw := &unstructured.Unstructured{}
	raw.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("Canary"))
	if err := cl.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "api"}, raw); err != nil {
		t.Fatal(err)
	}
	// (A start exactly on a whole second, one in a million, would fail.)
	if at, _, _ := unstructured.NestedString(raw.Object, "status", "stepStartedAt"); !regexp.MustCompile(`:\d\d\.\d{6}Z$`).MatchString(at) || strings.HasSuffix(at, ".000000Z") {
		t.Fatalf("status.stepStartedAt read from the apiserver = %q, want RFC 3339 with microseconds", at)
	}
	setPaused(t, cl, ns, "api", true)
	waitPhase(t, cl, ns, "api", v1alpha1.PhasePaused, 20*time.Second)

	// While paused, even a promote request only moves the step pointer:
	// no weight changes and no timer runs.
	request(t, cl, ns, "api", v1alpha1.RequestPromote)
	testenv.Eventually(t, 20*time.Second, "promote handled while paused", func(ctx context.Context) error {
		c, err := getCanary(ctx, cl, ns, "api")
		if err != nil {
			return err
		}
		if c.Status.LastHandledRequest != c.Annotations[v1alpha1.RequestAnnotation] || c.Status.CurrentStep != 2 {
			return fmt.Errorf("step %d, handled %q", c.Status.CurrentStep, c.Status.LastHandledRequest)
		}
		return nil
	})
	// A paused release must not move, however often it is reconciled.
	holdsStill(t, cl, ns, "api", 3, func(ctx context.Context, c *v1alpha1.Canary) error {
		if c.Status.Phase != v1alpha1.PhasePaused || c.Status.CurrentStep != 2 {
			return fmt.Errorf("paused release moved: phase %s step %d", c.Status.Phase, c.Status.CurrentStep)
		}
		if split, err := routeSplit(ctx, cl, ns, "api"); err == nil && canaryShare(split, "api") != 10 {
			return fmt.Errorf("paused release moved: route %v, want a 10%% canary share", split)
		}
		return nil
	})
	expectShare(t, cl, ns, "api", 10)

	setPaused(t, cl, ns, "api", false)
	expectShare(t, cl, ns, "api", 40)
	waitPhase(t, cl, ns, "api", v1alpha1.PhaseSucceeded, 60*time.Second)
	assertEvents(t, cl, ns, "api", "Paused", "Resumed", "Promoted")
}

func setPaused(t *testing.T, cl client.Client, ns, name string, paused bool) {
	t.Helper()
	c, err := getCanary(t.Context(), cl, ns, name)
	if err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(c.DeepCopy())
	c.Spec.Paused = paused
	if err := cl.Patch(t.Context(), c, patch); err != nil {
		t.Fatal(err)
	}
}

func TestPromoteFullSkipsSteps(t *testing.T) {
	_, ns, cl := setup(t)
	create(t, cl, app(ns, "cart", "example.com/cart:1", 1),
		canary(ns, "cart", weightStep(10), pauseStep(time.Hour), weightStep(50), pauseStep(time.Hour)))
	waitPhase(t, cl, ns, "cart", v1alpha1.PhaseInitialized, 60*time.Second)

	m := monitor(t, cl, ns, "cart")
	setImage(t, cl, ns, "cart", "example.com/cart:2")
	expectShare(t, cl, ns, "cart", 10)
	request(t, cl, ns, "cart", v1alpha1.RequestPromoteFull)
	waitPhase(t, cl, ns, "cart", v1alpha1.PhaseSucceeded, 60*time.Second)
	shares, violations := m.result()
	if slices.Contains(shares, 50) {
		t.Errorf("promote-full should skip the 50%% step; shares seen %v", shares)
	}
	if len(violations) > 0 {
		t.Errorf("violations: %v", violations)
	}
	expectShare(t, cl, ns, "cart", 0)
}

func TestCustomBackendRefsPerPhase(t *testing.T) {
	_, ns, cl := setup(t)
	svc := func(ns, name string, port int32) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: port}}}}
	}
	create(t, cl, svc(ns, "auth-proxy", 8080), svc(ns, "canary-b", 80))
	cv := canary(ns, "pay", weightStep(40), untilPromoted())
	cv.Spec.Service.BackendRefs = &v1alpha1.PhaseBackendRefs{
		Primary: []v1alpha1.BackendRef{{Name: "pay-primary", Port: ptr.To(int32(80))}},
		Canary: []v1alpha1.BackendRef{
			{Name: "auth-proxy", Port: ptr.To(int32(8080)), Weight: ptr.To(int32(1)),
				Filters: []gwv1.HTTPRouteFilter{{Type: gwv1.HTTPRouteFilterRequestHeaderModifier,
					RequestHeaderModifier: &gwv1.HTTPHeaderFilter{Set: []gwv1.HTTPHeader{{Name: "X-Canary", Value: "true"}}}}}},
			{Name: "canary-b", Port: ptr.To(int32(80)), Weight: ptr.To(int32(3))},
		},
	}
	create(t, cl, app(ns, "pay", "example.com/pay:1", 1), cv)
	waitPhase(t, cl, ns, "pay", v1alpha1.PhaseInitialized, 60*time.Second)
	expectSplit(t, cl, ns, "pay", map[string]int32{"pay-primary": 10000, "auth-proxy": 0, "canary-b": 0})

	setImage(t, cl, ns, "pay", "example.com/pay:2")
	waitPhase(t, cl, ns, "pay", v1alpha1.PhaseWaitingPromotion, 60*time.Second)
	// The canary phase's 40% is split 1:3 between its two backends.
	expectSplit(t, cl, ns, "pay", map[string]int32{"pay-primary": 6000, "auth-proxy": 1000, "canary-b": 3000})
	var route gwv1.HTTPRoute
	if err := cl.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "pay"}, &route); err != nil {
		t.Fatal(err)
	}
	for _, ref := range route.Spec.Rules[0].BackendRefs {
		if ref.Name == "auth-proxy" && (len(ref.Filters) != 1 || ref.Filters[0].RequestHeaderModifier == nil) {
			t.Errorf("auth-proxy backend lost its filter: %+v", ref.Filters)
		}
	}
	request(t, cl, ns, "pay", v1alpha1.RequestAbort)
	waitPhase(t, cl, ns, "pay", v1alpha1.PhaseFailed, 30*time.Second)
	expectSplit(t, cl, ns, "pay", map[string]int32{"pay-primary": 10000, "auth-proxy": 0, "canary-b": 0})
}

func expectSplit(t *testing.T, cl client.Client, ns, name string, want map[string]int32) {
	t.Helper()
	testenv.Eventually(t, 20*time.Second, fmt.Sprintf("route %s/%s split %v", ns, name, want), func(ctx context.Context) error {
		got, err := routeSplit(ctx, cl, ns, name)
		if err != nil {
			return err
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("split %v", got)
		}
		return nil
	})
}

func TestMissingOrForbiddenBackendMovesNoTraffic(t *testing.T) {
	c, ns, cl := setup(t)
	other := c.Namespace(t)
	create(t, cl, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "shared", Namespace: other},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}})

	cv := canary(ns, "inv", weightStep(50))
	cv.Spec.Service.BackendRefs = &v1alpha1.PhaseBackendRefs{Canary: []v1alpha1.BackendRef{
		{Name: "missing", Port: ptr.To(int32(80))},
	}}
	create(t, cl, app(ns, "inv", "example.com/inv:1", 1), cv)
	testenv.Eventually(t, 60*time.Second, "missing backend reported", func(ctx context.Context) error {
		got, err := getCanary(ctx, cl, ns, "inv")
		if err != nil {
			return err
		}
		st := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionStalled)
		if st == nil || st.Status != metav1.ConditionTrue || st.Reason != "BackendNotFound" ||
			!strings.Contains(st.Message, "spec.service.backendRefs.canary[0]") || !strings.Contains(st.Message, "missing") {
			return fmt.Errorf("Stalled condition %+v", st)
		}
		return nil
	})
	if _, err := routeSplit(t.Context(), cl, ns, "inv"); err == nil {
		t.Fatalf("an HTTPRoute was written while a backend is missing")
	}

	// Point it at another namespace: still no route until a ReferenceGrant
	// allows it.
	got, _ := getCanary(t.Context(), cl, ns, "inv")
	patch := client.MergeFrom(got.DeepCopy())
	got.Spec.Service.BackendRefs.Canary[0] = v1alpha1.BackendRef{Name: "shared", Namespace: ptr.To(other), Port: ptr.To(int32(80))}
	if err := cl.Patch(t.Context(), got, patch); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "forbidden reference reported", func(ctx context.Context) error {
		got, err := getCanary(ctx, cl, ns, "inv")
		if err != nil {
			return err
		}
		st := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionStalled)
		if st == nil || st.Reason != "ReferenceNotPermitted" || !strings.Contains(st.Message, "ReferenceGrant") {
			return fmt.Errorf("Stalled condition %+v", st)
		}
		return nil
	})
	if _, err := routeSplit(t.Context(), cl, ns, "inv"); err == nil {
		t.Fatalf("an HTTPRoute was written for a forbidden cross-namespace backend")
	}

	create(t, cl, &gwv1.ReferenceGrant{
		ObjectMeta: metav1.ObjectMeta{Name: "allow-" + ns, Namespace: other},
		Spec: gwv1.ReferenceGrantSpec{
			From: []gwv1.ReferenceGrantFrom{{Group: gwv1.GroupName, Kind: "HTTPRoute", Namespace: gwv1.Namespace(ns)}},
			To:   []gwv1.ReferenceGrantTo{{Group: "", Kind: "Service"}},
		},
	})
	waitPhase(t, cl, ns, "inv", v1alpha1.PhaseInitialized, 60*time.Second)
	expectSplit(t, cl, ns, "inv", map[string]int32{"inv-primary": 10000, other + "/shared": 0})
}

// An A/B step on the real apiserver: the HTTPRoute gets a first rule that
// sends requests with the header to the canary (the Gateway API CRD's own
// validation accepts it), kept through the weight step, gone after the
// promotion.
func TestHeaderRouteStep(t *testing.T) {
	_, ns, cl := setup(t)
	v := "insider"
	c := canary(ns, "ab", v1alpha1.Step{SetHeaderRoute: &v1alpha1.HeaderRoute{Match: []v1alpha1.HeaderMatch{{Name: "X-Canary", Exact: &v}}}},
		pauseStep(time.Second), weightStep(30), pauseStep(time.Second))
	create(t, cl, app(ns, "ab", "example.com/ab:1", 1), c)
	waitPhase(t, cl, ns, "ab", v1alpha1.PhaseInitialized, 60*time.Second)
	rec := recordStates(t, &gwv1.HTTPRouteList{}, func() client.Object { return &gwv1.HTTPRoute{} }, ns, "ab", func(o client.Object) (string, bool) {
		r, ok := o.(*gwv1.HTTPRoute)
		if !ok || r == nil {
			return "", false
		}
		state := fmt.Sprintf("rules=%d", len(r.Spec.Rules))
		if len(r.Spec.Rules) == 2 {
			h := r.Spec.Rules[0].Matches[0].Headers
			state += fmt.Sprintf(" %s=%s->%s", h[0].Name, h[0].Value, r.Spec.Rules[0].BackendRefs[0].Name)
		}
		return state + fmt.Sprintf(" share=%d", canaryShareLast(r, "ab")), true
	})
	setImage(t, cl, ns, "ab", "example.com/ab:2")
	waitPhase(t, cl, ns, "ab", v1alpha1.PhaseSucceeded, 60*time.Second)
	seen := rec.states()
	want := []string{"rules=1 share=0", "rules=2 X-Canary=insider->ab-canary share=0", "rules=2 X-Canary=insider->ab-canary share=30",
		"rules=1 share=100", "rules=1 share=0"}
	if !slices.Equal(seen, want) {
		t.Errorf("route states:\n%s\nwant\n%s", strings.Join(seen, "\n"), strings.Join(want, "\n"))
	}
}

// canaryShareLast is the canary Service's percent of the route's last
// (weighted) rule.
func canaryShareLast(r *gwv1.HTTPRoute, name string) int32 {
	if len(r.Spec.Rules) == 0 {
		return 0
	}
	out := map[string]int32{}
	for _, ref := range r.Spec.Rules[len(r.Spec.Rules)-1].BackendRefs {
		out[string(ref.Name)] = ptr.Deref(ref.Weight, 1)
	}
	return canaryShare(out, name)
}
