package engine

import (
	"fmt"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// HandoverInput is what a deleted Canary knows when it hands its traffic
// back: the Canary (its hand-back policy, progress deadline, deletion time
// and last good revision), its target and primary as observed, and now.
type HandoverInput struct {
	Canary *v1alpha1.Canary
	// Target is the user's Deployment; its Revision is computed the way a
	// release computes it.
	Target Workload
	// Primary is the primary copy.
	Primary Workload
	Now     time.Time
}

// HandoverAction is what to do with the traffic of a deleted Canary.
type HandoverAction string

// The hand-over actions.
const (
	// HandoverWait: the target is scaled (ScaleTarget) or becoming
	// available; look again after RequeueAfter.
	HandoverWait HandoverAction = "Wait"
	// HandoverToTarget: the apex Service selects the target's pods and the
	// route sends everything to it.
	HandoverToTarget HandoverAction = "ToTarget"
	// HandoverKeepPrimary: the primary outlives the Canary, unmanaged, and
	// the apex Service selects its pods.
	HandoverKeepPrimary HandoverAction = "KeepPrimary"
)

// Handover is the decision for a deleted Canary.
type Handover struct {
	Action HandoverAction
	// ScaleTarget, when set, is the replica count the target must be
	// scaled to first.
	ScaleTarget *int32
	// Replicas is what the target serves with once handed back.
	Replicas     int32
	RequeueAfter time.Duration
	// Event, when Reason is set, says what was decided and why.
	Event Event
}

// HandoverPoll is how often a deletion looks at a target becoming
// available.
const HandoverPoll = time.Second

// DecideHandover chooses which copy serves once a Canary is deleted. The
// user's Deployment gets the traffic back when it runs the last good
// revision (status.stableRevision) and its pods become available within
// the progress deadline from the deletion. A target at another revision
// (a failed, aborted or unfinished release) is handed the traffic only
// with spec.handBackOnDeletion: Target; otherwise the primary, which runs
// the last good revision, keeps serving. Without a primary there is
// nothing else to keep, so the target gets the traffic whatever happens.
func DecideHandover(in HandoverInput) Handover {
	c, t, p := in.Canary, in.Target, in.Primary
	want := int32(1)
	if p.Exists && p.Replicas > 0 {
		want = p.Replicas
	}
	target := fmt.Sprintf("deployment %s/%s", c.Namespace, c.Spec.TargetRef.Name)
	primary := fmt.Sprintf("%s/%s", c.Namespace, c.Spec.TargetRef.Name+"-primary")
	stable := c.Status.StableRevision
	if p.Exists && stable != "" && t.Revision != stable && c.Spec.HandBackOnDeletion != v1alpha1.HandBackTarget {
		return Handover{Action: HandoverKeepPrimary, Replicas: p.Replicas, Event: Event{Warning: true, Reason: v1alpha1.ReasonPrimaryKept,
			Message: fmt.Sprintf("%s runs revision %s, not the last good revision %s (the last release %s); %s keeps serving %s and is no longer managed by Sluice (spec.handBackOnDeletion: Target hands the traffic to your Deployment instead)",
				target, t.Revision, stable, outcome(c), primary, stable)}}
	}
	if t.Replicas < want {
		return Handover{Action: HandoverWait, ScaleTarget: ptr(want), Replicas: want, RequeueAfter: HandoverPoll}
	}
	available := t.Current && t.UpdatedReplicas >= t.Replicas && t.StatusReplicas <= t.UpdatedReplicas && t.AvailableReplicas >= t.Replicas
	deadline := c.Spec.GetProgressDeadline()
	var deleted time.Time
	if c.DeletionTimestamp != nil {
		deleted = c.DeletionTimestamp.Time
	}
	if available {
		return Handover{Action: HandoverToTarget, Replicas: t.Replicas, Event: Event{Reason: v1alpha1.ReasonHandedBack,
			Message: fmt.Sprintf("traffic handed back to %s (%d replicas, revision %s)", target, t.Replicas, t.Revision)}}
	}
	if left := deleted.Add(deadline).Sub(in.Now); left > 0 {
		return Handover{Action: HandoverWait, Replicas: t.Replicas, RequeueAfter: min(left, HandoverPoll)}
	}
	if !p.Exists {
		return Handover{Action: HandoverToTarget, Replicas: t.Replicas, Event: Event{Warning: true, Reason: v1alpha1.ReasonHandoverUnready,
			Message: fmt.Sprintf("%s not available %s after deletion and there is no primary to keep; traffic handed back to it anyway", target, deadline)}}
	}
	return Handover{Action: HandoverKeepPrimary, Replicas: p.Replicas, Event: Event{Warning: true, Reason: v1alpha1.ReasonPrimaryKept,
		Message: fmt.Sprintf("%s not available %s after deletion; %s keeps serving and is no longer managed by Sluice", target, deadline, primary)}}
}

// outcome says in words how the Canary's last release stands.
func outcome(c *v1alpha1.Canary) string {
	switch c.Status.Phase {
	case v1alpha1.PhaseFailed:
		return "failed: " + c.Status.Reason
	case v1alpha1.PhaseSucceeded, v1alpha1.PhaseInitialized:
		return "did not release it"
	case "":
		return "never started"
	}
	return "was still running (" + string(c.Status.Phase) + ")"
}
