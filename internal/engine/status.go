package engine

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// setPhase changes the phase (stamping the transition time when it changes)
// and the reason and message.
func (d *decider) setPhase(p v1alpha1.CanaryPhase, reason, msg string) {
	if d.st.Phase != p {
		d.st.Phase = p
		d.st.LastTransitionTime = &d.now
	}
	d.note(reason, msg)
}

func (d *decider) note(reason, msg string) {
	d.st.Reason, d.st.Message = reason, msg
}

// waiting records what a running release waits for. A settled Canary
// (Initialized, Succeeded, Failed) keeps the message of its outcome.
func (d *decider) waiting(reason, msg string) {
	switch d.st.Phase {
	case v1alpha1.PhaseInitialized, v1alpha1.PhaseSucceeded, v1alpha1.PhaseFailed:
		return
	}
	d.note(reason, msg)
}

// stall marks the Canary as unable to go on until someone acts.
func (d *decider) stall(reason, msg string) {
	d.stalled, d.stalledMsg = reason, msg
}

// blockedStall reports a refused configuration (a router's or a backend's:
// Observations.Blocked) in every phase, Initializing included, as Stalled
// with its reason, and records one Warning Event when the refusal starts or
// changes. What Blocked names may not be watched, so the Canary looks
// again in a while.
func (d *decider) blockedStall() {
	if d.obs.Blocked == "" || d.c.Spec.Suspend {
		return
	}
	if d.stalled == "" {
		d.stall(d.obs.BlockedReason, d.obs.Blocked)
	}
	if d.stalled != d.obs.BlockedReason {
		return
	}
	if old := meta.FindStatusCondition(d.c.Status.Conditions, v1alpha1.ConditionStalled); old == nil ||
		old.Status != metav1.ConditionTrue || old.Reason != d.stalled || old.Message != d.stalledMsg {
		d.event(true, d.stalled, d.stalledMsg)
	}
	d.requeue(BlockedRecheckInterval)
}

func (d *decider) event(warning bool, reason, msg string) {
	d.out.Events = append(d.out.Events, Event{Warning: warning, Reason: reason, Message: msg})
}

// stamp is now as a status Timestamp (kept to the microsecond).
func (d *decider) stamp() *v1alpha1.Timestamp { return v1alpha1.NewTimestamp(d.exact) }

// requeue asks to look again after at most delay.
func (d *decider) requeue(delay time.Duration) {
	if delay <= 0 {
		delay = time.Second
	}
	if d.out.RequeueAfter == 0 || delay < d.out.RequeueAfter {
		d.out.RequeueAfter = delay
	}
}

// setConditions derives the conditions from the phase: Ready for a settled
// healthy Canary, Reconciling/Progressing while a release runs, Stalled when
// it cannot go on without someone acting.
func (d *decider) setConditions() {
	cond := func(typ string, status metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&d.st.Conditions, metav1.Condition{
			Type: typ, Status: status, Reason: reason, Message: msg,
			ObservedGeneration: d.c.Generation, LastTransitionTime: d.now,
		})
	}
	reason, msg := d.st.Reason, d.st.Message
	if reason == "" {
		reason = v1alpha1.ReasonUnknown
	}
	running := false
	switch d.st.Phase {
	case v1alpha1.PhaseInitialized, v1alpha1.PhaseSucceeded:
		if d.stalled != "" {
			cond(v1alpha1.ConditionReady, metav1.ConditionFalse, reason, msg)
		} else {
			cond(v1alpha1.ConditionReady, metav1.ConditionTrue, reason, msg)
		}
	case v1alpha1.PhaseFailed:
		cond(v1alpha1.ConditionReady, metav1.ConditionFalse, reason, msg)
		if d.stalled == "" {
			d.stall(reason, msg)
		}
	default:
		running = !d.c.Spec.Suspend
		cond(v1alpha1.ConditionReady, metav1.ConditionUnknown, reason, msg)
	}
	if running {
		cond(v1alpha1.ConditionProgressing, metav1.ConditionTrue, reason, msg)
	} else {
		cond(v1alpha1.ConditionProgressing, metav1.ConditionFalse, reason, msg)
	}
	// kstatus reads Reconciling before Stalled: a stalled Canary must not
	// also claim to be reconciling, or tools would show it as in progress.
	if running && d.stalled == "" {
		cond(v1alpha1.ConditionReconciling, metav1.ConditionTrue, reason, msg)
	} else {
		cond(v1alpha1.ConditionReconciling, metav1.ConditionFalse, reason, msg)
	}
	if d.stalled != "" {
		cond(v1alpha1.ConditionStalled, metav1.ConditionTrue, d.stalled, d.stalledMsg)
	} else {
		cond(v1alpha1.ConditionStalled, metav1.ConditionFalse, v1alpha1.ReasonNotStalled, "")
	}
	d.driftCondition(cond)
}

// driftCondition reports a settled primary that no longer matches the
// record of its revision (edited or scaled by hand), with an Event when
// the drift starts or changes. Sluice does not undo it: the next release
// replaces the primary's template anyway, and an HPA's replicas are not
// compared.
func (d *decider) driftCondition(cond func(typ string, status metav1.ConditionStatus, reason, msg string)) {
	settled := d.st.Phase == v1alpha1.PhaseInitialized || d.st.Phase == v1alpha1.PhaseSucceeded
	p := d.obs.Primary
	if !settled || d.c.Spec.Suspend || !p.Exists || p.Revision != d.st.StableRevision || d.obs.Drift == "" {
		cond(v1alpha1.ConditionDrifted, metav1.ConditionFalse, v1alpha1.ReasonAsRecorded, "")
		return
	}
	msg := fmt.Sprintf("primary differs from the record of revision %s: %s", d.st.StableRevision, d.obs.Drift)
	if old := meta.FindStatusCondition(d.c.Status.Conditions, v1alpha1.ConditionDrifted); old == nil || old.Status != metav1.ConditionTrue || old.Message != msg {
		d.event(true, v1alpha1.ReasonPrimaryDrifted, msg)
	}
	cond(v1alpha1.ConditionDrifted, metav1.ConditionTrue, v1alpha1.ReasonPrimaryDrifted, msg)
}
