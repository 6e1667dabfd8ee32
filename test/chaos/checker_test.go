package chaos

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/sluice-dev/sluice/internal/testenv"
)

// The invariant checker, fed the objects a watch would deliver, reports
// each kind of violation and stays quiet for a release that keeps them.
// It needs no cluster (and runs in make test): a checker that cannot fail
// would make every chaos run pass.
func TestCheckerCatchesViolations(t *testing.T) {
	route := func(app string, canary int64) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"weighted": map[string]any{"services": []any{
			map[string]any{"name": app + "-primary", "weight": 100 - canary},
			map[string]any{"name": app + "-canary", "weight": canary},
		}}}}}
		u.SetName(app)
		return u
	}
	deploy := func(name, image string, available int32, bad bool) *appsv1.Deployment {
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Generation: 1},
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
		}, "primary's template changed while it carried 40%"},
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
			got := strings.Join(w.violations, "; ")
			switch {
			case tc.want == "" && got != "":
				t.Errorf("violations %q, want none", got)
			case tc.want != "" && !strings.Contains(got, tc.want):
				t.Errorf("violations %q, want one saying %q", got, tc.want)
			}
		})
	}
}
