package engine

import (
	"fmt"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// promote updates the primary to the canary's revision; traffic stays as it
// is until the primary is Ready at that revision. Until the primary is
// touched, an abort still rolls the release back, and moving all traffic
// to the canary first is bounded by the progress deadline (from the start
// of the promotion): past it the Canary is Stalled with the router's
// reason, and stays so until the router carries the route or someone
// aborts.
func (d *decider) promote(req request) {
	rev := d.st.CanaryRevision
	t := d.obs.Target
	untouched := d.obs.Primary.Revision != rev
	if req.action == v1alpha1.RequestAbort && untouched {
		d.rollback(v1alpha1.ReasonAborted, fmt.Sprintf("promotion of revision %s aborted by request before the primary was updated", rev))
		return
	}
	if req.action != "" {
		d.event(true, v1alpha1.ReasonRequestIgnored, fmt.Sprintf("%s: not possible in phase %s once the primary runs revision %s (it is verified, and rolled back if verification fails)", req.action, d.st.Phase, rev))
	}
	d.out.Desired.Services = true
	d.out.Desired.TargetReplicas = d.canaryReplicas(d.obs.ReleaseReplicas)
	d.out.Desired.PrimaryReplicas = d.primaryReplicas(d.obs.ReleaseReplicas)
	canaryOK, canaryWhy := d.ready("canary", t, rev, d.canaryThreshold())
	switch {
	case t.Exists && t.Revision == rev:
		if untouched && !d.allTrafficOnCanary(canaryOK, canaryWhy) {
			return
		}
		d.out.Desired.PrimaryFromTarget = true
	case untouched:
		// The target moved on before the primary took the promoted
		// template: release the new revision instead.
		d.startRelease(v1alpha1.ReasonRevisionChanged, fmt.Sprintf("revision %s replaced %s before promotion; releasing it", t.Revision, rev))
		return
	}
	if !canaryOK && (d.st.CanaryWeight > 0 || d.routeReachesCanary()) {
		// The canary stopped being Ready while it carried the traffic:
		// back to the primary if it can take it (else it stays).
		if ok, _ := d.ready("primary", d.obs.Primary, rev, d.primaryThreshold()); ok {
			d.routeTo(0)
		}
	}
	if !d.verify(rev) {
		return
	}
	d.st.StableRevision = rev
	d.st.LastProgressTime = &d.now
	d.setPhase(v1alpha1.PhaseFinalising, v1alpha1.ReasonFinalising, fmt.Sprintf("primary runs revision %s; moving all traffic to it", rev))
	d.event(false, v1alpha1.ReasonFinalising, d.st.Message)
	d.finishPromotion()
}

// allTrafficOnCanary moves all traffic to the canary (Ready, at full size)
// before the primary is touched, so that whatever the primary's rollout
// strategy its pods never serve while they are replaced, and reports
// whether the router carries it. A canary that is not Ready gives its
// traffic back to the primary, which waits; past the progress deadline
// the promotion is Stalled.
func (d *decider) allTrafficOnCanary(canaryOK bool, canaryWhy string) bool {
	waitingFor := ""
	raised, raiseWhy := d.canaryRaised()
	switch {
	case canaryOK && !raised:
		// The share in force stays while the canary grows.
		waitingFor = raiseWhy
		d.note(v1alpha1.ReasonPromoting, waitingFor)
	case !canaryOK:
		d.routeTo(0)
		waitingFor = "waiting for the canary to be Ready to carry all traffic while the primary is updated: " + canaryWhy
		d.note(v1alpha1.ReasonPromoting, waitingFor)
	case !d.routeTo(100):
		waitingFor = d.st.Message
		d.note(v1alpha1.ReasonPromoting, "moving all traffic to the canary before updating the primary: "+waitingFor)
	default:
		return true
	}
	d.stallPastDeadline(v1alpha1.ReasonPromotionStalled, fmt.Sprintf("no progress for %s since the promotion started, %s; the primary still runs revision %s: fix it or abort (kubectl sluice abort)",
		d.deadline(), waitingFor, d.obs.Primary.Revision))
	return false
}

// finishPromotion (phase Finalising) moves all traffic to the promoted
// primary and scales the canary down. The primary was verified when the
// promotion ended; if it stops being Ready now, the canary (the same
// revision, still at full size) carries the traffic until it recovers: the
// release can no longer be rolled back, the primary already runs the
// promoted revision. Past the progress deadline (from the start of
// Finalising) the Canary is Stalled with the primary's numbers, and
// completes by itself once the primary is Ready.
func (d *decider) finishPromotion() {
	d.out.Desired.Services = true
	d.out.Desired.TargetReplicas = d.canaryReplicas(d.obs.ReleaseReplicas)
	if ok, why := d.ready("primary", d.obs.Primary, d.st.StableRevision, d.primaryThreshold()); !ok {
		canaryOK, _ := d.ready("canary", d.obs.Target, d.st.StableRevision, d.canaryThreshold())
		where := "traffic stays where it is (the canary is not Ready either)"
		if canaryOK {
			d.routeTo(100)
			where = "all traffic on the canary, which runs the same revision"
		}
		d.note(v1alpha1.ReasonFinalising, fmt.Sprintf("waiting for the primary: %s; %s", why, where))
		d.stallPastDeadline(v1alpha1.ReasonPrimaryNotReady, fmt.Sprintf("the promoted primary has not been Ready for %s: %s; %s", d.deadline(), why, where))
		d.requeue(d.verifyInterval())
		return
	}
	if !d.routeTo(0) {
		return
	}
	d.out.Desired.TargetReplicas = ptr(int32(0))
	d.setPhase(v1alpha1.PhaseSucceeded, v1alpha1.ReasonPromoted, fmt.Sprintf("revision %s promoted", d.st.StableRevision))
	d.event(false, v1alpha1.ReasonPromoted, d.st.Message)
	d.postRollout()
}

// rollback ends the release as Failed; traffic returns to the primary (when
// it is Ready) and then the canary scales down.
func (d *decider) rollback(reason, msg string) {
	// Withdraw a step's weight asked for earlier in this decision: traffic
	// goes back to the primary below, or stays where it was.
	d.out.Desired.CanaryWeight = nil
	d.out.Desired.PrimaryFromTarget = false
	d.st.CanaryWeight = d.c.Status.CanaryWeight
	d.setPhase(v1alpha1.PhaseFailed, reason, msg)
	d.event(true, reason, msg+"; rolling back")
	d.postRollout()
	d.steady()
}
