package engine_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/engine"
)

// Blue/green releases: three steps (preview at 0%, the switch to 100%, the
// scale-down delay at 100%), then the promotion as for a canary walk.

func blueGreen(bg v1alpha1.BlueGreen) canaryOpt {
	return func(c *v1alpha1.Canary) { c.Spec.Strategy = v1alpha1.Strategy{BlueGreen: &bg} }
}

func TestStepsBlueGreen(t *testing.T) {
	f := false
	cases := []struct {
		name string
		bg   v1alpha1.BlueGreen
		want string
	}{
		{"defaults", v1alpha1.BlueGreen{}, "p0s w100 p30s"},
		{"auto-promotion after 2m, no delay", v1alpha1.BlueGreen{AutoPromotionSeconds: i32(120), ScaleDownDelay: mdur(0)}, "p2m0s w100 p0s"},
		{"manual promotion", v1alpha1.BlueGreen{AutoPromotionEnabled: &f, ScaleDownDelay: mdur(time.Minute)}, "hold w100 p1m0s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := fmtSteps(engine.Steps(v1alpha1.Strategy{BlueGreen: &tc.bg})); got != tc.want {
				t.Errorf("steps = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestDecideBlueGreen(t *testing.T) {
	manual := false
	bg := v1alpha1.BlueGreen{PreviewReplicaCount: i32(1), AutoPromotionSeconds: i32(60)}
	// The release of r2 over r1 (3 replicas), the preview running 1.
	previewReady := engine.Workload{Exists: true, Revision: "r2", Replicas: 1, UpdatedReplicas: 1, AvailableReplicas: 1, Current: true}
	obs := func(target engine.Workload, weight int32, opts ...obsOpt) engine.Observations {
		o := newObs(append([]obsOpt{tgt(target), pri(ready("r1")), route(weight)}, opts...)...)
		o.ReleaseReplicas = target.Replicas
		return o
	}
	rows := []row{
		{
			name:   "a new revision starts the preview at previewReplicaCount, no traffic",
			canary: newCanary(blueGreen(bg), initialized()),
			obs:    func() engine.Observations { o := obs(previewReady, 0); o.Target.Revision = "r2"; return o }(),
			want: want{phase: P, reason: "PauseStep", msgHas: "previewing revision r2 for 1m0s before the switch",
				desired: "services target=1 weight=0", events: []string{"Normal NewRevision"}, requeue: time.Minute,
				stable: "r1", canary: "r2", conds: cRunning, stepStartedNow: true},
		},
		{
			name:   "preview: the preview is not Ready yet, the preview count is kept",
			canary: newCanary(blueGreen(bg), releasing(0, 0)),
			obs:    obs(engine.Workload{Exists: true, Revision: "r2", Replicas: 1, UpdatedReplicas: 1, Current: true}, 0),
			want: want{phase: P, reason: "WaitingForCanary", desired: "services target=1", requeue: v1alpha1.DefaultProgressDeadline,
				stable: "r1", canary: "r2", conds: cRunning},
		},
		{
			name:   "preview over: scaled to full size before the switch, traffic stays",
			canary: newCanary(blueGreen(bg), releasing(0, 0), stepStarted(time.Minute)),
			obs:    obs(previewReady, 0),
			want: want{phase: P, reason: "WaitingForCanary", msgHas: "scaling the preview from 1 to 3 replicas before the switch",
				desired: "services target=3 weight=0", requeue: v1alpha1.DefaultProgressDeadline,
				step: 1, stable: "r1", canary: "r2", conds: cRunning, stepStartedNow: true},
		},
		{
			name:   "switch: full size asked but not Ready, no traffic moves",
			canary: newCanary(blueGreen(bg), releasing(1, 0)),
			obs:    obs(engine.Workload{Exists: true, Revision: "r2", Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 1, Current: true}, 0),
			want: want{phase: P, reason: "WaitingForCanary", desired: "services target=3", requeue: v1alpha1.DefaultProgressDeadline,
				step: 1, stable: "r1", canary: "r2", conds: cRunning},
		},
		{
			name:   "switch: Ready at full size, all traffic asked at once",
			canary: newCanary(blueGreen(bg), releasing(1, 0)),
			obs:    obs(ready("r2"), 0),
			want: want{phase: P, reason: "SettingWeight", msgHas: "waiting for the router to carry canary weight 100%",
				desired: "services target=3 weight=100", requeue: engine.RoutePollInterval,
				step: 1, weight: 100, stable: "r1", canary: "r2", conds: cRunning},
		},
		{
			name:   "switch carried: the scale-down delay starts, the old copy untouched",
			canary: newCanary(blueGreen(bg), releasing(1, 100)),
			obs:    obs(ready("r2"), 100),
			want: want{phase: P, reason: "PauseStep", msgHas: "the old copy keeps running for 30s",
				desired: "services target=3 weight=100", events: []string{"Normal WeightSet"}, requeue: 30 * time.Second,
				step: 2, weight: 100, stable: "r1", canary: "r2", conds: cRunning, stepStartedNow: true},
		},
		{
			name:   "abort in the scale-down delay: all traffic back to the old copy",
			canary: newCanary(blueGreen(bg), releasing(2, 100), request("abort/1")),
			obs:    obs(ready("r2"), 100),
			want: want{phase: v1alpha1.PhaseFailed, reason: "Aborted", desired: "services weight=0",
				events: []string{"Warning Aborted"}, requeue: engine.RoutePollInterval, weight: 0,
				stable: "r1", canary: "r2", handled: "abort/1", conds: cStalled, step: 2},
		},
		{
			name:   "scale-down delay over: promotion, the primary takes r2 under the canary's traffic",
			canary: newCanary(blueGreen(bg), releasing(2, 100), stepStarted(30*time.Second)),
			obs:    obs(ready("r2"), 100),
			want: want{phase: v1alpha1.PhasePromoting, reason: "Promoting", desired: "fromTarget services primary=3 target=3 weight=100",
				events: []string{"Normal Promoting"}, anyEvts: true, requeue: v1alpha1.DefaultVerificationInterval, step: 3, weight: 100,
				stable: "r1", canary: "r2", conds: cRunning, stepStartedNow: true},
		},
		{
			name:   "manual promotion: the preview waits for kubectl sluice promote",
			canary: newCanary(blueGreen(v1alpha1.BlueGreen{AutoPromotionEnabled: &manual}), releasing(0, 0)),
			obs:    obs(ready("r2"), 0),
			want: want{phase: v1alpha1.PhaseWaitingPromotion, reason: "WaitingForPromotion", msgHas: "the switch waits until promoted",
				desired: "services target=3 weight=0", events: []string{"Normal WaitingForPromotion"},
				stable: "r1", canary: "r2", conds: cRunning},
		},
		{
			name:   "manual promotion: promote switches",
			canary: newCanary(blueGreen(v1alpha1.BlueGreen{AutoPromotionEnabled: &manual}), releasing(0, 0), inPhase(v1alpha1.PhaseWaitingPromotion, "WaitingForPromotion"), request("promote/1")),
			obs:    obs(ready("r2"), 0),
			want: want{phase: P, reason: "SettingWeight", desired: "services target=3 weight=100",
				events: []string{"Normal PromoteRequested"}, requeue: engine.RoutePollInterval, step: 1, weight: 100,
				stable: "r1", canary: "r2", handled: "promote/1", conds: cRunning, stepStartedNow: true},
		},
	}
	runRows(t, rows)
}

// TestDecideBlueGreenAnalysis: the preview is judged at weight 0 (its
// rounds run, and one must pass before the switch); the scale-down delay is
// judged at 100%, and failed rounds there switch everything back.
func TestDecideBlueGreenAnalysis(t *testing.T) {
	bg := blueGreen(v1alpha1.BlueGreen{})
	healthy := func(w int32, extra ...obsOpt) engine.Observations {
		return newObs(append([]obsOpt{tgt(ready("r2")), pri(ready("r1")), route(w)}, extra...)...)
	}
	t.Run("preview asks for a round at weight 0 and waits for it", func(t *testing.T) {
		out := engine.Decide(engine.Input{Canary: newCanary(bg, withAnalysis, releasing(0, 0)), Obs: healthy(0), Now: t0})
		if out.Desired.CheckRound != 1 || out.Status.CurrentStep != 0 || out.Status.Reason != v1alpha1.ReasonWaitingForChecks {
			t.Errorf("round %d step %d reason %s, want round 1 asked, step 0, WaitingForChecks", out.Desired.CheckRound, out.Status.CurrentStep, out.Status.Reason)
		}
	})
	t.Run("a passing preview round lets the switch go", func(t *testing.T) {
		out := engine.Decide(engine.Input{Canary: newCanary(bg, withAnalysis, releasing(0, 0), rounds(1, 0, 0, nil)),
			Obs: healthy(0, result(1, true, "")), Now: t0})
		if out.Status.CurrentStep != 1 || out.Desired.CanaryWeight == nil || *out.Desired.CanaryWeight != 100 {
			t.Errorf("step %d desired %s, want the switch (step 1, weight 100)", out.Status.CurrentStep, fmtDesired(out.Desired))
		}
	})
	t.Run("a failing preview round never switches", func(t *testing.T) {
		out := engine.Decide(engine.Input{Canary: newCanary(bg, withAnalysis, releasing(0, 0), rounds(1, 0, 0, nil)),
			Obs: healthy(0, result(1, false, "p99 800ms above 500ms")), Now: t0})
		if out.Status.CurrentStep != 0 || out.Status.FailedChecks != 1 || (out.Desired.CanaryWeight != nil && *out.Desired.CanaryWeight != 0) {
			t.Errorf("step %d failed %d desired %s, want step 0, 1 failed round, weight 0", out.Status.CurrentStep, out.Status.FailedChecks, fmtDesired(out.Desired))
		}
	})
	t.Run("failed rounds in the scale-down delay switch back to the old copy", func(t *testing.T) {
		c := newCanary(bg, withAnalysis, releasing(2, 100), rounds(3, 2, 2, nil), func(c *v1alpha1.Canary) { c.Status.FailedChecks = 1 })
		out := engine.Decide(engine.Input{Canary: c, Obs: healthy(100, result(3, false, "errors 9% above 1%")), Now: t0})
		if out.Status.Phase != v1alpha1.PhaseFailed || out.Status.Reason != v1alpha1.ReasonAnalysisFailed || out.Desired.CanaryWeight == nil || *out.Desired.CanaryWeight != 0 {
			t.Errorf("phase %s (%s) desired %s, want Failed/AnalysisFailed with weight 0", out.Status.Phase, out.Status.Reason, fmtDesired(out.Desired))
		}
		if out.Desired.PrimaryFromTarget {
			t.Errorf("the old copy's template was asked to change on a rollback")
		}
	})
}

// TestSimulationBlueGreen: a clean blue/green release carries 0, then
// 100 at once, then 0 again (the promoted primary); the old primary keeps
// its full size until after the switch and the scale-down delay; the
// preview runs previewReplicaCount until the switch, full size for it.
func TestSimulationBlueGreen(t *testing.T) {
	for _, l := range simLayouts {
		if l.strategy.BlueGreen == nil {
			continue
		}
		t.Run(l.name, func(t *testing.T) {
			s := newSim(t, 1, l.strategy, 0, 1)
			s.initialize()
			s.release("r2")
			preview := int32(3)
			if p := l.strategy.BlueGreen.PreviewReplicaCount; p != nil {
				preview = *p
			}
			var previewSizes []int32
			var switchedAt, primaryChangedAt time.Time
			s.run(300, func(s *sim, quiet bool) bool {
				w := s.w
				if switchedAt.IsZero() && w.routeCarried == 100 {
					switchedAt = s.now
					if w.target.replicas != 3 {
						s.fail("switched with the new revision at %d replicas, want full size (3)", w.target.replicas)
					}
				}
				if switchedAt.IsZero() && w.target.replicas > 0 && !slices.Contains(previewSizes, w.target.replicas) {
					previewSizes = append(previewSizes, w.target.replicas)
				}
				if primaryChangedAt.IsZero() && w.primary.rev == "r2" {
					primaryChangedAt = s.now
				}
				return false
			})
			s.expectSucceeded("r2")
			if s.failed {
				return
			}
			if got := fmt.Sprint(s.w.carried); got != "[0 100 0]" {
				s.fail("weights carried %s, want [0 100 0]: all at once", got)
			}
			if len(previewSizes) == 0 || previewSizes[0] != preview {
				s.fail("preview ran %v replicas before the switch, want %d first", previewSizes, preview)
			}
			if delay := l.strategy.BlueGreen.GetScaleDownDelay(); primaryChangedAt.Sub(switchedAt) < delay {
				s.fail("old primary replaced %v after the switch, before the scale-down delay %v", primaryChangedAt.Sub(switchedAt), delay)
			}
		})
	}
}
