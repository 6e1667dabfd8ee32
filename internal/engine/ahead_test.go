package engine_test

import (
	"testing"

	"github.com/sluice-dev/sluice/internal/engine"
)

// A leader applied the next weight step and died before the status saying
// so was written (the status of a route in flight is held in memory). Its
// successor decides from the older status, in the pause before that step:
// the traffic must not move backwards to the pause's weight (make chaos,
// seed 1207 round 9: two canaries went from 30% back to 10%). A route
// beyond the next step is no state a lost decision leaves, and is not
// kept.
func TestRouteAheadOfTheStatusIsKept(t *testing.T) {
	for _, tc := range []struct {
		name    string
		carried int32
		want    int32
	}{
		{"the next step's weight: kept", 50, 50},
		{"between the steps: kept", 30, 30},
		{"beyond the next step: back to the pause's", 80, 20},
		{"the pause's own: unchanged", 20, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// stdSteps: 20%, a one-minute pause (10 s in), 50%, ...
			c := newCanary(releasing(1, 20))
			out := engine.Decide(engine.Input{Canary: c, Obs: newObs(tgt(ready("r2")), pri(ready("r1")), route(tc.carried)), Now: t0})
			if w := out.Desired.CanaryWeight; w == nil || *w != tc.want {
				t.Fatalf("desired weight %v, want %d (phase %s, %s)", w, tc.want, out.Status.Phase, out.Status.Message)
			}
			if out.Status.CanaryWeight != tc.want || out.Status.CurrentStep != 1 {
				t.Errorf("status weight %d at step %d, want %d at step 1", out.Status.CanaryWeight, out.Status.CurrentStep, tc.want)
			}
		})
	}
}
