package statusbatch_test

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/engine"
	"github.com/sluice-dev/sluice/internal/statusbatch"
)

// stepInFlight is the status of a weight step whose route is written but
// not read back, and the status written before it.
func stepInFlight() (written, next v1alpha1.CanaryStatus, out engine.Output) {
	written = v1alpha1.CanaryStatus{
		Phase: v1alpha1.PhaseProgressing, Reason: "WeightSet", CanaryRevision: "r2", StableRevision: "r1",
		CurrentStep: 1, CanaryWeight: 10, CheckRound: 3, FailedChecks: 1, LastHandledRequest: "promote/1",
	}
	next = *written.DeepCopy()
	next.Reason, next.CurrentStep, next.CanaryWeight = "SettingWeight", 2, 20
	return written, next, engine.Output{Status: next, RouteInFlight: true}
}

func TestHoldable(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(written, next *v1alpha1.CanaryStatus, out *engine.Output)
		want   bool
	}{
		{"a weight step waiting for its route", func(_, _ *v1alpha1.CanaryStatus, _ *engine.Output) {}, true},
		{"the route read back (not in flight)", func(_, _ *v1alpha1.CanaryStatus, o *engine.Output) { o.RouteInFlight = false }, false},
		{"an Event to record", func(_, _ *v1alpha1.CanaryStatus, o *engine.Output) {
			o.Events = []engine.Event{{Reason: "WeightSet"}}
		}, false},
		{"the phase changes", func(_, n *v1alpha1.CanaryStatus, _ *engine.Output) { n.Phase = v1alpha1.PhasePaused }, false},
		{"written phase is not Progressing", func(w, _ *v1alpha1.CanaryStatus, _ *engine.Output) { w.Phase = v1alpha1.PhasePaused }, false},
		{"the canary revision changes", func(_, n *v1alpha1.CanaryStatus, _ *engine.Output) { n.CanaryRevision = "r3" }, false},
		{"the stable revision changes", func(_, n *v1alpha1.CanaryStatus, _ *engine.Output) { n.StableRevision = "r2" }, false},
		{"a check round is asked", func(_, n *v1alpha1.CanaryStatus, _ *engine.Output) { n.CheckRound++ }, false},
		{"a failed round is counted", func(_, n *v1alpha1.CanaryStatus, _ *engine.Output) { n.FailedChecks++ }, false},
		{"a request is handled", func(_, n *v1alpha1.CanaryStatus, _ *engine.Output) { n.LastHandledRequest = "abort/2" }, false},
		{"nothing changed", func(w, n *v1alpha1.CanaryStatus, _ *engine.Output) { *n = *w.DeepCopy() }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, n, out := stepInFlight()
			tc.change(&w, &n, &out)
			if got := statusbatch.Holdable(w, n, out); got != tc.want {
				t.Errorf("Holdable = %v, want %v", got, tc.want)
			}
		})
	}
}

// rolling is a Canary waiting for its canary Deployment to roll: the
// status written, and the next one, whose words alone differ.
func rolling(phase v1alpha1.CanaryPhase) (written, next v1alpha1.CanaryStatus, out engine.Output) {
	cond := func(typ string, status metav1.ConditionStatus, msg string) metav1.Condition {
		return metav1.Condition{Type: typ, Status: status, Reason: "WaitingForCanary", Message: msg}
	}
	words := func(msg string) v1alpha1.CanaryStatus {
		return v1alpha1.CanaryStatus{
			Phase: phase, Reason: "WaitingForCanary", Message: msg, CanaryRevision: "r2", StableRevision: "r1",
			Conditions: []metav1.Condition{
				cond(v1alpha1.ConditionReady, metav1.ConditionUnknown, msg),
				cond(v1alpha1.ConditionProgressing, metav1.ConditionTrue, msg),
				{Type: v1alpha1.ConditionStalled, Status: metav1.ConditionFalse, Reason: "NotStalled"},
			},
		}
	}
	written, next = words("canary 0/2 available"), words("canary 1/2 available")
	return written, next, engine.Output{Status: next}
}

func TestHoldableWords(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(written, next *v1alpha1.CanaryStatus, out *engine.Output)
		want   bool
	}{
		{"only the words change", func(_, _ *v1alpha1.CanaryStatus, _ *engine.Output) {}, true},
		{"the reason changes", func(_, n *v1alpha1.CanaryStatus, _ *engine.Output) { n.Reason = "PauseStep" }, false},
		{"a condition's reason changes", func(_, n *v1alpha1.CanaryStatus, _ *engine.Output) { n.Conditions[1].Reason = "PauseStep" }, false},
		{"a condition's status changes", func(_, n *v1alpha1.CanaryStatus, _ *engine.Output) {
			n.Conditions[0].Status = metav1.ConditionTrue
		}, false},
		{"a condition more", func(_, n *v1alpha1.CanaryStatus, _ *engine.Output) {
			n.Conditions = append(n.Conditions, metav1.Condition{Type: v1alpha1.ConditionDrifted})
		}, false},
		{"the weight changes too", func(_, n *v1alpha1.CanaryStatus, _ *engine.Output) { n.CanaryWeight = 10 }, false},
		{"with an Event", func(_, _ *v1alpha1.CanaryStatus, o *engine.Output) { o.Events = []engine.Event{{Reason: "X"}} }, false},
		{"nothing changed", func(w, n *v1alpha1.CanaryStatus, _ *engine.Output) { *n = *w.DeepCopy() }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, phase := range []v1alpha1.CanaryPhase{v1alpha1.PhaseInitializing, v1alpha1.PhaseProgressing, v1alpha1.PhasePromoting} {
				w, n, out := rolling(phase)
				tc.change(&w, &n, &out)
				if got := statusbatch.Holdable(w, n, out); got != tc.want {
					t.Errorf("%s: Holdable = %v, want %v", phase, got, tc.want)
				}
			}
		})
	}
}

// Words held stand in for the written status at the next decision, and
// are written once they stood for the limit.
func TestBatcherHoldsWordsUntilTheLimit(t *testing.T) {
	b := &statusbatch.Batcher{Limit: 8 * time.Second}
	written, next, out := rolling(v1alpha1.PhasePromoting)
	t0 := time.Unix(1000, 0)
	left, ok := b.Hold(key, "5", written, next, out, true, t0)
	if !ok || left != 8*time.Second {
		t.Fatalf("Hold = %s, %v; want 8s, true", left, ok)
	}
	if got := b.Start(key, "5", written); got.Message != "canary 1/2 available" {
		t.Errorf("Start = %q, want the words held", got.Message)
	}
	later := *next.DeepCopy()
	later.Message = "canary 2/2 available"
	if left, ok = b.Hold(key, "5", written, later, engine.Output{Status: later}, true, t0.Add(3*time.Second)); !ok || left != 5*time.Second {
		t.Errorf("Hold 3 s later = %s, %v; want 5s, true (the limit counts from the first words held)", left, ok)
	}
	if _, ok = b.Hold(key, "5", written, later, engine.Output{Status: later}, true, t0.Add(8*time.Second)); ok {
		t.Error("words held past the limit: they must be written")
	}
	if got := b.Start(key, "5", written); got.Message != written.Message {
		t.Errorf("after the limit Start = %q, want the written status", got.Message)
	}
}

var key = types.NamespacedName{Namespace: "ns", Name: "app"}

func TestBatcherHoldsAStepUntilItsLimit(t *testing.T) {
	b := &statusbatch.Batcher{Limit: 8 * time.Second}
	written, next, out := stepInFlight()
	t0 := time.Unix(1000, 0)

	if got := b.Start(key, "5", written); got.Reason != written.Reason {
		t.Fatalf("Start with nothing held = %q, want the written status", got.Reason)
	}
	left, ok := b.Hold(key, "5", written, next, out, true, t0)
	if !ok || left != 8*time.Second {
		t.Fatalf("Hold = %v, %v; want held for the whole limit (8s)", left, ok)
	}
	if got := b.Start(key, "5", written); got.Reason != "SettingWeight" || got.CanaryWeight != 20 {
		t.Fatalf("Start at the same resourceVersion = %s/%d, want the held status SettingWeight/20", got.Reason, got.CanaryWeight)
	}
	// A later status of the same step: the limit counts from the first.
	next.Message = "waiting for the router"
	out.Status = next
	if left, ok := b.Hold(key, "5", written, next, out, true, t0.Add(5*time.Second)); !ok || left != 3*time.Second {
		t.Fatalf("second Hold = %v, %v; want held for the 3s left", left, ok)
	}
	if _, ok := b.Hold(key, "5", written, next, out, true, t0.Add(9*time.Second)); ok {
		t.Fatal("held past the limit: a route that never comes back must be reported")
	}
	if got := b.Start(key, "5", written); got.Reason != written.Reason {
		t.Fatalf("after the limit Start = %q, want the written status (the held one is dropped)", got.Reason)
	}
	if n := b.Len(); n != 0 {
		t.Errorf("entries kept after the held status was dropped: %d, want 0", n)
	}
}

func TestBatcherNeverHoldsAFailedApplyOrAnotherVersion(t *testing.T) {
	b := &statusbatch.Batcher{Limit: time.Minute}
	written, next, out := stepInFlight()
	t0 := time.Unix(1000, 0)
	if _, ok := b.Hold(key, "5", written, next, out, false, t0); ok {
		t.Fatal("held a status whose apply failed")
	}
	if _, ok := b.Hold(key, "5", written, next, out, true, t0); !ok {
		t.Fatal("a step in flight was not held")
	}
	// Someone else wrote the Canary: the held status is of an older one.
	if got := b.Start(key, "6", written); got.Reason != written.Reason {
		t.Fatalf("Start at another resourceVersion = %q, want the written status", got.Reason)
	}
	if got := b.Start(key, "5", written); got.Reason != written.Reason {
		t.Fatalf("a held status dropped for another version came back: %q", got.Reason)
	}
	// A failed apply drops what was held.
	b.Hold(key, "5", written, next, out, true, t0)
	if _, ok := b.Hold(key, "5", written, next, out, false, t0); ok {
		t.Fatal("held a status whose apply failed")
	}
	if got := b.Start(key, "5", written); got.Reason != written.Reason {
		t.Fatalf("after a failed apply Start = %q, want the written status", got.Reason)
	}
}

func TestBatcherRecognisesACanaryOlderThanOurWrite(t *testing.T) {
	b := &statusbatch.Batcher{Limit: time.Minute}
	written, next, out := stepInFlight()
	b.Hold(key, "5", written, next, out, true, time.Unix(1000, 0))
	b.Wrote(key, "5", "6")
	if !b.Stale(key, "5") {
		t.Fatal("a Canary at the version our write replaced is not stale")
	}
	if got := b.Start(key, "6", written); got.Reason != written.Reason {
		t.Fatalf("a write dropped nothing held: Start = %q", got.Reason)
	}
	if b.Stale(key, "6") {
		t.Fatal("the Canary at our write's version is stale")
	}
	if b.Stale(key, "5") {
		t.Fatal("once the cache moved past our write, nothing is stale any more")
	}
	if n := b.Len(); n != 0 {
		t.Errorf("entries kept once nothing is held or superseded: %d, want 0", n)
	}
	b.Wrote(key, "6", "7")
	b.Forget(key)
	if b.Stale(key, "6") || b.Len() != 0 {
		t.Error("Forget left something behind")
	}
}
