package engine_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/engine"
)

// TestDeadlineSkipsControllerOutage is the regression test of chaos seed
// 11, round 10: the only controller was killed while a good release
// waited for its first route, and its successor took the lease 15 s
// later. The time nobody decided is not the release's: its progress
// deadline counts from when the controller deciding started to act.
func TestDeadlineSkipsControllerOutage(t *testing.T) {
	deadline := v1alpha1.DefaultProgressDeadline
	// The release waits for the router to carry its first step, and the
	// last progress was longer ago than the deadline.
	canary := func() *v1alpha1.Canary {
		return newCanary(releasing(0, 0), lastProgress(deadline+5*time.Second), waitingOn("SettingWeight"))
	}
	obs := newObs(tgt(ready("r2")), pri(ready("r1")), route(0))

	t.Run("controller acting all along: rolled back", func(t *testing.T) {
		out := engine.Decide(engine.Input{Canary: canary(), Obs: obs, Now: t0, ActingSince: t0.Add(-time.Hour)})
		if out.Status.Phase != v1alpha1.PhaseFailed || out.Status.Reason != v1alpha1.ReasonProgressDeadlineExceeded {
			t.Fatalf("phase %s reason %s (%q), want Failed ProgressDeadlineExceeded", out.Status.Phase, out.Status.Reason, out.Status.Message)
		}
		// Said once, and naming what it waited for.
		want := "no progress for " + deadline.String() + ": waiting for the router to carry canary weight 20%"
		if !strings.Contains(out.Status.Message, want) {
			t.Errorf("message %q, want it to contain %q", out.Status.Message, want)
		}
		if strings.Count(out.Status.Message, "waiting for") != 1 {
			t.Errorf("message %q says \"waiting for\" more than once", out.Status.Message)
		}
	})

	t.Run("controller acting for 3s: the deadline counts from then", func(t *testing.T) {
		out := engine.Decide(engine.Input{Canary: canary(), Obs: obs, Now: t0, ActingSince: t0.Add(-3 * time.Second)})
		if out.Status.Phase != v1alpha1.PhaseProgressing || out.Status.Reason != v1alpha1.ReasonSettingWeight {
			t.Fatalf("phase %s reason %s (%q), want Progressing SettingWeight", out.Status.Phase, out.Status.Reason, out.Status.Message)
		}
		if w := out.Desired.CanaryWeight; w == nil || *w != 20 {
			t.Errorf("desired canary weight %v, want 20", w)
		}
		// Looks again soon for the route, and the deadline is 3 s spent.
		if out.RequeueAfter <= 0 || out.RequeueAfter > deadline-3*time.Second {
			t.Errorf("requeue after %s, want within the deadline left (%s)", out.RequeueAfter, deadline-3*time.Second)
		}
	})

	t.Run("controller acting since after the deadline: rolled back then", func(t *testing.T) {
		later := t0.Add(deadline + time.Second)
		out := engine.Decide(engine.Input{Canary: canary(), Obs: obs, Now: later, ActingSince: t0})
		if out.Status.Reason != v1alpha1.ReasonProgressDeadlineExceeded {
			t.Fatalf("reason %s (%q), want ProgressDeadlineExceeded a deadline after the controller started", out.Status.Reason, out.Status.Message)
		}
	})
}
