package engine

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// Decide returns what the Canary should do next. The transition table, by
// phase:
//
//	(none), Initializing  -> Initialized     primary copy Ready at the target's revision, route 100% primary, target scaled to 0
//	Initialized, Succeeded, Failed (idle)
//	                      -> Progressing     target revision differs from status.canaryRevision, or a retry request after Failed
//	Progressing, Paused, WaitingPromotion
//	                      -> Progressing     a step applied (setWeight read back, timed pause over, promote request)
//	                      -> Paused          spec.paused
//	                      -> WaitingPromotion a pause step without duration
//	                      -> Promoting       every step done, a promote-full request, or the primary already
//	                                         at the canary's revision (a promotion whose status write was lost)
//	                      -> Failed          abort request, progress deadline, target deleted
//	Promoting             -> Finalising      all traffic on the canary (read back), then the primary
//	                                         updated and verified at the canary's revision
//	                      -> Failed          abort before the primary is updated; verification failed
//	                      (Stalled)          the route not carrying 100% canary past the deadline
//	Finalising            -> Succeeded       route 100% primary; canary scaled to 0
//	                      (Stalled)          the primary not Ready past the deadline (traffic on the canary)
//
// A configuration a router or a backend check refuses (Observations.Blocked)
// is reported Stalled in every phase.
//
// Traffic only ever moves toward a copy that is Ready at its threshold: a
// desired weight above 0 needs the canary Ready, below 100 the primary.
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
		d.note("Suspended", "spec.suspend is set: Sluice leaves routes and workloads as they are")
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
			d.finalise()
		default:
			d.st.Phase = ""
			d.initialize()
		}
		if !d.obs.Target.Exists {
			// There is no target to scale.
			d.out.Desired.TargetReplicas = nil
		}
	}
	switch d.st.Phase {
	case v1alpha1.PhaseProgressing, v1alpha1.PhasePaused, v1alpha1.PhaseWaitingPromotion:
	default:
		// A route asked earlier in this decision (before a rollback, say)
		// must not send or copy requests to the canary outside a release.
		d.out.Desired.HeaderRoute, d.out.Desired.MirrorPercent = nil, 0
	}
	d.blockedStall()
	d.setConditions()
	d.out.Status = d.st
	prev := in.Canary.Status
	d.out.Hold = d.routeInFlight && !d.routeCarried && len(d.out.Events) == 0 &&
		prev.Phase == v1alpha1.PhaseProgressing && d.st.Phase == v1alpha1.PhaseProgressing &&
		d.st.CanaryRevision == prev.CanaryRevision && d.st.StableRevision == prev.StableRevision &&
		d.st.CheckRound == prev.CheckRound && d.st.FailedChecks == prev.FailedChecks &&
		d.st.LastHandledRequest == prev.LastHandledRequest
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
	// to be read back or to settle (see Output.Hold).
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
	d.event(true, "RequestIgnored", fmt.Sprintf("%s %q: unknown action; use promote, promote-full, abort or retry", v1alpha1.RequestAnnotation, raw))
	return request{}
}

func (d *decider) rejectRequest(r request) {
	if r.action == "" {
		return
	}
	d.event(true, "RequestIgnored", fmt.Sprintf("%s: not possible in phase %s", r.action, d.st.Phase))
}

// initialize creates the primary from the target, moves all traffic to it,
// then scales the target to zero.
func (d *decider) initialize() {
	t := d.obs.Target
	if !t.Exists {
		d.setPhase(v1alpha1.PhaseInitializing, "TargetNotFound", d.targetMissing())
		d.stall("TargetNotFound", d.targetMissing())
		return
	}
	d.setPhase(v1alpha1.PhaseInitializing, "Initializing", "creating the primary copy of the target")
	d.st.CanaryRevision = t.Revision
	d.out.Desired.PrimaryFromTarget = true
	d.out.Desired.PrimaryReplicas = ptr(d.obs.ReleaseReplicas)
	if ok, why := d.ready("primary", d.obs.Primary, t.Revision, d.primaryThreshold()); !ok {
		d.note("WaitingForPrimary", why)
		return
	}
	d.out.Desired.Services = true
	if !d.routeTo(0) {
		return
	}
	d.out.Desired.TargetReplicas = ptr(int32(0))
	d.st.StableRevision = t.Revision
	d.setPhase(v1alpha1.PhaseInitialized, "Initialized", fmt.Sprintf("primary runs revision %s and serves all traffic", t.Revision))
	d.event(false, "Initialized", d.st.Message)
}

// idle keeps all traffic on the primary and the canary scaled down, and
// starts a release when the target's revision changes (or on retry).
func (d *decider) idle(req request) {
	t := d.obs.Target
	if !t.Exists {
		d.stall("TargetNotFound", d.targetMissing())
		d.rejectRequest(req)
		return
	}
	waiting := d.st.Phase == v1alpha1.PhaseWaiting
	if t.Revision != d.st.CanaryRevision && d.failSafe() {
		// Traffic is on the canary because the primary is being restored
		// after a failed promotion: a new release could only move it onto
		// pods nobody has checked. It starts once the primary is back.
		d.rejectRequest(req)
		d.settle()
		d.note("WaitingForPrimaryRestore", fmt.Sprintf("revision %s waits until the primary is restored to %s", t.Revision, d.st.StableRevision))
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
			d.setPhase(v1alpha1.PhaseSucceeded, "RevertedToStable", msg)
		} else {
			d.note("RevertedToStable", msg)
		}
		d.event(false, "RevertedToStable", msg)
	case t.Revision != d.st.CanaryRevision:
		d.rejectRequest(req)
		d.begin("NewRevision", fmt.Sprintf("new revision %s detected; releasing it", t.Revision))
		return
	case waiting && req.action == v1alpha1.RequestAbort:
		d.rollback("Aborted", fmt.Sprintf("release of revision %s aborted by request before it started", t.Revision))
		return
	case waiting:
		d.rejectRequest(req)
		d.begin("NewRevision", fmt.Sprintf("releasing revision %s", t.Revision))
		return
	case req.action == v1alpha1.RequestRetry && d.st.Phase == v1alpha1.PhaseFailed:
		d.begin("Retry", fmt.Sprintf("retrying revision %s", t.Revision))
		return
	case req.action != "":
		d.rejectRequest(req)
	}
	d.settle()
}

// settle brings an idle Canary to its steady state: route 100% primary once
// the primary is Ready, then the target scaled to zero.
func (d *decider) settle() {
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
			d.out.Desired.TargetReplicas = ptr(d.obs.ReleaseReplicas)
			d.routeTo(100)
			d.stall("PrimaryNotReady", "all traffic on the canary until the primary is Ready again: "+why)
			return
		}
		d.stall("PrimaryNotReady", "holding traffic where it is: "+why)
		return
	}
	if !d.routeTo(0) {
		return
	}
	d.out.Desired.TargetReplicas = ptr(int32(0))
	if t := d.obs.Target; t.Replicas > 0 && t.Revision == d.st.StableRevision {
		// The target was scaled by hand or by GitOps without a new
		// template: the user asks for this many replicas of the stable
		// revision, which the primary runs.
		d.out.Desired.PrimaryReplicas = ptr(t.Replicas)
	}
}

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

// advance moves to the next step.
func (d *decider) advance() {
	d.st.StepCheckRound = d.st.CheckRound
	d.st.CurrentStep++
	d.st.StepStartedAt = d.stamp()
	d.st.LastProgressTime = &d.now
}

// analysing says whether the release has check rounds: metrics, rollout
// or rollback webhooks.
func (d *decider) analysing() bool {
	return d.c.Spec.Analysis != nil && (len(d.c.Spec.Analysis.Metrics) > 0 ||
		d.hasHooks(v1alpha1.WebhookRollout) || d.hasHooks(v1alpha1.WebhookRollback))
}

func (d *decider) checkInterval() time.Duration { return CheckInterval(d.c.Spec.Analysis) }

// CheckInterval is the time between check rounds: spec.analysis.interval,
// or DefaultCheckInterval.
func CheckInterval(a *v1alpha1.Analysis) time.Duration {
	if a != nil && a.Interval != nil && a.Interval.Duration > 0 {
		return a.Interval.Duration
	}
	return DefaultCheckInterval
}

func (d *decider) checkThreshold() int32 {
	if a := d.c.Spec.Analysis; a != nil && a.Threshold != nil && *a.Threshold > 0 {
		return *a.Threshold
	}
	return DefaultCheckThreshold
}

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
	if r.Rollback != "" {
		d.rollback("RollbackWebhook", r.Rollback)
		return true
	}
	var failed []string
	for _, m := range r.Metrics {
		if !m.Passed {
			failed = append(failed, m.Name+": "+m.Message)
		}
	}
	if len(failed) == 0 {
		return false
	}
	d.st.FailedChecks++
	why := strings.Join(failed, "; ")
	d.event(true, "CheckFailed", fmt.Sprintf("check round %d failed (%d/%d): %s", r.Round, d.st.FailedChecks, d.checkThreshold(), why))
	if d.st.FailedChecks >= d.checkThreshold() {
		d.rollback("AnalysisFailed", fmt.Sprintf("%d check rounds failed (threshold %d); last: %s", d.st.FailedChecks, d.checkThreshold(), why))
		return true
	}
	return false
}

// requestChecks asks for a round when one is due: none has finished in
// this step yet, or the interval passed since the last. Rounds run only
// while the router carries canary traffic: without it there is nothing to
// measure.
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
	if !d.obs.Route.Exists || d.obs.Route.CanaryWeight == 0 || d.obs.Route.CanaryWeight != d.st.CanaryWeight || !d.routeSettled() {
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
	if !d.analysing() || WeightAt(d.steps, int(d.st.CurrentStep)) == 0 {
		return true
	}
	if d.st.CheckedRound > d.st.StepCheckRound && metricsPassed(d.st.Metrics) {
		return true
	}
	d.note("WaitingForChecks", fmt.Sprintf("step %d: waiting for a passing check round (failed %d/%d)",
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

// holdWeight keeps the weight in force while the canary is Ready: that of
// the steps before the current one (a current setWeight is not applied).
func (d *decider) holdWeight() {
	w := WeightAt(d.steps, int(d.st.CurrentStep)-1)
	if ok, _ := d.ready("canary", d.obs.Target, d.st.CanaryRevision, d.canaryThreshold()); !ok {
		w = 0
	}
	d.routeTo(w)
}

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
		d.rollback("Aborted", fmt.Sprintf("promotion of revision %s aborted by request before the primary was updated", rev))
		return
	}
	if req.action != "" {
		d.event(true, "RequestIgnored", fmt.Sprintf("%s: not possible in phase %s once the primary runs revision %s (it is verified, and rolled back if verification fails)", req.action, d.st.Phase, rev))
	}
	d.out.Desired.Services = true
	d.out.Desired.TargetReplicas = ptr(d.obs.ReleaseReplicas)
	d.out.Desired.PrimaryReplicas = ptr(d.obs.ReleaseReplicas)
	canaryOK, canaryWhy := d.ready("canary", t, rev, d.canaryThreshold())
	switch {
	case t.Exists && t.Revision == rev:
		if untouched {
			// Before the primary is touched, all traffic moves to the
			// canary (Ready, at full size): whatever the primary's rollout
			// strategy, its pods never serve while they are replaced. A
			// canary that is not Ready gives its traffic back to the
			// primary, which waits.
			waitingFor := ""
			switch {
			case !canaryOK:
				d.routeTo(0)
				waitingFor = "waiting for the canary to be Ready to carry all traffic while the primary is updated: " + canaryWhy
				d.note("Promoting", waitingFor)
			case !d.routeTo(100):
				waitingFor = d.st.Message
				d.note("Promoting", "moving all traffic to the canary before updating the primary: "+waitingFor)
			}
			if waitingFor != "" {
				d.stallPastDeadline("PromotionStalled", fmt.Sprintf("no progress for %s since the promotion started, %s; the primary still runs revision %s: fix it or abort (kubectl sluice abort)",
					d.deadline(), waitingFor, d.obs.Primary.Revision))
				return
			}
		}
		d.out.Desired.PrimaryFromTarget = true
	case untouched:
		// The target moved on before the primary took the promoted
		// template: release the new revision instead.
		d.startRelease("RevisionChanged", fmt.Sprintf("revision %s replaced %s before promotion; releasing it", t.Revision, rev))
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
	d.setPhase(v1alpha1.PhaseFinalising, "Finalising", fmt.Sprintf("primary runs revision %s; moving all traffic to it", rev))
	d.event(false, "Finalising", d.st.Message)
	d.finalise()
}

// finalise moves all traffic to the promoted primary and scales the canary
// down. The primary was verified when the promotion ended; if it stops
// being Ready now, the canary (the same revision, still at full size)
// carries the traffic until it recovers: the release can no longer be
// rolled back, the primary already runs the promoted revision. Past the
// progress deadline (from the start of Finalising) the Canary is Stalled
// with the primary's numbers, and completes by itself once the primary is
// Ready.
func (d *decider) finalise() {
	d.out.Desired.Services = true
	d.out.Desired.TargetReplicas = ptr(d.obs.ReleaseReplicas)
	if ok, why := d.ready("primary", d.obs.Primary, d.st.StableRevision, d.primaryThreshold()); !ok {
		canaryOK, _ := d.ready("canary", d.obs.Target, d.st.StableRevision, d.canaryThreshold())
		where := "traffic stays where it is (the canary is not Ready either)"
		if canaryOK {
			d.routeTo(100)
			where = "all traffic on the canary, which runs the same revision"
		}
		d.note("Finalising", fmt.Sprintf("waiting for the primary: %s; %s", why, where))
		d.stallPastDeadline("PrimaryNotReady", fmt.Sprintf("the promoted primary has not been Ready for %s: %s; %s", d.deadline(), why, where))
		d.requeue(d.verifyInterval())
		return
	}
	if !d.routeTo(0) {
		return
	}
	d.out.Desired.TargetReplicas = ptr(int32(0))
	d.setPhase(v1alpha1.PhaseSucceeded, "Promoted", fmt.Sprintf("revision %s promoted", d.st.StableRevision))
	d.event(false, "Promoted", d.st.Message)
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
	d.settle()
}

// routeTo asks for the canary weight w when the copies that would receive
// traffic are Ready, and reports whether the router already carries it.
func (d *decider) routeTo(w int32) bool {
	withdraw := w == 0 && d.activeHeaderRoute() == nil && d.activeMirror() == 0
	if d.obs.Blocked != "" && !(withdraw && d.obs.BlockedWithdrawable) {
		// No half-applied route: nothing is written until the
		// configuration is fixed.
		d.waiting(d.obs.BlockedReason, d.obs.Blocked+"; traffic stays where it is")
		d.stall(d.obs.BlockedReason, d.obs.Blocked)
		// Not every object a configuration problem names is watched (a
		// router's Middleware, say): look again in a while.
		d.requeue(BlockedRecheckInterval)
		return false
	}
	if w > 0 {
		if ok, why := d.ready("canary", d.obs.Target, d.st.CanaryRevision, d.canaryThreshold()); !ok {
			d.waiting("WaitingForCanary", why)
			return false
		}
	}
	if w < 100 {
		stable := d.st.StableRevision
		if d.st.Phase == v1alpha1.PhaseInitializing || stable == "" {
			stable = d.obs.Target.Revision
		}
		if ok, why := d.ready("primary", d.obs.Primary, stable, d.primaryThreshold()); !ok {
			d.waiting("WaitingForPrimary", why)
			return false
		}
	}
	d.out.Desired.CanaryWeight = ptr(w)
	hr, mirror := d.activeHeaderRoute(), d.activeMirror()
	d.out.Desired.HeaderRoute = hr
	d.out.Desired.MirrorPercent = mirror
	d.st.CanaryWeight = w
	r := d.obs.Route
	if r.Exists {
		d.st.ObservedCanaryWeight = ptr(r.CanaryWeight)
	}
	if !r.Exists || r.CanaryWeight != w || r.Pending != "" || r.HeaderRoute != HeaderRouteKey(hr) || r.MirrorPercent != mirror {
		msg := fmt.Sprintf("waiting for the router to carry canary weight %d%%", w)
		if hr != nil {
			msg += " and the header route " + HeaderRouteKey(hr)
		}
		if mirror > 0 {
			msg += fmt.Sprintf(" and a %d%% mirror", mirror)
		}
		if r.Pending != "" {
			msg += ": " + r.Pending
		}
		d.waiting(d.st.Reason, msg)
		d.requeue(RoutePollInterval)
		return false
	}
	return d.settled(routeKey(w, mirror, HeaderRouteKey(hr)))
}

// routeKey is a route in one string, "weight|mirror|header route" (the
// header route last: it may contain any character).
func routeKey(weight, mirror int32, headerRoute string) string {
	return fmt.Sprintf("%d|%d|%s", weight, mirror, headerRoute)
}

// routeReachesCanary says whether the route read back sends or copies any
// request to the canary: a weight, a header route or a mirror.
func (d *decider) routeReachesCanary() bool {
	r := d.obs.Route
	return r.Exists && (r.CanaryWeight > 0 || r.HeaderRoute != "" || r.MirrorPercent > 0)
}

// describeRoute turns a route key into words.
func describeRoute(key string) string {
	parts := strings.SplitN(key, "|", 3)
	if len(parts) != 3 {
		return key
	}
	out := "canary weight " + parts[0] + "%"
	if parts[1] != "0" {
		out += ", mirror " + parts[1] + "%"
	}
	if parts[2] != "" {
		out += ", header route " + parts[2]
	}
	return out
}

// routeSettled says whether the route read back has been carried for the
// router's settle time (always, without one).
func (d *decider) routeSettled() bool {
	r := d.obs.Route
	if r.Settle <= 0 {
		return true
	}
	rs := d.st.RouteSettling
	return rs != nil && rs.Route == routeKey(r.CanaryWeight, r.MirrorPercent, r.HeaderRoute) &&
		!d.exact.Before(rs.Since.Add(r.Settle))
}

// settled gives a router whose proxy reports nothing back its settle time
// after a route is first read back, so that a step counts as applied (and
// a copy is scaled down) only once the proxy can have loaded it.
func (d *decider) settled(route string) bool {
	settle := d.obs.Route.Settle
	if settle <= 0 {
		d.st.RouteSettling = nil
		return true
	}
	if s := d.st.RouteSettling; s == nil || s.Route != route {
		d.st.RouteSettling = &v1alpha1.RouteSettling{Route: route, Since: *d.stamp()}
		d.routeCarried = true
	}
	left := d.st.RouteSettling.Since.Add(settle).Sub(d.exact)
	if left <= 0 {
		return true
	}
	d.waiting(d.st.Reason, fmt.Sprintf("router carries the route (%s); giving the proxy %s to load it", describeRoute(route), settle))
	d.requeue(left)
	return false
}

// activeHeaderRoute is the header route in force: the last setHeaderRoute
// step up to the current one, while a release walks its steps and the
// canary is Ready. None otherwise.
func (d *decider) activeHeaderRoute() *v1alpha1.HeaderRoute {
	var hr *v1alpha1.HeaderRoute
	for _, s := range d.stepsInForce() {
		if s.SetHeaderRoute != nil {
			hr = s.SetHeaderRoute
		}
	}
	return hr
}

// activeMirror is the mirrored share in force: that of the last setMirror
// step up to the current one, under the same conditions as a header route.
func (d *decider) activeMirror() int32 {
	var p int32
	for _, s := range d.stepsInForce() {
		if s.SetMirror != nil {
			p = s.SetMirror.Percent
		}
	}
	return p
}

// stepsInForce are the steps up to the current one while a release walks
// its steps and the canary is Ready: the steps whose routing (header
// route, mirror) holds. None otherwise, so no request is ever sent or
// copied to a canary that is not Ready.
func (d *decider) stepsInForce() []v1alpha1.Step {
	switch d.st.Phase {
	case v1alpha1.PhaseProgressing, v1alpha1.PhasePaused, v1alpha1.PhaseWaitingPromotion:
	default:
		return nil
	}
	if ok, _ := d.ready("canary", d.obs.Target, d.st.CanaryRevision, d.canaryThreshold()); !ok {
		return nil
	}
	return d.steps[:min(int(d.st.CurrentStep)+1, len(d.steps))]
}

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
		d.rollback("ProgressDeadlineExceeded", fmt.Sprintf("no progress for %s while waiting for %s", d.deadline(), waitingFor))
		return
	}
	d.requeue(d.deadlineLeft())
}

func (d *decider) deadline() time.Duration { return ProgressDeadline(d.c) }

// ProgressDeadline is spec.progressDeadline, or its default.
func ProgressDeadline(c *v1alpha1.Canary) time.Duration {
	if pd := c.Spec.ProgressDeadline; pd != nil && pd.Duration > 0 {
		return pd.Duration
	}
	return DefaultProgressDeadline
}

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

func (d *decider) primaryThreshold() int32 {
	if p := d.c.Spec.PrimaryReadyThreshold; p != nil {
		return *p
	}
	return DefaultReadyThreshold
}

func (d *decider) canaryThreshold() int32 {
	if p := d.c.Spec.CanaryReadyThreshold; p != nil {
		return *p
	}
	return DefaultReadyThreshold
}

func (d *decider) targetMissing() string {
	return fmt.Sprintf("target Deployment %s/%s not found (spec.targetRef.name)", d.c.Namespace, d.c.Spec.TargetRef.Name)
}

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

// stall marks the Canary as unable to go on until someone acts.
func (d *decider) stall(reason, msg string) {
	d.stalled, d.stalledMsg = reason, msg
}

func (d *decider) event(warning bool, reason, msg string) {
	d.out.Events = append(d.out.Events, Event{Warning: warning, Reason: reason, Message: msg})
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
		cond(v1alpha1.ConditionDrifted, metav1.ConditionFalse, "AsRecorded", "")
		return
	}
	msg := fmt.Sprintf("primary differs from the record of revision %s: %s", d.st.StableRevision, d.obs.Drift)
	if old := meta.FindStatusCondition(d.c.Status.Conditions, v1alpha1.ConditionDrifted); old == nil || old.Status != metav1.ConditionTrue || old.Message != msg {
		d.event(true, "PrimaryDrifted", msg)
	}
	cond(v1alpha1.ConditionDrifted, metav1.ConditionTrue, "PrimaryDrifted", msg)
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
		reason = "Unknown"
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
		cond(v1alpha1.ConditionStalled, metav1.ConditionFalse, "NotStalled", "")
	}
	d.driftCondition(cond)
}
