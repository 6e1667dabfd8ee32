package engine_test

import (
	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/engine"
)

// New and Initializing: the primary copy is made from the target, all
// traffic moved to it, then the target scaled to zero.

// newRows are the rows of TestDecideTransitions/New.
func newRows() []row {
	return []row{
		{
			name:   "target missing",
			canary: newCanary(),
			obs:    newObs(),
			want: want{phase: v1alpha1.PhaseInitializing, reason: "TargetNotFound", msgHas: "apps/podinfo",
				desired: "-", conds: cRunStalled, stalled: "TargetNotFound"},
		},
		{
			name:   "primary missing: create it from the target",
			canary: newCanary(),
			obs:    newObs(tgt(ready("r1"))),
			want: want{phase: v1alpha1.PhaseInitializing, reason: "WaitingForPrimary",
				desired: "fromTarget primary=3", canary: "r1", conds: cRunning},
		},
		{
			name:   "primary not ready",
			canary: newCanary(),
			obs:    newObs(tgt(ready("r1")), pri(notReady("r1"))),
			want: want{phase: v1alpha1.PhaseInitializing, reason: "WaitingForPrimary", msgHas: "1/3 available",
				desired: "fromTarget primary=3", canary: "r1", conds: cRunning},
		},
		{
			name:   "primary ready at another revision",
			canary: newCanary(),
			obs:    newObs(tgt(ready("r1")), pri(ready("r0"))),
			want: want{phase: v1alpha1.PhaseInitializing, reason: "WaitingForPrimary", msgHas: "runs revision r0, want r1",
				desired: "fromTarget primary=3", canary: "r1", conds: cRunning},
		},
		{
			name:   "primary not observed by its controller yet",
			canary: newCanary(),
			obs: newObs(tgt(ready("r1")), pri(engine.Workload{Exists: true, Revision: "r1", Replicas: 3,
				UpdatedReplicas: 3, AvailableReplicas: 3, Current: false})),
			want: want{phase: v1alpha1.PhaseInitializing, reason: "WaitingForPrimary", msgHas: "not yet observed",
				desired: "fromTarget primary=3", canary: "r1", conds: cRunning},
		},
		{
			name:   "primary ready, no route yet",
			canary: newCanary(),
			obs:    newObs(tgt(ready("r1")), pri(ready("r1"))),
			want: want{phase: v1alpha1.PhaseInitializing, reason: "Initializing", msgHas: "waiting for the router",
				desired: "fromTarget services primary=3 weight=0", requeue: engine.RoutePollInterval,
				canary: "r1", conds: cRunning},
		},
		{
			name:   "route still carries canary weight: target is not scaled down",
			canary: newCanary(),
			obs:    newObs(tgt(ready("r1")), pri(ready("r1")), route(30)),
			want: want{phase: v1alpha1.PhaseInitializing, reason: "Initializing",
				desired: "fromTarget services primary=3 weight=0", requeue: engine.RoutePollInterval,
				canary: "r1", conds: cRunning},
		},
		{
			name:   "route at 0 but router has not taken the write",
			canary: newCanary(),
			obs:    newObs(tgt(ready("r1")), pri(ready("r1")), routePending(0, "Gateway gw has not accepted the route")),
			want: want{phase: v1alpha1.PhaseInitializing, reason: "Initializing", msgHas: "Gateway gw has not accepted",
				desired: "fromTarget services primary=3 weight=0", requeue: engine.RoutePollInterval,
				canary: "r1", conds: cRunning},
		},
		{
			name:   "primary ready and route at 0: initialized, target scaled down",
			canary: newCanary(),
			obs:    newObs(tgt(ready("r1")), pri(ready("r1")), route(0)),
			want: want{phase: v1alpha1.PhaseInitialized, reason: "Initialized",
				desired: "fromTarget services primary=3 target=0 weight=0", events: []string{"Normal Initialized"},
				stable: "r1", canary: "r1", conds: cIdle},
		},
		{
			name:   "blocked configuration: route not written, stalled",
			canary: newCanary(),
			obs:    newObs(tgt(ready("r1")), pri(ready("r1")), route(0), blocked("BackendNotFound", "Service apps/auth-proxy not found")),
			want: want{phase: v1alpha1.PhaseInitializing, reason: "BackendNotFound", msgHas: "auth-proxy",
				desired: "fromTarget services primary=3", canary: "r1", conds: cRunStalled, stalled: "BackendNotFound",
				events: []string{"Warning BackendNotFound"}, requeue: engine.BlockedRecheckInterval},
		},
		{
			// Issue 21 item 10: a router's refusal stalls in every
			// phase, even one whose withdrawal route could be written.
			name:   "router refuses its configuration while initialising: stalled with one Warning",
			canary: newCanary(),
			obs: newObs(tgt(ready("r1")), pri(ready("r1")), routePending(0, "mapping apps/web names Service other"), func(o *engine.Observations) {
				o.Blocked, o.BlockedReason, o.BlockedWithdrawable = "mapping apps/web names Service other, not web", "MappingNotUsable", true
			}),
			want: want{phase: v1alpha1.PhaseInitializing, reason: "Initializing", msgHas: "names Service other",
				desired: "fromTarget services primary=3 weight=0", canary: "r1", conds: cRunStalled, stalled: "MappingNotUsable",
				events: []string{"Warning MappingNotUsable"}, requeue: engine.RoutePollInterval},
		},
		{
			name:   "router refusal already reported: no second Warning",
			canary: newCanary(stalledOn("MappingNotUsable", "mapping apps/web names Service other, not web")),
			obs: newObs(tgt(ready("r1")), pri(ready("r1")), routePending(0, "mapping apps/web names Service other"), func(o *engine.Observations) {
				o.Blocked, o.BlockedReason, o.BlockedWithdrawable = "mapping apps/web names Service other, not web", "MappingNotUsable", true
			}),
			want: want{phase: v1alpha1.PhaseInitializing, reason: "Initializing", msgHas: "names Service other",
				desired: "fromTarget services primary=3 weight=0", canary: "r1", conds: cRunStalled, stalled: "MappingNotUsable",
				requeue: engine.RoutePollInterval},
		},
		{
			name:   "unknown phase restarts initialization",
			canary: newCanary(inPhase("Bogus", "Whatever")),
			obs:    newObs(tgt(ready("r1")), pri(ready("r1")), route(0)),
			want: want{phase: v1alpha1.PhaseInitialized, reason: "Initialized",
				desired: "fromTarget services primary=3 target=0 weight=0", events: []string{"Normal Initialized"},
				stable: "r1", canary: "r1", conds: cIdle},
		},
		{
			name:   "request annotation is consumed while initializing",
			canary: newCanary(request("abort/1")),
			obs:    newObs(tgt(ready("r1")), pri(ready("r1")), route(0)),
			want: want{phase: v1alpha1.PhaseInitialized, reason: "Initialized", anyEvts: true,
				desired: "fromTarget services primary=3 target=0 weight=0",
				stable:  "r1", canary: "r1", handled: "abort/1", conds: cIdle},
		},
		{
			name:   "suspended: nothing is touched",
			canary: newCanary(specSuspend, request("abort")),
			obs:    newObs(tgt(ready("r1"))),
			want:   want{phase: "", reason: "Suspended", desired: "-", conds: cSuspended},
		},
	}
}

// initializingRows are the rows of TestDecideTransitions/Initializing.
func initializingRows() []row {
	base := all(inPhase(v1alpha1.PhaseInitializing, "WaitingForPrimary"), revisions("", "r1"))
	return []row{
		{
			name:   "target deleted",
			canary: newCanary(base),
			obs:    newObs(pri(ready("r1"))),
			want: want{phase: v1alpha1.PhaseInitializing, reason: "TargetNotFound", desired: "-",
				canary: "r1", conds: cRunStalled, stalled: "TargetNotFound"},
		},
		{
			name:   "target changed revision: the primary follows it",
			canary: newCanary(base),
			obs:    newObs(tgt(ready("r2")), pri(ready("r1")), route(0)),
			want: want{phase: v1alpha1.PhaseInitializing, reason: "WaitingForPrimary", msgHas: "want r2",
				desired: "fromTarget primary=3", canary: "r2", conds: cRunning},
		},
		{
			name:   "primary ready, route at 0",
			canary: newCanary(base),
			obs:    newObs(tgt(ready("r1")), pri(ready("r1")), route(0)),
			want: want{phase: v1alpha1.PhaseInitialized, reason: "Initialized",
				desired: "fromTarget services primary=3 target=0 weight=0", events: []string{"Normal Initialized"},
				stable: "r1", canary: "r1", conds: cIdle},
		},
		{
			name:   "suspended",
			canary: newCanary(base, specSuspend),
			obs:    newObs(tgt(ready("r1")), pri(ready("r1")), route(0)),
			want: want{phase: v1alpha1.PhaseInitializing, reason: "Suspended", desired: "-",
				canary: "r1", conds: cSuspended},
		},
	}
}
