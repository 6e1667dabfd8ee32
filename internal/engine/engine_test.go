package engine_test

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/engine"
)

// TestReadyThreshold checks the readiness rule through the one place it
// gates everything: the primary must be Ready for initialization to finish.
func TestReadyThreshold(t *testing.T) {
	cases := []struct {
		name                         string
		replicas, updated, available int32
		current                      bool
		threshold                    *int32
		ready                        bool
	}{
		{"all available, default threshold", 3, 3, 3, true, nil, true},
		{"one short, default threshold", 3, 3, 2, true, nil, false},
		{"2/3 at 60% (needs 2)", 3, 3, 2, true, i32(60), true},
		{"2/3 at 67% (needs 3)", 3, 3, 2, true, i32(67), false},
		{"1/3 at 34% (needs 2)", 3, 3, 1, true, i32(34), false},
		{"1/3 at 33% (needs 1)", 3, 3, 1, true, i32(33), true},
		{"1/10 at 1% (needs 1)", 10, 10, 1, true, i32(1), true},
		{"0/10 at 1%", 10, 10, 0, true, i32(1), false},
		{"available but not all updated", 3, 2, 3, true, i32(50), false},
		{"status not current", 3, 3, 3, false, nil, false},
		{"scaled to 0", 0, 0, 0, true, nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCanary(thresholds(tc.threshold, nil))
			p := engine.Workload{Exists: true, Revision: "r1", Replicas: tc.replicas,
				UpdatedReplicas: tc.updated, AvailableReplicas: tc.available, Current: tc.current}
			out := engine.Decide(engine.Input{Canary: c, Obs: newObs(tgt(ready("r1")), pri(p), route(0)), Now: t0})
			got := out.Status.Phase == v1alpha1.PhaseInitialized
			if got != tc.ready {
				t.Errorf("primary ready = %v (phase %s: %s), want %v", got, out.Status.Phase, out.Status.Message, tc.ready)
			}
		})
	}
	// The canary threshold gates the first setWeight.
	for _, tc := range []struct {
		threshold *int32
		available int32
		weight    bool
	}{{nil, 2, false}, {i32(60), 2, true}, {i32(67), 2, false}, {nil, 3, true}} {
		c := newCanary(releasing(0, 0), thresholds(nil, tc.threshold))
		canary := engine.Workload{Exists: true, Revision: "r2", Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: tc.available, Current: true}
		out := engine.Decide(engine.Input{Canary: c, Obs: newObs(tgt(canary), pri(ready("r1")), route(0)), Now: t0})
		got := out.Desired.CanaryWeight != nil && *out.Desired.CanaryWeight == 20
		if got != tc.weight {
			t.Errorf("canary threshold %v, %d/3 available: weight set = %v, want %v (%s)", tc.threshold, tc.available, got, tc.weight, out.Status.Message)
		}
	}
}

// TestDecideIsDeterministicAndRepeatable: deciding twice on the same input
// gives the same output, and feeding the status back with unchanged
// observations (a steady state) gives the same status again, so the
// controller does not write status in a loop.
func TestDecideIsDeterministicAndRepeatable(t *testing.T) {
	steady := []struct {
		name string
		c    *v1alpha1.Canary
		obs  engine.Observations
	}{
		{"initialized", newCanary(initialized()), newObs(tgt(scaledDown("r1")), pri(ready("r1")), route(0))},
		{"pause step", newCanary(releasing(1, 20), stepStarted(5*time.Second)), newObs(tgt(ready("r2")), pri(ready("r1")), route(20))},
		{"waiting promotion", newCanary(releasing(3, 50)), newObs(tgt(ready("r2")), pri(ready("r1")), route(50))},
		{"paused", newCanary(releasing(1, 20), specPaused), newObs(tgt(ready("r2")), pri(ready("r1")), route(20))},
		{"failed", newCanary(inPhase(v1alpha1.PhaseFailed, "Aborted"), revisions("r1", "r2")), newObs(tgt(scaledDown("r2")), pri(ready("r1")), route(0))},
		{"blocked", newCanary(releasing(1, 20)), newObs(tgt(ready("r2")), pri(ready("r1")), route(20), blocked("BackendNotFound", "x"))},
	}
	for _, s := range steady {
		t.Run(s.name, func(t *testing.T) {
			in := engine.Input{Canary: s.c, Obs: s.obs, Now: t0}
			a, b := engine.Decide(in), engine.Decide(in)
			if !equality.Semantic.DeepEqual(a, b) {
				t.Fatalf("two Decides on the same input differ:\n%+v\n%+v", a, b)
			}
			c2 := s.c.DeepCopy()
			c2.Status = a.Status
			again := engine.Decide(engine.Input{Canary: c2, Obs: s.obs, Now: t0.Add(time.Second)})
			if !equality.Semantic.DeepEqual(again.Status, a.Status) {
				t.Errorf("status not at a fixpoint:\nfirst  %+v\nsecond %+v", a.Status, again.Status)
			}
			if len(again.Events) != 0 {
				t.Errorf("steady state emits events again: %v", fmtEvents(again.Events))
			}
		})
	}
}

// A pause is timed to the microsecond. A step that started 0.7 s into a
// second does not end early, as it did when stepStartedAt was a
// metav1.Time (whole seconds): then the start read back as the whole
// second before it. The next step's start is kept to the microsecond, and
// the whole-second fields stay whole (so that what is held in memory
// equals what is read back).
func TestPauseTimedToTheMicrosecond(t *testing.T) {
	start := t0.Add(700 * time.Millisecond)
	obs := func(w int32) engine.Observations { return newObs(tgt(ready("r2")), pri(ready("r1")), route(w)) }
	c := newCanary(releasing(1, 20))
	c.Status.StepStartedAt = v1alpha1.NewTimestamp(start)

	out := engine.Decide(engine.Input{Canary: c, Obs: obs(20), Now: start.Add(59500 * time.Millisecond)})
	if out.Status.CurrentStep != 1 || out.RequeueAfter != 500*time.Millisecond {
		t.Fatalf("59.5 s into a 1m pause: step %d, requeue %s; want step 1, requeue 500ms", out.Status.CurrentStep, out.RequeueAfter)
	}

	now := start.Add(time.Minute + 1234*time.Nanosecond)
	out = engine.Decide(engine.Input{Canary: c, Obs: obs(20), Now: now})
	if out.Status.CurrentStep != 2 {
		t.Fatalf("the pause is over: step %d, want 2", out.Status.CurrentStep)
	}
	if got, want := out.Status.StepStartedAt.Time, now.Truncate(time.Microsecond); !got.Equal(want) {
		t.Errorf("stepStartedAt = %s, want %s", got.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
	}
	if lp := out.Status.LastProgressTime; lp == nil || lp.Nanosecond() != 0 {
		t.Errorf("lastProgressTime = %v, want a whole second (a metav1.Time)", lp)
	}
}
