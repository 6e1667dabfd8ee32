package engine_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/engine"
)

// withAnalysis adds one metric check, interval 1m, threshold 2.
func withAnalysis(c *v1alpha1.Canary) {
	c.Spec.Analysis = &v1alpha1.Analysis{Interval: mdur(time.Minute), Threshold: i32(2),
		Metrics: []v1alpha1.MetricCheck{{Name: "error-rate", TemplateRef: &v1alpha1.TemplateRef{Name: "t"}}}}
}

func rounds(requested, counted, atStepStart int64, lastCheck *time.Duration) canaryOpt {
	return func(c *v1alpha1.Canary) {
		c.Status.CheckRound, c.Status.CheckedRound, c.Status.StepCheckRound = requested, counted, atStepStart
		if lastCheck != nil {
			c.Status.LastCheckTime = v1alpha1.NewTimestamp(ago(*lastCheck).Time)
		}
	}
}

func passed(ok bool) canaryOpt {
	return func(c *v1alpha1.Canary) {
		c.Status.Metrics = []v1alpha1.MetricStatus{{Name: "error-rate", Passed: ok, Value: "1"}}
	}
}

func result(round int64, ok bool, msg string) obsOpt {
	return func(o *engine.Observations) {
		o.Checks = &engine.CheckResult{Round: round, Metrics: []v1alpha1.MetricStatus{{Name: "error-rate", Passed: ok, Message: msg}}}
	}
}

// marginal is a round whose metric passed and whose judge was marginal.
func marginal(round int64) obsOpt {
	return func(o *engine.Observations) {
		o.Checks = &engine.CheckResult{Round: round,
			Metrics: []v1alpha1.MetricStatus{{Name: "error-rate", Passed: true}, {Name: "judge", Value: "80", Inconclusive: true, Message: "marginal score 80"}},
			Judge:   &v1alpha1.JudgeStatus{Round: round, Score: "80", Verdict: v1alpha1.VerdictMarginal}}
	}
}

func TestDecideAnalysis(t *testing.T) {
	d := func(x time.Duration) *time.Duration { return &x }
	healthy := func(w int32, extra ...obsOpt) engine.Observations {
		return newObs(append([]obsOpt{tgt(ready("r2")), pri(ready("r1")), route(w)}, extra...)...)
	}
	cases := []struct {
		name        string
		canary      *v1alpha1.Canary
		obs         engine.Observations
		phase       v1alpha1.CanaryPhase
		step        int32
		askRound    int64 // Desired.CheckRound
		statusRound int64
		failed      int32
		reason      string
		event       string
	}{
		{"weight applied, no round yet in this step: one is asked for, the step waits",
			newCanary(releasing(0, 20), withAnalysis), healthy(20),
			v1alpha1.PhaseProgressing, 0, 1, 1, 0, "WaitingForChecks", ""},
		{"no canary traffic yet: no round (nothing to measure)",
			newCanary(releasing(0, 0), withAnalysis), healthy(0),
			v1alpha1.PhaseProgressing, 0, 0, 0, 0, "SettingWeight", ""},
		{"round still running: asked for again, not counted twice",
			newCanary(releasing(0, 20), withAnalysis, rounds(1, 0, 0, nil)), healthy(20),
			v1alpha1.PhaseProgressing, 0, 1, 1, 0, "WaitingForChecks", ""},
		{"round passed: the step is left",
			newCanary(releasing(0, 20), withAnalysis, rounds(1, 0, 0, nil)), healthy(20, result(1, true, "")),
			v1alpha1.PhaseProgressing, 1, 0, 1, 0, "PauseStep", "WeightSet"},
		{"round failed below the threshold: counted, the step waits",
			newCanary(releasing(0, 20), withAnalysis, rounds(1, 0, 0, nil)), healthy(20, result(1, false, "20 is above the maximum 5")),
			v1alpha1.PhaseProgressing, 0, 0, 1, 1, "WaitingForChecks", "CheckFailed"},
		{"round failed at the threshold: rolled back",
			newCanary(releasing(0, 20), withAnalysis, rounds(2, 1, 0, d(time.Minute)), passed(false), func(c *v1alpha1.Canary) { c.Status.FailedChecks = 1 }),
			healthy(20, result(2, false, "no values: is the canary receiving traffic?")),
			v1alpha1.PhaseFailed, 0, 0, 2, 2, "AnalysisFailed", "AnalysisFailed"},
		{"a stale result of an older round is not counted",
			newCanary(releasing(0, 20), withAnalysis, rounds(2, 1, 0, d(10*time.Second)), passed(false), func(c *v1alpha1.Canary) { c.Status.FailedChecks = 1 }),
			healthy(20, result(1, false, "old")),
			v1alpha1.PhaseProgressing, 0, 2, 2, 1, "WaitingForChecks", ""},
		{"interval not over since the last round: none asked",
			newCanary(releasing(1, 20), withAnalysis, rounds(1, 1, 0, d(10*time.Second)), passed(true)), healthy(20),
			v1alpha1.PhaseProgressing, 1, 0, 1, 0, "PauseStep", ""},
		{"the judge's marginal round: not counted, the step waits",
			newCanary(releasing(0, 20), withAnalysis, rounds(1, 0, 0, nil)), healthy(20, marginal(1)),
			v1alpha1.PhaseProgressing, 0, 0, 1, 0, "WaitingForChecks", "CheckInconclusive"},
		{"a marginal round at the threshold's edge does not roll back",
			newCanary(releasing(0, 20), withAnalysis, rounds(2, 1, 0, d(time.Minute)), passed(false), func(c *v1alpha1.Canary) { c.Status.FailedChecks = 1 }),
			healthy(20, marginal(2)),
			v1alpha1.PhaseProgressing, 0, 0, 2, 1, "WaitingForChecks", "CheckInconclusive"},
		{"interval over: a background round is asked",
			newCanary(releasing(1, 20), withAnalysis, rounds(1, 1, 0, d(2*time.Minute)), passed(true)), healthy(20),
			v1alpha1.PhaseProgressing, 1, 2, 2, 0, "PauseStep", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := engine.Decide(engine.Input{Canary: tc.canary, Obs: tc.obs, Now: t0})
			st := out.Status
			if st.Phase != tc.phase || st.CurrentStep != tc.step || out.Desired.CheckRound != tc.askRound ||
				st.CheckRound != tc.statusRound || st.FailedChecks != tc.failed || st.Reason != tc.reason {
				t.Errorf("phase %s step %d ask %d round %d failed %d reason %s (%s)\nwant phase %s step %d ask %d round %d failed %d reason %s",
					st.Phase, st.CurrentStep, out.Desired.CheckRound, st.CheckRound, st.FailedChecks, st.Reason, st.Message,
					tc.phase, tc.step, tc.askRound, tc.statusRound, tc.failed, tc.reason)
			}
			if tc.event != "" {
				found := false
				for _, e := range out.Events {
					found = found || e.Reason == tc.event
				}
				if !found {
					t.Errorf("no %s event in %+v", tc.event, out.Events)
				}
			}
			if tc.event == "CheckInconclusive" && (st.Judge == nil || st.Judge.Verdict != v1alpha1.VerdictMarginal) {
				t.Errorf("the judge's round is not in the status: %+v", st.Judge)
			}
			if tc.phase == v1alpha1.PhaseFailed && !strings.Contains(st.Message, "error-rate: no values") {
				t.Errorf("rollback message does not name the metric and why: %s", st.Message)
			}
			if tc.phase == v1alpha1.PhaseFailed && out.Desired.CanaryWeight != nil && *out.Desired.CanaryWeight != 0 {
				t.Errorf("rollback asks for canary weight %d", *out.Desired.CanaryWeight)
			}
		})
	}
}
