package engine

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// HasHooks says whether the Canary has webhooks of type t.
func HasHooks(c *v1alpha1.Canary, t v1alpha1.WebhookType) bool {
	if c.Spec.Analysis == nil {
		return false
	}
	for _, h := range c.Spec.Analysis.Webhooks {
		if h.GetType() == t {
			return true
		}
	}
	return false
}

func (d *decider) hasHooks(t v1alpha1.WebhookType) bool { return HasHooks(d.c, t) }

// ask requests a call of the hooks of type t.
func (d *decider) ask(t v1alpha1.WebhookType, key string, since time.Time) {
	d.out.Desired.Hooks = append(d.out.Desired.Hooks, HookCall{Type: t, Key: key, Since: since})
}

// gate reports whether the hooks of type t let the release pass point
// ("rollout", "step N", "promotion", "pre-rollout"): every hook answered
// 2xx to a call made since the current step (or wait) started. A closed
// gate is asked again every analysis interval. The gate's state is kept in
// status.gate, so an open gate stays open across restarts. failed is true
// when a new non-2xx answer came in (pre-rollout counts those).
func (d *decider) gate(t v1alpha1.WebhookType, point string) (open, failed bool) {
	if !d.hasHooks(t) {
		if g := d.st.Gate; g != nil && g.Type == t && !g.Open {
			d.st.Gate = nil // its hooks were removed: nothing waits on it
		}
		return true, false
	}
	g := d.st.Gate
	same := g != nil && g.Type == t && g.Point == point
	if same && g.Open {
		return true, false
	}
	if d.st.StepStartedAt == nil {
		d.st.StepStartedAt = d.stamp()
	}
	since := d.st.StepStartedAt.Time
	key := d.st.CanaryRevision + "/" + point
	r, ok := d.obs.Hooks[t]
	// An answer counts when it was asked for since the step started, or
	// came within the last check interval: a decision repeated from an
	// older status (its write lost while the apiserver was away) starts
	// the step again at a later time, and must not ask the webhooks again
	// at every retry.
	if !ok || r.Key != key || (r.Since.Before(since) && d.exact.Sub(r.Done) >= d.checkInterval()) {
		d.ask(t, key, since)
		if !same {
			d.st.Gate = &v1alpha1.GateStatus{Type: t, Point: point}
		}
		d.note(v1alpha1.ReasonWaitingForGate, fmt.Sprintf("%s: asking the %s webhooks", point, t))
		return false, false
	}
	answered := metav1.NewTime(r.Done).Rfc3339Copy()
	if r.Passed {
		d.st.Gate = &v1alpha1.GateStatus{Type: t, Point: point, Open: true, LastAnswer: &answered}
		// Time spent at a gate never counts toward the progress deadline.
		d.st.LastProgressTime = &d.now
		d.event(false, v1alpha1.ReasonGateOpened, fmt.Sprintf("%s: the %s webhooks answered 2xx", point, t))
		return true, false
	}
	failed = !same || g.LastAnswer == nil || g.LastAnswer.Before(&answered)
	d.st.Gate = &v1alpha1.GateStatus{Type: t, Point: point, Message: r.Message, LastAnswer: &answered}
	next := r.Done.Add(d.checkInterval())
	if d.now.Time.Before(next) {
		d.requeue(next.Sub(d.now.Time))
	} else {
		d.ask(t, key, next)
	}
	if failed {
		d.event(false, v1alpha1.ReasonGateClosed, fmt.Sprintf("%s: %s", point, r.Message))
	}
	d.note(v1alpha1.ReasonWaitingForGate, fmt.Sprintf("%s: %s gate closed, asking again every %s: %s", point, t, d.checkInterval(), r.Message))
	return false, failed
}

// preRollout runs the pre-rollout hooks once per release, before the
// canary gets traffic. A non-2xx answer is a failed check. It reports
// whether the release may go on; rolledBack when the failures reached the
// threshold.
func (d *decider) preRollout() (ok bool) {
	if d.st.PreRolloutPassed || !d.hasHooks(v1alpha1.WebhookPreRollout) {
		return true
	}
	open, failed := d.gate(v1alpha1.WebhookPreRollout, "pre-rollout")
	if open {
		d.st.PreRolloutPassed = true
		return true
	}
	if failed {
		d.st.FailedChecks++
		msg := d.st.Gate.Message
		d.event(true, v1alpha1.ReasonCheckFailed, fmt.Sprintf("pre-rollout webhooks failed (%d/%d): %s", d.st.FailedChecks, d.checkThreshold(), msg))
		if d.st.FailedChecks >= d.checkThreshold() {
			d.rollback(v1alpha1.ReasonPreRolloutFailed, fmt.Sprintf("pre-rollout webhooks failed %d times (threshold %d); last: %s", d.st.FailedChecks, d.checkThreshold(), msg))
		}
	}
	return false
}

// postRollout calls the post-rollout hooks once a release ended.
func (d *decider) postRollout() {
	if !d.hasHooks(v1alpha1.WebhookPostRollout) {
		return
	}
	since := d.now.Time
	if d.in.Canary.Status.StepStartedAt != nil {
		since = d.in.Canary.Status.StepStartedAt.Time
	}
	d.ask(v1alpha1.WebhookPostRollout, d.st.CanaryRevision+"/"+string(d.st.Phase), since)
}

// resetRelease clears what belongs to one release.
func (d *decider) resetRelease() {
	d.st.CurrentStep = 0
	d.st.FailedChecks = 0
	d.st.Metrics = nil
	d.st.Judge = nil
	d.st.StepCheckRound = d.st.CheckRound
	d.st.StepStartedAt = d.stamp()
	d.st.LastProgressTime = &d.now
	d.st.Gate = nil
	d.st.PreRolloutPassed = false
	d.st.Verification = nil
}

// begin starts the release of the target's revision, after its
// confirm-rollout gate when there is one: until the gate opens the Canary
// is Waiting, all traffic stays on the primary and the canary scaled down.
func (d *decider) begin(reason, msg string) {
	rev := d.obs.Target.Revision
	if !d.hasHooks(v1alpha1.WebhookConfirmRollout) {
		d.startRelease(reason, msg)
		return
	}
	if d.st.Phase != v1alpha1.PhaseWaiting || d.st.CanaryRevision != rev {
		d.st.CanaryRevision = rev
		d.resetRelease()
		d.setPhase(v1alpha1.PhaseWaiting, reason, msg+"; waiting for the confirm-rollout webhooks")
		d.event(false, reason, d.st.Message)
	}
	if open, _ := d.gate(v1alpha1.WebhookConfirmRollout, "rollout"); open {
		d.startRelease(v1alpha1.ReasonRolloutConfirmed, fmt.Sprintf("the confirm-rollout webhooks approved revision %s; releasing it", rev))
		return
	}
	d.steady()
}
