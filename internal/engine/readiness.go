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
	scaling := w.ReadyFloor > 0 && w.Replicas > w.ReadyFloor && w.StatusReplicas <= w.UpdatedReplicas
	if scaling {
		// An autoscaler runs the copy above its minimum: the pods it is
		// starting count neither as missing nor as not updated.
		need = (w.ReadyFloor*threshold + 99) / 100
	}
	if w.StatusReplicas > w.UpdatedReplicas {
		// Old pods still run: the available count may be theirs.
		msg := fmt.Sprintf("%s %d/%d updated, %d old replicas still running", name, w.UpdatedReplicas, w.Replicas, w.StatusReplicas-w.UpdatedReplicas)
		if w.Problem != "" {
			msg += ": " + w.Problem
		}
		return false, msg
	}
	if (w.UpdatedReplicas < w.Replicas && !scaling) || w.AvailableReplicas < need {
		msg := fmt.Sprintf("%s %d/%d available, %d/%d updated (needs %d available)", name,
			w.AvailableReplicas, w.Replicas, w.UpdatedReplicas, w.Replicas, need)
		if w.Problem != "" {
			msg += ": " + w.Problem
		}
		return false, msg
	}
	return true, ""
}

// unobserved says whether a copy at rev is judged on a status its
// Deployment controller has not caught up with yet (a change of its spec
// other than the template, such as an autoscaler's new replica count): not
// known to be not Ready, so its traffic is not withdrawn.
func unobserved(w Workload, rev string) bool {
	return w.Exists && w.Revision == rev && !w.Current && w.Replicas > 0
}

// canaryReplicas is the canary's replica count to ask for while it serves
// a release: n; with an autoscaler only to scale it up from zero (to the
// autoscaler's start), the autoscaler owning the count from there.
func (d *decider) canaryReplicas(n int32) *int32 {
	if a := d.obs.Autoscaler; a != nil {
		if d.obs.Target.Replicas > 0 {
			return nil
		}
		return ptr(min(n, max(a.CanaryStart, 1)))
	}
	return ptr(n)
}

// primaryReplicas is the primary's replica count to ask for: n, or with an
// autoscaler nothing once the primary runs (its copy of the autoscaler
// owns the count).
func (d *decider) primaryReplicas(n int32) *int32 {
	if d.obs.Autoscaler != nil && d.obs.Primary.Exists && d.obs.Primary.Replicas > 0 {
		return nil
	}
	return ptr(n)
}

// canaryRaised, before all traffic moves to the canary with an autoscaler
// (RaiseBeforeSwitch), asks for the canary to run at least the primary's
// count and reports whether it runs that many Ready; always true
// otherwise.
func (d *decider) canaryRaised() (bool, string) {
	a, t := d.obs.Autoscaler, d.obs.Target
	if a == nil || !a.RaiseBeforeSwitch || d.st.CanaryWeight == 100 || (d.obs.Route.Exists && d.obs.Route.CanaryWeight == 100) {
		// Once all traffic is asked for, a primary that grows meanwhile
		// does not take it back: the canary's autoscaler follows its load.
		return true, ""
	}
	n := d.obs.Primary.Replicas
	if t.Replicas < n {
		d.out.Desired.TargetReplicas = ptr(n)
		return false, fmt.Sprintf("raising the canary from %d to the primary's %d replicas before it takes all traffic", t.Replicas, n)
	}
	if need := (n*d.canaryThreshold() + 99) / 100; t.AvailableReplicas < need {
		return false, fmt.Sprintf("canary %d/%d available before it takes all traffic (needs %d, the primary runs %d)", t.AvailableReplicas, t.Replicas, need, n)
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

// checkDeadline rolls the release back once the progress deadline has
// passed; state says what it was still waiting for.
func (d *decider) checkDeadline(state string) {
	if d.deadlinePassed() {
		d.rollback(v1alpha1.ReasonProgressDeadlineExceeded, fmt.Sprintf("no progress for %s: %s", d.deadline(), state))
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

// deadlineLeft is the time left before the progress deadline: from the
// last progress, or from when this controller started acting if that is
// later (an outage of the controller is not charged to the release).
func (d *decider) deadlineLeft() time.Duration {
	if d.st.LastProgressTime == nil {
		return d.deadline()
	}
	from := d.st.LastProgressTime.Time
	if a := d.in.ActingSince.Truncate(time.Second); a.After(from) {
		from = a
	}
	return from.Add(d.deadline()).Sub(d.now.Time)
}
