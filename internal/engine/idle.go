package engine

import (
	"fmt"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// initialize creates the primary from the target, moves all traffic to it,
// then scales the target to zero.
func (d *decider) initialize() {
	t := d.obs.Target
	if !t.Exists {
		d.setPhase(v1alpha1.PhaseInitializing, v1alpha1.ReasonTargetNotFound, d.targetMissing())
		d.stall(v1alpha1.ReasonTargetNotFound, d.targetMissing())
		return
	}
	d.setPhase(v1alpha1.PhaseInitializing, v1alpha1.ReasonInitializing, "creating the primary copy of the target")
	d.st.CanaryRevision = t.Revision
	d.out.Desired.PrimaryFromTarget = true
	d.out.Desired.PrimaryReplicas = d.primaryReplicas(d.obs.ReleaseReplicas)
	if ok, why := d.ready("primary", d.obs.Primary, t.Revision, d.primaryThreshold()); !ok {
		d.note(v1alpha1.ReasonWaitingForPrimary, why)
		return
	}
	d.out.Desired.Services = true
	if !d.routeTo(0) {
		return
	}
	d.out.Desired.TargetReplicas = ptr(int32(0))
	d.st.StableRevision = t.Revision
	d.setPhase(v1alpha1.PhaseInitialized, v1alpha1.ReasonInitialized, fmt.Sprintf("primary runs revision %s and serves all traffic", t.Revision))
	d.event(false, v1alpha1.ReasonInitialized, d.st.Message)
}

// idle keeps all traffic on the primary and the canary scaled down, and
// starts a release when the target's revision changes (or on retry).
func (d *decider) idle(req request) {
	t := d.obs.Target
	if !t.Exists {
		d.stall(v1alpha1.ReasonTargetNotFound, d.targetMissing())
		d.rejectRequest(req)
		return
	}
	waiting := d.st.Phase == v1alpha1.PhaseWaiting
	if t.Revision != d.st.CanaryRevision && d.failSafe() {
		// Traffic is on the canary because the primary is being restored
		// after a failed promotion: a new release could only move it onto
		// pods nobody has checked. It starts once the primary is back.
		d.rejectRequest(req)
		d.steady()
		d.note(v1alpha1.ReasonWaitingForPrimaryRestore, fmt.Sprintf("revision %s waits until the primary is restored to %s", t.Revision, d.st.StableRevision))
		return
	}
	switch {
	case t.Revision != d.st.CanaryRevision && t.Revision == d.st.StableRevision && d.obs.Primary.Revision == t.Revision:
		// The target went back to the revision the primary runs (an undo
		// after a failed release): nothing to release.
		d.rejectRequest(req)
		d.st.CanaryRevision = t.Revision
		msg := fmt.Sprintf("target is back at the stable revision %s; nothing to release", t.Revision)
		if d.st.Phase == v1alpha1.PhaseWaiting || d.st.Phase == v1alpha1.PhaseFailed {
			// Healthy again: the primary runs what the target asks for.
			d.setPhase(v1alpha1.PhaseSucceeded, v1alpha1.ReasonRevertedToStable, msg)
		} else {
			d.note(v1alpha1.ReasonRevertedToStable, msg)
		}
		d.event(false, v1alpha1.ReasonRevertedToStable, msg)
	case t.Revision != d.st.CanaryRevision:
		d.rejectRequest(req)
		d.begin(v1alpha1.ReasonNewRevision, fmt.Sprintf("new revision %s detected; releasing it", t.Revision))
		return
	case waiting && req.action == v1alpha1.RequestAbort:
		d.rollback(v1alpha1.ReasonAborted, fmt.Sprintf("release of revision %s aborted by request before it started", t.Revision))
		return
	case waiting:
		d.rejectRequest(req)
		d.begin(v1alpha1.ReasonNewRevision, fmt.Sprintf("releasing revision %s", t.Revision))
		return
	case req.action == v1alpha1.RequestRetry && d.st.Phase == v1alpha1.PhaseFailed:
		d.begin(v1alpha1.ReasonRetry, fmt.Sprintf("retrying revision %s", t.Revision))
		return
	case req.action != "":
		d.rejectRequest(req)
	}
	d.steady()
}

// steady brings an idle Canary to its steady state: route 100% primary once
// the primary is Ready, then the target scaled to zero.
func (d *decider) steady() {
	d.out.Desired.Services = d.obs.Primary.Exists
	d.restore()
	if ok, why := d.ready("primary", d.obs.Primary, d.st.StableRevision, d.primaryThreshold()); !ok {
		// Never send traffic to a primary that cannot serve it, and never
		// scale down the copy that may be carrying it. After a failed
		// release whose canary is Ready (a promotion that failed
		// verification), the canary carries it all until the primary is
		// back.
		canaryOK, _ := d.ready("canary", d.obs.Target, d.st.CanaryRevision, d.canaryThreshold())
		if canaryOK && d.failSafe() {
			d.out.Desired.TargetReplicas = d.canaryReplicas(d.obs.ReleaseReplicas)
			d.routeTo(100)
			d.stall(v1alpha1.ReasonPrimaryNotReady, "all traffic on the canary until the primary is Ready again: "+why)
			return
		}
		d.stall(v1alpha1.ReasonPrimaryNotReady, "holding traffic where it is: "+why)
		return
	}
	if !d.routeTo(0) {
		return
	}
	d.out.Desired.TargetReplicas = ptr(int32(0))
	if t := d.obs.Target; t.Replicas > 0 && t.Revision == d.st.StableRevision && d.obs.Autoscaler == nil {
		// The target was scaled by hand or by GitOps without a new
		// template: the user asks for this many replicas of the stable
		// revision, which the primary runs.
		d.out.Desired.PrimaryReplicas = ptr(t.Replicas)
	}
}

// failSafe says whether a promotion of the release's revision failed
// verification and the primary is not Ready at the stable revision yet.
func (d *decider) failSafe() bool {
	v := d.st.Verification
	if d.st.Phase != v1alpha1.PhaseFailed || d.st.CanaryRevision == d.st.StableRevision ||
		v == nil || v.State != v1alpha1.VerificationFailed || v.Revision != d.st.CanaryRevision {
		return false
	}
	ok, _ := d.ready("primary", d.obs.Primary, d.st.StableRevision, d.primaryThreshold())
	return !ok
}
