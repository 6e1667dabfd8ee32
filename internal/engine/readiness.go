package engine

import (
	"fmt"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// ready says whether a copy runs revision rev with at least threshold% of
// its replicas available, and if not, why.
func (d *decider) ready(name string, w Workload, rev string, threshold int32) (bool, string) {
	switch {
	case !w.Exists:
		return false, name + " Deployment does not exist yet"
	case w.Revision != rev:
		return false, fmt.Sprintf("%s runs revision %s, want %s", name, w.Revision, rev)
	case !w.Current:
		return false, name + " Deployment status not yet observed by its controller"
	case w.Replicas == 0:
		return false, name + " is scaled to 0"
	}
	need := (w.Replicas*threshold + 99) / 100
	if w.StatusReplicas > w.UpdatedReplicas {
		// Old pods still run: the available count may be theirs.
		msg := fmt.Sprintf("%s %d/%d updated, %d old replicas still running", name, w.UpdatedReplicas, w.Replicas, w.StatusReplicas-w.UpdatedReplicas)
		if w.Problem != "" {
			msg += ": " + w.Problem
		}
		return false, msg
	}
	if w.UpdatedReplicas < w.Replicas || w.AvailableReplicas < need {
		msg := fmt.Sprintf("%s %d/%d available, %d/%d updated (needs %d available)", name,
			w.AvailableReplicas, w.Replicas, w.UpdatedReplicas, w.Replicas, need)
		if w.Problem != "" {
			msg += ": " + w.Problem
		}
		return false, msg
	}
	return true, ""
}

func (d *decider) primaryThreshold() int32 { return d.c.Spec.GetPrimaryReadyThreshold() }

func (d *decider) canaryThreshold() int32 { return d.c.Spec.GetCanaryReadyThreshold() }

func (d *decider) targetMissing() string {
	return fmt.Sprintf("target Deployment %s/%s not found (spec.targetRef.name)", d.c.Namespace, d.c.Spec.TargetRef.Name)
}

// startWaiting restarts the progress deadline when the release starts
// waiting for something new, so time spent in pauses (or waiting on
// something else before) never counts against it.
func (d *decider) startWaiting(reason string) {
	if d.st.Reason != reason {
		d.st.LastProgressTime = &d.now
	}
}

func (d *decider) checkDeadline(waitingFor string) {
	if d.deadlinePassed() {
		d.rollback(v1alpha1.ReasonProgressDeadlineExceeded, fmt.Sprintf("no progress for %s while waiting for %s", d.deadline(), waitingFor))
		return
	}
	d.requeue(d.deadlineLeft())
}

func (d *decider) deadline() time.Duration { return d.c.Spec.GetProgressDeadline() }

// stallPastDeadline stalls the Canary (unless it is stalled already) once
// the progress deadline has passed, and otherwise looks again when it
// will: for what waits without a rollback to fall back on.
func (d *decider) stallPastDeadline(reason, msg string) {
	if !d.deadlinePassed() {
		d.requeue(d.deadlineLeft())
		return
	}
	if d.stalled == "" {
		d.stall(reason, msg)
	}
}

func (d *decider) deadlinePassed() bool { return d.deadlineLeft() <= 0 }

func (d *decider) deadlineLeft() time.Duration {
	if d.st.LastProgressTime == nil {
		return d.deadline()
	}
	return d.st.LastProgressTime.Add(d.deadline()).Sub(d.now.Time)
}
