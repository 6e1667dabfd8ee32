package engine

import (
	"fmt"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

func (d *decider) startRelease(reason, msg string) {
	d.st.CanaryRevision = d.obs.Target.Revision
	d.resetRelease()
	d.setPhase(v1alpha1.PhaseProgressing, reason, msg)
	d.event(false, reason, msg)
	d.progress(request{})
}

// progress walks the steps of a release.
func (d *decider) progress(req request) {
	if p := d.obs.Primary; p.Exists && d.st.StableRevision != "" &&
		p.Revision == d.st.CanaryRevision && p.Revision != d.st.StableRevision {
		// The primary already runs the release's revision: a promotion was
		// applied but its status was not written (the controller died in
		// between). Only the promotion can go on from here.
		d.st.CurrentStep = int32(len(d.steps))
		d.st.LastProgressTime = &d.now
		d.setPhase(v1alpha1.PhasePromoting, "Promoting", fmt.Sprintf("primary already runs revision %s; promoting it", d.st.CanaryRevision))
		d.event(false, "Promoting", d.st.Message)
		d.rejectRequest(req)
		d.promote(request{})
		return
	}
	t := d.obs.Target
	if !t.Exists {
		d.rollback("TargetNotFound", d.targetMissing())
		return
	}
	if t.Revision != d.st.CanaryRevision {
		msg := fmt.Sprintf("revision %s replaced %s mid-release; restarting the release", t.Revision, d.st.CanaryRevision)
		if d.hasHooks(v1alpha1.WebhookConfirmRollout) {
			// The new revision needs its own approval; meanwhile traffic
			// returns to the primary.
			d.begin("RevisionChanged", msg)
			return
		}
		d.event(false, "RevisionChanged", msg)
		d.st.CanaryRevision = t.Revision
		d.resetRelease()
	}
	switch req.action {
	case v1alpha1.RequestAbort:
		d.rollback("Aborted", fmt.Sprintf("release of revision %s aborted by request", d.st.CanaryRevision))
		return
	case v1alpha1.RequestRetry:
		d.rejectRequest(req)
	case v1alpha1.RequestPromoteFull:
		d.event(false, "PromoteRequested", fmt.Sprintf("promote-full: skipping steps %d..%d", d.st.CurrentStep, len(d.steps)-1))
		d.st.CurrentStep = int32(len(d.steps))
	case v1alpha1.RequestPromote:
		if int(d.st.CurrentStep) < len(d.steps) {
			d.event(false, "PromoteRequested", fmt.Sprintf("promote: leaving step %d", d.st.CurrentStep))
			d.advance()
		}
	}

	d.out.Desired.Services = true
	d.out.Desired.TargetReplicas = ptr(d.obs.ReleaseReplicas)
	d.out.Desired.PrimaryReplicas = nil

	if d.obs.Blocked != "" {
		d.startWaiting(d.obs.BlockedReason)
		d.note(d.obs.BlockedReason, d.obs.Blocked+"; traffic stays where it is")
		d.stall(d.obs.BlockedReason, d.obs.Blocked)
		d.requeue(BlockedRecheckInterval) // what it names may not be watched
		if !d.c.Spec.Paused {
			d.checkDeadline("the configuration to be fixed: " + d.obs.Blocked)
		}
		return
	}
	if d.c.Spec.Paused {
		if d.st.Phase != v1alpha1.PhasePaused {
			d.setPhase(v1alpha1.PhasePaused, "Paused", fmt.Sprintf("release paused at step %d by spec.paused", d.st.CurrentStep))
			d.event(false, "Paused", d.st.Message)
		}
		d.holdWeight()
		return
	}
	if d.st.Phase == v1alpha1.PhasePaused {
		// Time spent paused counts neither toward the deadline nor toward a
		// pause step: both restart on resume.
		d.st.StepStartedAt = d.stamp()
		d.st.LastProgressTime = &d.now
		d.setPhase(v1alpha1.PhaseProgressing, "Resumed", fmt.Sprintf("release resumed at step %d", d.st.CurrentStep))
		d.event(false, "Resumed", d.st.Message)
	}

	if ok, why := d.ready("canary", t, d.st.CanaryRevision, d.canaryThreshold()); !ok {
		d.startWaiting("WaitingForCanary")
		d.setPhase(v1alpha1.PhaseProgressing, "WaitingForCanary", why)
		if d.st.CanaryWeight > 0 || d.routeReachesCanary() {
			// The canary stopped being Ready: its share (and any header
			// route or mirror) goes back to the primary until it recovers.
			d.routeTo(0)
			d.note("WaitingForCanary", why)
		}
		d.checkDeadline(why)
		return
	}

	if !d.preRollout() {
		return
	}
	if d.countChecks() {
		return
	}
	d.requestChecks()

	for int(d.st.CurrentStep) < len(d.steps) {
		step := d.steps[d.st.CurrentStep]
		if step.SetWeight != nil {
			w := *step.SetWeight
			if w > WeightAt(d.steps, int(d.st.CurrentStep)-1) {
				if open, _ := d.gate(v1alpha1.WebhookConfirmTrafficIncrease, fmt.Sprintf("step %d", d.st.CurrentStep)); !open {
					d.holdWeight()
					return
				}
			}
			d.setPhase(v1alpha1.PhaseProgressing, "SettingWeight", fmt.Sprintf("step %d: setting canary weight %d%%", d.st.CurrentStep, w))
			if !d.routeTo(w) {
				d.routeInFlight = d.out.Desired.CanaryWeight != nil && d.st.Reason == "SettingWeight"
				d.checkDeadline(d.st.Message)
				return
			}
			if !d.checksPassed() {
				return
			}
			d.event(false, "WeightSet", fmt.Sprintf("step %d: canary weight %d%%", d.st.CurrentStep, w))
			d.advance()
			continue
		}
		if hr := step.SetHeaderRoute; hr != nil {
			// An A/B step: requests matching the headers go to the canary,
			// on top of the weight held, until the release ends.
			d.setPhase(v1alpha1.PhaseProgressing, "SettingHeaderRoute",
				fmt.Sprintf("step %d: sending requests with %s to the canary", d.st.CurrentStep, HeaderRouteKey(hr)))
			if !d.routeTo(WeightAt(d.steps, int(d.st.CurrentStep)-1)) {
				d.checkDeadline(d.st.Message)
				return
			}
			d.event(false, "HeaderRouteSet", fmt.Sprintf("step %d: requests with %s go to the canary", d.st.CurrentStep, HeaderRouteKey(hr)))
			d.advance()
			continue
		}
		if m := step.SetMirror; m != nil {
			// A mirror step: a share of requests is copied to the canary,
			// whose answers are discarded, until the release ends.
			d.setPhase(v1alpha1.PhaseProgressing, "SettingMirror",
				fmt.Sprintf("step %d: copying %d%% of requests to the canary", d.st.CurrentStep, m.Percent))
			if !d.routeTo(WeightAt(d.steps, int(d.st.CurrentStep)-1)) {
				d.checkDeadline(d.st.Message)
				return
			}
			d.event(false, "MirrorSet", fmt.Sprintf("step %d: %d%% of requests copied to the canary", d.st.CurrentStep, m.Percent))
			d.advance()
			continue
		}
		dur, isPause := PauseDuration(step)
		if !isPause {
			// A step without an action (the CRD refuses them) is skipped.
			d.advance()
			continue
		}
		d.holdWeight()
		if step.Pause.Duration == nil {
			if d.st.Phase != v1alpha1.PhaseWaitingPromotion {
				d.setPhase(v1alpha1.PhaseWaitingPromotion, "WaitingForPromotion",
					fmt.Sprintf("step %d: paused at %d%% until promoted (kubectl sluice promote)", d.st.CurrentStep, d.st.CanaryWeight))
				d.event(false, "WaitingForPromotion", d.st.Message)
			}
			return
		}
		if d.st.StepStartedAt == nil {
			d.st.StepStartedAt = d.stamp()
		}
		end := d.st.StepStartedAt.Add(dur)
		if d.exact.Before(end) {
			d.setPhase(v1alpha1.PhaseProgressing, "PauseStep",
				fmt.Sprintf("step %d: holding %d%% for %s", d.st.CurrentStep, d.st.CanaryWeight, dur))
			d.requeue(end.Sub(d.exact))
			return
		}
		if !d.checksPassed() {
			return
		}
		d.advance()
	}
	if open, _ := d.gate(v1alpha1.WebhookConfirmPromotion, "promotion"); !open {
		d.holdWeight()
		d.setPhase(v1alpha1.PhaseWaitingPromotion, d.st.Reason, d.st.Message)
		return
	}
	d.st.LastProgressTime = &d.now
	d.setPhase(v1alpha1.PhasePromoting, "Promoting", fmt.Sprintf("all steps done; promoting revision %s to the primary", d.st.CanaryRevision))
	d.event(false, "Promoting", d.st.Message)
	d.promote(request{})
}

// advance moves to the next step.
func (d *decider) advance() {
	d.st.StepCheckRound = d.st.CheckRound
	d.st.CurrentStep++
	d.st.StepStartedAt = d.stamp()
	d.st.LastProgressTime = &d.now
}

// holdWeight keeps the weight in force while the canary is Ready: that of
// the steps before the current one (a current setWeight is not applied).
func (d *decider) holdWeight() {
	w := WeightAt(d.steps, int(d.st.CurrentStep)-1)
	if ok, _ := d.ready("canary", d.obs.Target, d.st.CanaryRevision, d.canaryThreshold()); !ok {
		w = 0
	}
	d.routeTo(w)
}
