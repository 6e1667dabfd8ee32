package chaos

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/testenv"
	"github.com/sluice-dev/sluice/internal/webhook"
)

// The invariant checker, fed the objects a watch would deliver, reports
// each kind of violation and stays quiet for a release that keeps them.
// It needs no cluster (and runs in make test): a checker that cannot fail
// would make every chaos run pass.
func TestCheckerCatchesViolations(t *testing.T) {
	// Each object made is a write: it takes the next resourceVersion.
	var written int64
	rv := func() string { written++; return strconv.FormatInt(written, 10) }
	route := func(app string, canary int64) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"weighted": map[string]any{"services": []any{
			map[string]any{"name": app + "-primary", "weight": 100 - canary},
			map[string]any{"name": app + "-canary", "weight": canary},
		}}}}}
		u.SetName(app)
		u.SetResourceVersion(rv())
		return u
	}
	deploy := func(name, image string, available int32, bad bool) *appsv1.Deployment {
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Generation: 1, ResourceVersion: rv()},
			Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}}}},
			Status: appsv1.DeploymentStatus{ObservedGeneration: 1, AvailableReplicas: available}}
		if bad {
			d.Spec.Template.Annotations[testenv.NeverReadyAnnotation] = "true"
		}
		return d
	}
	for _, tc := range []struct {
		name   string
		bad    bool
		events func(w *watcher)
		want   string // a violation containing this; "" for none
	}{
		{"a release that keeps them", false, func(w *watcher) {
			w.onDeployment(deploy("app", "v2", 1, false))
			for _, s := range []int64{0, 10, 30, 60, 100} {
				w.onRoute(route("app", s))
			}
			w.onDeployment(deploy("app-primary", "v2", 1, false))
			w.onRoute(route("app", 0))
		}, ""},
		{"a bad canary given traffic", true, func(w *watcher) {
			w.onDeployment(deploy("app", "v2", 0, true))
			w.onRoute(route("app", 0))
			w.onRoute(route("app", 10))
		}, "never become Ready"},
		{"the share moving back", false, func(w *watcher) {
			w.onDeployment(deploy("app", "v2", 1, false))
			w.onRoute(route("app", 0))
			w.onRoute(route("app", 30))
			w.onRoute(route("app", 10))
		}, "moved back from 30% to 10%"},
		{"the primary changed while it carries traffic", false, func(w *watcher) {
			w.onDeployment(deploy("app", "v2", 1, false))
			w.onRoute(route("app", 0))
			w.onRoute(route("app", 60))
			w.onDeployment(deploy("app-primary", "v2", 1, false))
			w.onRoute(route("app", 100))
		}, "gave it 40% of the traffic"},
		{"the primary's change delivered before the route's that preceded it", false, func(w *watcher) {
			w.onDeployment(deploy("app", "v2", 1, false))
			w.onRoute(route("app", 0))
			all := route("app", 100)
			primary := deploy("app-primary", "v2", 1, false)
			w.onDeployment(primary) // the Deployments' watch is ahead
			w.onRoute(all)
			w.onRoute(route("app", 0))
		}, ""},
		{"the route's watch seconds behind, as after an apiserver restart", false, func(w *watcher) {
			w.onDeployment(deploy("app", "v2", 1, false))
			w.onRoute(route("app", 60))
			all := route("app", 100)
			w.onDeployment(deploy("app-primary", "v2", 1, false))
			// Seen 5 s ago, and the route's watch has still delivered nothing
			// later: not judged yet.
			w.primaryTemplates[0].seen = time.Now().Add(-5 * time.Second)
			w.sample()
			w.onRoute(all)
			w.onRoute(route("app", 0))
		}, ""},
		{"the route's watch silent past deliveryGrace: judged from what it has", false, func(w *watcher) {
			w.onDeployment(deploy("app", "v2", 1, false))
			w.onRoute(route("app", 60))
			w.onDeployment(deploy("app-primary", "v2", 1, false))
			w.primaryTemplates[0].seen = time.Now().Add(-deliveryGrace - time.Second)
			w.sample()
		}, "gave it 40% of the traffic"},
		{"a rollback to 0", false, func(w *watcher) {
			w.onDeployment(deploy("app", "v2", 1, false))
			w.onRoute(route("app", 0))
			w.onRoute(route("app", 30))
			w.onRoute(route("app", 0))
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWatcher(t, nil, "ns")
			w.onDeployment(deploy("app-primary", "v1", 1, false))
			w.begin([]release{{app: "app", bad: tc.bad}})
			tc.events(w)
			wantViolation(t, w.violations, tc.want)
		})
	}
}

// The webhook check holds post-rollout calls and gates to once per point,
// and allows one call more or fewer per release for each controller death.
func TestCheckerCatchesHookCalls(t *testing.T) {
	rels := []release{{app: "good"}, {app: "bad", bad: true}}
	for _, tc := range []struct {
		name   string
		posts  map[string][]string
		reask  map[string]int
		deaths int
		want   string // a violation containing this; "" for none
	}{
		{"once each", map[string][]string{"good": {"Succeeded"}, "bad": {"Failed"}}, nil, 0, ""},
		{"called twice", map[string][]string{"good": {"Succeeded", "Succeeded"}, "bad": {"Failed"}}, nil, 0, "good: 2 post-rollout calls"},
		{"never called", map[string][]string{"good": {"Succeeded"}}, nil, 0, "bad: 0 post-rollout calls"},
		{"told the wrong outcome", map[string][]string{"good": {"Failed"}, "bad": {"Failed"}}, nil, 0, "told Failed, where an undisturbed release ends Succeeded"},
		{"an open gate asked again", map[string][]string{"good": {"Succeeded"}, "bad": {"Failed"}}, map[string]int{"good": 1}, 0, "1 calls of gates already open"},
		{"a death allows one more", map[string][]string{"good": {"Succeeded", "Succeeded"}, "bad": {}}, nil, 1, ""},
		{"but not two more", map[string][]string{"good": {"Succeeded", "Succeeded"}, "bad": {"Failed"}}, map[string]int{"good": 1}, 1, "with 1 controller deaths and apiserver restarts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.reask == nil {
				tc.reask = map[string]int{}
			}
			v, _, _ := checkHooks(rels, hookCounts{posts: tc.posts, reasked: tc.reask}, tc.deaths)
			wantViolation(t, v, tc.want)
		})
	}
}

// A canary whose pods turn not-Ready keeps its share until a controller
// sees it, within reactionBound; the time to take it away is measured.
func TestCheckerUnreadyCanary(t *testing.T) {
	w := newWatcher(t, nil, "ns")
	w.onDeployment(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "app-primary", Generation: 1},
		Status: appsv1.DeploymentStatus{ObservedGeneration: 1, AvailableReplicas: 1}})
	w.begin([]release{{app: "app"}})
	canary := func(available int32) *appsv1.Deployment {
		return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "app", Generation: 1},
			Status: appsv1.DeploymentStatus{ObservedGeneration: 1, AvailableReplicas: available}}
	}
	route := func(canary int64) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"weighted": map[string]any{"services": []any{
			map[string]any{"name": "app-primary", "weight": 100 - canary},
			map[string]any{"name": "app-canary", "weight": canary},
		}}}}}
		u.SetName("app")
		return u
	}
	w.onDeployment(canary(1))
	w.onRoute(route(0))
	w.onRoute(route(30))
	w.turnedUnready([]string{"app"})
	w.onDeployment(canary(0))
	// Within the bound the sampler confirms nothing (a confirmation would
	// need the apiserver, which this watcher has none of).
	w.unready["app"] = time.Now().Add(-confirmGrace - time.Second)
	w.suspect["app"] = time.Now().Add(-confirmGrace - time.Second)
	w.sample()
	w.onRoute(route(0))
	if len(w.violations) != 0 {
		t.Errorf("violations %q, want none", w.violations)
	}
	if r := w.takeReactions(); len(r) != 1 || r[0] < confirmGrace {
		t.Errorf("reactions %v, want one of at least %s", r, confirmGrace)
	}
}

// wantViolation: a violation containing want among got, or none when want
// is "".
func wantViolation(t *testing.T, got []string, want string) {
	t.Helper()
	all := strings.Join(got, "; ")
	switch {
	case want == "" && all != "":
		t.Errorf("violations %q, want none", all)
	case want != "" && !strings.Contains(all, want):
		t.Errorf("violations %q, want one saying %q", all, want)
	}
}

// A release's canary counts as available only with a pod of the
// release's template: a good release rolled back at its deadline is
// excused only when it never was (the cluster did not start its pods in
// time).
func TestCheckerCanaryAvailability(t *testing.T) {
	w := newWatcher(t, nil, "ns")
	w.begin([]release{{app: "app", round: 3}})
	target := func(image string, updated, available int32) *appsv1.Deployment {
		return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "app", Generation: 1},
			Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}}}},
			Status: appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 1, UpdatedReplicas: updated,
				AvailableReplicas: available}}
	}
	w.onDeployment(target(imageOf("app", 2), 1, 1)) // the last release's pods
	w.onDeployment(target(imageOf("app", 3), 0, 0))
	// The new template observed, the last release's pod still there and
	// available, none of the new one yet (seed 1207 round 13, after an
	// apiserver restart).
	w.onDeployment(target(imageOf("app", 3), 0, 1))
	if w.canaryAvailableBefore("app", time.Now().Add(time.Hour)) {
		t.Fatal("available before any pod of the release's template was")
	}
	w.onDeployment(target(imageOf("app", 3), 1, 1))
	if w.canaryAvailableBefore("app", time.Now().Add(-time.Minute)) {
		t.Error("available a minute before it was")
	}
	if !w.canaryAvailableBefore("app", time.Now().Add(time.Second)) {
		t.Error("not available after it was")
	}
}

// The receiver counts a gate asked again right after it answered 200, and
// not the calls of a gate it keeps closed (a closed gate is asked again
// by design).
func TestReceiverCountsReasks(t *testing.T) {
	rc := startReceiver(t)
	call := func(step int32) {
		t.Helper()
		body, _ := json.Marshal(webhook.Payload{Type: string(v1alpha1.WebhookConfirmTrafficIncrease), Name: "app", Revision: "r2", Step: step})
		resp, err := http.Post(rc.srv.URL, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	call(2) // opens
	rc.mu.Lock()
	rc.failing = hooks5xx
	rc.mu.Unlock()
	call(2) // asked again after a 200: counted
	call(2) // closed, asked again: not counted
	rc.mu.Lock()
	rc.failing = ""
	rc.mu.Unlock()
	call(2) // opens again after a 503: not counted
	call(4) // another point
	hc := rc.take()
	if hc.reasked["app"] != 1 || hc.calls != 5 || hc.refused != 2 {
		t.Errorf("reasked %d, calls %d, refused %d; want 1, 5, 2", hc.reasked["app"], hc.calls, hc.refused)
	}
}
