package engine

import (
	"fmt"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// analysing says whether the release has check rounds: metrics, rollout
// or rollback webhooks.
func (d *decider) analysing() bool {
	return d.c.Spec.Analysis != nil && (len(d.c.Spec.Analysis.Metrics) > 0 ||
		d.hasHooks(v1alpha1.WebhookRollout) || d.hasHooks(v1alpha1.WebhookRollback))
}

// checkInterval is the time between check rounds.
func (d *decider) checkInterval() time.Duration { return d.c.Spec.Analysis.GetInterval() }

// checkThreshold is the failed rounds that roll the release back.
func (d *decider) checkThreshold() int32 { return d.c.Spec.Analysis.GetThreshold() }

// countChecks counts the result of the round in flight once it is there:
// a failed round adds to failedChecks (an Event names each failed metric
// and why), and reaching the threshold rolls the release back. It reports
// whether it rolled back.
func (d *decider) countChecks() bool {
	r := d.obs.Checks
	if !d.analysing() || r == nil || r.Round != d.st.CheckRound || d.st.CheckedRound >= r.Round {
		return false
	}
	d.st.CheckedRound = r.Round
	d.st.LastCheckTime = d.stamp()
	d.st.Metrics = r.Metrics
	d.st.Judge = r.Judge
	if r.Rollback != "" {
		d.rollback(v1alpha1.ReasonRollbackWebhook, r.Rollback)
		return true
	}
	var failed, inconclusive []string
	for _, m := range r.Metrics {
		switch {
		case m.Inconclusive:
			inconclusive = append(inconclusive, m.Name+": "+m.Message)
		case !m.Passed:
			failed = append(failed, m.Name+": "+m.Message)
		}
	}
	if len(failed) == 0 {
		if len(inconclusive) > 0 {
			// Neither passed nor failed: the step waits for a round that
			// decides (or for a person), and nothing is counted.
			d.event(false, v1alpha1.ReasonCheckInconclusive, fmt.Sprintf("check round %d inconclusive: %s", r.Round, strings.Join(inconclusive, "; ")))
		}
		return false
	}
	d.st.FailedChecks++
	why := strings.Join(failed, "; ")
	d.event(true, v1alpha1.ReasonCheckFailed, fmt.Sprintf("check round %d failed (%d/%d): %s", r.Round, d.st.FailedChecks, d.checkThreshold(), why))
	if d.st.FailedChecks >= d.checkThreshold() {
		d.rollback(v1alpha1.ReasonAnalysisFailed, fmt.Sprintf("%d check rounds failed (threshold %d); last: %s", d.st.FailedChecks, d.checkThreshold(), why))
		return true
	}
	return false
}

// requestChecks asks for a round when one is due: none has finished in
// this step yet, or the interval passed since the last. Rounds run only
// while the router carries canary traffic: without it there is nothing to
// measure. A blue/green preview is the exception: its rounds judge the
// preview, reached through the preview Service (by a load tester, say).
func (d *decider) requestChecks() {
	if !d.analysing() {
		return
	}
	if d.st.CheckRound > d.st.CheckedRound {
		d.out.Desired.CheckRound = d.st.CheckRound // still running (or lost: run again)
		return
	}
	interval := d.checkInterval()
	due := d.st.CheckedRound <= d.st.StepCheckRound || d.st.LastCheckTime == nil ||
		!d.exact.Before(d.st.LastCheckTime.Add(interval))
	if !due {
		d.requeue(d.st.LastCheckTime.Add(interval).Sub(d.exact))
		return
	}
	if !d.previewing() && (!d.obs.Route.Exists || d.obs.Route.CanaryWeight == 0 || d.obs.Route.CanaryWeight != d.st.CanaryWeight || !d.settleElapsed()) {
		// Nothing to judge yet: the canary gets no traffic, the router
		// does not carry the weight last set, or the proxy may not have
		// loaded it yet.
		return
	}
	d.st.CheckRound++
	d.out.Desired.CheckRound = d.st.CheckRound
}

// checksPassed says whether the current step may be left: with metric
// checks, a round that started in this step must have passed.
func (d *decider) checksPassed() bool {
	if !d.analysing() || (WeightAt(d.steps, int(d.st.CurrentStep)) == 0 && !d.previewing()) {
		return true
	}
	if d.st.CheckedRound > d.st.StepCheckRound && metricsPassed(d.st.Metrics) {
		return true
	}
	d.note(v1alpha1.ReasonWaitingForChecks, fmt.Sprintf("step %d: waiting for a passing check round (failed %d/%d)",
		d.st.CurrentStep, d.st.FailedChecks, d.checkThreshold()))
	return false
}

// metricsPassed says whether every check of a round passed (a round of
// rollback webhooks alone has none).
func metricsPassed(ms []v1alpha1.MetricStatus) bool {
	for _, m := range ms {
		if !m.Passed {
			return false
		}
	}
	return true
}
