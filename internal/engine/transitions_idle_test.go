package engine_test

import (
	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/engine"
)

// Initialized, Succeeded and Failed: all traffic on the primary, the
// canary scaled down, until the target's revision changes (or a retry).

// idleRows are the rows shared by Initialized and Succeeded, settled on
// revision rev with reason; a row whose phase is left empty keeps the
// Canary's (see withPhase).
func idleRows(base canaryOpt, reason, rev string) []row {
	steady := func(opts ...obsOpt) engine.Observations {
		return newObs(append([]obsOpt{tgt(scaledDown(rev)), pri(ready(rev)), route(0)}, opts...)...)
	}
	return []row{
		{
			name:   "steady",
			canary: newCanary(base),
			obs:    steady(),
			want: want{phase: "", reason: reason, desired: "services target=0 weight=0",
				stable: rev, canary: rev, conds: cIdle},
		},
		{
			name:   "target scaled up by hand: the primary takes its replicas",
			canary: newCanary(base),
			obs: steady(tgt(engine.Workload{Exists: true, Revision: rev, Replicas: 5, UpdatedReplicas: 5,
				AvailableReplicas: 5, Current: true})),
			want: want{phase: "", reason: reason, desired: "services primary=5 target=0 weight=0",
				stable: rev, canary: rev, conds: cIdle},
		},
		{
			name:   "target missing",
			canary: newCanary(base),
			obs:    steady(tgt(missing)),
			want: want{phase: "", reason: reason, desired: "-",
				stable: rev, canary: rev, conds: cStalled, stalled: "TargetNotFound"},
		},
		{
			name:   "primary not ready: traffic and target are left alone",
			canary: newCanary(base),
			obs:    steady(pri(notReady(rev))),
			want: want{phase: "", reason: reason, desired: "services",
				stable: rev, canary: rev, conds: cStalled, stalled: "PrimaryNotReady"},
		},
		{
			name:   "primary missing",
			canary: newCanary(base),
			obs:    steady(pri(missing)),
			want: want{phase: "", reason: reason, desired: "-",
				stable: rev, canary: rev, conds: cStalled, stalled: "PrimaryNotReady"},
		},
		{
			name:   "route still carries canary weight: target kept until it does not",
			canary: newCanary(base),
			obs:    steady(route(20)),
			want: want{phase: "", reason: reason, desired: "services weight=0", requeue: engine.RoutePollInterval,
				stable: rev, canary: rev, conds: cIdle},
		},
		{
			name:   "route pending",
			canary: newCanary(base),
			obs:    steady(routePending(0, "not accepted")),
			want: want{phase: "", reason: reason, desired: "services weight=0", requeue: engine.RoutePollInterval,
				stable: rev, canary: rev, conds: cIdle},
		},
		{
			name:   "blocked configuration: route not written, target kept",
			canary: newCanary(base),
			obs:    steady(route(20), blocked("BackendNotFound", "Service apps/auth-proxy not found")),
			want: want{phase: "", reason: reason, desired: "services", requeue: engine.BlockedRecheckInterval,
				events: []string{"Warning BackendNotFound"}, stable: rev, canary: rev, conds: cStalled, stalled: "BackendNotFound"},
		},
		{
			name:   "new revision, canary scaled down: release starts and scales it up",
			canary: newCanary(base),
			obs:    steady(tgt(scaledDown("r9"))),
			want: want{phase: P, reason: "WaitingForCanary", desired: "services target=3",
				events: []string{"Normal NewRevision"}, requeue: v1alpha1.DefaultProgressDeadline,
				stable: rev, canary: "r9", conds: cRunning, stepStartedNow: true},
		},
		{
			name:   "new revision, canary already ready: first weight set",
			canary: newCanary(base),
			obs:    steady(tgt(ready("r9"))),
			want: want{phase: P, reason: "SettingWeight", desired: "services target=3 weight=20",
				events: []string{"Normal NewRevision"}, requeue: engine.RoutePollInterval,
				weight: 20, stable: rev, canary: "r9", conds: cRunning, stepStartedNow: true},
		},
		{
			name:   "new revision with a promote request: request ignored, release starts at step 0",
			canary: newCanary(base, request("promote")),
			obs:    steady(tgt(ready("r9"))),
			want: want{phase: P, reason: "SettingWeight", desired: "services target=3 weight=20",
				events: []string{"Warning RequestIgnored", "Normal NewRevision"}, requeue: engine.RoutePollInterval,
				weight: 20, stable: rev, canary: "r9", handled: "promote", conds: cRunning, stepStartedNow: true},
		},
		{
			name:   "new revision while spec.paused: paused before any traffic moves",
			canary: newCanary(base, specPaused),
			obs:    steady(tgt(ready("r9"))),
			want: want{phase: Pa, reason: "Paused", desired: "services target=3 weight=0",
				events: []string{"Normal NewRevision", "Normal Paused"},
				stable: rev, canary: "r9", conds: cRunning, stepStartedNow: true},
		},
		{
			name:   "new revision while suspended: nothing happens",
			canary: newCanary(base, specSuspend, request("abort")),
			obs:    steady(tgt(ready("r9"))),
			want: want{phase: "", reason: "Suspended", desired: "-",
				stable: rev, canary: rev, conds: cIdle},
		},
		{
			name:   "abort request while idle",
			canary: newCanary(base, request("abort")),
			obs:    steady(),
			want: want{phase: "", reason: reason, desired: "services target=0 weight=0",
				events: []string{"Warning RequestIgnored"}, stable: rev, canary: rev, handled: "abort", conds: cIdle},
		},
		{
			name:   "promote-full request while idle",
			canary: newCanary(base, request("promote-full/3")),
			obs:    steady(),
			want: want{phase: "", reason: reason, desired: "services target=0 weight=0",
				events: []string{"Warning RequestIgnored"}, stable: rev, canary: rev, handled: "promote-full/3", conds: cIdle},
		},
		{
			name:   "retry request is only for a failed release",
			canary: newCanary(base, request("retry")),
			obs:    steady(),
			want: want{phase: "", reason: reason, desired: "services target=0 weight=0",
				events: []string{"Warning RequestIgnored"}, stable: rev, canary: rev, handled: "retry", conds: cIdle},
		},
		{
			name:   "unknown request",
			canary: newCanary(base, request("rollout-now")),
			obs:    steady(),
			want: want{phase: "", reason: reason, desired: "services target=0 weight=0",
				events: []string{"Warning RequestIgnored"}, stable: rev, canary: rev, handled: "rollout-now", conds: cIdle},
		},
		{
			name:   "already handled request",
			canary: newCanary(base, request("abort/1"), handled("abort/1")),
			obs:    steady(),
			want: want{phase: "", reason: reason, desired: "services target=0 weight=0",
				stable: rev, canary: rev, handled: "abort/1", conds: cIdle},
		},
	}
}

// withPhase fills in p as the phase of the rows that leave it empty.
func withPhase(p v1alpha1.CanaryPhase, rows []row) []row {
	for i := range rows {
		if rows[i].want.phase == "" {
			rows[i].want.phase = p
		}
	}
	return rows
}

// initializedRows are the rows of TestDecideTransitions/Initialized.
func initializedRows() []row {
	return withPhase(v1alpha1.PhaseInitialized, idleRows(initialized(), "Initialized", "r1"))
}

// succeededRows are the rows of TestDecideTransitions/Succeeded.
func succeededRows() []row {
	base := all(inPhase(v1alpha1.PhaseSucceeded, "Promoted"), revisions("r2", "r2"), atStep(5, 0))
	rows := idleRows(base, "Promoted", "r2")
	for i := range rows {
		if rows[i].want.phase == "" {
			rows[i].want.step = 5 // a settled release keeps its last step
		}
	}
	return withPhase(v1alpha1.PhaseSucceeded, rows)
}

// failedRows are the rows of TestDecideTransitions/Failed.
func failedRows() []row {
	base := all(inPhase(v1alpha1.PhaseFailed, "Aborted"), revisions("r1", "r2"), atStep(1, 0))
	steady := func(opts ...obsOpt) engine.Observations {
		return newObs(append([]obsOpt{tgt(scaledDown("r2")), pri(ready("r1")), route(0)}, opts...)...)
	}
	F := v1alpha1.PhaseFailed
	return []row{
		{
			name:   "steady: all traffic on the primary, canary scaled down",
			canary: newCanary(base),
			obs:    steady(),
			want: want{phase: F, reason: "Aborted", desired: "services target=0 weight=0", step: 1,
				stable: "r1", canary: "r2", conds: cStalled, stalled: "Aborted"},
		},
		{
			name:   "route still carries canary weight",
			canary: newCanary(base),
			obs:    steady(route(20)),
			want: want{phase: F, reason: "Aborted", desired: "services weight=0", requeue: engine.RoutePollInterval,
				step: 1, stable: "r1", canary: "r2", conds: cStalled},
		},
		{
			name:   "primary not ready: traffic stays",
			canary: newCanary(base),
			obs:    steady(pri(notReady("r1")), route(20)),
			want: want{phase: F, reason: "Aborted", desired: "services", step: 1,
				stable: "r1", canary: "r2", conds: cStalled, stalled: "PrimaryNotReady"},
		},
		{
			name:   "retry runs the failed revision again",
			canary: newCanary(base, request("retry/2")),
			obs:    steady(),
			want: want{phase: P, reason: "WaitingForCanary", desired: "services target=3",
				events: []string{"Normal Retry"}, requeue: v1alpha1.DefaultProgressDeadline,
				stable: "r1", canary: "r2", handled: "retry/2", conds: cRunning, stepStartedNow: true},
		},
		{
			name:   "retry while suspended is left for later",
			canary: newCanary(base, request("retry/2"), specSuspend),
			obs:    steady(),
			want: want{phase: F, reason: "Suspended", desired: "-", step: 1,
				stable: "r1", canary: "r2", conds: cStalled},
		},
		{
			name:   "already handled retry",
			canary: newCanary(base, request("retry/2"), handled("retry/2")),
			obs:    steady(),
			want: want{phase: F, reason: "Aborted", desired: "services target=0 weight=0", step: 1,
				stable: "r1", canary: "r2", handled: "retry/2", conds: cStalled},
		},
		{
			name:   "new revision",
			canary: newCanary(base),
			obs:    steady(tgt(scaledDown("r3"))),
			want: want{phase: P, reason: "WaitingForCanary", desired: "services target=3",
				events: []string{"Normal NewRevision"}, requeue: v1alpha1.DefaultProgressDeadline,
				stable: "r1", canary: "r3", conds: cRunning, stepStartedNow: true},
		},
		{
			name:   "retry together with a new revision: the new revision wins",
			canary: newCanary(base, request("retry")),
			obs:    steady(tgt(scaledDown("r3"))),
			want: want{phase: P, reason: "WaitingForCanary", desired: "services target=3",
				events: []string{"Warning RequestIgnored", "Normal NewRevision"}, requeue: v1alpha1.DefaultProgressDeadline,
				stable: "r1", canary: "r3", handled: "retry", conds: cRunning, stepStartedNow: true},
		},
		{
			name:   "promote request",
			canary: newCanary(base, request("promote")),
			obs:    steady(),
			want: want{phase: F, reason: "Aborted", desired: "services target=0 weight=0", step: 1,
				events: []string{"Warning RequestIgnored"}, stable: "r1", canary: "r2", handled: "promote", conds: cStalled},
		},
		{
			name:   "target deleted",
			canary: newCanary(base),
			obs:    steady(tgt(missing)),
			want: want{phase: F, reason: "Aborted", desired: "-", step: 1,
				stable: "r1", canary: "r2", conds: cStalled, stalled: "TargetNotFound"},
		},
	}
}
