package engine_test

import (
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/engine"
)

// Promoting: the primary takes the released revision.

// promotingRows are the rows of TestDecideTransitions/Promoting.
func promotingRows() []row {
	base := all(inPhase(v1alpha1.PhasePromoting, "Promoting"), revisions("r1", "r2"), atStep(5, 80),
		stepStarted(time.Minute), lastProgress(time.Minute))
	obs := func(opts ...obsOpt) engine.Observations {
		return newObs(append([]obsOpt{tgt(ready("r2")), pri(ready("r1")), route(80)}, opts...)...)
	}
	PR := v1alpha1.PhasePromoting
	return []row{
		{
			name:   "primary not updated yet: all traffic moves to the canary first",
			canary: newCanary(base),
			obs:    obs(),
			want: want{phase: PR, reason: "Promoting", msgHas: "moving all traffic to the canary before updating the primary",
				desired: "services primary=3 target=3 weight=100", requeue: engine.RoutePollInterval,
				step: 5, weight: 100, stable: "r1", canary: "r2", conds: cRunning},
		},
		{
			name:   "route carries 100% to the canary: the primary is updated",
			canary: newCanary(base),
			obs:    obs(route(100)),
			want: want{phase: PR, reason: "Promoting", msgHas: "primary runs revision r1, want r2",
				desired: "fromTarget services primary=3 target=3 weight=100", requeue: v1alpha1.DefaultVerificationInterval,
				step: 5, weight: 100, stable: "r1", canary: "r2", conds: cRunning},
		},
		{
			name:   "primary rolling out",
			canary: newCanary(base),
			obs:    obs(pri(notReady("r2"))),
			want: want{phase: PR, reason: "Promoting", desired: "fromTarget services primary=3 target=3", requeue: v1alpha1.DefaultVerificationInterval,
				step: 5, weight: 80, stable: "r1", canary: "r2", conds: cRunning},
		},
		{
			name: "primary not verified within the verification timeout: failed safe, the primary restored from the stable record",
			canary: newCanary(base, func(c *v1alpha1.Canary) {
				c.Status.Verification = &v1alpha1.VerificationStatus{Revision: "r2", State: v1alpha1.VerificationVerifying, StartedAt: ago(v1alpha1.DefaultVerificationTimeout)}
			}),
			obs: obs(pri(notReady("r2")), func(o *engine.Observations) { o.StableRecord = true }),
			want: want{phase: v1alpha1.PhaseFailed, reason: "VerificationFailed", msgHas: "primary 1/3 available, 3/3 updated after 5m0s",
				desired: "restore services primary=3 target=3 weight=100", events: []string{"Warning VerificationFailed"},
				requeue: engine.RoutePollInterval, step: 5, weight: 100, stable: "r1", canary: "r2", conds: cStalled, stalled: "PrimaryNotReady"},
		},
		{
			name:   "primary ready at the canary revision: finalising",
			canary: newCanary(base),
			obs:    obs(pri(ready("r2"))),
			want: want{phase: v1alpha1.PhaseFinalising, reason: "Finalising",
				desired: "fromTarget services primary=3 target=3 weight=0", events: []string{"Normal Verified", "Normal Finalising"},
				requeue: engine.RoutePollInterval, step: 5, stable: "r2", canary: "r2", conds: cRunning},
		},
		{
			name:   "primary ready and route already at 0: succeeded in one go",
			canary: newCanary(base),
			obs:    obs(pri(ready("r2")), route(0)),
			want: want{phase: v1alpha1.PhaseSucceeded, reason: "Promoted",
				desired: "fromTarget services primary=3 target=0 weight=0", events: []string{"Normal Verified", "Normal Finalising", "Normal Promoted"},
				step: 5, stable: "r2", canary: "r2", conds: cIdle},
		},
		{
			// Issue 21 item 1: the primary is untouched, so an abort
			// still rolls back (it used to be refused as too late).
			name:   "abort before the primary is touched: rolled back",
			canary: newCanary(base, request("abort")),
			obs:    obs(),
			want: want{phase: v1alpha1.PhaseFailed, reason: "Aborted", msgHas: "before the primary was updated",
				desired: "services weight=0", events: []string{"Warning Aborted"}, requeue: engine.RoutePollInterval,
				step: 5, weight: 0, stable: "r1", canary: "r2", handled: "abort", conds: cStalled},
		},
		{
			name:   "abort once the primary took the template is too late",
			canary: newCanary(base, request("abort")),
			obs:    obs(pri(notReady("r2"))),
			want: want{phase: PR, reason: "Promoting", desired: "fromTarget services primary=3 target=3",
				events: []string{"Warning RequestIgnored"}, requeue: v1alpha1.DefaultVerificationInterval,
				step: 5, weight: 80, stable: "r1", canary: "r2", handled: "abort", conds: cRunning},
		},
		{
			// Issue 21 item 1: a router that never carries 100% to the
			// canary used to keep the promotion waiting forever.
			name:   "route never carries 100% to the canary past the deadline: stalled, primary untouched",
			canary: newCanary(base, lastProgress(v1alpha1.DefaultProgressDeadline+time.Second)),
			obs:    obs(routePending(80, "parent public does not accept the route")),
			want: want{phase: PR, reason: "Promoting", msgHas: "parent public does not accept the route",
				desired: "services primary=3 target=3 weight=100", requeue: engine.RoutePollInterval,
				step: 5, weight: 100, stable: "r1", canary: "r2", conds: cRunStalled, stalled: "PromotionStalled"},
		},
		{
			name:   "route not carried yet within the deadline: waits, deadline requeued",
			canary: newCanary(base, lastProgress(v1alpha1.DefaultProgressDeadline-2*time.Second)),
			obs:    obs(routePending(80, "parent public does not accept the route")),
			want: want{phase: PR, reason: "Promoting", msgHas: "moving all traffic to the canary",
				desired: "services primary=3 target=3 weight=100", requeue: 2 * time.Second,
				step: 5, weight: 100, stable: "r1", canary: "r2", conds: cRunning},
		},
		{
			// The primary never serves while it is replaced: a canary
			// that stops being Ready before the primary is touched gives
			// the traffic back, and the primary waits (it used to take
			// the template while carrying all the traffic).
			name:   "canary not Ready before the primary is touched: traffic back to the primary, which is not replaced",
			canary: newCanary(base, atStep(5, 100)),
			obs:    obs(tgt(notReady("r2")), route(100)),
			want: want{phase: PR, reason: "Promoting", msgHas: "waiting for the canary to be Ready to carry all traffic while the primary is updated: canary 1/3 available",
				desired: "services primary=3 target=3 weight=0", requeue: engine.RoutePollInterval,
				step: 5, weight: 0, stable: "r1", canary: "r2", conds: cRunning},
		},
		{
			name:   "canary not Ready past the deadline: stalled, the primary untouched",
			canary: newCanary(base, atStep(5, 0), lastProgress(v1alpha1.DefaultProgressDeadline+time.Second)),
			obs:    obs(tgt(notReady("r2")), route(0)),
			want: want{phase: PR, reason: "Promoting", msgHas: "waiting for the canary to be Ready",
				desired: "services primary=3 target=3 weight=0",
				step:    5, weight: 0, stable: "r1", canary: "r2", conds: cRunStalled, stalled: "PromotionStalled"},
		},
		{
			name:   "stalled promotion aborted: rolled back to the untouched primary",
			canary: newCanary(base, lastProgress(v1alpha1.DefaultProgressDeadline+time.Hour), request("abort")),
			obs:    obs(routePending(80, "parent public does not accept the route")),
			want: want{phase: v1alpha1.PhaseFailed, reason: "Aborted",
				desired: "services weight=0", events: []string{"Warning Aborted"}, requeue: engine.RoutePollInterval,
				step: 5, weight: 0, stable: "r1", canary: "r2", handled: "abort", conds: cStalled},
		},
		{
			name:   "spec.paused does not hold a promotion",
			canary: newCanary(base, specPaused),
			obs:    obs(),
			want: want{phase: PR, reason: "Promoting", desired: "services primary=3 target=3 weight=100", requeue: engine.RoutePollInterval,
				step: 5, weight: 100, stable: "r1", canary: "r2", conds: cRunning},
		},
		{
			name:   "target moved on before the primary took the template: new release",
			canary: newCanary(base),
			obs:    obs(tgt(notReady("r3"))),
			want: want{phase: P, reason: "WaitingForCanary", desired: "services target=3 weight=0",
				events: []string{"Normal RevisionChanged"}, requeue: engine.RoutePollInterval,
				stable: "r1", canary: "r3", conds: cRunning, stepStartedNow: true},
		},
		{
			name:   "target moved on after the primary took the template: promotion completes",
			canary: newCanary(base),
			obs:    obs(tgt(ready("r3")), pri(ready("r2"))),
			want: want{phase: v1alpha1.PhaseFinalising, reason: "Finalising",
				desired: "services primary=3 target=3 weight=0", events: []string{"Normal Verified", "Normal Finalising"},
				requeue: engine.RoutePollInterval, step: 5, stable: "r2", canary: "r2", conds: cRunning},
		},
		{
			name:   "target deleted after the primary took the template",
			canary: newCanary(base),
			obs:    obs(tgt(missing), pri(ready("r2")), route(0)),
			want: want{phase: v1alpha1.PhaseSucceeded, reason: "Promoted",
				desired: "services primary=3 weight=0", events: []string{"Normal Verified", "Normal Finalising", "Normal Promoted"},
				step: 5, stable: "r2", canary: "r2", conds: cIdle},
		},
		{
			name:   "suspended",
			canary: newCanary(base, specSuspend),
			obs:    obs(pri(ready("r2"))),
			want: want{phase: PR, reason: "Suspended", desired: "-",
				step: 5, weight: 80, stable: "r1", canary: "r2", conds: cSuspended},
		},
	}
}
