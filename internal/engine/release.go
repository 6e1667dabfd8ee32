package engine

import (
	"fmt"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// startRelease starts walking the steps for the target's revision.
func (d *decider) startRelease(reason, msg string) {
	d.st.CanaryRevision = d.obs.Target.Revision
	d.resetRelease()
	d.setPhase(v1alpha1.PhaseProgressing, reason, msg)
	d.event(false, reason, msg)
	d.progress(request{})
}

// progress decides for a release that walks its steps (Progressing,
// Paused, WaitingPromotion). First the guards, which may end or restart
// the release; then, with both copies running, the holds, which keep it
// where it is; then the steps from the current one, each by the handler of
// its kind; once every step is done, the promotion. A guard or a hold
// returns true when it has decided: the walk stops there.
func (d *decider) progress(req request) {
	for _, guard := range []func(request) bool{
		d.promotedUnrecorded,
		d.targetGone,
		d.revisionReplaced,
		d.requested,
	} {
		if guard(req) {
			return
		}
	}
	d.out.Desired.Services = true
	d.out.Desired.TargetReplicas = d.canaryReplicas(d.releaseTargetReplicas())
	d.out.Desired.PrimaryReplicas = nil
	for _, hold := range []func() bool{
		d.blockedHold,
		d.pausedHold,
		d.canaryNotReadyHold,
		d.preRolloutHold,
		d.checkRoundHold,
	} {
		if hold() {
			return
		}
	}
	if d.walkSteps() {
		d.startPromotion()
	}
}

// promotedUnrecorded: the primary already runs the release's revision, so
// a promotion was applied but its status was not written (the controller
// died in between). Only the promotion can go on from here.
func (d *decider) promotedUnrecorded(req request) bool {
	p := d.obs.Primary
	if !p.Exists || d.st.StableRevision == "" || p.Revision != d.st.CanaryRevision || p.Revision == d.st.StableRevision {
		return false
	}
	d.st.CurrentStep = int32(len(d.steps))
	d.st.LastProgressTime = &d.now
	d.setPhase(v1alpha1.PhasePromoting, v1alpha1.ReasonPromoting, fmt.Sprintf("primary already runs revision %s; promoting it", d.st.CanaryRevision))
	d.event(false, v1alpha1.ReasonPromoting, d.st.Message)
	d.rejectRequest(req)
	d.promote(request{})
	return true
}

// targetGone rolls the release back when its target was deleted.
func (d *decider) targetGone(request) bool {
	if d.obs.Target.Exists {
		return false
	}
	d.rollback(v1alpha1.ReasonTargetNotFound, d.targetMissing())
	return true
}

// revisionReplaced restarts the release when the target moved to another
// revision mid-release. A revision that needs its own approval (a
// confirm-rollout hook) waits for it with traffic back on the primary.
func (d *decider) revisionReplaced(request) bool {
	t := d.obs.Target
	if t.Revision == d.st.CanaryRevision {
		return false
	}
	msg := fmt.Sprintf("revision %s replaced %s mid-release; restarting the release", t.Revision, d.st.CanaryRevision)
	if d.hasHooks(v1alpha1.WebhookConfirmRollout) {
		d.begin(v1alpha1.ReasonRevisionChanged, msg)
		return true
	}
	d.event(false, v1alpha1.ReasonRevisionChanged, msg)
	d.st.CanaryRevision = t.Revision
	d.resetRelease()
	return false
}

// requested carries out a request: abort rolls back (and decides);
// promote leaves the current step, promote-full skips the rest.
func (d *decider) requested(req request) bool {
	switch req.action {
	case v1alpha1.RequestAbort:
		d.rollback(v1alpha1.ReasonAborted, fmt.Sprintf("release of revision %s aborted by request", d.st.CanaryRevision))
		return true
	case v1alpha1.RequestRetry:
		d.rejectRequest(req)
	case v1alpha1.RequestPromoteFull:
		d.event(false, v1alpha1.ReasonPromoteRequested, fmt.Sprintf("promote-full: skipping steps %d..%d", d.st.CurrentStep, len(d.steps)-1))
		d.st.CurrentStep = int32(len(d.steps))
	case v1alpha1.RequestPromote:
		if int(d.st.CurrentStep) < len(d.steps) {
			d.event(false, v1alpha1.ReasonPromoteRequested, fmt.Sprintf("promote: leaving step %d", d.st.CurrentStep))
			d.advance()
		}
	}
	return false
}

// blockedHold: a configuration the router or a backend check refuses
// keeps traffic where it is; the progress deadline runs unless paused.
func (d *decider) blockedHold() bool {
	if d.obs.Blocked == "" {
		return false
	}
	d.startWaiting(d.obs.BlockedReason)
	d.note(d.obs.BlockedReason, d.obs.Blocked+"; traffic stays where it is")
	d.stall(d.obs.BlockedReason, d.obs.Blocked)
	d.requeue(BlockedRecheckInterval) // what it names may not be watched
	if !d.c.Spec.Paused {
		d.checkDeadline("waiting for the configuration to be fixed: " + d.obs.Blocked)
	}
	return true
}

// pausedHold keeps the weight in force while spec.paused is set. On
// resume, time spent paused counts neither toward the deadline nor toward
// a pause step: both restart.
func (d *decider) pausedHold() bool {
	if d.c.Spec.Paused {
		if d.st.Phase != v1alpha1.PhasePaused {
			d.setPhase(v1alpha1.PhasePaused, v1alpha1.ReasonPaused, fmt.Sprintf("release paused at step %d by spec.paused", d.st.CurrentStep))
			d.event(false, v1alpha1.ReasonPaused, d.st.Message)
		}
		d.holdWeight()
		return true
	}
	if d.st.Phase == v1alpha1.PhasePaused {
		d.st.StepStartedAt = d.stamp()
		d.st.LastProgressTime = &d.now
		d.setPhase(v1alpha1.PhaseProgressing, v1alpha1.ReasonResumed, fmt.Sprintf("release resumed at step %d", d.st.CurrentStep))
		d.event(false, v1alpha1.ReasonResumed, d.st.Message)
	}
	return false
}

// canaryNotReadyHold waits, within the progress deadline, for a canary
// that is not Ready; its share (and any header route or mirror) goes back
// to the primary until it recovers.
func (d *decider) canaryNotReadyHold() bool {
	ok, why := d.ready("canary", d.obs.Target, d.st.CanaryRevision, d.canaryThreshold())
	if ok {
		return false
	}
	if unobserved(d.obs.Target, d.st.CanaryRevision) {
		// Its Deployment controller has not seen a change of its spec
		// yet (an autoscaler's count, say): the copy is not known to be
		// unready, so its share stays; the status follows in moments.
		d.note(v1alpha1.ReasonWaitingForCanary, why)
		d.requeue(UnobservedRecheckInterval)
		return true
	}
	d.startWaiting(v1alpha1.ReasonWaitingForCanary)
	d.setPhase(v1alpha1.PhaseProgressing, v1alpha1.ReasonWaitingForCanary, why)
	if d.st.CanaryWeight > 0 || d.routeReachesCanary() {
		d.routeTo(0)
		d.note(v1alpha1.ReasonWaitingForCanary, why)
	}
	d.checkDeadline(why)
	return true
}

// preRolloutHold waits for the pre-rollout hooks (see preRollout).
func (d *decider) preRolloutHold() bool { return !d.preRollout() }

// checkRoundHold counts the round that finished (rolling back at the
// threshold) and asks for the next one when it is due.
func (d *decider) checkRoundHold() bool {
	if d.countChecks() {
		return true
	}
	d.requestChecks()
	return false
}

// walkSteps runs the steps from the current one and reports whether all
// are done.
func (d *decider) walkSteps() bool {
	for int(d.st.CurrentStep) < len(d.steps) {
		if !d.runStep(d.steps[d.st.CurrentStep]) {
			return false
		}
		d.advance()
	}
	return true
}

// runStep applies the current step by the handler of its kind and reports
// whether it is done.
func (d *decider) runStep(s v1alpha1.Step) bool {
	switch {
	case s.SetWeight != nil:
		return d.setWeightStep(*s.SetWeight)
	case s.SetHeaderRoute != nil:
		// An A/B step: requests matching the headers go to the canary, on
		// top of the weight held, until the release ends.
		hr := HeaderRouteKey(s.SetHeaderRoute)
		return d.routingStep(v1alpha1.ReasonSettingHeaderRoute, "sending requests with "+hr+" to the canary",
			v1alpha1.ReasonHeaderRouteSet, "requests with "+hr+" go to the canary")
	case s.SetMirror != nil:
		// A share of requests is copied to the canary, whose answers are
		// discarded, until the release ends.
		p := s.SetMirror.Percent
		return d.routingStep(v1alpha1.ReasonSettingMirror, fmt.Sprintf("copying %d%% of requests to the canary", p),
			v1alpha1.ReasonMirrorSet, fmt.Sprintf("%d%% of requests copied to the canary", p))
	case s.Pause != nil:
		return d.pauseStep(s.Pause)
	}
	return true // a step without an action (the CRD refuses them)
}

// setWeightStep moves the canary weight to w (after the
// confirm-traffic-increase gate when it grows); the step is done once the
// router carries it and, with checks, a round in this step passed.
func (d *decider) setWeightStep(w int32) bool {
	i := d.st.CurrentStep
	if w > WeightAt(d.steps, int(i)-1) {
		if open, _ := d.gate(v1alpha1.WebhookConfirmTrafficIncrease, fmt.Sprintf("step %d", i)); !open {
			d.holdWeight()
			return false
		}
	}
	if !d.fullSizeForSwitch() {
		d.holdWeight()
		return false
	}
	d.setPhase(v1alpha1.PhaseProgressing, v1alpha1.ReasonSettingWeight, fmt.Sprintf("step %d: setting canary weight %d%%", i, w))
	if !d.routeTo(w) {
		d.routeInFlight = d.out.Desired.CanaryWeight != nil && d.st.Reason == v1alpha1.ReasonSettingWeight
		d.checkDeadline(d.st.Message)
		return false
	}
	if !d.checksPassed() {
		return false
	}
	d.event(false, v1alpha1.ReasonWeightSet, fmt.Sprintf("step %d: canary weight %d%%", i, w))
	return true
}

// routingStep applies a step that changes the route but not the weight (a
// header route, a mirror): done once the router carries it.
func (d *decider) routingStep(reason, doing, doneReason, done string) bool {
	i := d.st.CurrentStep
	d.setPhase(v1alpha1.PhaseProgressing, reason, fmt.Sprintf("step %d: %s", i, doing))
	if !d.routeTo(WeightAt(d.steps, int(i)-1)) {
		d.checkDeadline(d.st.Message)
		return false
	}
	d.event(false, doneReason, fmt.Sprintf("step %d: %s", i, done))
	return true
}

// pauseStep holds the weight in force: for its duration (and, with
// checks, until a round in this step passed), or without one until
// promoted.
func (d *decider) pauseStep(p *v1alpha1.PauseStep) bool {
	d.holdWeight()
	holding, untilPromoted := d.pauseWords(p)
	if p.Duration == nil {
		if d.st.Phase != v1alpha1.PhaseWaitingPromotion {
			d.setPhase(v1alpha1.PhaseWaitingPromotion, v1alpha1.ReasonWaitingForPromotion, untilPromoted)
			d.event(false, v1alpha1.ReasonWaitingForPromotion, d.st.Message)
		}
		return false
	}
	if d.st.StepStartedAt == nil {
		d.st.StepStartedAt = d.stamp()
	}
	if end := d.st.StepStartedAt.Add(p.Duration.Duration); d.exact.Before(end) {
		d.setPhase(v1alpha1.PhaseProgressing, v1alpha1.ReasonPauseStep, holding)
		d.requeue(end.Sub(d.exact))
		return false
	}
	return d.checksPassed()
}

// startPromotion promotes once every step is done, after the
// confirm-promotion gate.
func (d *decider) startPromotion() {
	if open, _ := d.gate(v1alpha1.WebhookConfirmPromotion, "promotion"); !open {
		d.holdWeight()
		d.setPhase(v1alpha1.PhaseWaitingPromotion, d.st.Reason, d.st.Message)
		return
	}
	d.st.LastProgressTime = &d.now
	d.setPhase(v1alpha1.PhasePromoting, v1alpha1.ReasonPromoting, fmt.Sprintf("all steps done; promoting revision %s to the primary", d.st.CanaryRevision))
	d.event(false, v1alpha1.ReasonPromoting, d.st.Message)
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
// the steps before the current one (a current setWeight is not applied),
// or the one the route carries already if it is ahead (routeAhead).
func (d *decider) holdWeight() {
	if !walking(d.st.Phase) {
		return // rolled back earlier in this decision: its route stands
	}
	w := WeightAt(d.steps, int(d.st.CurrentStep)-1)
	if ok, _ := d.ready("canary", d.obs.Target, d.st.CanaryRevision, d.canaryThreshold()); !ok {
		w = 0
	} else if ahead, ok := d.routeAhead(w); ok {
		w = ahead
	}
	d.routeTo(w)
}

// routeAhead reports the weight the route carries when it is above w but
// not above the next weight step's: a decision applied that step and its
// controller died before the status saying so was written (the status of
// a route in flight is held in memory). Going back to w would move the
// traffic backwards, which a release never does but to roll back; the
// release goes on from the weight carried, which its next step reaches
// anyway (make chaos, seed 1207 round 9: a killed leader's successor moved
// two canaries from 30% back to 10%).
func (d *decider) routeAhead(w int32) (int32, bool) {
	r := d.obs.Route
	if !r.Exists || r.CanaryWeight <= w {
		return 0, false
	}
	for i := int(d.st.CurrentStep); i < len(d.steps); i++ {
		if next := d.steps[i].SetWeight; next != nil {
			return r.CanaryWeight, r.CanaryWeight <= *next
		}
	}
	return 0, false
}
