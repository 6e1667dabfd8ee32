package engine

import (
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// Decide returns what the Canary should do next (the package comment has
// the transition table).
func Decide(in Input) Output {
	d := &decider{
		in:    in,
		c:     in.Canary,
		obs:   in.Obs,
		now:   metav1.NewTime(in.Now).Rfc3339Copy(),
		exact: in.Now.Truncate(time.Microsecond),
		steps: Steps(in.Canary.Spec.Strategy),
	}
	d.st = *in.Canary.Status.DeepCopy()
	d.st.ObservedGeneration = d.c.Generation
	d.st.Steps = int32(len(d.steps))

	if d.c.Spec.Suspend {
		d.note(v1alpha1.ReasonSuspended, "spec.suspend is set: Sluice leaves routes and workloads as they are")
	} else {
		req := d.takeRequest()
		switch d.st.Phase {
		case "", v1alpha1.PhaseInitializing:
			d.initialize()
		case v1alpha1.PhaseInitialized, v1alpha1.PhaseSucceeded, v1alpha1.PhaseFailed, v1alpha1.PhaseWaiting:
			d.idle(req)
		case v1alpha1.PhaseProgressing, v1alpha1.PhasePaused, v1alpha1.PhaseWaitingPromotion:
			d.progress(req)
		case v1alpha1.PhasePromoting:
			d.promote(req)
		case v1alpha1.PhaseFinalising:
			d.rejectRequest(req)
			d.finishPromotion()
		default:
			d.st.Phase = ""
			d.initialize()
		}
		if !d.obs.Target.Exists {
			// There is no target to scale.
			d.out.Desired.TargetReplicas = nil
		}
	}
	if !walking(d.st.Phase) {
		// A route asked earlier in this decision (before a rollback, say)
		// must not send or copy requests to the canary outside a release.
		d.out.Desired.HeaderRoute, d.out.Desired.MirrorPercent = nil, 0
	}
	d.blockedStall()
	d.setConditions()
	d.out.Status = d.st
	d.out.RouteInFlight = d.routeInFlight && !d.routeCarried
	return d.out
}

type decider struct {
	in  Input
	c   *v1alpha1.Canary
	obs Observations
	now metav1.Time
	// exact is now to the microsecond, what a v1alpha1.Timestamp keeps;
	// now is whole seconds, what a metav1.Time keeps. Each is compared
	// with the fields of its own kind, so that a value held in memory
	// equals the one written and read back.
	exact time.Time
	steps []v1alpha1.Step
	st    v1alpha1.CanaryStatus
	out   Output
	// stalled, when set, is a reason the Canary cannot make progress
	// without someone acting (reported as Stalled=True).
	stalled    string
	stalledMsg string
	// routeInFlight is set when a setWeight step waits only for its route
	// to be read back or to settle (see Output.RouteInFlight).
	routeInFlight bool
	// routeCarried is set when this decision is the first to read a new
	// route back (its settle starts): the status must say so now, so it
	// is never held.
	routeCarried bool
}

type request struct {
	action string
	raw    string
}

// takeRequest returns the request annotation's action when it has not been
// handled yet, and marks it handled.
func (d *decider) takeRequest() request {
	raw := strings.TrimSpace(d.c.Annotations[v1alpha1.RequestAnnotation])
	if raw == "" || raw == d.st.LastHandledRequest {
		return request{}
	}
	d.st.LastHandledRequest = raw
	action, _, _ := strings.Cut(raw, "/")
	switch action {
	case v1alpha1.RequestPromote, v1alpha1.RequestPromoteFull, v1alpha1.RequestAbort, v1alpha1.RequestRetry:
		return request{action: action, raw: raw}
	}
	d.event(true, v1alpha1.ReasonRequestIgnored, fmt.Sprintf("%s %q: unknown action; use promote, promote-full, abort or retry", v1alpha1.RequestAnnotation, raw))
	return request{}
}

func (d *decider) rejectRequest(r request) {
	if r.action == "" {
		return
	}
	d.event(true, v1alpha1.ReasonRequestIgnored, fmt.Sprintf("%s: not possible in phase %s", r.action, d.st.Phase))
}
