package engine_test

import (
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/engine"
)

// Finalising: the primary runs the promoted revision; the traffic goes
// back to it and the canary is scaled down.

// finalisingRows are the rows of TestDecideTransitions/Finalising.
func finalisingRows() []row {
	base := all(inPhase(v1alpha1.PhaseFinalising, "Finalising"), revisions("r2", "r2"), atStep(5, 0),
		stepStarted(time.Minute), lastProgress(time.Minute), func(c *v1alpha1.Canary) {
			c.Status.Verification = &v1alpha1.VerificationStatus{Revision: "r2", State: v1alpha1.VerificationVerified, StartedAt: ago(time.Minute)}
		})
	obs := func(opts ...obsOpt) engine.Observations {
		return newObs(append([]obsOpt{tgt(ready("r2")), pri(ready("r2")), route(80)}, opts...)...)
	}
	F := v1alpha1.PhaseFinalising
	return []row{
		{
			// Issue 21 item 2: traffic used to stay on the primary
			// that stopped being Ready.
			name:   "primary not ready: all traffic to the Ready canary, which stays up",
			canary: newCanary(base),
			obs:    obs(pri(notReady("r2"))),
			want: want{phase: F, reason: "Finalising", msgHas: "waiting for the primary: primary 1/3 available",
				desired: "services target=3 weight=100", requeue: engine.RoutePollInterval, step: 5, weight: 100,
				stable: "r2", canary: "r2", conds: cRunning},
		},
		{
			name:   "primary and canary not ready: traffic stays where it is",
			canary: newCanary(base),
			obs:    obs(pri(notReady("r2")), tgt(notReady("r2"))),
			want: want{phase: F, reason: "Finalising", msgHas: "the canary is not Ready either",
				desired: "services target=3", requeue: v1alpha1.DefaultVerificationInterval, step: 5, stable: "r2", canary: "r2", conds: cRunning},
		},
		{
			// Issue 21 item 2: it used to wait with Stalled=False forever.
			name:   "primary not ready past the deadline: stalled with the numbers, traffic on the canary",
			canary: newCanary(base, lastProgress(v1alpha1.DefaultProgressDeadline+time.Second), atStep(5, 100)),
			obs:    obs(pri(notReady("r2")), route(100)),
			want: want{phase: F, reason: "Finalising", msgHas: "primary 1/3 available",
				desired: "services target=3 weight=100", requeue: v1alpha1.DefaultVerificationInterval, step: 5, weight: 100,
				stable: "r2", canary: "r2", conds: cRunStalled, stalled: "PrimaryNotReady"},
		},
		{
			name:   "route still carries canary weight",
			canary: newCanary(base),
			obs:    obs(),
			want: want{phase: F, reason: "Finalising", desired: "services target=3 weight=0",
				requeue: engine.RoutePollInterval, step: 5, stable: "r2", canary: "r2", conds: cRunning},
		},
		{
			name:   "route at 0 but pending",
			canary: newCanary(base),
			obs:    obs(routePending(0, "not accepted")),
			want: want{phase: F, reason: "Finalising", desired: "services target=3 weight=0",
				requeue: engine.RoutePollInterval, step: 5, stable: "r2", canary: "r2", conds: cRunning},
		},
		{
			name:   "route at 0: succeeded, canary scaled down",
			canary: newCanary(base),
			obs:    obs(route(0)),
			want: want{phase: v1alpha1.PhaseSucceeded, reason: "Promoted",
				desired: "services target=0 weight=0", events: []string{"Normal Promoted"},
				step: 5, stable: "r2", canary: "r2", conds: cIdle},
		},
		{
			name:   "target deleted: not scaled, traffic still moves to the primary",
			canary: newCanary(base),
			obs:    obs(tgt(missing)),
			want: want{phase: F, reason: "Finalising", desired: "services weight=0",
				requeue: engine.RoutePollInterval, step: 5, stable: "r2", canary: "r2", conds: cRunning},
		},
		{
			name:   "abort is too late",
			canary: newCanary(base, request("abort")),
			obs:    obs(),
			want: want{phase: F, reason: "Finalising", desired: "services target=3 weight=0",
				events: []string{"Warning RequestIgnored"}, requeue: engine.RoutePollInterval,
				step: 5, stable: "r2", canary: "r2", handled: "abort", conds: cRunning},
		},
	}
}
