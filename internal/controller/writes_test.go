package controller_test

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/controller"
)

// A release writes its Canary's status when the release moves (it starts,
// the router carries a step, it promotes, verifies, finalises, succeeds),
// not for each word of a Deployment's roll-out or each weight asked for
// and not yet carried; its record follows the statuses written, and its
// first status write already says it is progressing and since when. The
// counts come from a watch of both kinds, so they are what the apiserver
// stored. The budgets leave room for a loaded machine, where a route read
// back after the hold's limit costs a write more.
func TestReleaseStatusWrites(t *testing.T) {
	c, ns, cl := setup(t)
	steps := []v1alpha1.Step{weightStep(20), pauseStep(time.Second), weightStep(40), pauseStep(time.Second), weightStep(60), pauseStep(time.Second)}
	create(t, cl, app(ns, "writes", "example.com/writes:1", 1), traefikCanary(ns, "writes", v1alpha1.TraefikRouter{}, steps...))
	waitPhase(t, cl, ns, "writes", v1alpha1.PhaseInitialized, 60*time.Second)

	wc, err := client.NewWithWatch(c.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	canaries, err := wc.Watch(t.Context(), &v1alpha1.CanaryList{}, client.InNamespace(ns))
	if err != nil {
		t.Fatal(err)
	}
	defer canaries.Stop()
	records, err := wc.Watch(t.Context(), &v1alpha1.CanaryRevisionList{}, client.InNamespace(ns))
	if err != nil {
		t.Fatal(err)
	}
	defer records.Stop()
	setImage(t, cl, ns, "writes", "example.com/writes:2")

	var canaryWrites, recordWrites int
	var last *v1alpha1.CanaryStatus
	stable := ""
	seen := map[string]v1alpha1.CanaryRevisionStatus{}
	newRecord := ""
	var first *v1alpha1.CanaryRevisionStatus
	deadline := time.After(90 * time.Second)
	for done := false; !done; {
		select {
		case e := <-canaries.ResultChan():
			cn, ok := e.Object.(*v1alpha1.Canary)
			switch {
			case !ok:
			case e.Type == watch.Added: // the watch starts with the Canary as it is
				last, stable = cn.Status.DeepCopy(), cn.Status.StableRevision
			case last != nil && !equality.Semantic.DeepEqual(*last, cn.Status):
				canaryWrites++
				last = cn.Status.DeepCopy()
				done = cn.Status.Phase == v1alpha1.PhaseSucceeded && cn.Status.StableRevision != stable
			}
		case e := <-records.ResultChan():
			rec, ok := e.Object.(*v1alpha1.CanaryRevision)
			switch {
			case !ok:
			case e.Type == watch.Added:
				if rec.Status.Outcome == "" { // created by this release, its status not written yet
					newRecord = rec.Name
				}
			case !equality.Semantic.DeepEqual(seen[rec.Name], rec.Status):
				recordWrites++
				if rec.Name == newRecord && first == nil {
					first = rec.Status.DeepCopy()
				}
			}
			if ok {
				seen[rec.Name] = *rec.Status.DeepCopy()
			}
		case <-deadline:
			t.Fatalf("the release did not succeed within 90s (%d Canary status writes, %d record writes so far)", canaryWrites, recordWrites)
		}
	}
	// Three weight steps: the start, each step carried (3), moving all
	// traffic to the canary, the primary's verification, finalising and
	// success: 8; 10 allows two late route read-backs.
	if canaryWrites > 10 {
		t.Errorf("%d Canary status writes for a 3-step release, want at most 10", canaryWrites)
	}
	// The record: its first status, a point per weight change (3 steps,
	// 100 %, 0 %) and the outcome: 7.
	if recordWrites > 9 {
		t.Errorf("%d record status writes for a 3-step release, want at most 9", recordWrites)
	}
	if first == nil || first.Outcome != v1alpha1.OutcomeProgressing || first.StartTime == nil || len(first.History) == 0 {
		t.Errorf("the record's first status: %+v; want outcome Progressing, a start time and the first point in one write", first)
	}
	t.Logf("a 3-step release: %d Canary status writes, %d record status writes (route settle %s)", canaryWrites, recordWrites, controller.DefaultRouteSettle)
}
