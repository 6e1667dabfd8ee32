package engine_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/engine"
)

// t0 in analysis rows is "now"; hooks answer relative to it.

func withHooks(types ...v1alpha1.WebhookType) canaryOpt {
	return func(c *v1alpha1.Canary) {
		if c.Spec.Analysis == nil {
			c.Spec.Analysis = &v1alpha1.Analysis{Interval: mdur(time.Minute), Threshold: i32(2)}
		}
		for i, typ := range types {
			c.Spec.Analysis.Webhooks = append(c.Spec.Analysis.Webhooks,
				v1alpha1.Webhook{Name: fmt.Sprintf("h%d", i), Type: typ, URL: "http://hooks.example/" + string(typ)})
		}
	}
}

// answer: the hooks of typ answered (passed or not) the call for key made
// at the step's start (10s ago), done d ago.
func answer(typ v1alpha1.WebhookType, key string, ok bool, doneAgo time.Duration) obsOpt {
	return func(o *engine.Observations) {
		if o.Hooks == nil {
			o.Hooks = map[v1alpha1.WebhookType]engine.HookResult{}
		}
		msg := ""
		if !ok {
			msg = "webhook h0 (http://hooks.example): answered 403 Forbidden: change freeze"
		}
		o.Hooks[typ] = engine.HookResult{Key: key, Since: ago(10 * time.Second).Time, Done: ago(doneAgo).Time, Passed: ok, Message: msg}
	}
}

func gateState(typ v1alpha1.WebhookType, point string, open bool, lastAnswerAgo time.Duration) canaryOpt {
	return func(c *v1alpha1.Canary) {
		c.Status.Gate = &v1alpha1.GateStatus{Type: typ, Point: point, Open: open, LastAnswer: ago(lastAnswerAgo)}
	}
}

func waitingFor(rev string) canaryOpt {
	return all(inPhase(v1alpha1.PhaseWaiting, "WaitingForGate"), revisions("r1", rev), stepStarted(10*time.Second))
}

func fmtCalls(cs []engine.HookCall) []string {
	var out []string
	for _, c := range cs {
		out = append(out, fmt.Sprintf("%s %s %s", c.Type, c.Key, t0.Sub(c.Since)))
	}
	return out
}

func TestDecideWebhookGates(t *testing.T) {
	healthy := func(w int32, extra ...obsOpt) engine.Observations {
		return newObs(append([]obsOpt{tgt(ready("r2")), pri(ready("r1")), route(w)}, extra...)...)
	}
	cases := []struct {
		name   string
		canary *v1alpha1.Canary
		obs    engine.Observations
		phase  v1alpha1.CanaryPhase
		reason string
		// desired is fmtDesired's rendering; calls are "type key since-ago".
		desired string
		calls   []string
		event   string
		check   func(t *testing.T, out engine.Output)
	}{
		{"new revision with a confirm-rollout hook: Waiting, canary kept at 0, the hook asked",
			newCanary(initialized(), withHooks(v1alpha1.WebhookConfirmRollout)),
			newObs(tgt(scaledDown("r2")), pri(ready("r1")), route(0)),
			v1alpha1.PhaseWaiting, "WaitingForGate", "services target=0 weight=0",
			[]string{"confirm-rollout r2/rollout 0s"}, "NewRevision", nil},
		{"confirm-rollout closed: still Waiting, asked again only after the interval",
			newCanary(waitingFor("r2"), withHooks(v1alpha1.WebhookConfirmRollout)),
			newObs(tgt(scaledDown("r2")), pri(ready("r1")), route(0), answer(v1alpha1.WebhookConfirmRollout, "r2/rollout", false, 5*time.Second)),
			v1alpha1.PhaseWaiting, "WaitingForGate", "services target=0 weight=0", nil, "GateClosed",
			func(t *testing.T, out engine.Output) {
				if out.RequeueAfter != 55*time.Second {
					t.Errorf("requeueAfter = %s, want 55s (the next ask)", out.RequeueAfter)
				}
				if g := out.Status.Gate; g == nil || g.Open || !strings.Contains(g.Message, "change freeze") {
					t.Errorf("gate = %+v, want closed with the hook's answer", g)
				}
				if !strings.Contains(out.Status.Message, "change freeze") {
					t.Errorf("message %q does not carry the hook's answer", out.Status.Message)
				}
			}},
		{"confirm-rollout closed an interval ago: asked again, the same answer is not reported twice",
			newCanary(waitingFor("r2"), withHooks(v1alpha1.WebhookConfirmRollout), gateState(v1alpha1.WebhookConfirmRollout, "rollout", false, 2*time.Minute)),
			newObs(tgt(scaledDown("r2")), pri(ready("r1")), route(0), answer(v1alpha1.WebhookConfirmRollout, "r2/rollout", false, 2*time.Minute)),
			v1alpha1.PhaseWaiting, "WaitingForGate", "services target=0 weight=0",
			[]string{"confirm-rollout r2/rollout 1m0s"}, "", nil},
		{"confirm-rollout opens: the release starts and the canary is scaled up",
			newCanary(waitingFor("r2"), withHooks(v1alpha1.WebhookConfirmRollout)),
			newObs(tgt(scaledDown("r2")), pri(ready("r1")), route(0), answer(v1alpha1.WebhookConfirmRollout, "r2/rollout", true, time.Second)),
			v1alpha1.PhaseProgressing, "WaitingForCanary", "services target=3", nil, "RolloutConfirmed", nil},
		{"an answer about another revision does not open the gate",
			newCanary(waitingFor("r3"), withHooks(v1alpha1.WebhookConfirmRollout)),
			newObs(tgt(scaledDown("r3")), pri(ready("r1")), route(0), answer(v1alpha1.WebhookConfirmRollout, "r2/rollout", true, time.Second)),
			v1alpha1.PhaseWaiting, "WaitingForGate", "services target=0 weight=0",
			[]string{"confirm-rollout r3/rollout 10s"}, "", nil},
		{"abort while Waiting: Failed, nothing released",
			newCanary(waitingFor("r2"), withHooks(v1alpha1.WebhookConfirmRollout), request("abort")),
			newObs(tgt(scaledDown("r2")), pri(ready("r1")), route(0)),
			v1alpha1.PhaseFailed, "Aborted", "services target=0 weight=0", nil, "Aborted", nil},
		{"a weight increase asks confirm-traffic-increase first; the weight is not raised",
			newCanary(releasing(0, 0), withHooks(v1alpha1.WebhookConfirmTrafficIncrease)), healthy(0),
			v1alpha1.PhaseProgressing, "WaitingForGate", "services target=3 weight=0",
			[]string{"confirm-traffic-increase r2/step 0 10s"}, "", nil},
		{"confirm-traffic-increase answered 2xx: the weight is set",
			newCanary(releasing(0, 0), withHooks(v1alpha1.WebhookConfirmTrafficIncrease)),
			healthy(0, answer(v1alpha1.WebhookConfirmTrafficIncrease, "r2/step 0", true, time.Second)),
			v1alpha1.PhaseProgressing, "SettingWeight", "services target=3 weight=20", nil, "GateOpened", nil},
		{"an open gate stays open without asking again",
			newCanary(releasing(0, 20), withHooks(v1alpha1.WebhookConfirmTrafficIncrease), gateState(v1alpha1.WebhookConfirmTrafficIncrease, "step 0", true, time.Second)),
			healthy(20),
			v1alpha1.PhaseProgressing, "PauseStep", "services target=3 weight=20", nil, "WeightSet", nil},
		{"confirm-promotion closed after the last step: WaitingPromotion at the last weight",
			newCanary(releasing(5, 80), withHooks(v1alpha1.WebhookConfirmPromotion)), healthy(80),
			v1alpha1.PhaseWaitingPromotion, "WaitingForGate", "services target=3 weight=80",
			[]string{"confirm-promotion r2/promotion 10s"}, "", nil},
		{"confirm-promotion open: Promoting",
			newCanary(releasing(5, 80), withHooks(v1alpha1.WebhookConfirmPromotion)),
			healthy(80, answer(v1alpha1.WebhookConfirmPromotion, "r2/promotion", true, time.Second)),
			v1alpha1.PhasePromoting, "Promoting", "services primary=3 target=3 weight=100", nil, "Promoting", nil},
		{"pre-rollout is asked before the canary gets traffic",
			newCanary(releasing(0, 0), withHooks(v1alpha1.WebhookPreRollout)), healthy(0),
			v1alpha1.PhaseProgressing, "WaitingForGate", "services target=3",
			[]string{"pre-rollout r2/pre-rollout 10s"}, "", nil},
		{"pre-rollout failing counts a failed check",
			newCanary(releasing(0, 0), withHooks(v1alpha1.WebhookPreRollout)),
			healthy(0, answer(v1alpha1.WebhookPreRollout, "r2/pre-rollout", false, time.Second)),
			v1alpha1.PhaseProgressing, "WaitingForGate", "services target=3", nil, "CheckFailed",
			func(t *testing.T, out engine.Output) {
				if out.Status.FailedChecks != 1 {
					t.Errorf("failedChecks = %d, want 1", out.Status.FailedChecks)
				}
			}},
		{"pre-rollout failing at the threshold rolls back",
			newCanary(releasing(0, 0), withHooks(v1alpha1.WebhookPreRollout), gateState(v1alpha1.WebhookPreRollout, "pre-rollout", false, 2*time.Minute),
				func(c *v1alpha1.Canary) { c.Status.FailedChecks = 1 }),
			healthy(0, answer(v1alpha1.WebhookPreRollout, "r2/pre-rollout", false, time.Second)),
			v1alpha1.PhaseFailed, "PreRolloutFailed", "services target=0 weight=0", nil, "PreRolloutFailed", nil},
		{"pre-rollout passed: the release goes on to its first weight",
			newCanary(releasing(0, 0), withHooks(v1alpha1.WebhookPreRollout)),
			healthy(0, answer(v1alpha1.WebhookPreRollout, "r2/pre-rollout", true, time.Second)),
			v1alpha1.PhaseProgressing, "SettingWeight", "services target=3 weight=20", nil, "GateOpened",
			func(t *testing.T, out engine.Output) {
				if !out.Status.PreRolloutPassed {
					t.Error("preRolloutPassed not recorded")
				}
			}},
		{"a rollback hook's 2xx in a round rolls back",
			newCanary(releasing(0, 20), withHooks(v1alpha1.WebhookRollback), rounds(1, 0, 0, nil)),
			healthy(20, func(o *engine.Observations) {
				o.Checks = &engine.CheckResult{Round: 1, Rollback: "rollback webhook h0 answered 200"}
			}),
			v1alpha1.PhaseFailed, "RollbackWebhook", "services target=3 weight=0", nil, "RollbackWebhook", nil},
		{"rollout hooks alone make check rounds",
			newCanary(releasing(0, 20), withHooks(v1alpha1.WebhookRollout)), healthy(20),
			v1alpha1.PhaseProgressing, "WaitingForChecks", "services target=3 weight=20", nil, "",
			func(t *testing.T, out engine.Output) {
				if out.Desired.CheckRound != 1 {
					t.Errorf("check round %d asked, want 1", out.Desired.CheckRound)
				}
			}},
		{"promotion finished: post-rollout is called",
			newCanary(inPhase(v1alpha1.PhaseFinalising, "Finalising"), revisions("r2", "r2"), stepStarted(10*time.Second), withHooks(v1alpha1.WebhookPostRollout)),
			newObs(tgt(ready("r2")), pri(ready("r2")), route(0)),
			v1alpha1.PhaseSucceeded, "Promoted", "services target=0 weight=0",
			[]string{"post-rollout r2/Succeeded 10s"}, "Promoted", nil},
		{"rollback: post-rollout is called",
			newCanary(releasing(0, 20), withHooks(v1alpha1.WebhookPostRollout), request("abort")), healthy(20),
			v1alpha1.PhaseFailed, "Aborted", "services weight=0",
			[]string{"post-rollout r2/Failed 10s"}, "Aborted", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := engine.Decide(engine.Input{Canary: tc.canary, Obs: tc.obs, Now: t0})
			if out.Status.Phase != tc.phase || out.Status.Reason != tc.reason {
				t.Errorf("phase/reason = %s/%s (%s), want %s/%s", out.Status.Phase, out.Status.Reason, out.Status.Message, tc.phase, tc.reason)
			}
			if got := fmtDesired(out.Desired); got != tc.desired {
				t.Errorf("desired = %q, want %q", got, tc.desired)
			}
			if got := fmtCalls(out.Desired.Hooks); !slices.Equal(got, tc.calls) {
				t.Errorf("hook calls = %q, want %q", got, tc.calls)
			}
			evs := fmtEvents(out.Events)
			if tc.event != "" && !slices.ContainsFunc(evs, func(e string) bool { return strings.Contains(e, tc.event) }) {
				t.Errorf("events %q lack %s", evs, tc.event)
			}
			if tc.event == "" && slices.ContainsFunc(evs, func(e string) bool { return strings.Contains(e, "Gate") }) {
				t.Errorf("unexpected gate events %q", evs)
			}
			if tc.check != nil {
				tc.check(t, out)
			}
		})
	}
}

// A decision repeated from an older status (its write lost: the apiserver
// restarting) starts the step again at a later time. The gate must not be
// asked again at every retry: an answer for the same point that came
// within the last check interval counts (found by make chaos, seed 1207
// round 4: one Canary's gate asked 133 times in 27 s while status writes
// failed).
func TestGateNotAskedAgainByARepeatedDecision(t *testing.T) {
	// Step 1, a one-minute pause, is over: the next decision enters step 2
	// (weight 50) behind its confirm-traffic-increase gate.
	c := newCanary(releasing(1, 20), stepStarted(2*time.Minute), withHooks(v1alpha1.WebhookConfirmTrafficIncrease))
	obs := func(opts ...obsOpt) engine.Observations {
		return newObs(append([]obsOpt{tgt(ready("r2")), pri(ready("r1")), route(20)}, opts...)...)
	}
	first := engine.Decide(engine.Input{Canary: c, Obs: obs(), Now: t0})
	if got := fmtCalls(first.Desired.Hooks); len(got) != 1 || !strings.HasPrefix(got[0], "confirm-traffic-increase r2/step 2") {
		t.Fatalf("first decision asked %v, want the step 2 gate", got)
	}
	call := first.Desired.Hooks[0]
	answered := func(passed bool, done time.Duration) obsOpt {
		return func(o *engine.Observations) {
			o.Hooks = map[v1alpha1.WebhookType]engine.HookResult{call.Type: {Key: call.Key, Since: call.Since, Done: t0.Add(done), Passed: passed, Message: "frozen"}}
		}
	}
	later := t0.Add(1500 * time.Millisecond)

	// The first decision's status was lost; the answer came. Deciding
	// again from the same older status opens the gate with it.
	again := engine.Decide(engine.Input{Canary: c, Obs: obs(answered(true, 200*time.Millisecond)), Now: later})
	if len(again.Desired.Hooks) != 0 {
		t.Errorf("asked again: %v", fmtCalls(again.Desired.Hooks))
	}
	if g := again.Status.Gate; g == nil || !g.Open || g.Point != "step 2" {
		t.Errorf("gate %+v, want step 2 open", g)
	}
	if w := again.Desired.CanaryWeight; w == nil || *w != 50 {
		t.Errorf("desired weight %v, want 50", w)
	}

	// A closed answer counts the same way: asked again a check interval
	// after it, not at every retry.
	closed := engine.Decide(engine.Input{Canary: c, Obs: obs(answered(false, 200*time.Millisecond)), Now: later})
	if len(closed.Desired.Hooks) != 0 || closed.Status.Gate == nil || closed.Status.Gate.Open {
		t.Errorf("closed answer: asked %v, gate %+v; want no call and the gate closed", fmtCalls(closed.Desired.Hooks), closed.Status.Gate)
	}

	// An answer for the point from before the step started and older than
	// the interval is another attempt's: asked again.
	stale := engine.Decide(engine.Input{Canary: c, Obs: obs(answered(true, -2*time.Minute)), Now: later})
	if len(stale.Desired.Hooks) != 1 {
		t.Errorf("stale answer: asked %v, want the gate asked again", fmtCalls(stale.Desired.Hooks))
	}
}
