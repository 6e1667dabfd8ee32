package engine_test

import (
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/engine"
)

// Paused and WaitingPromotion: a release held at a step, by spec.paused
// or by a pause step without a duration, until resumed or promoted.

// pausedRows are the rows of TestDecideTransitions/Paused.
func pausedRows() []row {
	base := all(inPhase(Pa, "Paused"), revisions("r1", "r2"), atStep(1, 20),
		stepStarted(time.Hour), lastProgress(time.Hour))
	obs := func(weight int32, opts ...obsOpt) engine.Observations {
		return newObs(append([]obsOpt{tgt(ready("r2")), pri(ready("r1")), route(weight)}, opts...)...)
	}
	return []row{
		{
			name:   "still paused, longer than the deadline",
			canary: newCanary(base, specPaused),
			obs:    obs(20),
			want: want{phase: Pa, reason: "Paused", desired: "services target=3 weight=20",
				step: 1, weight: 20, stable: "r1", canary: "r2", conds: cRunning},
		},
		{
			name:   "resumed: the pause step starts over",
			canary: newCanary(base),
			obs:    obs(20),
			want: want{phase: P, reason: "PauseStep", desired: "services target=3 weight=20",
				events: []string{"Normal Resumed"}, requeue: time.Minute,
				step: 1, weight: 20, stable: "r1", canary: "r2", conds: cRunning, stepStartedNow: true},
		},
		{
			name:   "resumed with the canary not ready: time paused does not count toward the deadline",
			canary: newCanary(base, atStep(1, 0)),
			obs:    obs(0, tgt(notReady("r2"))),
			want: want{phase: P, reason: "WaitingForCanary", desired: "services target=3",
				events: []string{"Normal Resumed"}, requeue: v1alpha1.DefaultProgressDeadline,
				step: 1, stable: "r1", canary: "r2", conds: cRunning, stepStartedNow: true},
		},
		{
			name:   "promote while paused: the step moves, the weight does not",
			canary: newCanary(base, specPaused, request("promote")),
			obs:    obs(20),
			want: want{phase: Pa, reason: "Paused", desired: "services target=3 weight=20",
				events: []string{"Normal PromoteRequested"}, step: 2, weight: 20, stable: "r1", canary: "r2",
				handled: "promote", conds: cRunning, stepStartedNow: true},
		},
		{
			name:   "abort while paused",
			canary: newCanary(base, specPaused, request("abort")),
			obs:    obs(20),
			want: want{phase: v1alpha1.PhaseFailed, reason: "Aborted", desired: "services weight=0",
				events: []string{"Warning Aborted"}, requeue: engine.RoutePollInterval,
				step: 1, stable: "r1", canary: "r2", handled: "abort", conds: cStalled},
		},
		{
			name:   "target deleted while paused",
			canary: newCanary(base, specPaused),
			obs:    obs(0, tgt(missing)),
			want: want{phase: v1alpha1.PhaseFailed, reason: "TargetNotFound", desired: "services weight=0",
				events: []string{"Warning TargetNotFound"}, step: 1, stable: "r1", canary: "r2", conds: cStalled},
		},
		{
			name:   "suspended while paused",
			canary: newCanary(base, specPaused, specSuspend),
			obs:    obs(20),
			want: want{phase: Pa, reason: "Suspended", desired: "-",
				step: 1, weight: 20, stable: "r1", canary: "r2", conds: cSuspended},
		},
	}
}

// waitingPromotionRows are the rows of TestDecideTransitions/WaitingPromotion.
func waitingPromotionRows() []row {
	base := all(inPhase(WP, "WaitingForPromotion"), revisions("r1", "r2"), atStep(3, 50),
		stepStarted(10*time.Second), lastProgress(10*time.Second))
	obs := func(weight int32, opts ...obsOpt) engine.Observations {
		return newObs(append([]obsOpt{tgt(ready("r2")), pri(ready("r1")), route(weight)}, opts...)...)
	}
	return []row{
		{
			name:   "no request: holds",
			canary: newCanary(base),
			obs:    obs(50),
			want: want{phase: WP, reason: "WaitingForPromotion", desired: "services target=3 weight=50",
				step: 3, weight: 50, stable: "r1", canary: "r2", conds: cRunning},
		},
		{
			name:   "holds longer than the progress deadline",
			canary: newCanary(base, stepStarted(time.Hour), lastProgress(time.Hour)),
			obs:    obs(50),
			want: want{phase: WP, reason: "WaitingForPromotion", desired: "services target=3 weight=50",
				step: 3, weight: 50, stable: "r1", canary: "r2", conds: cRunning},
		},
		{
			name:   "promote",
			canary: newCanary(base, request("promote")),
			obs:    obs(50),
			want: want{phase: P, reason: "SettingWeight", desired: "services target=3 weight=80",
				events: []string{"Normal PromoteRequested"}, requeue: engine.RoutePollInterval,
				step: 4, weight: 80, stable: "r1", canary: "r2", handled: "promote", conds: cRunning, stepStartedNow: true},
		},
		{
			name:   "a second promote with a new id",
			canary: newCanary(base, request("promote/2"), handled("promote/1")),
			obs:    obs(50),
			want: want{phase: P, reason: "SettingWeight", desired: "services target=3 weight=80",
				events: []string{"Normal PromoteRequested"}, requeue: engine.RoutePollInterval,
				step: 4, weight: 80, stable: "r1", canary: "r2", handled: "promote/2", conds: cRunning, stepStartedNow: true},
		},
		{
			name:   "already handled promote",
			canary: newCanary(base, request("promote/1"), handled("promote/1")),
			obs:    obs(50),
			want: want{phase: WP, reason: "WaitingForPromotion", desired: "services target=3 weight=50",
				step: 3, weight: 50, stable: "r1", canary: "r2", handled: "promote/1", conds: cRunning},
		},
		{
			name:   "promote-full",
			canary: newCanary(base, request("promote-full")),
			obs:    obs(50),
			want: want{phase: v1alpha1.PhasePromoting, reason: "Promoting",
				desired: "services primary=3 target=3 weight=100", events: []string{"Normal PromoteRequested", "Normal Promoting"},
				requeue: engine.RoutePollInterval, step: 5, weight: 100, stable: "r1", canary: "r2",
				handled: "promote-full", conds: cRunning},
		},
		{
			name:   "abort",
			canary: newCanary(base, request("abort")),
			obs:    obs(50),
			want: want{phase: v1alpha1.PhaseFailed, reason: "Aborted", desired: "services weight=0",
				events: []string{"Warning Aborted"}, requeue: engine.RoutePollInterval,
				step: 3, stable: "r1", canary: "r2", handled: "abort", conds: cStalled},
		},
		{
			name:   "canary stops being ready",
			canary: newCanary(base),
			obs:    obs(50, tgt(notReady("r2"))),
			want: want{phase: P, reason: "WaitingForCanary", desired: "services target=3 weight=0",
				requeue: engine.RoutePollInterval, step: 3, stable: "r1", canary: "r2", conds: cRunning},
		},
		{
			name:   "spec.paused",
			canary: newCanary(base, specPaused),
			obs:    obs(50),
			want: want{phase: Pa, reason: "Paused", desired: "services target=3 weight=50",
				events: []string{"Normal Paused"}, step: 3, weight: 50, stable: "r1", canary: "r2", conds: cRunning},
		},
		{
			name:   "new target revision",
			canary: newCanary(base),
			obs:    obs(50, tgt(notReady("r3"))),
			want: want{phase: P, reason: "WaitingForCanary", desired: "services target=3 weight=0",
				events: []string{"Normal RevisionChanged"}, requeue: engine.RoutePollInterval,
				stable: "r1", canary: "r3", conds: cRunning, stepStartedNow: true},
		},
	}
}
