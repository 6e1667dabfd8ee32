package checks

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/engine"
)

// queued takes the jobs queued so far; the runner is not started, so the
// test runs them when it chooses.
func queued(r *Runner) []func(context.Context) {
	var out []func(context.Context)
	for {
		select {
		case work := <-r.queue:
			out = append(out, work)
		default:
			return out
		}
	}
}

func canary(uid types.UID) *v1alpha1.Canary {
	return &v1alpha1.Canary{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", UID: uid},
		Spec: v1alpha1.CanarySpec{Analysis: &v1alpha1.Analysis{}}}
}

// A round runs once per number, answers only while it is the one asked
// for, and answers only the Canary (by UID) that asked.
func TestRoundsRunOnceAndAnswerOnlyTheirCanary(t *testing.T) {
	ctx := context.Background()
	r := &Runner{}
	r.init()
	c := canary("u1")

	r.Submit(c, 1)
	r.Submit(c, 1)
	jobs := queued(r)
	if len(jobs) != 1 {
		t.Fatalf("round 1 asked twice queued %d jobs, want 1", len(jobs))
	}
	if _, ok := r.Result(c); ok {
		t.Error("a result before the round ran")
	}
	jobs[0](ctx)
	if res, ok := r.Result(c); !ok || res.Round != 1 {
		t.Errorf("Result = %+v, %v; want round 1", res, ok)
	}
	if len(r.events) != 1 {
		t.Errorf("%d announcements, want 1", len(r.events))
	}
	r.Submit(c, 1)
	if n := len(queued(r)); n != 0 {
		t.Errorf("an answered round asked again queued %d jobs", n)
	}

	// Round 2 is replaced by round 3 before it answers: its answer is
	// dropped, round 1's stays until round 3 answers.
	r.Submit(c, 2)
	r.Submit(c, 3)
	jobs = queued(r)
	if len(jobs) != 2 {
		t.Fatalf("rounds 2 and 3 queued %d jobs, want 2", len(jobs))
	}
	jobs[0](ctx)
	if res, _ := r.Result(c); res.Round != 1 {
		t.Errorf("after the replaced round 2 answered, Result is round %d, want 1", res.Round)
	}
	jobs[1](ctx)
	if res, _ := r.Result(c); res.Round != 3 {
		t.Errorf("Result is round %d, want 3", res.Round)
	}

	// A new Canary of the same name neither sees nor is blocked by the
	// old one's rounds; a round of the old one no longer answers.
	r.Submit(c, 4)
	c2 := canary("u2")
	if _, ok := r.Result(c2); ok {
		t.Error("the new Canary got the old one's result")
	}
	r.Submit(c2, 3)
	jobs = queued(r)
	if len(jobs) != 2 {
		t.Fatalf("queued %d jobs, want 2 (old round 4, new round 3)", len(jobs))
	}
	jobs[0](ctx)
	if res, ok := r.Result(c2); ok {
		t.Errorf("the old Canary's round answered the new one: %+v", res)
	}
	jobs[1](ctx)
	if res, ok := r.Result(c2); !ok || res.Round != 3 {
		t.Errorf("Result = %+v, %v; want round 3", res, ok)
	}
	if _, ok := r.Result(c); ok {
		t.Error("the old Canary still has a result")
	}
}

// Webhook calls are kept by type, once per (type, key, time), beside the
// round; Forget drops all, and a job running then no longer answers.
func TestHookCallsAndForget(t *testing.T) {
	ctx := context.Background()
	r := &Runner{}
	r.init()
	c := canary("u1")
	since := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	gate := engine.HookCall{Type: v1alpha1.WebhookConfirmPromotion, Key: "r1/promotion", Since: since}
	pre := engine.HookCall{Type: v1alpha1.WebhookPreRollout, Key: "r1", Since: since}

	r.Submit(c, 1)
	r.SubmitHook(c, gate)
	r.SubmitHook(c, pre)
	// The same call again, its time in another location: not made twice.
	r.SubmitHook(c, engine.HookCall{Type: gate.Type, Key: gate.Key, Since: since.In(time.FixedZone("x", 3600))})
	jobs := queued(r)
	if len(jobs) != 3 {
		t.Fatalf("queued %d jobs, want 3 (a round, two calls)", len(jobs))
	}
	for _, work := range jobs {
		work(ctx)
	}
	got := r.HookResults(c)
	if len(got) != 2 || got[gate.Type].Key != gate.Key || !got[gate.Type].Passed || got[pre.Type].Key != pre.Key {
		t.Errorf("HookResults = %+v, want the gate's and the pre-rollout's answers", got)
	}
	if res, ok := r.Result(c); !ok || res.Round != 1 {
		t.Errorf("Result = %+v, %v; want round 1 beside the calls", res, ok)
	}
	r.SubmitHook(c, gate)
	if n := len(queued(r)); n != 0 {
		t.Errorf("an answered call asked again queued %d jobs", n)
	}
	if got := r.HookResults(canary("u2")); got != nil {
		t.Errorf("a new Canary of the same name got %+v", got)
	}

	r.SubmitHook(c, engine.HookCall{Type: gate.Type, Key: "r2/promotion", Since: since})
	jobs = queued(r)
	r.Forget(types.NamespacedName{Namespace: "shop", Name: "web"})
	if _, ok := r.Result(c); ok || r.HookResults(c) != nil {
		t.Error("answers kept after Forget")
	}
	for _, work := range jobs {
		work(ctx)
	}
	if got := r.HookResults(c); got != nil {
		t.Errorf("a call running at Forget answered: %+v", got)
	}
}

// In a blue/green preview a builtin metric is not judged (the router's
// traffic, which it reads, does not reach the preview); after the switch
// it is.
func TestBuiltinMetricsSkippedInThePreview(t *testing.T) {
	ctx := context.Background()
	r := &Runner{}
	r.init()
	c := canary("u1")
	c.Spec.Strategy.BlueGreen = &v1alpha1.BlueGreen{}
	c.Spec.Analysis.Metrics = []v1alpha1.MetricCheck{{Name: "request-success-rate", ThresholdRange: &v1alpha1.ThresholdRange{}}}
	c.Status.Phase, c.Status.CurrentStep = v1alpha1.PhaseProgressing, engine.BlueGreenPreviewStep
	r.Submit(c, 1)
	queued(r)[0](ctx)
	res, _ := r.Result(c)
	if m := res.Metrics[0]; !m.Passed || !m.Skipped || m.Message == "" {
		t.Errorf("preview round: %+v, want passed, skipped, with a reason", m)
	}
	c.Status.CurrentStep = engine.BlueGreenDelayStep
	r.Submit(c, 2)
	queued(r)[0](ctx)
	res, _ = r.Result(c)
	if m := res.Metrics[0]; m.Passed || m.Skipped {
		t.Errorf("round after the switch: %+v, want judged (and failed here: no metrics server)", m)
	}
}

// A call asked again for the same point with a later time, while the first
// is still on its way (a decision repeated from an older status), is not
// made twice: the answer on its way serves both.
func TestHookCallInFlightNotReplacedBySamePoint(t *testing.T) {
	ctx := context.Background()
	r := &Runner{}
	r.init()
	c := canary("u1")
	since := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	gate := engine.HookCall{Type: v1alpha1.WebhookConfirmTrafficIncrease, Key: "r1/step 2", Since: since}

	r.SubmitHook(c, gate)
	r.SubmitHook(c, engine.HookCall{Type: gate.Type, Key: gate.Key, Since: since.Add(300 * time.Millisecond)})
	r.SubmitHook(c, engine.HookCall{Type: gate.Type, Key: gate.Key, Since: since.Add(900 * time.Millisecond)})
	jobs := queued(r)
	if len(jobs) != 1 {
		t.Fatalf("the same point asked three times in flight queued %d calls, want 1", len(jobs))
	}
	jobs[0](ctx)
	if got := r.HookResults(c)[gate.Type]; got.Key != gate.Key || !got.Passed {
		t.Errorf("answer %+v, want the call's", got)
	}
	// Another point replaces a call in flight, as before.
	r.SubmitHook(c, engine.HookCall{Type: gate.Type, Key: "r1/step 4", Since: since})
	r.SubmitHook(c, engine.HookCall{Type: gate.Type, Key: "r1/step 6", Since: since})
	if n := len(queued(r)); n != 2 {
		t.Errorf("two points queued %d calls, want 2", n)
	}
}
