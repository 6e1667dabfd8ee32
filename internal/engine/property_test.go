package engine_test

import (
	"fmt"
	"math/rand"
	"reflect"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/engine"
	"github.com/sluice-dev/sluice/internal/statusbatch"
)

// isReady is the test's own statement of readiness: the copy exists, runs
// rev, its status is current, it has replicas, all of them updated, and at
// least threshold% of them available.
//
// With an autoscaler's floor (ReadyFloor) below the replicas, a copy
// without old pods is judged on the floor: pods a scale-up still starts
// are neither missing nor not updated.
func isReady(w engine.Workload, rev string, threshold int32) bool {
	if !w.Exists || w.Revision != rev || !w.Current || w.Replicas <= 0 || w.StatusReplicas > w.UpdatedReplicas {
		return false
	}
	base := w.Replicas
	if w.ReadyFloor > 0 && w.Replicas > w.ReadyFloor {
		base = w.ReadyFloor
	} else if w.UpdatedReplicas < w.Replicas {
		return false
	}
	return int64(w.AvailableReplicas)*100 >= int64(base)*int64(threshold)
}

func thresholdOr100(p *int32) int32 {
	if p != nil {
		return *p
	}
	return 100
}

var (
	runningPhases = map[v1alpha1.CanaryPhase]bool{
		v1alpha1.PhaseProgressing: true, v1alpha1.PhasePaused: true, v1alpha1.PhaseWaitingPromotion: true,
	}
	settledPhases = map[v1alpha1.CanaryPhase]bool{
		v1alpha1.PhaseInitialized: true, v1alpha1.PhaseSucceeded: true, v1alpha1.PhaseFailed: true,
	}
	validPhases = map[v1alpha1.CanaryPhase]bool{
		v1alpha1.PhaseInitializing: true, v1alpha1.PhaseInitialized: true, v1alpha1.PhaseProgressing: true,
		v1alpha1.PhasePaused: true, v1alpha1.PhaseWaitingPromotion: true, v1alpha1.PhasePromoting: true,
		v1alpha1.PhaseFinalising: true, v1alpha1.PhaseSucceeded: true, v1alpha1.PhaseFailed: true,
		v1alpha1.PhaseWaiting: true,
	}
	gateTypes = []v1alpha1.WebhookType{v1alpha1.WebhookConfirmRollout, v1alpha1.WebhookPreRollout,
		v1alpha1.WebhookConfirmTrafficIncrease, v1alpha1.WebhookConfirmPromotion, v1alpha1.WebhookPostRollout,
		v1alpha1.WebhookRollback, v1alpha1.WebhookRollout}
)

// invariants returns what is wrong with out as the answer to in.
func invariants(in engine.Input, out engine.Output) []string {
	var bad []string
	fail := func(format string, args ...any) { bad = append(bad, fmt.Sprintf(format, args...)) }
	c, obs, st, d := in.Canary, in.Obs, out.Status, out.Desired
	steps := engine.Steps(c.Spec.Strategy)

	if w := d.CanaryWeight; w != nil {
		// (c) a weight is a percentage.
		if *w < 0 || *w > 100 {
			fail("(c) desired canary weight %d out of 0..100", *w)
		}
		// (a) traffic moves to the canary only when it is Ready at the
		// release's revision.
		if *w > 0 && !isReady(obs.Target, st.CanaryRevision, thresholdOr100(c.Spec.CanaryReadyThreshold)) {
			fail("(a) desired canary weight %d but the canary is not Ready at %q: %+v", *w, st.CanaryRevision, obs.Target)
		}
		// (b) the primary keeps a share only when it is Ready at the stable
		// revision (the target's own while initializing).
		if *w < 100 {
			stable := st.StableRevision
			if st.Phase == v1alpha1.PhaseInitializing || stable == "" {
				stable = obs.Target.Revision
			}
			if !isReady(obs.Primary, stable, thresholdOr100(c.Spec.PrimaryReadyThreshold)) {
				fail("(b) desired canary weight %d but the primary is not Ready at %q: %+v", *w, stable, obs.Primary)
			}
		}
		// After a promotion failed verification the Ready canary may carry
		// everything until the primary is restored; otherwise a settled
		// Canary sends nothing to the canary.
		verifyFailed := st.Phase == v1alpha1.PhaseFailed && st.Verification != nil && st.Verification.State == v1alpha1.VerificationFailed
		if (settledPhases[st.Phase] || st.Phase == v1alpha1.PhaseWaiting) && *w != 0 && !(verifyFailed && *w == 100) {
			fail("phase %s asks for canary weight %d", st.Phase, *w)
		}
		// A closed confirm-traffic-increase gate holds the weight at what
		// the steps before the current one set.
		if g := st.Gate; g != nil && !g.Open && g.Type == v1alpha1.WebhookConfirmTrafficIncrease && runningPhases[st.Phase] {
			if held := engine.WeightAt(steps, int(st.CurrentStep)-1); *w > held && !keptAhead(steps, st.CurrentStep, obs, *w) {
				fail("closed confirm-traffic-increase gate at step %d, yet weight %d asked (held %d)", st.CurrentStep, *w, held)
			}
		}
	}
	// (a') no request is sent (header route) or copied (mirror) to a
	// canary that is not Ready, nor outside a running release.
	if d.HeaderRoute != nil || d.MirrorPercent > 0 {
		if !isReady(obs.Target, st.CanaryRevision, thresholdOr100(c.Spec.CanaryReadyThreshold)) {
			fail("(a') header route %v / mirror %d%% on a canary not Ready at %q: %+v", d.HeaderRoute != nil, d.MirrorPercent, st.CanaryRevision, obs.Target)
		}
		if !runningPhases[st.Phase] {
			fail("(a') header route %v / mirror %d%% in phase %s", d.HeaderRoute != nil, d.MirrorPercent, st.Phase)
		}
	}
	if d.MirrorPercent < 0 || d.MirrorPercent > 100 {
		fail("(c) mirror %d%% out of 0..100", d.MirrorPercent)
	}
	if st.CanaryWeight < 0 || st.CanaryWeight > 100 {
		fail("(c) status.canaryWeight %d out of 0..100", st.CanaryWeight)
	}
	// With an autoscaler Sluice never fights it: a copy's count is asked
	// for only to scale it up from zero, to scale the canary down at the
	// end, or to raise the canary to the primary's count before it takes
	// all traffic.
	if a := obs.Autoscaler; a != nil {
		if p := d.PrimaryReplicas; p != nil && obs.Primary.Exists && obs.Primary.Replicas > 0 {
			fail("autoscaled primary (%d replicas) asked for %d replicas", obs.Primary.Replicas, *p)
		}
		if tr := d.TargetReplicas; tr != nil && *tr > 0 && obs.Target.Replicas > 0 &&
			!(a.RaiseBeforeSwitch && *tr == obs.Primary.Replicas && *tr > obs.Target.Replicas) {
			fail("autoscaled canary (%d replicas) asked for %d replicas (primary %d)", obs.Target.Replicas, *tr, obs.Primary.Replicas)
		}
	}
	// (d) never scale down the copy that may carry traffic: the target goes
	// to 0 only once the router is read back carrying 0% canary, with no
	// write pending.
	if tr := d.TargetReplicas; tr != nil && *tr == 0 {
		if obs.Route.Exists && obs.Route.CanaryWeight > 0 {
			fail("(d) target scaled to 0 while the route carries canary weight %d", obs.Route.CanaryWeight)
		}
		if !obs.Route.Exists || obs.Route.Pending != "" {
			fail("(d) target scaled to 0 before the route was read back at 0%% (route %+v)", obs.Route)
		}
		if obs.Route.Settle > 0 {
			if rs := st.RouteSettling; rs == nil || rs.CanaryWeight != 0 || in.Now.Before(rs.Since.Add(obs.Route.Settle)) {
				fail("(d) target scaled to 0 before the 0%% route settled for %s (settling %+v)", obs.Route.Settle, st.RouteSettling)
			}
		}
	}
	if st.Phase == v1alpha1.PhaseWaiting && d.TargetReplicas != nil && *d.TargetReplicas != 0 {
		fail("Waiting for confirm-rollout, yet the canary is scaled to %d", *d.TargetReplicas)
	}
	if st.Phase == v1alpha1.PhaseWaiting && c.Status.Phase != v1alpha1.PhaseWaiting && !engine.HasHooks(c, v1alpha1.WebhookConfirmRollout) {
		fail("phase Waiting without confirm-rollout webhooks")
	}
	// The primary's template changes only while it carries no traffic:
	// the route is read back at 100% canary (or the canary cannot take it,
	// or the primary is being created).
	if d.PrimaryFromTarget && obs.Primary.Exists && obs.Target.Exists && obs.Primary.Revision != obs.Target.Revision &&
		st.Phase == v1alpha1.PhasePromoting && isReady(obs.Target, st.CanaryRevision, thresholdOr100(c.Spec.CanaryReadyThreshold)) &&
		(!obs.Route.Exists || obs.Route.CanaryWeight != 100 || obs.Route.Pending != "") {
		fail("primary template replaced while the route carries %d%% canary (pending %q)", obs.Route.CanaryWeight, obs.Route.Pending)
	}
	if d.RestorePrimary && (!obs.StableRecord || d.PrimaryFromTarget) {
		fail("restore asked without a stable record, or together with the target's template")
	}
	if d.TargetReplicas != nil && !obs.Target.Exists {
		fail("asks to scale a target that does not exist")
	}
	if d.PrimaryFromTarget {
		if !obs.Target.Exists {
			fail("primary from a target that does not exist")
		}
		switch st.Phase {
		case v1alpha1.PhaseInitializing, v1alpha1.PhaseInitialized, v1alpha1.PhasePromoting,
			v1alpha1.PhaseFinalising, v1alpha1.PhaseSucceeded:
		default:
			fail("primary takes the target's template in phase %s", st.Phase)
		}
	}
	if out.RequeueAfter < 0 {
		fail("negative requeueAfter %v", out.RequeueAfter)
	}

	if c.Spec.Suspend {
		if !reflect.DeepEqual(d, engine.Desired{}) || len(out.Events) != 0 || out.RequeueAfter != 0 {
			fail("suspended Canary acts: desired %s, events %v, requeue %v", fmtDesired(d), fmtEvents(out.Events), out.RequeueAfter)
		}
		if st.Phase != c.Status.Phase || st.LastHandledRequest != c.Status.LastHandledRequest ||
			st.CurrentStep != c.Status.CurrentStep || st.CanaryWeight != c.Status.CanaryWeight {
			fail("suspended Canary's status moved: phase %q->%q step %d->%d", c.Status.Phase, st.Phase, c.Status.CurrentStep, st.CurrentStep)
		}
	} else {
		if !validPhases[st.Phase] {
			fail("phase %q is not a phase", st.Phase)
		}
		if raw := strings.TrimSpace(c.Annotations[v1alpha1.RequestAnnotation]); raw != "" && st.LastHandledRequest != raw {
			fail("request %q not recorded as handled (lastHandledRequest %q)", raw, st.LastHandledRequest)
		}
		// (A Blocked configuration returns before the pause is looked at.)
		if st.Phase == v1alpha1.PhasePaused && !c.Spec.Paused && obs.Blocked == "" {
			fail("phase Paused without spec.paused")
		}
	}
	newRequest := func() bool {
		raw := strings.TrimSpace(c.Annotations[v1alpha1.RequestAnnotation])
		return raw != "" && raw != c.Status.LastHandledRequest
	}
	// A paused release does not move traffic forward: without a request and
	// with the same revision, the weight held is at most the one the steps
	// before the current one set.
	if c.Spec.Paused && !c.Spec.Suspend && runningPhases[c.Status.Phase] && !newRequest() &&
		obs.Target.Revision == c.Status.CanaryRevision && st.Phase == v1alpha1.PhasePaused && d.CanaryWeight != nil {
		if held := engine.WeightAt(steps, int(c.Status.CurrentStep)-1); *d.CanaryWeight > held && !keptAhead(steps, c.Status.CurrentStep, obs, *d.CanaryWeight) {
			fail("paused at step %d raises the canary weight to %d (steps before it set %d)", c.Status.CurrentStep, *d.CanaryWeight, held)
		}
	}
	if int(c.Status.CurrentStep) <= len(steps) && (st.CurrentStep < 0 || int(st.CurrentStep) > len(steps)) {
		fail("currentStep %d out of 0..%d", st.CurrentStep, len(steps))
	}
	if st.Steps != int32(len(steps)) {
		fail("status.steps %d, want %d", st.Steps, len(steps))
	}

	// Conditions.
	for _, typ := range condTypes {
		if meta.FindStatusCondition(st.Conditions, typ) == nil {
			fail("condition %s missing", typ)
		}
	}
	if meta.IsStatusConditionTrue(st.Conditions, v1alpha1.ConditionReady) &&
		st.Phase != v1alpha1.PhaseInitialized && st.Phase != v1alpha1.PhaseSucceeded {
		fail("Ready=True in phase %s", st.Phase)
	}
	if st.Phase == v1alpha1.PhaseFailed && !meta.IsStatusConditionTrue(st.Conditions, v1alpha1.ConditionStalled) {
		fail("Failed without Stalled=True")
	}
	for _, e := range out.Events {
		if e.Reason == "" || e.Message == "" {
			fail("event without reason or message: %+v", e)
		}
		if e.Reason == "RequestIgnored" && !newRequest() {
			fail("RequestIgnored without a new request")
		}
	}
	return bad
}

// Random inputs.

var (
	simRevs  = []string{"r1", "r2", "r3"}
	requests = []string{"promote", "promote/1", "promote-full", "abort", "abort/2", "retry", "retry/3", "frobnicate", " promote/4 "}
	phases   = []v1alpha1.CanaryPhase{"", v1alpha1.PhaseInitializing, v1alpha1.PhaseInitialized, v1alpha1.PhaseProgressing,
		v1alpha1.PhasePaused, v1alpha1.PhaseWaitingPromotion, v1alpha1.PhasePromoting, v1alpha1.PhaseFinalising,
		v1alpha1.PhaseSucceeded, v1alpha1.PhaseFailed, v1alpha1.PhaseWaiting, "Bogus"}
)

func pick[T any](r *rand.Rand, xs ...T) T { return xs[r.Intn(len(xs))] }

func randomStrategy(r *rand.Rand) v1alpha1.Strategy {
	interval := func() *metav1.Duration {
		if r.Intn(5) == 0 {
			return nil
		}
		return mdur(time.Duration(r.Intn(180)) * time.Second)
	}
	maxWeight := func() *int32 {
		if r.Intn(2) == 0 {
			return nil
		}
		return i32(1 + r.Int31n(100))
	}
	switch r.Intn(6) {
	case 5:
		bg := &v1alpha1.BlueGreen{ScaleDownDelay: mdur(time.Duration(r.Intn(120)) * time.Second)}
		if r.Intn(2) == 0 {
			bg.PreviewReplicaCount = i32(1 + r.Int31n(4))
		}
		switch r.Intn(3) {
		case 0:
			bg.AutoPromotionEnabled = new(false)
		case 1:
			bg.AutoPromotionSeconds = i32(r.Int31n(300))
		}
		return v1alpha1.Strategy{BlueGreen: bg}
	case 0:
		return v1alpha1.Strategy{StepWeight: i32(1 + r.Int31n(60)), MaxWeight: maxWeight(), Interval: interval()}
	case 1:
		var ws []int32
		w := int32(0)
		for n := 1 + r.Intn(6); len(ws) < n; {
			w += 1 + r.Int31n(30)
			if w > 100 {
				break
			}
			ws = append(ws, w)
		}
		return v1alpha1.Strategy{StepWeights: ws, MaxWeight: maxWeight(), Interval: interval()}
	default:
		var steps []v1alpha1.Step
		w := int32(0)
		for n := 1 + r.Intn(8); len(steps) < n; {
			switch r.Intn(7) {
			case 5:
				v := "yes"
				steps = append(steps, v1alpha1.Step{SetHeaderRoute: &v1alpha1.HeaderRoute{Match: []v1alpha1.HeaderMatch{{Name: "X-Canary", Exact: &v}}}})
			case 6:
				steps = append(steps, v1alpha1.Step{SetMirror: &v1alpha1.MirrorStep{Percent: r.Int31n(101)}})
			case 0, 1:
				w += r.Int31n(40)
				if w > 100 {
					w = 100
				}
				steps = append(steps, sw(w))
			case 2, 3:
				steps = append(steps, pause(time.Duration(r.Intn(600))*time.Second))
			default:
				steps = append(steps, hold())
			}
		}
		return v1alpha1.Strategy{Steps: steps}
	}
}

func randomTime(r *rand.Rand, now time.Time) *metav1.Time {
	if r.Intn(10) == 0 {
		return nil
	}
	t := metav1.NewTime(now.Add(-time.Duration(r.Intn(40*60)) * time.Second).Truncate(time.Second))
	return &t
}

// randomCanary makes a Canary with a random spec and a random status of a
// random phase. Statuses are "realistic": a stable revision is set in every
// phase past initialization.
func randomCanary(r *rand.Rand, now time.Time) *v1alpha1.Canary {
	c := newCanary()
	c.Generation = 1 + r.Int63n(20)
	c.Spec.Strategy = randomStrategy(r)
	steps := engine.Steps(c.Spec.Strategy)
	if r.Intn(3) == 0 {
		c.Spec.PrimaryReadyThreshold = i32(1 + r.Int31n(100))
	}
	if r.Intn(3) == 0 {
		c.Spec.CanaryReadyThreshold = i32(1 + r.Int31n(100))
	}
	if r.Intn(3) == 0 {
		c.Spec.ProgressDeadline = mdur(time.Duration(1+r.Intn(30)) * time.Minute)
	}
	c.Spec.Paused = r.Intn(5) == 0
	c.Spec.Suspend = r.Intn(20) == 0

	randomHooks(r, c)
	if r.Intn(3) == 0 {
		c.Status.Verification = &v1alpha1.VerificationStatus{Revision: pick(r, simRevs...),
			State:     pick(r, v1alpha1.VerificationVerifying, v1alpha1.VerificationVerified, v1alpha1.VerificationFailed),
			StartedAt: randomTime(r, now), Mismatches: r.Int31n(5), LastMismatchTime: randomTime(r, now)}
		if c.Status.Verification.StartedAt == nil {
			c.Status.Verification.StartedAt = &metav1.Time{Time: now}
		}
	}

	st := &c.Status
	st.Phase = pick(r, phases...)
	st.Reason = pick(r, "", "SettingWeight", "Promoting", "Aborted", "Initialized")
	switch st.Phase {
	case "":
	case v1alpha1.PhaseInitializing:
		st.CanaryRevision = pick(r, simRevs...)
	default:
		st.StableRevision = pick(r, simRevs...)
		st.CanaryRevision = pick(r, simRevs...)
	}
	st.CurrentStep = int32(r.Intn(len(steps) + 1))
	st.CanaryWeight = pick(r, 0, engine.WeightAt(steps, int(st.CurrentStep)), engine.WeightAt(steps, int(st.CurrentStep)-1), r.Int31n(101))
	if t := randomTime(r, now); t != nil {
		st.StepStartedAt = v1alpha1.NewTimestamp(t.Time)
	}
	st.LastProgressTime = randomTime(r, now)
	st.LastTransitionTime = randomTime(r, now)
	if r.Intn(2) == 0 {
		st.LastHandledRequest = strings.TrimSpace(pick(r, requests...))
	}
	if r.Intn(2) == 0 {
		raw := pick(r, requests...)
		if r.Intn(3) == 0 && st.LastHandledRequest != "" {
			raw = st.LastHandledRequest
		}
		c.Annotations = map[string]string{v1alpha1.RequestAnnotation: raw}
	}
	return c
}

func randomWorkload(r *rand.Rand, likely string) engine.Workload {
	if r.Intn(12) == 0 {
		return engine.Workload{}
	}
	rev := likely
	if rev == "" || r.Intn(4) == 0 {
		rev = pick(r, simRevs...)
	}
	reps := r.Int31n(5)
	w := engine.Workload{Exists: true, Revision: rev, Replicas: reps, Current: r.Intn(8) != 0}
	if r.Intn(2) == 0 {
		w.UpdatedReplicas, w.AvailableReplicas = reps, reps
	} else {
		w.UpdatedReplicas, w.AvailableReplicas = r.Int31n(reps+1), r.Int31n(reps+1)
	}
	if r.Intn(10) == 0 {
		w.Problem = "ProgressDeadlineExceeded: ReplicaSet has timed out progressing"
	}
	w.StatusReplicas = w.UpdatedReplicas
	if r.Intn(6) == 0 {
		w.StatusReplicas += 1 + r.Int31n(2) // old pods still running
	}
	return w
}

func releaseReplicas(target, primary engine.Workload) int32 {
	switch {
	case target.Exists && target.Replicas > 0:
		return target.Replicas
	case primary.Exists && primary.Replicas > 0:
		return primary.Replicas
	}
	return 1
}

// randomObs makes observations loosely correlated with the status, so that
// the interesting branches (copies Ready at the right revision, the route
// at the weight asked) are taken often.
func randomObs(r *rand.Rand, c *v1alpha1.Canary) engine.Observations {
	st := c.Status
	steps := engine.Steps(c.Spec.Strategy)
	o := engine.Observations{
		Target:  randomWorkload(r, st.CanaryRevision),
		Primary: randomWorkload(r, pick(r, st.StableRevision, st.StableRevision, st.CanaryRevision)),
	}
	o.ReleaseReplicas = releaseReplicas(o.Target, o.Primary)
	if r.Intn(7) != 0 {
		o.Route = engine.Route{Exists: true, CanaryWeight: pick(r, 0, st.CanaryWeight,
			engine.WeightAt(steps, int(st.CurrentStep)), r.Int31n(101))}
		if r.Intn(7) == 0 {
			o.Route.Pending = "Gateway gw has not accepted the route yet"
		}
		if r.Intn(4) == 0 {
			o.Route.Settle = time.Duration(r.Intn(10)) * time.Second
		}
		if r.Intn(3) == 0 {
			o.Route.MirrorPercent = r.Int31n(101)
			o.Route.HeaderRoute = pick(r, "", "X-Canary=yes")
		}
	}
	if r.Intn(10) == 0 {
		o.Blocked, o.BlockedReason = "Service apps/auth-proxy not found", "BackendNotFound"
	}
	if r.Intn(4) == 0 {
		o.Autoscaler = &engine.Autoscaling{CanaryStart: 1 + r.Int31n(5), RaiseBeforeSwitch: r.Intn(2) == 0}
		o.Target.ReadyFloor, o.Primary.ReadyFloor = r.Int31n(4), r.Int31n(4)
	}
	randomHookAnswers(r, c, &o)
	o.StableRecord = r.Intn(3) != 0
	if r.Intn(6) == 0 {
		o.Drift, o.DriftField = "container app image example.com/x:9, recorded example.com/x:2", "image"
	}
	return o
}

// randomHooks gives a third of the Canaries some webhooks, and their status
// a gate state.
func randomHooks(r *rand.Rand, c *v1alpha1.Canary) {
	if r.Intn(3) != 0 {
		return
	}
	c.Spec.Analysis = &v1alpha1.Analysis{Interval: mdur(time.Duration(1+r.Intn(120)) * time.Second), Threshold: i32(1 + r.Int31n(3))}
	for i, typ := range gateTypes {
		if r.Intn(2) == 0 {
			c.Spec.Analysis.Webhooks = append(c.Spec.Analysis.Webhooks, v1alpha1.Webhook{Name: fmt.Sprintf("h%d", i), Type: typ, URL: "http://h/"})
		}
	}
	c.Status.PreRolloutPassed = r.Intn(2) == 0
	if r.Intn(2) == 0 {
		c.Status.Gate = &v1alpha1.GateStatus{Type: pick(r, gateTypes...), Point: pick(r, "rollout", "pre-rollout", "promotion", "step 0", "step 1"),
			Open: r.Intn(2) == 0, LastAnswer: randomTime(r, t0)}
	}
}

// randomHookAnswers answers some gates, for the release's revision or
// another, passed or not.
func randomHookAnswers(r *rand.Rand, c *v1alpha1.Canary, o *engine.Observations) {
	if c.Spec.Analysis == nil || r.Intn(2) == 0 {
		return
	}
	o.Hooks = map[v1alpha1.WebhookType]engine.HookResult{}
	for _, typ := range gateTypes {
		if r.Intn(2) == 0 {
			continue
		}
		rev := pick(r, c.Status.CanaryRevision, c.Status.CanaryRevision, pick(r, simRevs...))
		done := t0.Add(-time.Duration(r.Intn(600)) * time.Second)
		o.Hooks[typ] = engine.HookResult{Key: rev + "/" + pick(r, "rollout", "pre-rollout", "promotion", "step 0", "step 1", "step 2"),
			Since: done.Add(-time.Duration(r.Intn(60)) * time.Second), Done: done, Passed: r.Intn(2) == 0, Message: "answered 403"}
	}
}

func describeInput(in engine.Input) string {
	c := in.Canary
	return fmt.Sprintf("steps=[%s] paused=%v suspend=%v thresholds=%v/%v request=%q\nstatus=%+v\nobs=%+v",
		fmtSteps(engine.Steps(c.Spec.Strategy)), c.Spec.Paused, c.Spec.Suspend,
		c.Spec.PrimaryReadyThreshold, c.Spec.CanaryReadyThreshold,
		c.Annotations[v1alpha1.RequestAnnotation], c.Status, in.Obs)
}

// decideChecked runs Decide and reports a panic, a modified input, or a
// different answer to the same question, along with the invariants.
func decideChecked(in engine.Input) (out engine.Output, bad []string) {
	before := in.Canary.DeepCopy()
	defer func() {
		if p := recover(); p != nil {
			bad = append(bad, fmt.Sprintf("Decide panicked: %v", p))
		}
	}()
	out = engine.Decide(in)
	if !equality.Semantic.DeepEqual(before, in.Canary) {
		bad = append(bad, "Decide modified its input Canary")
	}
	if again := engine.Decide(in); !reflect.DeepEqual(out, again) {
		bad = append(bad, "Decide is not deterministic")
	}
	return out, append(bad, invariants(in, out)...)
}

// TestPropertyRandomStates checks the invariants on random specs, statuses
// and observations.
func TestPropertyRandomStates(t *testing.T) {
	r := rand.New(rand.NewSource(20260101))
	iterations := 30000
	if testing.Short() {
		iterations = 3000
	}
	failures := 0
	for i := 0; i < iterations && failures < 5; i++ {
		now := t0.Add(time.Duration(r.Intn(3600)) * time.Second)
		c := randomCanary(r, now)
		in := engine.Input{Canary: c, Obs: randomObs(r, c), Now: now}
		out, bad := decideChecked(in)
		if len(bad) > 0 {
			failures++
			t.Errorf("iteration %d:\n  %s\n%s\nout: phase=%s reason=%s desired=%s\n", i, strings.Join(bad, "\n  "),
				describeInput(in), out.Status.Phase, out.Status.Reason, fmtDesired(out.Desired))
		}
	}
}

// TestPropertyRandomWalks feeds each status back into the next decision
// under random observations, so the states checked are the ones the engine
// itself reaches.
func TestPropertyRandomWalks(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	walks := 2000
	if testing.Short() {
		walks = 200
	}
	failures := 0
	for i := 0; i < walks && failures < 5; i++ {
		now := t0
		c := newCanary()
		c.Spec.Strategy = randomStrategy(r)
		if r.Intn(3) == 0 {
			c.Spec.CanaryReadyThreshold = i32(1 + r.Int31n(100))
		}
		for tick := 0; tick < 40 && failures < 5; tick++ {
			c.Spec.Paused = r.Intn(6) == 0
			c.Spec.Suspend = r.Intn(30) == 0
			if r.Intn(8) == 0 {
				c.Annotations = map[string]string{v1alpha1.RequestAnnotation: fmt.Sprintf("%s/%d", pick(r, "promote", "promote-full", "abort", "retry"), tick)}
			}
			in := engine.Input{Canary: c.DeepCopy(), Obs: randomObs(r, c), Now: now}
			out, bad := decideChecked(in)
			if len(bad) > 0 {
				failures++
				t.Errorf("walk %d tick %d:\n  %s\n%s\n", i, tick, strings.Join(bad, "\n  "), describeInput(in))
			}
			c.Status = out.Status
			now = now.Add(time.Duration(r.Intn(120)) * time.Second)
		}
	}
}

// The simulation: a tiny in-memory cluster the engine's Desired is applied
// to, tick after tick, with a controller that may die at any instant.

type simDeploy struct {
	exists   bool
	rev      string
	replicas int32
	readyAt  int // first tick at which status reports the rollout done
	// before is how many pods of rev were available when a change of the
	// replica count alone started: they stay available meanwhile.
	before int32
	floor  int32 // the autoscaler's minimum, 0 without one
}

// scale changes the replica count alone: the pods that run keep running.
func (d *simDeploy) scale(n int32, tick, lag int) {
	d.before = min(d.available(tick), n)
	d.replicas, d.readyAt = n, tick+lag
}

func (d simDeploy) available(tick int) int32 {
	if tick >= d.readyAt {
		return d.replicas
	}
	return d.before
}

func (d simDeploy) observe(tick int) engine.Workload {
	if !d.exists {
		return engine.Workload{}
	}
	w := engine.Workload{Exists: true, Revision: d.rev, Replicas: d.replicas, Current: true, ReadyFloor: d.floor}
	w.UpdatedReplicas = d.available(tick)
	w.AvailableReplicas = w.UpdatedReplicas
	return w
}

type simWorld struct {
	tick            int
	lag             func() int // ticks a change takes to be done (>= 1)
	target, primary simDeploy
	services        bool
	routeCreated    bool
	routeWant       int32   // last weight written
	routeCarried    int32   // weight the router carries
	routeAt         int     // tick from which the last write is carried
	carried         []int32 // history of the weights carried
	// autoscaled: both copies have an autoscaler (the test moves their
	// counts).
	autoscaled bool
}

func (w *simWorld) observe() engine.Observations {
	if w.routeCreated && w.tick >= w.routeAt && (w.routeCarried != w.routeWant || len(w.carried) == 0) {
		w.routeCarried = w.routeWant
		w.carried = append(w.carried, w.routeCarried)
	}
	o := engine.Observations{Target: w.target.observe(w.tick), Primary: w.primary.observe(w.tick)}
	o.ReleaseReplicas = releaseReplicas(o.Target, o.Primary)
	if w.autoscaled {
		// As the controller computes them: the primary's count is where
		// the canary starts, and what it is raised to.
		if o.Primary.Exists && o.Primary.Replicas > 0 {
			o.ReleaseReplicas = o.Primary.Replicas
		}
		o.Autoscaler = &engine.Autoscaling{CanaryStart: o.ReleaseReplicas, RaiseBeforeSwitch: true}
	}
	if w.routeCreated && w.tick >= w.routeAt {
		o.Route = engine.Route{Exists: true, CanaryWeight: w.routeCarried}
	} else if w.routeCreated && len(w.carried) > 0 {
		o.Route = engine.Route{Exists: true, CanaryWeight: w.routeCarried, Pending: "Gateway has not accepted the last write"}
	}
	return o
}

// inFlux: something will change by itself (and a watch would fire).
func (w *simWorld) inFlux() bool {
	return w.target.readyAt > w.tick || w.primary.readyAt > w.tick || (w.routeCreated && w.routeAt > w.tick)
}

// apply applies the first ops operations of d, in the order a controller
// would: primary, Services, route, target scale. It reports a change.
func (w *simWorld) apply(d engine.Desired, ops int) bool {
	changed := false
	for op := 0; op < ops; op++ {
		switch op {
		case 0:
			if d.PrimaryFromTarget && w.target.exists && (!w.primary.exists || w.primary.rev != w.target.rev) {
				w.primary.exists, w.primary.rev = true, w.target.rev
				w.primary.readyAt, w.primary.before = w.tick+w.lag(), 0
				changed = true
			}
			if p := d.PrimaryReplicas; p != nil && w.primary.exists && w.primary.replicas != *p {
				w.primary.scale(*p, w.tick, w.lag())
				changed = true
			}
		case 1:
			if d.Services && !w.services {
				w.services, changed = true, true
			}
		case 2:
			if cw := d.CanaryWeight; cw != nil && (!w.routeCreated || w.routeWant != *cw) {
				w.routeCreated, w.routeWant = true, *cw
				w.routeAt = w.tick + w.lag()
				changed = true
			}
		case 3:
			if tr := d.TargetReplicas; tr != nil && w.target.exists && w.target.replicas != *tr {
				w.target.scale(*tr, w.tick, w.lag())
				changed = true
			}
		}
	}
	return changed
}

// pushRevision is the user changing the target's template.
func (w *simWorld) pushRevision(rev string) {
	w.target.rev = rev
	w.target.readyAt, w.target.before = w.tick+w.lag(), 0
}

type crash int

const (
	noCrash        crash = iota
	lostStatus           // Desired applied, the controller died before writing status
	lostDesired          // status written, Desired not applied
	partial              // part of Desired applied, status not written
	partialWritten       // part of Desired applied (a write failed), status written: what the controller does on an apply error
)

func (c crash) String() string {
	return [...]string{"", " CRASH(status lost)", " CRASH(desired lost)", " CRASH(partial apply)", " APPLY ERROR(partial, status written)"}[c]
}

type sim struct {
	t      *testing.T
	r      *rand.Rand
	c      *v1alpha1.Canary
	w      *simWorld
	now    time.Time
	crashP float64
	trace  []string
	failed bool
	// released: when the current release's revision was pushed
	pushedAt int
	// hold makes the sim keep statuses the controller's batcher would
	// (statusbatch.Holdable) in memory, as the controller does; a crash loses
	// them. held is the status kept; writes counts persisted writes.
	hold   bool
	held   *v1alpha1.CanaryStatus
	writes int
}

func newSim(t *testing.T, seed int64, strategy v1alpha1.Strategy, crashP float64, maxLag int) *sim {
	r := rand.New(rand.NewSource(seed))
	s := &sim{t: t, r: r, now: t0, crashP: crashP}
	s.w = &simWorld{lag: func() int { return 1 + r.Intn(maxLag) }}
	s.w.target = simDeploy{exists: true, rev: "r1", replicas: 3}
	s.c = newCanary()
	s.c.Generation = 1
	s.c.Spec.Strategy = strategy
	return s
}

func (s *sim) fail(format string, args ...any) {
	s.failed = true
	start := 0
	if len(s.trace) > 80 {
		start = len(s.trace) - 80
	}
	s.t.Errorf(format+"\ntrace (last ticks):\n%s", append(args, strings.Join(s.trace[start:], "\n"))...)
}

// run reconciles until nothing changes and nothing is due (or maxTicks).
// script is the user: it may change the target, the spec or annotations;
// it reports whether it did.
func (s *sim) run(maxTicks int, script func(s *sim, quiet bool) bool) {
	for n := 0; n < maxTicks && !s.failed; n++ {
		if script != nil {
			script(s, false)
		}
		in := engine.Input{Canary: s.c.DeepCopy(), Obs: s.w.observe(), Now: s.now}
		if s.held != nil {
			in.Canary.Status = *s.held.DeepCopy()
		}
		out, bad := decideChecked(in)
		if len(bad) > 0 {
			s.fail("tick %d: %s\n%s", s.w.tick, strings.Join(bad, "; "), describeInput(in))
			return
		}
		mode := noCrash
		if s.r.Float64() < s.crashP {
			mode = crash(1 + s.r.Intn(4))
		}
		ops, write := 4, true
		switch mode {
		case lostStatus:
			write = false
		case lostDesired:
			ops = 0
		case partial:
			ops, write = s.r.Intn(4), false
		case partialWritten:
			ops = s.r.Intn(4)
		}
		carried := s.w.routeCarried
		changed := s.w.apply(out.Desired, ops)
		if s.w.target.replicas == 0 && carried > 0 {
			s.fail("tick %d: target scaled to 0 while the router carries %d%% to it", s.w.tick, carried)
			return
		}
		statusChanged := !equality.Semantic.DeepEqual(out.Status, in.Canary.Status)
		unwritten := !equality.Semantic.DeepEqual(out.Status, s.c.Status)
		switch {
		case s.hold && statusbatch.Holdable(s.c.Status, out.Status, out) && mode == noCrash && unwritten:
			s.held = out.Status.DeepCopy()
		case write && unwritten:
			s.held = nil
			s.c.Status = out.Status
			s.writes++
		default:
			s.held = nil // written already, or lost with a crash
		}
		s.trace = append(s.trace, fmt.Sprintf("t=%d +%v%s  decided %s/%s step=%d w=%d -> %s  requeue=%v  events=%v | persisted %s step=%d | world tgt=%s×%d(ready@%d) pri=%s×%d(ready@%d) route want=%d carried=%d(@%d)",
			s.w.tick, s.now.Sub(t0), mode, out.Status.Phase, out.Status.Reason, out.Status.CurrentStep, out.Status.CanaryWeight,
			fmtDesired(out.Desired), out.RequeueAfter, fmtEvents(out.Events), s.c.Status.Phase, s.c.Status.CurrentStep,
			s.w.target.rev, s.w.target.replicas, s.w.target.readyAt, s.w.primary.rev, s.w.primary.replicas, s.w.primary.readyAt,
			s.w.routeWant, s.w.routeCarried, s.w.routeAt))

		dt := time.Second
		quiet := mode == noCrash && !changed && !(write && statusChanged) && !s.w.inFlux()
		if quiet {
			switch {
			case out.RequeueAfter > 0:
				dt = out.RequeueAfter
			case script != nil && script(s, true):
			default:
				return // nothing will happen any more
			}
		}
		s.now = s.now.Add(dt)
		s.w.tick++
	}
	if !s.failed {
		s.fail("no steady state after %d reconciles", maxTicks)
	}
}

// expectSucceeded: the release of rev is done and nothing is left over.
func (s *sim) expectSucceeded(rev string) {
	if s.failed {
		return
	}
	st := s.c.Status
	if st.Phase != v1alpha1.PhaseSucceeded || st.StableRevision != rev || st.CanaryRevision != rev || st.CanaryWeight != 0 {
		s.fail("end status phase=%s stable=%s canary=%s weight=%d (%s: %s), want Succeeded, %s, weight 0",
			st.Phase, st.StableRevision, st.CanaryRevision, st.CanaryWeight, st.Reason, st.Message, rev)
		return
	}
	if !meta.IsStatusConditionTrue(st.Conditions, v1alpha1.ConditionReady) || meta.IsStatusConditionTrue(st.Conditions, v1alpha1.ConditionStalled) {
		s.fail("end conditions %s, want Ready and not Stalled", fmtConds(st))
	}
	s.expectWorld(rev, 0)
}

func (s *sim) expectWorld(primaryRev string, targetReplicas int32) {
	w := s.w
	if !w.primary.exists || w.primary.rev != primaryRev || w.primary.replicas != 3 || w.primary.readyAt > w.tick {
		s.fail("end primary %+v, want %s with 3 Ready replicas", w.primary, primaryRev)
	}
	if w.target.replicas != targetReplicas {
		s.fail("end target replicas %d, want %d", w.target.replicas, targetReplicas)
	}
	if !w.routeCreated || w.routeWant != 0 || w.routeCarried != 0 {
		s.fail("end route want=%d carried=%d, want all traffic on the primary", w.routeWant, w.routeCarried)
	}
	if !w.services {
		s.fail("Services never ensured")
	}
}

// initialize runs the Canary's creation to its steady state.
func (s *sim) initialize() {
	s.run(200, nil)
	if s.failed {
		return
	}
	if st := s.c.Status; st.Phase != v1alpha1.PhaseInitialized || st.StableRevision != "r1" {
		s.fail("after creation: phase %s stable %q (%s), want Initialized at r1", st.Phase, st.StableRevision, st.Message)
		return
	}
	s.expectWorld("r1", 0)
}

func (s *sim) release(rev string) {
	s.w.pushRevision(rev)
	s.pushedAt = s.w.tick
}

var simLayouts = []struct {
	name     string
	strategy v1alpha1.Strategy
}{
	{"ends with a pause", v1alpha1.Strategy{Steps: []v1alpha1.Step{sw(20), pause(3 * time.Second), sw(50), pause(5 * time.Second)}}},
	{"ends with a setWeight", v1alpha1.Strategy{Steps: []v1alpha1.Step{sw(10), pause(2 * time.Second), sw(40), pause(2 * time.Second), sw(70)}}},
	{"ends at 100%", v1alpha1.Strategy{Steps: []v1alpha1.Step{sw(30), pause(2 * time.Second), sw(100), pause(2 * time.Second)}}},
	{"shorthand", v1alpha1.Strategy{StepWeight: i32(25), Interval: mdur(2 * time.Second)}},
	{"blue/green", v1alpha1.Strategy{BlueGreen: &v1alpha1.BlueGreen{AutoPromotionSeconds: i32(3), ScaleDownDelay: mdur(5 * time.Second)}}},
	{"blue/green with a one-replica preview", v1alpha1.Strategy{BlueGreen: &v1alpha1.BlueGreen{PreviewReplicaCount: i32(1), ScaleDownDelay: mdur(2 * time.Second)}}},
}

// TestSimulationRelease: one clean release, every change taking one tick.
func TestSimulationRelease(t *testing.T) {
	s := newSim(t, 1, simLayouts[0].strategy, 0, 1)
	s.initialize()
	s.release("r2")
	s.run(200, nil)
	s.expectSucceeded("r2")
	if s.failed {
		return
	}
	// The router carried 0 (initialization), then each step's weight in
	// order, 100 while the primary was updated, then 0 again.
	if got := fmt.Sprint(s.w.carried); got != "[0 20 50 100 0]" {
		s.fail("weights carried %s, want [0 20 50 100 0]", got)
	}
	if s.now.Sub(t0) < 8*time.Second {
		s.fail("release took %v, less than its pauses (3s + 5s)", s.now.Sub(t0))
	}
}

// TestSimulationReleaseHoldsPauses checks pause lengths against the fake
// clock: the weight after a pause is written no sooner than the pause
// allows.
func TestSimulationReleaseHoldsPauses(t *testing.T) {
	steps := []v1alpha1.Step{sw(20), pause(30 * time.Second), sw(50), pause(time.Minute)}
	s := newSim(t, 1, v1alpha1.Strategy{Steps: steps}, 0, 1)
	s.initialize()
	s.release("r2")
	var at20, at50, at0 time.Time
	s.run(200, func(s *sim, quiet bool) bool {
		// record when each weight was first carried
		if n := len(s.w.carried); n > 0 {
			switch last := s.w.carried[n-1]; {
			case last == 20 && at20.IsZero():
				at20 = s.now
			case last == 50 && at50.IsZero():
				at50 = s.now
			case last == 0 && !at50.IsZero() && at0.IsZero():
				at0 = s.now
			}
		}
		return false
	})
	s.expectSucceeded("r2")
	if s.failed {
		return
	}
	if at20.IsZero() || at50.IsZero() || at0.IsZero() {
		t.Fatalf("weights not all seen: 20@%v 50@%v 0@%v", at20, at50, at0)
	}
	if d := at50.Sub(at20); d < 30*time.Second {
		t.Errorf("50%% carried %v after 20%%, want at least the 30s pause", d)
	}
	if d := at0.Sub(at50); d < time.Minute {
		t.Errorf("promotion %v after 50%%, want at least the 1m pause", d)
	}
}

// TestSimulationHeldStatus: with the statuses of weight steps in flight
// held in memory, as the controller does, a release ends the same, each
// weight step costs one status write instead of two, and the weights
// carried are the same.
func TestSimulationHeldStatus(t *testing.T) {
	for _, l := range simLayouts {
		t.Run(l.name, func(t *testing.T) {
			var writes [2]int
			var carried [2]string
			for i, hold := range []bool{false, true} {
				s := newSim(t, 1, l.strategy, 0, 1)
				s.hold = hold
				s.initialize()
				before := s.writes
				s.release("r2")
				s.run(400, nil)
				s.expectSucceeded("r2")
				if s.failed {
					return
				}
				writes[i], carried[i] = s.writes-before, fmt.Sprint(s.w.carried)
			}
			weightSteps := 0
			for _, st := range engine.Steps(l.strategy) {
				if st.SetWeight != nil {
					weightSteps++
				}
			}
			t.Logf("status writes of the release: %d without holding, %d with (%d weight steps)", writes[0], writes[1], weightSteps)
			if writes[1] > writes[0]-weightSteps {
				t.Errorf("status writes of the release: %d held, %d not; want at least one fewer per weight step (%d)", writes[1], writes[0], weightSteps)
			}
			if carried[0] != carried[1] {
				t.Errorf("weights carried %s with held statuses, %s without", carried[1], carried[0])
			}
		})
	}
}

// TestSimulationCrashes: the same release, with the controller dying at
// random instants, and changes taking 1 to 3 ticks, always ends the same;
// also when statuses are held in memory (and lost with each crash).
func TestSimulationCrashes(t *testing.T) {
	runs := 150
	if testing.Short() {
		runs = 20
	}
	for _, l := range simLayouts {
		t.Run(l.name, func(t *testing.T) {
			for seed := int64(1); seed <= int64(runs); seed++ {
				s := newSim(t, seed, l.strategy, 0.3, 3)
				s.hold = seed%2 == 0
				s.initialize()
				s.release("r2")
				s.run(400, nil)
				s.expectSucceeded("r2")
				if s.failed {
					t.Logf("seed %d", seed)
					return
				}
			}
		})
	}
}

// TestSimulationPromoteRequest: a pause without duration holds until a
// promote request, also across crashes.
func TestSimulationPromoteRequest(t *testing.T) {
	strategy := v1alpha1.Strategy{Steps: []v1alpha1.Step{sw(20), hold(), sw(60), pause(2 * time.Second)}}
	for seed := int64(1); seed <= 100; seed++ {
		crashP := 0.3
		if seed == 1 {
			crashP = 0
		}
		s := newSim(t, seed, strategy, crashP, 3)
		s.initialize()
		s.release("r2")
		requested := false
		s.run(400, func(s *sim, quiet bool) bool {
			// Promote only once the release sits at the hold with nothing
			// left to do and no requeue: it would wait there forever.
			if !requested && quiet {
				if s.c.Status.Phase != v1alpha1.PhaseWaitingPromotion || s.w.routeCarried != 20 {
					s.fail("idle in phase %s with %d%% carried, want WaitingPromotion at 20%%", s.c.Status.Phase, s.w.routeCarried)
					return false
				}
				request("promote/1")(s.c)
				requested = true
				return true
			}
			return false
		})
		if !requested && !s.failed {
			s.fail("never waited for promotion")
		}
		s.expectSucceeded("r2")
		if s.failed {
			t.Logf("seed %d", seed)
			return
		}
	}
}

// TestSimulationAbort: an abort at a random moment of the release ends
// Failed with all traffic on the unchanged primary and the canary scaled
// down, also across crashes; for a canary walk, and for blue/green
// releases (in the preview, at the switch, in the scale-down delay).
func TestSimulationAbort(t *testing.T) {
	layouts := []struct {
		name     string
		strategy v1alpha1.Strategy
	}{{"canary walk", v1alpha1.Strategy{Steps: []v1alpha1.Step{sw(20), pause(2 * time.Second), sw(40), hold()}}}}
	for _, l := range simLayouts {
		if l.strategy.BlueGreen != nil {
			layouts = append(layouts, l)
		}
	}
	for _, l := range layouts {
		t.Run(l.name, func(t *testing.T) {
			for seed := int64(1); seed <= 150; seed++ {
				crashP := 0.3
				if seed == 1 {
					crashP = 0
				}
				s := newSim(t, seed, l.strategy, crashP, 3)
				s.initialize()
				s.release("r2")
				aborted := false
				s.run(400, func(s *sim, quiet bool) bool {
					if aborted || !runningPhases[s.c.Status.Phase] {
						return false
					}
					// at a random tick, or at the latest when the release waits
					// for promotion or (blue/green) has switched
					last := s.c.Status.Phase == v1alpha1.PhaseWaitingPromotion ||
						(l.strategy.BlueGreen != nil && s.c.Status.CurrentStep == engine.BlueGreenDelayStep)
					if s.r.Intn(4) == 0 || last {
						request("abort/1")(s.c)
						aborted = true
						return true
					}
					return false
				})
				if s.failed {
					t.Logf("seed %d", seed)
					return
				}
				st := s.c.Status
				if !aborted || st.Phase != v1alpha1.PhaseFailed || st.Reason != "Aborted" || st.StableRevision != "r1" || st.CanaryRevision != "r2" || st.CanaryWeight != 0 {
					s.fail("seed %d: aborted=%v end status phase=%s (%s) stable=%s canary=%s weight=%d, want Failed/Aborted r1 r2 0",
						seed, aborted, st.Phase, st.Reason, st.StableRevision, st.CanaryRevision, st.CanaryWeight)
					return
				}
				s.expectWorld("r1", 0)
				if s.failed {
					t.Logf("seed %d", seed)
					return
				}
			}
		})
	}
}

// TestSimulationNewRevisionMidRelease: the user pushes r3 at a random
// moment after r2 (mid-release, during promotion or after it); r3 ends up
// released, also across crashes.
func TestSimulationNewRevisionMidRelease(t *testing.T) {
	for _, l := range simLayouts {
		t.Run(l.name, func(t *testing.T) {
			for seed := int64(1); seed <= 100; seed++ {
				s := newSim(t, seed, l.strategy, 0.3, 3)
				s.initialize()
				s.release("r2")
				pushed := false
				s.run(500, func(s *sim, quiet bool) bool {
					if !pushed && (s.r.Intn(12) == 0 || quiet) {
						s.release("r3")
						pushed = true
						return true
					}
					return false
				})
				s.expectSucceeded("r3")
				if s.failed {
					t.Logf("seed %d", seed)
					return
				}
			}
		})
	}
}

// TestSimulationPauseResume: spec.paused toggled at random moments never
// loses the release, and a paused release never moves traffic forward.
func TestSimulationPauseResume(t *testing.T) {
	for seed := int64(1); seed <= 100; seed++ {
		s := newSim(t, seed, simLayouts[0].strategy, 0.2, 2)
		s.initialize()
		s.release("r2")
		toggles := 0
		s.run(500, func(s *sim, quiet bool) bool {
			if s.c.Spec.Paused && (quiet || s.r.Intn(6) == 0) {
				s.c.Spec.Paused = false
				return true
			}
			if !s.c.Spec.Paused && toggles < 4 && s.r.Intn(8) == 0 {
				s.c.Spec.Paused = true
				toggles++
				return true
			}
			return false
		})
		s.expectSucceeded("r2")
		if s.failed {
			t.Logf("seed %d", seed)
			return
		}
	}
}

// TestSimulationAutoscaled: both copies have an autoscaler that changes
// their replica counts (2 to 6) at random moments while they run, each
// change taking 1 to 3 ticks. Releases (canary walks and blue/green) end
// promoted; Sluice never sets a count the autoscaler owns (an invariant
// checked at every decision), and the scale-ups never make the canary lose
// its traffic: the route never goes back to 0%% before the promotion.
func TestSimulationAutoscaled(t *testing.T) {
	for _, l := range simLayouts {
		t.Run(l.name, func(t *testing.T) {
			for seed := int64(1); seed <= 60; seed++ {
				s := newSim(t, seed, l.strategy, 0.2, 3)
				s.w.autoscaled = true
				s.w.target.floor, s.w.primary.floor = 2, 2
				s.initialize()
				s.release("r2")
				s.run(600, func(s *sim, quiet bool) bool {
					moved := false
					for _, d := range []*simDeploy{&s.w.target, &s.w.primary} {
						if d.exists && d.replicas > 0 && d.readyAt <= s.w.tick && s.r.Intn(6) == 0 {
							d.scale(2+s.r.Int31n(5), s.w.tick, s.w.lag())
							moved = true
						}
					}
					return moved && !quiet
				})
				st := s.c.Status
				if !s.failed && (st.Phase != v1alpha1.PhaseSucceeded || st.StableRevision != "r2") {
					s.fail("seed %d: end phase %s (%s: %s) stable %s, want Succeeded at r2", seed, st.Phase, st.Reason, st.Message, st.StableRevision)
				}
				if !s.failed && s.w.target.replicas != 0 {
					s.fail("seed %d: canary left at %d replicas", seed, s.w.target.replicas)
				}
				// Carried weights: 0, the steps' weights up to 100 in
				// order, then 0: never back to 0 in between.
				c := s.w.carried
				for i := 1; i+1 < len(c) && !s.failed; i++ {
					if c[i] < c[i-1] {
						s.fail("seed %d: weights carried %v went down mid-release", seed, c)
					}
				}
				if s.failed {
					t.Logf("seed %d", seed)
					return
				}
			}
		})
	}
}

// keptAhead says whether w is the weight the route carries already, above
// the steps before step current but not past the next weight step: a
// decision whose status was lost applied it, and keeping it raises
// nothing (going back would move traffic backwards).
func keptAhead(steps []v1alpha1.Step, current int32, obs engine.Observations, w int32) bool {
	if !obs.Route.Exists || obs.Route.CanaryWeight != w {
		return false
	}
	for i := int(current); i < len(steps); i++ {
		if next := steps[i].SetWeight; next != nil {
			return w <= *next
		}
	}
	return false
}
