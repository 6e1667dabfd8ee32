package engine_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/engine"
)

// fmtSteps renders steps as "w10 p1m0s w20 p(until promoted)".
func fmtSteps(steps []v1alpha1.Step) string {
	var parts []string
	for _, s := range steps {
		switch {
		case s.SetWeight != nil && s.Pause != nil:
			parts = append(parts, "both?")
		case s.SetWeight != nil:
			parts = append(parts, fmt.Sprintf("w%d", *s.SetWeight))
		case s.Pause != nil && s.Pause.Duration == nil:
			parts = append(parts, "hold")
		case s.Pause != nil:
			parts = append(parts, "p"+s.Pause.Duration.Duration.String())
		default:
			parts = append(parts, "empty?")
		}
	}
	return strings.Join(parts, " ")
}

func TestStepsExplicitReturnedAsIs(t *testing.T) {
	steps := []v1alpha1.Step{sw(5), hold(), sw(30), pause(90 * time.Second), sw(100)}
	got := engine.Steps(v1alpha1.Strategy{Steps: steps})
	if fmtSteps(got) != "w5 hold w30 p1m30s w100" {
		t.Fatalf("Steps = %s", fmtSteps(got))
	}
	if &got[0] != &steps[0] || len(got) != len(steps) {
		t.Errorf("explicit steps were copied or changed, want them returned as they are")
	}
	// Explicit steps win over a shorthand given alongside (the CRD rejects
	// that combination; the engine must still not mix them).
	got = engine.Steps(v1alpha1.Strategy{Steps: steps, StepWeight: i32(10), Interval: mdur(time.Minute)})
	if fmtSteps(got) != "w5 hold w30 p1m30s w100" {
		t.Errorf("Steps with both = %s, want the explicit steps", fmtSteps(got))
	}
}

func TestStepsShorthand(t *testing.T) {
	cases := []struct {
		name string
		s    v1alpha1.Strategy
		want string
	}{
		{
			name: "stepWeight 10 maxWeight 50 interval 1m",
			s:    v1alpha1.Strategy{StepWeight: i32(10), MaxWeight: i32(50), Interval: mdur(time.Minute)},
			want: "w10 p1m0s w20 p1m0s w30 p1m0s w40 p1m0s w50 p1m0s",
		},
		{
			name: "stepWeight 20, default maxWeight 50",
			s:    v1alpha1.Strategy{StepWeight: i32(20), Interval: mdur(30 * time.Second)},
			want: "w20 p30s w40 p30s",
		},
		{
			name: "stepWeight 10, default maxWeight 50 includes 50",
			s:    v1alpha1.Strategy{StepWeight: i32(10), Interval: mdur(time.Second)},
			want: "w10 p1s w20 p1s w30 p1s w40 p1s w50 p1s",
		},
		{
			name: "stepWeight 25 up to 100",
			s:    v1alpha1.Strategy{StepWeight: i32(25), MaxWeight: i32(100), Interval: mdur(time.Minute)},
			want: "w25 p1m0s w50 p1m0s w75 p1m0s w100 p1m0s",
		},
		{
			name: "stepWeight 30 maxWeight 50: 60 is cut",
			s:    v1alpha1.Strategy{StepWeight: i32(30), MaxWeight: i32(50), Interval: mdur(time.Minute)},
			want: "w30 p1m0s",
		},
		{
			name: "stepWeight above maxWeight: no steps",
			s:    v1alpha1.Strategy{StepWeight: i32(60), Interval: mdur(time.Minute)},
			want: "",
		},
		{
			name: "stepWeight 0: no steps",
			s:    v1alpha1.Strategy{StepWeight: i32(0), Interval: mdur(time.Minute)},
			want: "",
		},
		{
			name: "stepWeight without interval: weights only",
			s:    v1alpha1.Strategy{StepWeight: i32(25)},
			want: "w25 w50",
		},
		{
			name: "stepWeight with interval 0: weights only",
			s:    v1alpha1.Strategy{StepWeight: i32(25), Interval: mdur(0)},
			want: "w25 w50",
		},
		{
			name: "stepWeights",
			s:    v1alpha1.Strategy{StepWeights: []int32{1, 5, 10, 25, 50, 80}, Interval: mdur(2 * time.Minute)},
			want: "w1 p2m0s w5 p2m0s w10 p2m0s w25 p2m0s w50 p2m0s w80 p2m0s",
		},
		{
			name: "stepWeights cut by maxWeight",
			s:    v1alpha1.Strategy{StepWeights: []int32{5, 10, 25, 50, 80}, MaxWeight: i32(50), Interval: mdur(time.Minute)},
			want: "w5 p1m0s w10 p1m0s w25 p1m0s w50 p1m0s",
		},
		{
			name: "stepWeights cut by maxWeight between two weights",
			s:    v1alpha1.Strategy{StepWeights: []int32{5, 10, 25, 50, 80}, MaxWeight: i32(30), Interval: mdur(time.Minute)},
			want: "w5 p1m0s w10 p1m0s w25 p1m0s",
		},
		{
			name: "stepWeights are not capped at 50 by default",
			s:    v1alpha1.Strategy{StepWeights: []int32{60, 100}, Interval: mdur(time.Minute)},
			want: "w60 p1m0s w100 p1m0s",
		},
		{
			name: "stepWeights all above maxWeight",
			s:    v1alpha1.Strategy{StepWeights: []int32{60, 100}, MaxWeight: i32(50), Interval: mdur(time.Minute)},
			want: "",
		},
		{
			name: "stepWeights win over stepWeight",
			s:    v1alpha1.Strategy{StepWeights: []int32{15}, StepWeight: i32(10), Interval: mdur(time.Minute)},
			want: "w15 p1m0s",
		},
		{
			name: "empty strategy",
			s:    v1alpha1.Strategy{},
			want: "",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := fmtSteps(engine.Steps(tc.s)); got != tc.want {
				t.Errorf("Steps = %q\n          want %q", got, tc.want)
			}
		})
	}
}

// The expanded pauses must not share spec.strategy.interval: a caller
// changing a step must not change the Canary's spec.
func TestStepsShorthandDoesNotAliasSpec(t *testing.T) {
	s := v1alpha1.Strategy{StepWeight: i32(50), MaxWeight: i32(100), Interval: mdur(time.Minute)}
	steps := engine.Steps(s)
	if len(steps) != 4 {
		t.Fatalf("Steps = %s", fmtSteps(steps))
	}
	steps[1].Pause.Duration.Duration = time.Hour
	if s.Interval.Duration != time.Minute {
		t.Errorf("changing an expanded pause changed spec.interval to %v", s.Interval.Duration)
	}
	*steps[0].SetWeight = 99
	if *s.StepWeight != 50 {
		t.Errorf("changing an expanded weight changed spec.stepWeight to %d", *s.StepWeight)
	}
}

func TestWeightAt(t *testing.T) {
	steps := []v1alpha1.Step{sw(10), pause(time.Minute), sw(30), hold(), pause(time.Second), sw(0)}
	for i, want := range []int32{10, 10, 30, 30, 30, 0} {
		if got := engine.WeightAt(steps, i); got != want {
			t.Errorf("WeightAt(%d) = %d, want %d", i, got, want)
		}
	}
	if got := engine.WeightAt(steps, len(steps)); got != 0 {
		t.Errorf("WeightAt(len) = %d, want the last step's 0", got)
	}
	if got := engine.WeightAt(steps[:5], 99); got != 30 {
		t.Errorf("WeightAt past the end = %d, want the last weight 30", got)
	}
	if got := engine.WeightAt(steps, -1); got != 0 {
		t.Errorf("WeightAt(-1) = %d, want 0", got)
	}
	leadingPause := []v1alpha1.Step{pause(time.Minute), sw(20)}
	if got := engine.WeightAt(leadingPause, 0); got != 0 {
		t.Errorf("WeightAt before any setWeight = %d, want 0", got)
	}
	if got := engine.WeightAt(leadingPause, 1); got != 20 {
		t.Errorf("WeightAt(1) = %d, want 20", got)
	}
	for _, i := range []int{-1, 0, 3} {
		if got := engine.WeightAt(nil, i); got != 0 {
			t.Errorf("WeightAt(nil, %d) = %d, want 0", i, got)
		}
	}
}

func TestPauseDuration(t *testing.T) {
	cases := []struct {
		name    string
		step    v1alpha1.Step
		d       time.Duration
		isPause bool
	}{
		{"setWeight", sw(10), 0, false},
		{"timed", pause(90 * time.Second), 90 * time.Second, true},
		{"until promoted", hold(), 0, true},
		{"zero duration", pause(0), 0, true},
	}
	for _, tc := range cases {
		d, ok := engine.PauseDuration(tc.step)
		if d != tc.d || ok != tc.isPause {
			t.Errorf("%s: PauseDuration = (%v, %v), want (%v, %v)", tc.name, d, ok, tc.d, tc.isPause)
		}
	}
}

// A shorthand strategy drives a release exactly like the steps it expands
// to: setWeight 10, pause 1m, setWeight 20, ...
func TestShorthandDrivesRelease(t *testing.T) {
	c := newCanary(releasing(0, 0))
	c.Spec.Strategy = v1alpha1.Strategy{StepWeight: i32(10), MaxWeight: i32(20), Interval: mdur(time.Minute)}
	obs := newObs(tgt(ready("r2")), pri(ready("r1")), route(10))
	out := engine.Decide(engine.Input{Canary: c, Obs: obs, Now: t0})
	if out.Status.Steps != 4 || out.Status.CurrentStep != 1 || out.RequeueAfter != time.Minute {
		t.Fatalf("steps=%d step=%d requeue=%v (%s), want 4, 1, 1m", out.Status.Steps, out.Status.CurrentStep, out.RequeueAfter, out.Status.Message)
	}
	c.Status = out.Status
	out = engine.Decide(engine.Input{Canary: c, Obs: obs, Now: t0.Add(time.Minute)})
	if out.Status.CurrentStep != 2 || fmtDesired(out.Desired) != "services target=3 weight=20" {
		t.Fatalf("after the interval: step=%d desired=%s, want 2 and weight 20", out.Status.CurrentStep, fmtDesired(out.Desired))
	}
}

// An A/B step: the header route is asked with the weight held, the step is
// left once the router carries both, and the route stays in force for the
// following steps but never while the canary is not Ready, nor once the
// release is promoting.
func TestDecideHeaderRouteStep(t *testing.T) {
	v := "insider"
	hr := &v1alpha1.HeaderRoute{Match: []v1alpha1.HeaderMatch{{Name: "X-Canary", Exact: &v}}}
	steps := withSteps(v1alpha1.Step{SetHeaderRoute: hr}, sw(20), hold())
	key := engine.HeaderRouteKey(hr)
	withHR := func(w int32, k string) obsOpt {
		return func(o *engine.Observations) { o.Route = engine.Route{Exists: true, CanaryWeight: w, HeaderRoute: k} }
	}
	decide := func(c *v1alpha1.Canary, o engine.Observations) engine.Output {
		return engine.Decide(engine.Input{Canary: c, Obs: o, Now: t0})
	}
	// Asked, not yet carried: the step waits.
	out := decide(newCanary(releasing(0, 0), steps), newObs(tgt(ready("r2")), pri(ready("r1")), withHR(0, "")))
	if out.Status.CurrentStep != 0 || engine.HeaderRouteKey(out.Desired.HeaderRoute) != key || fmtDesired(out.Desired) != "services target=3 weight=0" {
		t.Errorf("asking: step %d, header route %q, desired %s", out.Status.CurrentStep, engine.HeaderRouteKey(out.Desired.HeaderRoute), fmtDesired(out.Desired))
	}
	// Carried: on to the weight step, the header route kept.
	out = decide(newCanary(releasing(0, 0), steps), newObs(tgt(ready("r2")), pri(ready("r1")), withHR(0, key)))
	if out.Status.CurrentStep != 1 || engine.HeaderRouteKey(out.Desired.HeaderRoute) != key || *out.Desired.CanaryWeight != 20 {
		t.Errorf("carried: step %d, header route %q, desired %s", out.Status.CurrentStep, engine.HeaderRouteKey(out.Desired.HeaderRoute), fmtDesired(out.Desired))
	}
	// The canary stops being Ready: no header route.
	out = decide(newCanary(releasing(1, 20), steps), newObs(tgt(notReady("r2")), pri(ready("r1")), withHR(20, key)))
	if out.Desired.HeaderRoute != nil {
		t.Errorf("header route kept on a canary that is not Ready: %s", fmtDesired(out.Desired))
	}
	// Promoting: all traffic moves to the canary, the header route goes.
	out = decide(newCanary(releasing(2, 20), steps, request("promote-full")), newObs(tgt(ready("r2")), pri(ready("r1")), withHR(20, key)))
	if out.Status.Phase != v1alpha1.PhasePromoting || out.Desired.HeaderRoute != nil || *out.Desired.CanaryWeight != 100 {
		t.Errorf("promoting: %s, header route %v, desired %s", out.Status.Phase, out.Desired.HeaderRoute, fmtDesired(out.Desired))
	}
}

// A mirror step copies a share of requests to the Ready canary from its
// step on, changed by a later mirror step, withheld from a canary that is
// not Ready, and gone at promotion.
func TestDecideMirrorStep(t *testing.T) {
	steps := withSteps(v1alpha1.Step{SetMirror: &v1alpha1.MirrorStep{Percent: 40}}, sw(20), v1alpha1.Step{SetMirror: &v1alpha1.MirrorStep{Percent: 0}}, hold())
	carrying := func(w, m int32) obsOpt {
		return func(o *engine.Observations) { o.Route = engine.Route{Exists: true, CanaryWeight: w, MirrorPercent: m} }
	}
	decide := func(c *v1alpha1.Canary, o engine.Observations) engine.Output {
		return engine.Decide(engine.Input{Canary: c, Obs: o, Now: t0})
	}
	// Asked, not yet carried: the step waits, and says why.
	out := decide(newCanary(releasing(0, 0), steps), newObs(tgt(ready("r2")), pri(ready("r1")), carrying(0, 0)))
	if out.Status.CurrentStep != 0 || out.Desired.MirrorPercent != 40 || *out.Desired.CanaryWeight != 0 ||
		!strings.Contains(out.Status.Message, "a 40% mirror") {
		t.Errorf("asking: step %d, desired %s, message %q", out.Status.CurrentStep, fmtDesired(out.Desired), out.Status.Message)
	}
	// Carried: on to the weight step, the mirror kept.
	out = decide(newCanary(releasing(0, 0), steps), newObs(tgt(ready("r2")), pri(ready("r1")), carrying(0, 40)))
	if out.Status.CurrentStep != 1 || out.Desired.MirrorPercent != 40 || *out.Desired.CanaryWeight != 20 {
		t.Errorf("carried: step %d, desired %s", out.Status.CurrentStep, fmtDesired(out.Desired))
	}
	// A later mirror step of 0 ends the mirror.
	out = decide(newCanary(releasing(2, 20), steps), newObs(tgt(ready("r2")), pri(ready("r1")), carrying(20, 40)))
	if out.Status.CurrentStep != 2 || out.Desired.MirrorPercent != 0 {
		t.Errorf("mirror 0: step %d, desired %s", out.Status.CurrentStep, fmtDesired(out.Desired))
	}
	// The canary stops being Ready: nothing is copied to it.
	out = decide(newCanary(releasing(1, 20), steps), newObs(tgt(notReady("r2")), pri(ready("r1")), carrying(20, 40)))
	if out.Desired.MirrorPercent != 0 {
		t.Errorf("mirror kept on a canary that is not Ready: %s", fmtDesired(out.Desired))
	}
	// Promoting: all traffic moves to the canary, the mirror goes.
	out = decide(newCanary(releasing(1, 20), steps, request("promote-full")), newObs(tgt(ready("r2")), pri(ready("r1")), carrying(20, 40)))
	if out.Status.Phase != v1alpha1.PhasePromoting || out.Desired.MirrorPercent != 0 || *out.Desired.CanaryWeight != 100 {
		t.Errorf("promoting: %s, desired %s", out.Status.Phase, fmtDesired(out.Desired))
	}
}

// A router whose proxy reports nothing back (Settle > 0) has a step count
// as applied only once the route has been read back for the settle time;
// the canary is scaled down only after the 0% route settled too.
func TestDecideRouteSettle(t *testing.T) {
	steps := withSteps(sw(20), hold())
	settling := func(w int32) obsOpt {
		return func(o *engine.Observations) {
			o.Route = engine.Route{Exists: true, CanaryWeight: w, Settle: 3 * time.Second}
		}
	}
	c := newCanary(releasing(0, 0), steps)
	out := engine.Decide(engine.Input{Canary: c, Obs: newObs(tgt(ready("r2")), pri(ready("r1")), settling(20)), Now: t0})
	if out.Status.CurrentStep != 0 || out.RequeueAfter != 3*time.Second || out.Status.RouteSettling == nil ||
		!strings.Contains(out.Status.Message, "giving the proxy 3s to load it") {
		t.Fatalf("just read back: step %d, requeue %s, settling %+v, message %q", out.Status.CurrentStep, out.RequeueAfter, out.Status.RouteSettling, out.Status.Message)
	}
	c.Status = out.Status
	out = engine.Decide(engine.Input{Canary: c, Obs: newObs(tgt(ready("r2")), pri(ready("r1")), settling(20)), Now: t0.Add(2 * time.Second)})
	if out.Status.CurrentStep != 0 || out.RequeueAfter != time.Second {
		t.Fatalf("2s in: step %d, requeue %s", out.Status.CurrentStep, out.RequeueAfter)
	}
	c.Status = out.Status
	out = engine.Decide(engine.Input{Canary: c, Obs: newObs(tgt(ready("r2")), pri(ready("r1")), settling(20)), Now: t0.Add(3 * time.Second)})
	if out.Status.CurrentStep != 1 {
		t.Fatalf("3s in: step %d (%s)", out.Status.CurrentStep, out.Status.Message)
	}
}

// A mirror or header route at weight 0 is withdrawn when the canary stops
// being Ready: nothing keeps reaching it.
func TestDecideWithdrawsMirrorAndHeaderRouteAtWeightZero(t *testing.T) {
	v := "yes"
	hr := &v1alpha1.HeaderRoute{Match: []v1alpha1.HeaderMatch{{Name: "X-Canary", Exact: &v}}}
	steps := withSteps(v1alpha1.Step{SetHeaderRoute: hr}, v1alpha1.Step{SetMirror: &v1alpha1.MirrorStep{Percent: 50}}, hold())
	carrying := func(o *engine.Observations) {
		o.Route = engine.Route{Exists: true, CanaryWeight: 0, HeaderRoute: engine.HeaderRouteKey(hr), MirrorPercent: 50}
	}
	out := engine.Decide(engine.Input{Canary: newCanary(releasing(2, 0), steps), Obs: newObs(tgt(notReady("r2")), pri(ready("r1")), carrying), Now: t0})
	if out.Desired.CanaryWeight == nil || *out.Desired.CanaryWeight != 0 || out.Desired.HeaderRoute != nil || out.Desired.MirrorPercent != 0 {
		t.Errorf("canary not Ready at weight 0: desired %s, header route %v; want the route rewritten without either", fmtDesired(out.Desired), out.Desired.HeaderRoute)
	}
}

// A configuration problem of the router's own (a missing canary
// middleware) holds the release, but an abort still takes every request
// away from the canary; a problem with the backends writes nothing.
func TestDecideBlockedStillWithdraws(t *testing.T) {
	v := "yes"
	hr := &v1alpha1.HeaderRoute{Match: []v1alpha1.HeaderMatch{{Name: "X-Canary", Exact: &v}}}
	steps := withSteps(v1alpha1.Step{SetHeaderRoute: hr}, sw(20), hold())
	for _, withdrawable := range []bool{true, false} {
		obs := newObs(tgt(ready("r2")), pri(ready("r1")), func(o *engine.Observations) {
			o.Route = engine.Route{Exists: true, CanaryWeight: 20, HeaderRoute: engine.HeaderRouteKey(hr)}
			o.Blocked, o.BlockedReason, o.BlockedWithdrawable = "Middleware x not found", "MiddlewareNotFound", withdrawable
		})
		out := engine.Decide(engine.Input{Canary: newCanary(releasing(2, 20), steps, request("abort")), Obs: obs, Now: t0})
		wrote := out.Desired.CanaryWeight != nil
		if withdrawable && (!wrote || *out.Desired.CanaryWeight != 0 || out.Desired.HeaderRoute != nil) {
			t.Errorf("withdrawable block, abort: desired %s", fmtDesired(out.Desired))
		}
		if !withdrawable && wrote {
			t.Errorf("backend block, abort: a route was written: %s", fmtDesired(out.Desired))
		}
	}
}
