package engine_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/engine"
)

// t0 is the fixed "now" of the table tests.
var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func i32(v int32) *int32 { return &v }

func mdur(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }

func ago(d time.Duration) *metav1.Time {
	t := metav1.NewTime(t0.Add(-d))
	return &t
}

// Steps.

func sw(w int32) v1alpha1.Step { return v1alpha1.Step{SetWeight: i32(w)} }

func pause(d time.Duration) v1alpha1.Step {
	return v1alpha1.Step{Pause: &v1alpha1.PauseStep{Duration: mdur(d)}}
}

// hold is a pause without a duration (until promoted).
func hold() v1alpha1.Step { return v1alpha1.Step{Pause: &v1alpha1.PauseStep{}} }

// stdSteps is the release most table rows run:
//
//	0 setWeight 20, 1 pause 1m, 2 setWeight 50, 3 pause (until promoted), 4 setWeight 80
func stdSteps() []v1alpha1.Step {
	return []v1alpha1.Step{sw(20), pause(time.Minute), sw(50), hold(), sw(80)}
}

// Canary builder.

type canaryOpt func(*v1alpha1.Canary)

func newCanary(opts ...canaryOpt) *v1alpha1.Canary {
	c := &v1alpha1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "apps", Generation: 7},
		Spec: v1alpha1.CanarySpec{
			TargetRef: v1alpha1.TargetRef{Name: "podinfo"},
			Service:   v1alpha1.ServiceSpec{Port: 80},
			Strategy:  v1alpha1.Strategy{Steps: stdSteps()},
		},
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// inPhase sets the phase and its reason, as a previous Decide left them.
func inPhase(p v1alpha1.CanaryPhase, reason string) canaryOpt {
	return func(c *v1alpha1.Canary) {
		c.Status.Phase = p
		c.Status.Reason = reason
		c.Status.Message = "previous message"
		c.Status.LastTransitionTime = ago(time.Hour)
	}
}

func revisions(stable, canary string) canaryOpt {
	return func(c *v1alpha1.Canary) { c.Status.StableRevision, c.Status.CanaryRevision = stable, canary }
}

func atStep(step, weight int32) canaryOpt {
	return func(c *v1alpha1.Canary) { c.Status.CurrentStep, c.Status.CanaryWeight = step, weight }
}

func stepStarted(d time.Duration) canaryOpt {
	return func(c *v1alpha1.Canary) { c.Status.StepStartedAt = v1alpha1.NewTimestamp(ago(d).Time) }
}

func lastProgress(d time.Duration) canaryOpt {
	return func(c *v1alpha1.Canary) { c.Status.LastProgressTime = ago(d) }
}

func request(raw string) canaryOpt {
	return func(c *v1alpha1.Canary) {
		if c.Annotations == nil {
			c.Annotations = map[string]string{}
		}
		c.Annotations[v1alpha1.RequestAnnotation] = raw
	}
}

func handled(raw string) canaryOpt {
	return func(c *v1alpha1.Canary) { c.Status.LastHandledRequest = raw }
}

func specPaused(c *v1alpha1.Canary) { c.Spec.Paused = true }

// waitingOn says the release was already waiting on reason (since
// lastProgressTime): the progress deadline keeps counting from then.
func waitingOn(reason string) canaryOpt {
	return func(c *v1alpha1.Canary) { c.Status.Reason = reason }
}

func specSuspend(c *v1alpha1.Canary) { c.Spec.Suspend = true }

// stalledOn says a previous decision already reported the Canary Stalled
// with this reason and message (its Warning Event was recorded then).
func stalledOn(reason, msg string) canaryOpt {
	return func(c *v1alpha1.Canary) {
		meta.SetStatusCondition(&c.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionStalled,
			Status: metav1.ConditionTrue, Reason: reason, Message: msg, LastTransitionTime: *ago(time.Minute)})
	}
}

func withSteps(steps ...v1alpha1.Step) canaryOpt {
	return func(c *v1alpha1.Canary) { c.Spec.Strategy = v1alpha1.Strategy{Steps: steps} }
}

func progressDeadline(d time.Duration) canaryOpt {
	return func(c *v1alpha1.Canary) { c.Spec.ProgressDeadline = mdur(d) }
}

func thresholds(primary, canary *int32) canaryOpt {
	return func(c *v1alpha1.Canary) {
		c.Spec.PrimaryReadyThreshold, c.Spec.CanaryReadyThreshold = primary, canary
	}
}

func all(opts ...canaryOpt) canaryOpt {
	return func(c *v1alpha1.Canary) {
		for _, o := range opts {
			o(c)
		}
	}
}

// Status shapes of the phases, as the engine itself leaves them.

func initialized() canaryOpt {
	return all(inPhase(v1alpha1.PhaseInitialized, "Initialized"), revisions("r1", "r1"))
}

// releasing is a release of r2 over a primary at r1, at the given step
// and weight, whose step started (and last progressed) 10s ago.
func releasing(step, weight int32) canaryOpt {
	return all(inPhase(v1alpha1.PhaseProgressing, "SettingWeight"), revisions("r1", "r2"),
		atStep(step, weight), stepStarted(10*time.Second), lastProgress(10*time.Second))
}

// Observations builder.

type obsOpt func(*engine.Observations)

func newObs(opts ...obsOpt) engine.Observations {
	o := engine.Observations{ReleaseReplicas: 3}
	for _, f := range opts {
		f(&o)
	}
	return o
}

func tgt(w engine.Workload) obsOpt { return func(o *engine.Observations) { o.Target = w } }
func pri(w engine.Workload) obsOpt { return func(o *engine.Observations) { o.Primary = w } }

// route: the router carries canary weight w.
func route(w int32) obsOpt {
	return func(o *engine.Observations) { o.Route = engine.Route{Exists: true, CanaryWeight: w} }
}

func routePending(w int32, why string) obsOpt {
	return func(o *engine.Observations) {
		o.Route = engine.Route{Exists: true, CanaryWeight: w, Pending: why}
	}
}

func blocked(reason, msg string) obsOpt {
	return func(o *engine.Observations) { o.Blocked, o.BlockedReason = msg, reason }
}

// ready is a Deployment of 3 replicas fully rolled out at rev.
func ready(rev string) engine.Workload {
	return engine.Workload{Exists: true, Revision: rev, Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3, Current: true}
}

// notReady is a Deployment of 3 replicas at rev with 1 available.
func notReady(rev string) engine.Workload {
	return engine.Workload{Exists: true, Revision: rev, Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 1, Current: true}
}

// scaledDown is a Deployment at rev scaled to 0.
func scaledDown(rev string) engine.Workload {
	return engine.Workload{Exists: true, Revision: rev, Replicas: 0, Current: true}
}

var missing = engine.Workload{}

// Rendering outputs for comparison.

// fmtDesired renders a Desired compactly: "fromTarget services primary=3
// target=0 weight=20"; "-" when nothing is asked.
func fmtDesired(d engine.Desired) string {
	var parts []string
	if d.PrimaryFromTarget {
		parts = append(parts, "fromTarget")
	}
	if d.RestorePrimary {
		parts = append(parts, "restore")
	}
	if d.Services {
		parts = append(parts, "services")
	}
	if d.PrimaryReplicas != nil {
		parts = append(parts, fmt.Sprintf("primary=%d", *d.PrimaryReplicas))
	}
	if d.TargetReplicas != nil {
		parts = append(parts, fmt.Sprintf("target=%d", *d.TargetReplicas))
	}
	if d.CanaryWeight != nil {
		parts = append(parts, fmt.Sprintf("weight=%d", *d.CanaryWeight))
	}
	if d.MirrorPercent != 0 {
		parts = append(parts, fmt.Sprintf("mirror=%d", d.MirrorPercent))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

func fmtEvents(evs []engine.Event) []string {
	out := []string{}
	for _, e := range evs {
		kind := "Normal"
		if e.Warning {
			kind = "Warning"
		}
		out = append(out, kind+" "+e.Reason)
	}
	return out
}

var condTypes = []string{v1alpha1.ConditionReady, v1alpha1.ConditionProgressing, v1alpha1.ConditionReconciling, v1alpha1.ConditionStalled}

// fmtConds renders the four conditions' statuses in a fixed order.
func fmtConds(st v1alpha1.CanaryStatus) string {
	var parts []string
	for _, typ := range condTypes {
		s := "<missing>"
		if c := meta.FindStatusCondition(st.Conditions, typ); c != nil {
			s = string(c.Status)
		}
		parts = append(parts, typ+"="+s)
	}
	return strings.Join(parts, " ")
}

const (
	cIdle       = "Ready=True Progressing=False Reconciling=False Stalled=False"
	cStalled    = "Ready=False Progressing=False Reconciling=False Stalled=True" // Failed, or a settled Canary that cannot settle
	cRunning    = "Ready=Unknown Progressing=True Reconciling=True Stalled=False"
	cRunStalled = "Ready=Unknown Progressing=True Reconciling=False Stalled=True"
	cSuspended  = "Ready=Unknown Progressing=False Reconciling=False Stalled=False"
)

// row is one transition: a Canary and observations in, what must come out.
type row struct {
	name   string
	canary *v1alpha1.Canary
	obs    engine.Observations
	want   want
}

type want struct {
	phase   v1alpha1.CanaryPhase
	reason  string
	msgHas  string // substring of status.message, when set
	desired string // fmtDesired
	events  []string
	anyEvts bool // do not check events
	requeue time.Duration
	step    int32
	weight  int32
	stable  string
	canary  string
	handled string
	conds   string
	stalled string // Stalled condition's reason, when set
	// stepStartedNow: status.stepStartedAt and lastProgressTime are t0.
	stepStartedNow bool
}

func runRows(t *testing.T, rows []row) {
	t.Helper()
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			checkRow(t, r)
		})
	}
}

func checkRow(t *testing.T, r row) {
	t.Helper()
	before := r.canary.DeepCopy()
	out := engine.Decide(engine.Input{Canary: r.canary, Obs: r.obs, Now: t0})
	if !equality.Semantic.DeepEqual(before, r.canary) {
		t.Errorf("Decide modified its input Canary")
	}
	st, w := out.Status, r.want
	if st.Phase != w.phase {
		t.Errorf("phase = %q, want %q", st.Phase, w.phase)
	}
	if st.Reason != w.reason {
		t.Errorf("reason = %q, want %q (message %q)", st.Reason, w.reason, st.Message)
	}
	if w.msgHas != "" && !strings.Contains(st.Message, w.msgHas) {
		t.Errorf("message = %q, want it to contain %q", st.Message, w.msgHas)
	}
	if got := fmtDesired(out.Desired); got != w.desired {
		t.Errorf("desired = %q, want %q", got, w.desired)
	}
	if !w.anyEvts {
		want := w.events
		if want == nil {
			want = []string{}
		}
		if got := fmtEvents(out.Events); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("events = %q, want %q", got, want)
		}
	}
	for _, e := range out.Events {
		if e.Reason == "" || e.Message == "" {
			t.Errorf("event without reason or message: %+v", e)
		}
	}
	if out.RequeueAfter != w.requeue {
		t.Errorf("requeueAfter = %v, want %v", out.RequeueAfter, w.requeue)
	}
	if st.CurrentStep != w.step {
		t.Errorf("currentStep = %d, want %d", st.CurrentStep, w.step)
	}
	if st.CanaryWeight != w.weight {
		t.Errorf("canaryWeight = %d, want %d", st.CanaryWeight, w.weight)
	}
	if st.StableRevision != w.stable {
		t.Errorf("stableRevision = %q, want %q", st.StableRevision, w.stable)
	}
	if st.CanaryRevision != w.canary {
		t.Errorf("canaryRevision = %q, want %q", st.CanaryRevision, w.canary)
	}
	if st.LastHandledRequest != w.handled {
		t.Errorf("lastHandledRequest = %q, want %q", st.LastHandledRequest, w.handled)
	}
	if got := fmtConds(st); got != w.conds {
		t.Errorf("conditions = %s\n                want %s", got, w.conds)
	}
	if w.stalled != "" {
		if c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionStalled); c == nil || c.Reason != w.stalled {
			t.Errorf("Stalled condition = %+v, want reason %q", c, w.stalled)
		}
	}
	if w.stepStartedNow {
		if st.StepStartedAt == nil || !st.StepStartedAt.Time.Equal(t0) {
			t.Errorf("stepStartedAt = %v, want %v", st.StepStartedAt, t0)
		}
		if st.LastProgressTime == nil || !st.LastProgressTime.Time.Equal(t0) {
			t.Errorf("lastProgressTime = %v, want %v", st.LastProgressTime, t0)
		}
	} else if before.Status.StepStartedAt != nil && !equality.Semantic.DeepEqual(st.StepStartedAt, before.Status.StepStartedAt) {
		t.Errorf("stepStartedAt = %v, want it unchanged (%v)", st.StepStartedAt, before.Status.StepStartedAt)
	}
	checkCommon(t, r.canary, before, out, t0)
}

// checkCommon asserts what holds for every output.
func checkCommon(t *testing.T, c, before *v1alpha1.Canary, out engine.Output, now time.Time) {
	t.Helper()
	st := out.Status
	if st.ObservedGeneration != c.Generation {
		t.Errorf("observedGeneration = %d, want %d", st.ObservedGeneration, c.Generation)
	}
	if n := int32(len(engine.Steps(c.Spec.Strategy))); st.Steps != n {
		t.Errorf("status.steps = %d, want %d", st.Steps, n)
	}
	if st.Phase != before.Status.Phase {
		if st.LastTransitionTime == nil || !st.LastTransitionTime.Time.Equal(now.Truncate(time.Second)) {
			t.Errorf("phase changed %q -> %q but lastTransitionTime = %v, want %v", before.Status.Phase, st.Phase, st.LastTransitionTime, now)
		}
	}
	for _, typ := range condTypes {
		cond := meta.FindStatusCondition(st.Conditions, typ)
		if cond == nil {
			t.Errorf("condition %s missing", typ)
			continue
		}
		if cond.ObservedGeneration != c.Generation {
			t.Errorf("condition %s observedGeneration = %d, want %d", typ, cond.ObservedGeneration, c.Generation)
		}
		if cond.Reason == "" {
			t.Errorf("condition %s has no reason", typ)
		}
	}
	// condTypes and Drifted (whose rows are in verify_test.go).
	if len(st.Conditions) != len(condTypes)+1 {
		t.Errorf("%d conditions, want %d", len(st.Conditions), len(condTypes)+1)
	}
}

// TestDecideTransitions walks the transition table of Decide.
func TestDecideTransitions(t *testing.T) {
	const (
		P  = v1alpha1.PhaseProgressing
		Pa = v1alpha1.PhasePaused
		WP = v1alpha1.PhaseWaitingPromotion
	)
	t.Run("New", func(t *testing.T) {
		runRows(t, []row{
			{
				name:   "target missing",
				canary: newCanary(),
				obs:    newObs(),
				want: want{phase: v1alpha1.PhaseInitializing, reason: "TargetNotFound", msgHas: "apps/podinfo",
					desired: "-", conds: cRunStalled, stalled: "TargetNotFound"},
			},
			{
				name:   "primary missing: create it from the target",
				canary: newCanary(),
				obs:    newObs(tgt(ready("r1"))),
				want: want{phase: v1alpha1.PhaseInitializing, reason: "WaitingForPrimary",
					desired: "fromTarget primary=3", canary: "r1", conds: cRunning},
			},
			{
				name:   "primary not ready",
				canary: newCanary(),
				obs:    newObs(tgt(ready("r1")), pri(notReady("r1"))),
				want: want{phase: v1alpha1.PhaseInitializing, reason: "WaitingForPrimary", msgHas: "1/3 available",
					desired: "fromTarget primary=3", canary: "r1", conds: cRunning},
			},
			{
				name:   "primary ready at another revision",
				canary: newCanary(),
				obs:    newObs(tgt(ready("r1")), pri(ready("r0"))),
				want: want{phase: v1alpha1.PhaseInitializing, reason: "WaitingForPrimary", msgHas: "runs revision r0, want r1",
					desired: "fromTarget primary=3", canary: "r1", conds: cRunning},
			},
			{
				name:   "primary not observed by its controller yet",
				canary: newCanary(),
				obs: newObs(tgt(ready("r1")), pri(engine.Workload{Exists: true, Revision: "r1", Replicas: 3,
					UpdatedReplicas: 3, AvailableReplicas: 3, Current: false})),
				want: want{phase: v1alpha1.PhaseInitializing, reason: "WaitingForPrimary", msgHas: "not yet observed",
					desired: "fromTarget primary=3", canary: "r1", conds: cRunning},
			},
			{
				name:   "primary ready, no route yet",
				canary: newCanary(),
				obs:    newObs(tgt(ready("r1")), pri(ready("r1"))),
				want: want{phase: v1alpha1.PhaseInitializing, reason: "Initializing", msgHas: "waiting for the router",
					desired: "fromTarget services primary=3 weight=0", requeue: engine.RoutePollInterval,
					canary: "r1", conds: cRunning},
			},
			{
				name:   "route still carries canary weight: target is not scaled down",
				canary: newCanary(),
				obs:    newObs(tgt(ready("r1")), pri(ready("r1")), route(30)),
				want: want{phase: v1alpha1.PhaseInitializing, reason: "Initializing",
					desired: "fromTarget services primary=3 weight=0", requeue: engine.RoutePollInterval,
					canary: "r1", conds: cRunning},
			},
			{
				name:   "route at 0 but router has not taken the write",
				canary: newCanary(),
				obs:    newObs(tgt(ready("r1")), pri(ready("r1")), routePending(0, "Gateway gw has not accepted the route")),
				want: want{phase: v1alpha1.PhaseInitializing, reason: "Initializing", msgHas: "Gateway gw has not accepted",
					desired: "fromTarget services primary=3 weight=0", requeue: engine.RoutePollInterval,
					canary: "r1", conds: cRunning},
			},
			{
				name:   "primary ready and route at 0: initialized, target scaled down",
				canary: newCanary(),
				obs:    newObs(tgt(ready("r1")), pri(ready("r1")), route(0)),
				want: want{phase: v1alpha1.PhaseInitialized, reason: "Initialized",
					desired: "fromTarget services primary=3 target=0 weight=0", events: []string{"Normal Initialized"},
					stable: "r1", canary: "r1", conds: cIdle},
			},
			{
				name:   "blocked configuration: route not written, stalled",
				canary: newCanary(),
				obs:    newObs(tgt(ready("r1")), pri(ready("r1")), route(0), blocked("BackendNotFound", "Service apps/auth-proxy not found")),
				want: want{phase: v1alpha1.PhaseInitializing, reason: "BackendNotFound", msgHas: "auth-proxy",
					desired: "fromTarget services primary=3", canary: "r1", conds: cRunStalled, stalled: "BackendNotFound",
					events: []string{"Warning BackendNotFound"}, requeue: engine.BlockedRecheckInterval},
			},
			{
				// Issue 21 item 10: a router's refusal stalls in every
				// phase, even one whose withdrawal route could be written.
				name:   "router refuses its configuration while initialising: stalled with one Warning",
				canary: newCanary(),
				obs: newObs(tgt(ready("r1")), pri(ready("r1")), routePending(0, "mapping apps/web names Service other"), func(o *engine.Observations) {
					o.Blocked, o.BlockedReason, o.BlockedWithdrawable = "mapping apps/web names Service other, not web", "MappingNotUsable", true
				}),
				want: want{phase: v1alpha1.PhaseInitializing, reason: "Initializing", msgHas: "names Service other",
					desired: "fromTarget services primary=3 weight=0", canary: "r1", conds: cRunStalled, stalled: "MappingNotUsable",
					events: []string{"Warning MappingNotUsable"}, requeue: engine.RoutePollInterval},
			},
			{
				name:   "router refusal already reported: no second Warning",
				canary: newCanary(stalledOn("MappingNotUsable", "mapping apps/web names Service other, not web")),
				obs: newObs(tgt(ready("r1")), pri(ready("r1")), routePending(0, "mapping apps/web names Service other"), func(o *engine.Observations) {
					o.Blocked, o.BlockedReason, o.BlockedWithdrawable = "mapping apps/web names Service other, not web", "MappingNotUsable", true
				}),
				want: want{phase: v1alpha1.PhaseInitializing, reason: "Initializing", msgHas: "names Service other",
					desired: "fromTarget services primary=3 weight=0", canary: "r1", conds: cRunStalled, stalled: "MappingNotUsable",
					requeue: engine.RoutePollInterval},
			},
			{
				name:   "unknown phase restarts initialization",
				canary: newCanary(inPhase("Bogus", "Whatever")),
				obs:    newObs(tgt(ready("r1")), pri(ready("r1")), route(0)),
				want: want{phase: v1alpha1.PhaseInitialized, reason: "Initialized",
					desired: "fromTarget services primary=3 target=0 weight=0", events: []string{"Normal Initialized"},
					stable: "r1", canary: "r1", conds: cIdle},
			},
			{
				name:   "request annotation is consumed while initializing",
				canary: newCanary(request("abort/1")),
				obs:    newObs(tgt(ready("r1")), pri(ready("r1")), route(0)),
				want: want{phase: v1alpha1.PhaseInitialized, reason: "Initialized", anyEvts: true,
					desired: "fromTarget services primary=3 target=0 weight=0",
					stable:  "r1", canary: "r1", handled: "abort/1", conds: cIdle},
			},
			{
				name:   "suspended: nothing is touched",
				canary: newCanary(specSuspend, request("abort")),
				obs:    newObs(tgt(ready("r1"))),
				want:   want{phase: "", reason: "Suspended", desired: "-", conds: cSuspended},
			},
		})
	})

	t.Run("Initializing", func(t *testing.T) {
		base := all(inPhase(v1alpha1.PhaseInitializing, "WaitingForPrimary"), revisions("", "r1"))
		runRows(t, []row{
			{
				name:   "target deleted",
				canary: newCanary(base),
				obs:    newObs(pri(ready("r1"))),
				want: want{phase: v1alpha1.PhaseInitializing, reason: "TargetNotFound", desired: "-",
					canary: "r1", conds: cRunStalled, stalled: "TargetNotFound"},
			},
			{
				name:   "target changed revision: the primary follows it",
				canary: newCanary(base),
				obs:    newObs(tgt(ready("r2")), pri(ready("r1")), route(0)),
				want: want{phase: v1alpha1.PhaseInitializing, reason: "WaitingForPrimary", msgHas: "want r2",
					desired: "fromTarget primary=3", canary: "r2", conds: cRunning},
			},
			{
				name:   "primary ready, route at 0",
				canary: newCanary(base),
				obs:    newObs(tgt(ready("r1")), pri(ready("r1")), route(0)),
				want: want{phase: v1alpha1.PhaseInitialized, reason: "Initialized",
					desired: "fromTarget services primary=3 target=0 weight=0", events: []string{"Normal Initialized"},
					stable: "r1", canary: "r1", conds: cIdle},
			},
			{
				name:   "suspended",
				canary: newCanary(base, specSuspend),
				obs:    newObs(tgt(ready("r1")), pri(ready("r1")), route(0)),
				want: want{phase: v1alpha1.PhaseInitializing, reason: "Suspended", desired: "-",
					canary: "r1", conds: cSuspended},
			},
		})
	})

	// idle rows shared by Initialized and Succeeded.
	idleRows := func(base canaryOpt, reason, rev string) []row {
		steady := func(opts ...obsOpt) engine.Observations {
			return newObs(append([]obsOpt{tgt(scaledDown(rev)), pri(ready(rev)), route(0)}, opts...)...)
		}
		return []row{
			{
				name:   "steady",
				canary: newCanary(base),
				obs:    steady(),
				want: want{phase: "", reason: reason, desired: "services target=0 weight=0",
					stable: rev, canary: rev, conds: cIdle},
			},
			{
				name:   "target scaled up by hand: the primary takes its replicas",
				canary: newCanary(base),
				obs: steady(tgt(engine.Workload{Exists: true, Revision: rev, Replicas: 5, UpdatedReplicas: 5,
					AvailableReplicas: 5, Current: true})),
				want: want{phase: "", reason: reason, desired: "services primary=5 target=0 weight=0",
					stable: rev, canary: rev, conds: cIdle},
			},
			{
				name:   "target missing",
				canary: newCanary(base),
				obs:    steady(tgt(missing)),
				want: want{phase: "", reason: reason, desired: "-",
					stable: rev, canary: rev, conds: cStalled, stalled: "TargetNotFound"},
			},
			{
				name:   "primary not ready: traffic and target are left alone",
				canary: newCanary(base),
				obs:    steady(pri(notReady(rev))),
				want: want{phase: "", reason: reason, desired: "services",
					stable: rev, canary: rev, conds: cStalled, stalled: "PrimaryNotReady"},
			},
			{
				name:   "primary missing",
				canary: newCanary(base),
				obs:    steady(pri(missing)),
				want: want{phase: "", reason: reason, desired: "-",
					stable: rev, canary: rev, conds: cStalled, stalled: "PrimaryNotReady"},
			},
			{
				name:   "route still carries canary weight: target kept until it does not",
				canary: newCanary(base),
				obs:    steady(route(20)),
				want: want{phase: "", reason: reason, desired: "services weight=0", requeue: engine.RoutePollInterval,
					stable: rev, canary: rev, conds: cIdle},
			},
			{
				name:   "route pending",
				canary: newCanary(base),
				obs:    steady(routePending(0, "not accepted")),
				want: want{phase: "", reason: reason, desired: "services weight=0", requeue: engine.RoutePollInterval,
					stable: rev, canary: rev, conds: cIdle},
			},
			{
				name:   "blocked configuration: route not written, target kept",
				canary: newCanary(base),
				obs:    steady(route(20), blocked("BackendNotFound", "Service apps/auth-proxy not found")),
				want: want{phase: "", reason: reason, desired: "services", requeue: engine.BlockedRecheckInterval,
					events: []string{"Warning BackendNotFound"}, stable: rev, canary: rev, conds: cStalled, stalled: "BackendNotFound"},
			},
			{
				name:   "new revision, canary scaled down: release starts and scales it up",
				canary: newCanary(base),
				obs:    steady(tgt(scaledDown("r9"))),
				want: want{phase: P, reason: "WaitingForCanary", desired: "services target=3",
					events: []string{"Normal NewRevision"}, requeue: v1alpha1.DefaultProgressDeadline,
					stable: rev, canary: "r9", conds: cRunning, stepStartedNow: true},
			},
			{
				name:   "new revision, canary already ready: first weight set",
				canary: newCanary(base),
				obs:    steady(tgt(ready("r9"))),
				want: want{phase: P, reason: "SettingWeight", desired: "services target=3 weight=20",
					events: []string{"Normal NewRevision"}, requeue: engine.RoutePollInterval,
					weight: 20, stable: rev, canary: "r9", conds: cRunning, stepStartedNow: true},
			},
			{
				name:   "new revision with a promote request: request ignored, release starts at step 0",
				canary: newCanary(base, request("promote")),
				obs:    steady(tgt(ready("r9"))),
				want: want{phase: P, reason: "SettingWeight", desired: "services target=3 weight=20",
					events: []string{"Warning RequestIgnored", "Normal NewRevision"}, requeue: engine.RoutePollInterval,
					weight: 20, stable: rev, canary: "r9", handled: "promote", conds: cRunning, stepStartedNow: true},
			},
			{
				name:   "new revision while spec.paused: paused before any traffic moves",
				canary: newCanary(base, specPaused),
				obs:    steady(tgt(ready("r9"))),
				want: want{phase: Pa, reason: "Paused", desired: "services target=3 weight=0",
					events: []string{"Normal NewRevision", "Normal Paused"},
					stable: rev, canary: "r9", conds: cRunning, stepStartedNow: true},
			},
			{
				name:   "new revision while suspended: nothing happens",
				canary: newCanary(base, specSuspend, request("abort")),
				obs:    steady(tgt(ready("r9"))),
				want: want{phase: "", reason: "Suspended", desired: "-",
					stable: rev, canary: rev, conds: cIdle},
			},
			{
				name:   "abort request while idle",
				canary: newCanary(base, request("abort")),
				obs:    steady(),
				want: want{phase: "", reason: reason, desired: "services target=0 weight=0",
					events: []string{"Warning RequestIgnored"}, stable: rev, canary: rev, handled: "abort", conds: cIdle},
			},
			{
				name:   "promote-full request while idle",
				canary: newCanary(base, request("promote-full/3")),
				obs:    steady(),
				want: want{phase: "", reason: reason, desired: "services target=0 weight=0",
					events: []string{"Warning RequestIgnored"}, stable: rev, canary: rev, handled: "promote-full/3", conds: cIdle},
			},
			{
				name:   "retry request is only for a failed release",
				canary: newCanary(base, request("retry")),
				obs:    steady(),
				want: want{phase: "", reason: reason, desired: "services target=0 weight=0",
					events: []string{"Warning RequestIgnored"}, stable: rev, canary: rev, handled: "retry", conds: cIdle},
			},
			{
				name:   "unknown request",
				canary: newCanary(base, request("rollout-now")),
				obs:    steady(),
				want: want{phase: "", reason: reason, desired: "services target=0 weight=0",
					events: []string{"Warning RequestIgnored"}, stable: rev, canary: rev, handled: "rollout-now", conds: cIdle},
			},
			{
				name:   "already handled request",
				canary: newCanary(base, request("abort/1"), handled("abort/1")),
				obs:    steady(),
				want: want{phase: "", reason: reason, desired: "services target=0 weight=0",
					stable: rev, canary: rev, handled: "abort/1", conds: cIdle},
			},
		}
	}
	withPhase := func(p v1alpha1.CanaryPhase, rows []row) []row {
		for i := range rows {
			if rows[i].want.phase == "" {
				rows[i].want.phase = p
			}
		}
		return rows
	}

	t.Run("Initialized", func(t *testing.T) {
		runRows(t, withPhase(v1alpha1.PhaseInitialized, idleRows(initialized(), "Initialized", "r1")))
	})

	t.Run("Succeeded", func(t *testing.T) {
		base := all(inPhase(v1alpha1.PhaseSucceeded, "Promoted"), revisions("r2", "r2"), atStep(5, 0))
		rows := idleRows(base, "Promoted", "r2")
		for i := range rows {
			if rows[i].want.phase == "" {
				rows[i].want.step = 5 // a settled release keeps its last step
			}
		}
		runRows(t, withPhase(v1alpha1.PhaseSucceeded, rows))
	})

	t.Run("Failed", func(t *testing.T) {
		base := all(inPhase(v1alpha1.PhaseFailed, "Aborted"), revisions("r1", "r2"), atStep(1, 0))
		steady := func(opts ...obsOpt) engine.Observations {
			return newObs(append([]obsOpt{tgt(scaledDown("r2")), pri(ready("r1")), route(0)}, opts...)...)
		}
		F := v1alpha1.PhaseFailed
		runRows(t, []row{
			{
				name:   "steady: all traffic on the primary, canary scaled down",
				canary: newCanary(base),
				obs:    steady(),
				want: want{phase: F, reason: "Aborted", desired: "services target=0 weight=0", step: 1,
					stable: "r1", canary: "r2", conds: cStalled, stalled: "Aborted"},
			},
			{
				name:   "route still carries canary weight",
				canary: newCanary(base),
				obs:    steady(route(20)),
				want: want{phase: F, reason: "Aborted", desired: "services weight=0", requeue: engine.RoutePollInterval,
					step: 1, stable: "r1", canary: "r2", conds: cStalled},
			},
			{
				name:   "primary not ready: traffic stays",
				canary: newCanary(base),
				obs:    steady(pri(notReady("r1")), route(20)),
				want: want{phase: F, reason: "Aborted", desired: "services", step: 1,
					stable: "r1", canary: "r2", conds: cStalled, stalled: "PrimaryNotReady"},
			},
			{
				name:   "retry runs the failed revision again",
				canary: newCanary(base, request("retry/2")),
				obs:    steady(),
				want: want{phase: P, reason: "WaitingForCanary", desired: "services target=3",
					events: []string{"Normal Retry"}, requeue: v1alpha1.DefaultProgressDeadline,
					stable: "r1", canary: "r2", handled: "retry/2", conds: cRunning, stepStartedNow: true},
			},
			{
				name:   "retry while suspended is left for later",
				canary: newCanary(base, request("retry/2"), specSuspend),
				obs:    steady(),
				want: want{phase: F, reason: "Suspended", desired: "-", step: 1,
					stable: "r1", canary: "r2", conds: cStalled},
			},
			{
				name:   "already handled retry",
				canary: newCanary(base, request("retry/2"), handled("retry/2")),
				obs:    steady(),
				want: want{phase: F, reason: "Aborted", desired: "services target=0 weight=0", step: 1,
					stable: "r1", canary: "r2", handled: "retry/2", conds: cStalled},
			},
			{
				name:   "new revision",
				canary: newCanary(base),
				obs:    steady(tgt(scaledDown("r3"))),
				want: want{phase: P, reason: "WaitingForCanary", desired: "services target=3",
					events: []string{"Normal NewRevision"}, requeue: v1alpha1.DefaultProgressDeadline,
					stable: "r1", canary: "r3", conds: cRunning, stepStartedNow: true},
			},
			{
				name:   "retry together with a new revision: the new revision wins",
				canary: newCanary(base, request("retry")),
				obs:    steady(tgt(scaledDown("r3"))),
				want: want{phase: P, reason: "WaitingForCanary", desired: "services target=3",
					events: []string{"Warning RequestIgnored", "Normal NewRevision"}, requeue: v1alpha1.DefaultProgressDeadline,
					stable: "r1", canary: "r3", handled: "retry", conds: cRunning, stepStartedNow: true},
			},
			{
				name:   "promote request",
				canary: newCanary(base, request("promote")),
				obs:    steady(),
				want: want{phase: F, reason: "Aborted", desired: "services target=0 weight=0", step: 1,
					events: []string{"Warning RequestIgnored"}, stable: "r1", canary: "r2", handled: "promote", conds: cStalled},
			},
			{
				name:   "target deleted",
				canary: newCanary(base),
				obs:    steady(tgt(missing)),
				want: want{phase: F, reason: "Aborted", desired: "-", step: 1,
					stable: "r1", canary: "r2", conds: cStalled, stalled: "TargetNotFound"},
			},
		})
	})

	t.Run("Progressing", func(t *testing.T) {
		// The release of r2 over r1: canary and primary Ready, the route at
		// the status' weight.
		obs := func(weight int32, opts ...obsOpt) engine.Observations {
			return newObs(append([]obsOpt{tgt(ready("r2")), pri(ready("r1")), route(weight)}, opts...)...)
		}
		left := v1alpha1.DefaultProgressDeadline - 10*time.Second
		runRows(t, []row{
			{
				name:   "setWeight: route not yet at the weight",
				canary: newCanary(releasing(0, 0)),
				obs:    obs(0),
				want: want{phase: P, reason: "SettingWeight", msgHas: "waiting for the router to carry canary weight 20%",
					desired: "services target=3 weight=20", requeue: engine.RoutePollInterval,
					weight: 20, stable: "r1", canary: "r2", conds: cRunning},
			},
			{
				name:   "setWeight: route missing",
				canary: newCanary(releasing(0, 0)),
				obs:    newObs(tgt(ready("r2")), pri(ready("r1"))),
				want: want{phase: P, reason: "SettingWeight", desired: "services target=3 weight=20",
					requeue: engine.RoutePollInterval, weight: 20, stable: "r1", canary: "r2", conds: cRunning},
			},
			{
				name:   "setWeight: route pending",
				canary: newCanary(releasing(0, 20)),
				obs:    newObs(tgt(ready("r2")), pri(ready("r1")), routePending(20, "HTTPRoute not accepted: no listener")),
				want: want{phase: P, reason: "SettingWeight", msgHas: "no listener",
					desired: "services target=3 weight=20", requeue: engine.RoutePollInterval,
					weight: 20, stable: "r1", canary: "r2", conds: cRunning},
			},
			{
				name:   "setWeight read back: next step (timed pause) starts",
				canary: newCanary(releasing(0, 20)),
				obs:    obs(20),
				want: want{phase: P, reason: "PauseStep", desired: "services target=3 weight=20",
					events: []string{"Normal WeightSet"}, requeue: time.Minute,
					step: 1, weight: 20, stable: "r1", canary: "r2", conds: cRunning, stepStartedNow: true},
			},
			{
				name:   "setWeight: primary not ready, weight not moved",
				canary: newCanary(releasing(2, 20)),
				obs:    obs(20, pri(notReady("r1"))),
				want: want{phase: P, reason: "WaitingForPrimary", desired: "services target=3",
					requeue: left, step: 2, weight: 20, stable: "r1", canary: "r2", conds: cRunning},
			},
			{
				name:   "setWeight never read back within the deadline: rolled back",
				canary: newCanary(releasing(0, 0), lastProgress(v1alpha1.DefaultProgressDeadline), waitingOn("WaitingForCanary")),
				obs:    obs(0),
				want: want{phase: v1alpha1.PhaseFailed, reason: "ProgressDeadlineExceeded",
					desired: "services target=0 weight=0", events: []string{"Warning ProgressDeadlineExceeded"},
					requeue: engine.RoutePollInterval, stable: "r1", canary: "r2", conds: cStalled},
			},
			{
				name:   "timed pause not over",
				canary: newCanary(releasing(1, 20), stepStarted(30*time.Second)),
				obs:    obs(20),
				want: want{phase: P, reason: "PauseStep", desired: "services target=3 weight=20",
					requeue: 30 * time.Second, step: 1, weight: 20, stable: "r1", canary: "r2", conds: cRunning},
			},
			{
				name:   "timed pause over: next setWeight",
				canary: newCanary(releasing(1, 20), stepStarted(time.Minute)),
				obs:    obs(20),
				want: want{phase: P, reason: "SettingWeight", desired: "services target=3 weight=50",
					requeue: engine.RoutePollInterval, step: 2, weight: 50, stable: "r1", canary: "r2",
					conds: cRunning, stepStartedNow: true},
			},
			{
				name:   "timed pause longer than the progress deadline is not cut short",
				canary: newCanary(releasing(1, 20), withSteps(sw(20), pause(time.Hour), sw(50)), stepStarted(30*time.Minute), lastProgress(30*time.Minute)),
				obs:    obs(20),
				want: want{phase: P, reason: "PauseStep", desired: "services target=3 weight=20",
					requeue: 30 * time.Minute, step: 1, weight: 20, stable: "r1", canary: "r2", conds: cRunning},
			},
			{
				name:   "zero-length pause is passed at once",
				canary: newCanary(releasing(1, 20), withSteps(sw(20), pause(0), sw(50))),
				obs:    obs(20),
				want: want{phase: P, reason: "SettingWeight", desired: "services target=3 weight=50",
					requeue: engine.RoutePollInterval, step: 2, weight: 50, stable: "r1", canary: "r2",
					conds: cRunning, stepStartedNow: true},
			},
			{
				name:   "pause without duration: waiting for promotion",
				canary: newCanary(releasing(3, 50)),
				obs:    obs(50),
				want: want{phase: WP, reason: "WaitingForPromotion", msgHas: "kubectl sluice promote",
					desired: "services target=3 weight=50", events: []string{"Normal WaitingForPromotion"},
					step: 3, weight: 50, stable: "r1", canary: "r2", conds: cRunning},
			},
			{
				name:   "last setWeight read back: promoting",
				canary: newCanary(releasing(4, 80)),
				obs:    obs(80),
				want: want{phase: v1alpha1.PhasePromoting, reason: "Promoting",
					desired: "services primary=3 target=3 weight=100", events: []string{"Normal WeightSet", "Normal Promoting"},
					requeue: engine.RoutePollInterval, step: 5, weight: 100, stable: "r1", canary: "r2",
					conds: cRunning, stepStartedNow: true},
			},
			{
				name:   "canary stops being ready: its weight goes back to the primary",
				canary: newCanary(releasing(1, 20)),
				obs:    obs(20, tgt(notReady("r2"))),
				want: want{phase: P, reason: "WaitingForCanary", msgHas: "canary 1/3 available",
					desired: "services target=3 weight=0", requeue: engine.RoutePollInterval,
					step: 1, stable: "r1", canary: "r2", conds: cRunning},
			},
			{
				name:   "canary not ready, carrying nothing",
				canary: newCanary(releasing(0, 0), waitingOn("WaitingForCanary")),
				obs:    obs(0, tgt(notReady("r2"))),
				want: want{phase: P, reason: "WaitingForCanary", desired: "services target=3",
					requeue: left, stable: "r1", canary: "r2", conds: cRunning},
			},
			{
				// Steps 0-1 of the default spec are setWeight 20, pause 1m.
				name:   "canary blips an hour into a hold: the deadline counts from the blip, not from the hold's start",
				canary: newCanary(releasing(1, 20), inPhase(v1alpha1.PhaseProgressing, "PauseStep"), lastProgress(time.Hour)),
				obs:    obs(20, tgt(notReady("r2"))),
				want: want{phase: P, reason: "WaitingForCanary", desired: "services target=3 weight=0",
					requeue: engine.RoutePollInterval, step: 1, stable: "r1", canary: "r2", conds: cRunning},
			},
			{
				name:   "canary not ready while the router still carries canary traffic (status lost): traffic back to primary",
				canary: newCanary(releasing(0, 0), waitingOn("WaitingForCanary")),
				obs:    obs(20, tgt(notReady("r2"))),
				want: want{phase: P, reason: "WaitingForCanary", desired: "services target=3 weight=0",
					requeue: engine.RoutePollInterval, stable: "r1", canary: "r2", conds: cRunning},
			},
			{
				name:   "canary not ready, 1s before the deadline",
				canary: newCanary(releasing(0, 0), lastProgress(v1alpha1.DefaultProgressDeadline-time.Second), waitingOn("WaitingForCanary")),
				obs:    obs(0, tgt(notReady("r2"))),
				want: want{phase: P, reason: "WaitingForCanary", desired: "services target=3",
					requeue: time.Second, stable: "r1", canary: "r2", conds: cRunning},
			},
			{
				name:   "canary not ready at the deadline: rolled back",
				canary: newCanary(releasing(0, 0), lastProgress(v1alpha1.DefaultProgressDeadline), waitingOn("WaitingForCanary")),
				obs:    obs(0, tgt(notReady("r2"))),
				want: want{phase: v1alpha1.PhaseFailed, reason: "ProgressDeadlineExceeded", msgHas: "canary 1/3 available",
					desired: "services target=0 weight=0", events: []string{"Warning ProgressDeadlineExceeded"},
					stable: "r1", canary: "r2", conds: cStalled, stalled: "ProgressDeadlineExceeded"},
			},
			{
				name:   "custom progress deadline",
				canary: newCanary(releasing(0, 0), progressDeadline(2*time.Minute), lastProgress(3*time.Minute), waitingOn("WaitingForCanary")),
				obs:    obs(0, tgt(notReady("r2"))),
				want: want{phase: v1alpha1.PhaseFailed, reason: "ProgressDeadlineExceeded",
					desired: "services target=0 weight=0", events: []string{"Warning ProgressDeadlineExceeded"},
					stable: "r1", canary: "r2", conds: cStalled},
			},
			{
				name:   "new target revision mid-release, not ready yet: restart, traffic back to primary",
				canary: newCanary(releasing(2, 50)),
				obs:    obs(50, tgt(notReady("r3"))),
				want: want{phase: P, reason: "WaitingForCanary", desired: "services target=3 weight=0",
					events: []string{"Normal RevisionChanged"}, requeue: engine.RoutePollInterval,
					stable: "r1", canary: "r3", conds: cRunning, stepStartedNow: true},
			},
			{
				name:   "new target revision mid-release, already ready: restart at step 0",
				canary: newCanary(releasing(2, 50)),
				obs:    obs(50, tgt(ready("r3"))),
				want: want{phase: P, reason: "SettingWeight", desired: "services target=3 weight=20",
					events: []string{"Normal RevisionChanged"}, requeue: engine.RoutePollInterval,
					weight: 20, stable: "r1", canary: "r3", conds: cRunning, stepStartedNow: true},
			},
			{
				name:   "target deleted mid-release: rolled back",
				canary: newCanary(releasing(1, 20)),
				obs:    obs(20, tgt(missing)),
				want: want{phase: v1alpha1.PhaseFailed, reason: "TargetNotFound",
					desired: "services weight=0", events: []string{"Warning TargetNotFound"},
					requeue: engine.RoutePollInterval, step: 1, stable: "r1", canary: "r2", conds: cStalled},
			},
			{
				name:   "blocked configuration: traffic stays where it is, a Warning event names the problem",
				canary: newCanary(releasing(1, 20)),
				obs:    obs(20, blocked("InvalidSuccessCondition", `spec.analysis.metrics[0] (errors).successCondition "result >>> 2": unexpected token`)),
				want: want{phase: P, reason: "InvalidSuccessCondition", msgHas: "metrics[0] (errors)",
					desired: "services target=3", events: []string{"Warning InvalidSuccessCondition"}, requeue: engine.BlockedRecheckInterval,
					step: 1, weight: 20, stable: "r1", canary: "r2", conds: cRunStalled, stalled: "InvalidSuccessCondition"},
			},
			{
				name:   "blocked configuration already reported: no second event",
				canary: newCanary(releasing(1, 20), waitingOn("BackendNotFound"), stalledOn("BackendNotFound", "Service apps/auth-proxy not found")),
				obs:    obs(20, blocked("BackendNotFound", "Service apps/auth-proxy not found")),
				want: want{phase: P, reason: "BackendNotFound", msgHas: "auth-proxy",
					desired: "services target=3", requeue: engine.BlockedRecheckInterval,
					step: 1, weight: 20, stable: "r1", canary: "r2", conds: cRunStalled, stalled: "BackendNotFound"},
			},
			{
				name:   "another configuration problem: a new event",
				canary: newCanary(releasing(1, 20), waitingOn("BackendNotFound"), stalledOn("BackendNotFound", "Service apps/auth-proxy not found")),
				obs:    obs(20, blocked("BackendNotFound", "Service apps/payments not found")),
				want: want{phase: P, reason: "BackendNotFound", msgHas: "payments",
					desired: "services target=3", events: []string{"Warning BackendNotFound"}, requeue: engine.BlockedRecheckInterval,
					step: 1, weight: 20, stable: "r1", canary: "r2", conds: cRunStalled, stalled: "BackendNotFound"},
			},
			{
				name: "blocked past the deadline: rolled back, route still not written",
				canary: newCanary(releasing(1, 20), lastProgress(v1alpha1.DefaultProgressDeadline+time.Second), waitingOn("RefNotPermitted"),
					stalledOn("RefNotPermitted", "no ReferenceGrant in other-ns")),
				obs: obs(20, blocked("RefNotPermitted", "no ReferenceGrant in other-ns")),
				want: want{phase: v1alpha1.PhaseFailed, reason: "ProgressDeadlineExceeded", msgHas: "ReferenceGrant",
					desired: "services target=3", events: []string{"Warning ProgressDeadlineExceeded"}, requeue: engine.BlockedRecheckInterval,
					step: 1, weight: 20, stable: "r1", canary: "r2", conds: cStalled, stalled: "RefNotPermitted"},
			},
			{
				name:   "spec.paused during a pause step: weight held",
				canary: newCanary(releasing(1, 20), specPaused),
				obs:    obs(20),
				want: want{phase: Pa, reason: "Paused", desired: "services target=3 weight=20",
					events: []string{"Normal Paused"}, step: 1, weight: 20, stable: "r1", canary: "r2", conds: cRunning},
			},
			{
				name:   "spec.paused before a setWeight step: that step's weight is not applied",
				canary: newCanary(releasing(2, 20), specPaused),
				obs:    obs(20),
				want: want{phase: Pa, reason: "Paused", desired: "services target=3 weight=20",
					events: []string{"Normal Paused"}, step: 2, weight: 20, stable: "r1", canary: "r2", conds: cRunning},
			},
			{
				name:   "spec.paused with the canary not ready: its weight goes to the primary",
				canary: newCanary(releasing(1, 20), specPaused),
				obs:    obs(20, tgt(notReady("r2"))),
				want: want{phase: Pa, reason: "Paused", desired: "services target=3 weight=0",
					events: []string{"Normal Paused"}, requeue: engine.RoutePollInterval,
					step: 1, stable: "r1", canary: "r2", conds: cRunning},
			},
			{
				name:   "promote request leaves a timed pause",
				canary: newCanary(releasing(1, 20), request("promote/1")),
				obs:    obs(20),
				want: want{phase: P, reason: "SettingWeight", desired: "services target=3 weight=50",
					events: []string{"Normal PromoteRequested"}, requeue: engine.RoutePollInterval,
					step: 2, weight: 50, stable: "r1", canary: "r2", handled: "promote/1", conds: cRunning, stepStartedNow: true},
			},
			{
				name:   "promote-full skips the remaining steps",
				canary: newCanary(releasing(1, 20), request("promote-full")),
				obs:    obs(20),
				want: want{phase: v1alpha1.PhasePromoting, reason: "Promoting",
					desired: "services primary=3 target=3 weight=100", events: []string{"Normal PromoteRequested", "Normal Promoting"},
					requeue: engine.RoutePollInterval, step: 5, weight: 100, stable: "r1", canary: "r2",
					handled: "promote-full", conds: cRunning},
			},
			{
				name:   "abort",
				canary: newCanary(releasing(1, 20), request("abort")),
				obs:    obs(20),
				want: want{phase: v1alpha1.PhaseFailed, reason: "Aborted",
					desired: "services weight=0", events: []string{"Warning Aborted"}, requeue: engine.RoutePollInterval,
					step: 1, stable: "r1", canary: "r2", handled: "abort", conds: cStalled, stalled: "Aborted"},
			},
			{
				name:   "abort with traffic already back on the primary: canary scaled down",
				canary: newCanary(releasing(0, 0), request("abort")),
				obs:    obs(0),
				want: want{phase: v1alpha1.PhaseFailed, reason: "Aborted",
					desired: "services target=0 weight=0", events: []string{"Warning Aborted"},
					stable: "r1", canary: "r2", handled: "abort", conds: cStalled},
			},
			{
				name:   "already handled abort",
				canary: newCanary(releasing(1, 20), stepStarted(30*time.Second), request("abort"), handled("abort")),
				obs:    obs(20),
				want: want{phase: P, reason: "PauseStep", desired: "services target=3 weight=20",
					requeue: 30 * time.Second, step: 1, weight: 20, stable: "r1", canary: "r2", handled: "abort", conds: cRunning},
			},
			{
				name:   "retry is not for a running release",
				canary: newCanary(releasing(1, 20), stepStarted(30*time.Second), request("retry")),
				obs:    obs(20),
				want: want{phase: P, reason: "PauseStep", desired: "services target=3 weight=20",
					events: []string{"Warning RequestIgnored"}, requeue: 30 * time.Second,
					step: 1, weight: 20, stable: "r1", canary: "r2", handled: "retry", conds: cRunning},
			},
			{
				name:   "unknown request",
				canary: newCanary(releasing(1, 20), stepStarted(30*time.Second), request(" skip ")),
				obs:    obs(20),
				want: want{phase: P, reason: "PauseStep", desired: "services target=3 weight=20",
					events: []string{"Warning RequestIgnored"}, requeue: 30 * time.Second,
					step: 1, weight: 20, stable: "r1", canary: "r2", handled: "skip", conds: cRunning},
			},
			{
				name:   "timed pause without stepStartedAt: the pause starts now",
				canary: newCanary(releasing(1, 20), func(c *v1alpha1.Canary) { c.Status.StepStartedAt = nil }),
				obs:    obs(20),
				want: want{phase: P, reason: "PauseStep", desired: "services target=3 weight=20",
					requeue: time.Minute, step: 1, weight: 20, stable: "r1", canary: "r2", conds: cRunning},
			},
			{
				name:   "setWeight 100 never read back, primary not ready: rolled back and the 100% withdrawn",
				canary: newCanary(releasing(1, 20), withSteps(sw(20), sw(100)), lastProgress(v1alpha1.DefaultProgressDeadline)),
				obs:    obs(20, pri(notReady("r1"))),
				want: want{phase: v1alpha1.PhaseFailed, reason: "ProgressDeadlineExceeded",
					desired: "services target=3", events: []string{"Warning ProgressDeadlineExceeded"},
					requeue: engine.RoutePollInterval, step: 1, weight: 20, stable: "r1", canary: "r2",
					conds: cStalled, stalled: "PrimaryNotReady"},
			},
			{
				name:   "promotion applied but its status lost: the primary already runs the canary revision",
				canary: newCanary(releasing(4, 80)),
				obs:    obs(80, pri(ready("r2"))),
				want: want{phase: v1alpha1.PhaseFinalising, reason: "Finalising",
					desired: "fromTarget services primary=3 target=3 weight=0", events: []string{"Normal Promoting", "Normal Verified", "Normal Finalising"},
					requeue: engine.RoutePollInterval, step: 5, stable: "r2", canary: "r2", conds: cRunning},
			},
			{
				name:   "promotion status lost, primary still rolling out: promotion goes on",
				canary: newCanary(releasing(4, 80)),
				obs:    obs(80, pri(notReady("r2"))),
				want: want{phase: v1alpha1.PhasePromoting, reason: "Promoting",
					desired: "fromTarget services primary=3 target=3", events: []string{"Normal Promoting"},
					requeue: v1alpha1.DefaultVerificationInterval, step: 5, weight: 80, stable: "r1", canary: "r2", conds: cRunning},
			},
			{
				name:   "promotion status lost, then the target moved on: the promotion completes first",
				canary: newCanary(releasing(4, 80), request("abort")),
				obs:    obs(80, tgt(notReady("r3")), pri(ready("r2"))),
				want: want{phase: v1alpha1.PhaseFinalising, reason: "Finalising",
					desired: "services primary=3 target=3 weight=0",
					events:  []string{"Normal Promoting", "Warning RequestIgnored", "Normal Verified", "Normal Finalising"},
					requeue: engine.RoutePollInterval, step: 5, stable: "r2", canary: "r2", handled: "abort", conds: cRunning},
			},
			{
				name:   "release of the stable revision itself (a revert) is a normal release",
				canary: newCanary(releasing(0, 0), revisions("r1", "r1")),
				obs:    obs(0, tgt(ready("r1"))),
				want: want{phase: P, reason: "SettingWeight", desired: "services target=3 weight=20",
					requeue: engine.RoutePollInterval, weight: 20, stable: "r1", canary: "r1", conds: cRunning},
			},
			{
				name:   "suspended",
				canary: newCanary(releasing(1, 20), specSuspend, request("abort")),
				obs:    obs(20, tgt(missing)),
				want: want{phase: P, reason: "Suspended", desired: "-",
					step: 1, weight: 20, stable: "r1", canary: "r2", conds: cSuspended},
			},
		})
	})

	t.Run("Paused", func(t *testing.T) {
		base := all(inPhase(Pa, "Paused"), revisions("r1", "r2"), atStep(1, 20),
			stepStarted(time.Hour), lastProgress(time.Hour))
		obs := func(weight int32, opts ...obsOpt) engine.Observations {
			return newObs(append([]obsOpt{tgt(ready("r2")), pri(ready("r1")), route(weight)}, opts...)...)
		}
		runRows(t, []row{
			{
				name:   "still paused, longer than the deadline",
				canary: newCanary(base, specPaused),
				obs:    obs(20),
				want: want{phase: Pa, reason: "Paused", desired: "services target=3 weight=20",
					step: 1, weight: 20, stable: "r1", canary: "r2", conds: cRunning},
			},
			{
				name:   "resumed: the pause step starts over",
				canary: newCanary(base),
				obs:    obs(20),
				want: want{phase: P, reason: "PauseStep", desired: "services target=3 weight=20",
					events: []string{"Normal Resumed"}, requeue: time.Minute,
					step: 1, weight: 20, stable: "r1", canary: "r2", conds: cRunning, stepStartedNow: true},
			},
			{
				name:   "resumed with the canary not ready: time paused does not count toward the deadline",
				canary: newCanary(base, atStep(1, 0)),
				obs:    obs(0, tgt(notReady("r2"))),
				want: want{phase: P, reason: "WaitingForCanary", desired: "services target=3",
					events: []string{"Normal Resumed"}, requeue: v1alpha1.DefaultProgressDeadline,
					step: 1, stable: "r1", canary: "r2", conds: cRunning, stepStartedNow: true},
			},
			{
				name:   "promote while paused: the step moves, the weight does not",
				canary: newCanary(base, specPaused, request("promote")),
				obs:    obs(20),
				want: want{phase: Pa, reason: "Paused", desired: "services target=3 weight=20",
					events: []string{"Normal PromoteRequested"}, step: 2, weight: 20, stable: "r1", canary: "r2",
					handled: "promote", conds: cRunning, stepStartedNow: true},
			},
			{
				name:   "abort while paused",
				canary: newCanary(base, specPaused, request("abort")),
				obs:    obs(20),
				want: want{phase: v1alpha1.PhaseFailed, reason: "Aborted", desired: "services weight=0",
					events: []string{"Warning Aborted"}, requeue: engine.RoutePollInterval,
					step: 1, stable: "r1", canary: "r2", handled: "abort", conds: cStalled},
			},
			{
				name:   "target deleted while paused",
				canary: newCanary(base, specPaused),
				obs:    obs(0, tgt(missing)),
				want: want{phase: v1alpha1.PhaseFailed, reason: "TargetNotFound", desired: "services weight=0",
					events: []string{"Warning TargetNotFound"}, step: 1, stable: "r1", canary: "r2", conds: cStalled},
			},
			{
				name:   "suspended while paused",
				canary: newCanary(base, specPaused, specSuspend),
				obs:    obs(20),
				want: want{phase: Pa, reason: "Suspended", desired: "-",
					step: 1, weight: 20, stable: "r1", canary: "r2", conds: cSuspended},
			},
		})
	})

	t.Run("WaitingPromotion", func(t *testing.T) {
		base := all(inPhase(WP, "WaitingForPromotion"), revisions("r1", "r2"), atStep(3, 50),
			stepStarted(10*time.Second), lastProgress(10*time.Second))
		obs := func(weight int32, opts ...obsOpt) engine.Observations {
			return newObs(append([]obsOpt{tgt(ready("r2")), pri(ready("r1")), route(weight)}, opts...)...)
		}
		runRows(t, []row{
			{
				name:   "no request: holds",
				canary: newCanary(base),
				obs:    obs(50),
				want: want{phase: WP, reason: "WaitingForPromotion", desired: "services target=3 weight=50",
					step: 3, weight: 50, stable: "r1", canary: "r2", conds: cRunning},
			},
			{
				name:   "holds longer than the progress deadline",
				canary: newCanary(base, stepStarted(time.Hour), lastProgress(time.Hour)),
				obs:    obs(50),
				want: want{phase: WP, reason: "WaitingForPromotion", desired: "services target=3 weight=50",
					step: 3, weight: 50, stable: "r1", canary: "r2", conds: cRunning},
			},
			{
				name:   "promote",
				canary: newCanary(base, request("promote")),
				obs:    obs(50),
				want: want{phase: P, reason: "SettingWeight", desired: "services target=3 weight=80",
					events: []string{"Normal PromoteRequested"}, requeue: engine.RoutePollInterval,
					step: 4, weight: 80, stable: "r1", canary: "r2", handled: "promote", conds: cRunning, stepStartedNow: true},
			},
			{
				name:   "a second promote with a new id",
				canary: newCanary(base, request("promote/2"), handled("promote/1")),
				obs:    obs(50),
				want: want{phase: P, reason: "SettingWeight", desired: "services target=3 weight=80",
					events: []string{"Normal PromoteRequested"}, requeue: engine.RoutePollInterval,
					step: 4, weight: 80, stable: "r1", canary: "r2", handled: "promote/2", conds: cRunning, stepStartedNow: true},
			},
			{
				name:   "already handled promote",
				canary: newCanary(base, request("promote/1"), handled("promote/1")),
				obs:    obs(50),
				want: want{phase: WP, reason: "WaitingForPromotion", desired: "services target=3 weight=50",
					step: 3, weight: 50, stable: "r1", canary: "r2", handled: "promote/1", conds: cRunning},
			},
			{
				name:   "promote-full",
				canary: newCanary(base, request("promote-full")),
				obs:    obs(50),
				want: want{phase: v1alpha1.PhasePromoting, reason: "Promoting",
					desired: "services primary=3 target=3 weight=100", events: []string{"Normal PromoteRequested", "Normal Promoting"},
					requeue: engine.RoutePollInterval, step: 5, weight: 100, stable: "r1", canary: "r2",
					handled: "promote-full", conds: cRunning},
			},
			{
				name:   "abort",
				canary: newCanary(base, request("abort")),
				obs:    obs(50),
				want: want{phase: v1alpha1.PhaseFailed, reason: "Aborted", desired: "services weight=0",
					events: []string{"Warning Aborted"}, requeue: engine.RoutePollInterval,
					step: 3, stable: "r1", canary: "r2", handled: "abort", conds: cStalled},
			},
			{
				name:   "canary stops being ready",
				canary: newCanary(base),
				obs:    obs(50, tgt(notReady("r2"))),
				want: want{phase: P, reason: "WaitingForCanary", desired: "services target=3 weight=0",
					requeue: engine.RoutePollInterval, step: 3, stable: "r1", canary: "r2", conds: cRunning},
			},
			{
				name:   "spec.paused",
				canary: newCanary(base, specPaused),
				obs:    obs(50),
				want: want{phase: Pa, reason: "Paused", desired: "services target=3 weight=50",
					events: []string{"Normal Paused"}, step: 3, weight: 50, stable: "r1", canary: "r2", conds: cRunning},
			},
			{
				name:   "new target revision",
				canary: newCanary(base),
				obs:    obs(50, tgt(notReady("r3"))),
				want: want{phase: P, reason: "WaitingForCanary", desired: "services target=3 weight=0",
					events: []string{"Normal RevisionChanged"}, requeue: engine.RoutePollInterval,
					stable: "r1", canary: "r3", conds: cRunning, stepStartedNow: true},
			},
		})
	})

	t.Run("Promoting", func(t *testing.T) {
		base := all(inPhase(v1alpha1.PhasePromoting, "Promoting"), revisions("r1", "r2"), atStep(5, 80),
			stepStarted(time.Minute), lastProgress(time.Minute))
		obs := func(opts ...obsOpt) engine.Observations {
			return newObs(append([]obsOpt{tgt(ready("r2")), pri(ready("r1")), route(80)}, opts...)...)
		}
		PR := v1alpha1.PhasePromoting
		runRows(t, []row{
			{
				name:   "primary not updated yet: all traffic moves to the canary first",
				canary: newCanary(base),
				obs:    obs(),
				want: want{phase: PR, reason: "Promoting", msgHas: "moving all traffic to the canary before updating the primary",
					desired: "services primary=3 target=3 weight=100", requeue: engine.RoutePollInterval,
					step: 5, weight: 100, stable: "r1", canary: "r2", conds: cRunning},
			},
			{
				name:   "route carries 100% to the canary: the primary is updated",
				canary: newCanary(base),
				obs:    obs(route(100)),
				want: want{phase: PR, reason: "Promoting", msgHas: "primary runs revision r1, want r2",
					desired: "fromTarget services primary=3 target=3 weight=100", requeue: v1alpha1.DefaultVerificationInterval,
					step: 5, weight: 100, stable: "r1", canary: "r2", conds: cRunning},
			},
			{
				name:   "primary rolling out",
				canary: newCanary(base),
				obs:    obs(pri(notReady("r2"))),
				want: want{phase: PR, reason: "Promoting", desired: "fromTarget services primary=3 target=3", requeue: v1alpha1.DefaultVerificationInterval,
					step: 5, weight: 80, stable: "r1", canary: "r2", conds: cRunning},
			},
			{
				name: "primary not verified within the verification timeout: failed safe, the primary restored from the stable record",
				canary: newCanary(base, func(c *v1alpha1.Canary) {
					c.Status.Verification = &v1alpha1.VerificationStatus{Revision: "r2", State: v1alpha1.VerificationVerifying, StartedAt: ago(v1alpha1.DefaultVerificationTimeout)}
				}),
				obs: obs(pri(notReady("r2")), func(o *engine.Observations) { o.StableRecord = true }),
				want: want{phase: v1alpha1.PhaseFailed, reason: "VerificationFailed", msgHas: "primary 1/3 available, 3/3 updated after 5m0s",
					desired: "restore services primary=3 target=3 weight=100", events: []string{"Warning VerificationFailed"},
					requeue: engine.RoutePollInterval, step: 5, weight: 100, stable: "r1", canary: "r2", conds: cStalled, stalled: "PrimaryNotReady"},
			},
			{
				name:   "primary ready at the canary revision: finalising",
				canary: newCanary(base),
				obs:    obs(pri(ready("r2"))),
				want: want{phase: v1alpha1.PhaseFinalising, reason: "Finalising",
					desired: "fromTarget services primary=3 target=3 weight=0", events: []string{"Normal Verified", "Normal Finalising"},
					requeue: engine.RoutePollInterval, step: 5, stable: "r2", canary: "r2", conds: cRunning},
			},
			{
				name:   "primary ready and route already at 0: succeeded in one go",
				canary: newCanary(base),
				obs:    obs(pri(ready("r2")), route(0)),
				want: want{phase: v1alpha1.PhaseSucceeded, reason: "Promoted",
					desired: "fromTarget services primary=3 target=0 weight=0", events: []string{"Normal Verified", "Normal Finalising", "Normal Promoted"},
					step: 5, stable: "r2", canary: "r2", conds: cIdle},
			},
			{
				// Issue 21 item 1: the primary is untouched, so an abort
				// still rolls back (it used to be refused as too late).
				name:   "abort before the primary is touched: rolled back",
				canary: newCanary(base, request("abort")),
				obs:    obs(),
				want: want{phase: v1alpha1.PhaseFailed, reason: "Aborted", msgHas: "before the primary was updated",
					desired: "services weight=0", events: []string{"Warning Aborted"}, requeue: engine.RoutePollInterval,
					step: 5, weight: 0, stable: "r1", canary: "r2", handled: "abort", conds: cStalled},
			},
			{
				name:   "abort once the primary took the template is too late",
				canary: newCanary(base, request("abort")),
				obs:    obs(pri(notReady("r2"))),
				want: want{phase: PR, reason: "Promoting", desired: "fromTarget services primary=3 target=3",
					events: []string{"Warning RequestIgnored"}, requeue: v1alpha1.DefaultVerificationInterval,
					step: 5, weight: 80, stable: "r1", canary: "r2", handled: "abort", conds: cRunning},
			},
			{
				// Issue 21 item 1: a router that never carries 100% to the
				// canary used to keep the promotion waiting forever.
				name:   "route never carries 100% to the canary past the deadline: stalled, primary untouched",
				canary: newCanary(base, lastProgress(v1alpha1.DefaultProgressDeadline+time.Second)),
				obs:    obs(routePending(80, "parent public does not accept the route")),
				want: want{phase: PR, reason: "Promoting", msgHas: "parent public does not accept the route",
					desired: "services primary=3 target=3 weight=100", requeue: engine.RoutePollInterval,
					step: 5, weight: 100, stable: "r1", canary: "r2", conds: cRunStalled, stalled: "PromotionStalled"},
			},
			{
				name:   "route not carried yet within the deadline: waits, deadline requeued",
				canary: newCanary(base, lastProgress(v1alpha1.DefaultProgressDeadline-2*time.Second)),
				obs:    obs(routePending(80, "parent public does not accept the route")),
				want: want{phase: PR, reason: "Promoting", msgHas: "moving all traffic to the canary",
					desired: "services primary=3 target=3 weight=100", requeue: 2 * time.Second,
					step: 5, weight: 100, stable: "r1", canary: "r2", conds: cRunning},
			},
			{
				// The primary never serves while it is replaced: a canary
				// that stops being Ready before the primary is touched gives
				// the traffic back, and the primary waits (it used to take
				// the template while carrying all the traffic).
				name:   "canary not Ready before the primary is touched: traffic back to the primary, which is not replaced",
				canary: newCanary(base, atStep(5, 100)),
				obs:    obs(tgt(notReady("r2")), route(100)),
				want: want{phase: PR, reason: "Promoting", msgHas: "waiting for the canary to be Ready to carry all traffic while the primary is updated: canary 1/3 available",
					desired: "services primary=3 target=3 weight=0", requeue: engine.RoutePollInterval,
					step: 5, weight: 0, stable: "r1", canary: "r2", conds: cRunning},
			},
			{
				name:   "canary not Ready past the deadline: stalled, the primary untouched",
				canary: newCanary(base, atStep(5, 0), lastProgress(v1alpha1.DefaultProgressDeadline+time.Second)),
				obs:    obs(tgt(notReady("r2")), route(0)),
				want: want{phase: PR, reason: "Promoting", msgHas: "waiting for the canary to be Ready",
					desired: "services primary=3 target=3 weight=0",
					step:    5, weight: 0, stable: "r1", canary: "r2", conds: cRunStalled, stalled: "PromotionStalled"},
			},
			{
				name:   "stalled promotion aborted: rolled back to the untouched primary",
				canary: newCanary(base, lastProgress(v1alpha1.DefaultProgressDeadline+time.Hour), request("abort")),
				obs:    obs(routePending(80, "parent public does not accept the route")),
				want: want{phase: v1alpha1.PhaseFailed, reason: "Aborted",
					desired: "services weight=0", events: []string{"Warning Aborted"}, requeue: engine.RoutePollInterval,
					step: 5, weight: 0, stable: "r1", canary: "r2", handled: "abort", conds: cStalled},
			},
			{
				name:   "spec.paused does not hold a promotion",
				canary: newCanary(base, specPaused),
				obs:    obs(),
				want: want{phase: PR, reason: "Promoting", desired: "services primary=3 target=3 weight=100", requeue: engine.RoutePollInterval,
					step: 5, weight: 100, stable: "r1", canary: "r2", conds: cRunning},
			},
			{
				name:   "target moved on before the primary took the template: new release",
				canary: newCanary(base),
				obs:    obs(tgt(notReady("r3"))),
				want: want{phase: P, reason: "WaitingForCanary", desired: "services target=3 weight=0",
					events: []string{"Normal RevisionChanged"}, requeue: engine.RoutePollInterval,
					stable: "r1", canary: "r3", conds: cRunning, stepStartedNow: true},
			},
			{
				name:   "target moved on after the primary took the template: promotion completes",
				canary: newCanary(base),
				obs:    obs(tgt(ready("r3")), pri(ready("r2"))),
				want: want{phase: v1alpha1.PhaseFinalising, reason: "Finalising",
					desired: "services primary=3 target=3 weight=0", events: []string{"Normal Verified", "Normal Finalising"},
					requeue: engine.RoutePollInterval, step: 5, stable: "r2", canary: "r2", conds: cRunning},
			},
			{
				name:   "target deleted after the primary took the template",
				canary: newCanary(base),
				obs:    obs(tgt(missing), pri(ready("r2")), route(0)),
				want: want{phase: v1alpha1.PhaseSucceeded, reason: "Promoted",
					desired: "services primary=3 weight=0", events: []string{"Normal Verified", "Normal Finalising", "Normal Promoted"},
					step: 5, stable: "r2", canary: "r2", conds: cIdle},
			},
			{
				name:   "suspended",
				canary: newCanary(base, specSuspend),
				obs:    obs(pri(ready("r2"))),
				want: want{phase: PR, reason: "Suspended", desired: "-",
					step: 5, weight: 80, stable: "r1", canary: "r2", conds: cSuspended},
			},
		})
	})

	t.Run("Finalising", func(t *testing.T) {
		base := all(inPhase(v1alpha1.PhaseFinalising, "Finalising"), revisions("r2", "r2"), atStep(5, 0),
			stepStarted(time.Minute), lastProgress(time.Minute), func(c *v1alpha1.Canary) {
				c.Status.Verification = &v1alpha1.VerificationStatus{Revision: "r2", State: v1alpha1.VerificationVerified, StartedAt: ago(time.Minute)}
			})
		obs := func(opts ...obsOpt) engine.Observations {
			return newObs(append([]obsOpt{tgt(ready("r2")), pri(ready("r2")), route(80)}, opts...)...)
		}
		F := v1alpha1.PhaseFinalising
		runRows(t, []row{
			{
				// Issue 21 item 2: traffic used to stay on the primary
				// that stopped being Ready.
				name:   "primary not ready: all traffic to the Ready canary, which stays up",
				canary: newCanary(base),
				obs:    obs(pri(notReady("r2"))),
				want: want{phase: F, reason: "Finalising", msgHas: "waiting for the primary: primary 1/3 available",
					desired: "services target=3 weight=100", requeue: engine.RoutePollInterval, step: 5, weight: 100,
					stable: "r2", canary: "r2", conds: cRunning},
			},
			{
				name:   "primary and canary not ready: traffic stays where it is",
				canary: newCanary(base),
				obs:    obs(pri(notReady("r2")), tgt(notReady("r2"))),
				want: want{phase: F, reason: "Finalising", msgHas: "the canary is not Ready either",
					desired: "services target=3", requeue: v1alpha1.DefaultVerificationInterval, step: 5, stable: "r2", canary: "r2", conds: cRunning},
			},
			{
				// Issue 21 item 2: it used to wait with Stalled=False forever.
				name:   "primary not ready past the deadline: stalled with the numbers, traffic on the canary",
				canary: newCanary(base, lastProgress(v1alpha1.DefaultProgressDeadline+time.Second), atStep(5, 100)),
				obs:    obs(pri(notReady("r2")), route(100)),
				want: want{phase: F, reason: "Finalising", msgHas: "primary 1/3 available",
					desired: "services target=3 weight=100", requeue: v1alpha1.DefaultVerificationInterval, step: 5, weight: 100,
					stable: "r2", canary: "r2", conds: cRunStalled, stalled: "PrimaryNotReady"},
			},
			{
				name:   "route still carries canary weight",
				canary: newCanary(base),
				obs:    obs(),
				want: want{phase: F, reason: "Finalising", desired: "services target=3 weight=0",
					requeue: engine.RoutePollInterval, step: 5, stable: "r2", canary: "r2", conds: cRunning},
			},
			{
				name:   "route at 0 but pending",
				canary: newCanary(base),
				obs:    obs(routePending(0, "not accepted")),
				want: want{phase: F, reason: "Finalising", desired: "services target=3 weight=0",
					requeue: engine.RoutePollInterval, step: 5, stable: "r2", canary: "r2", conds: cRunning},
			},
			{
				name:   "route at 0: succeeded, canary scaled down",
				canary: newCanary(base),
				obs:    obs(route(0)),
				want: want{phase: v1alpha1.PhaseSucceeded, reason: "Promoted",
					desired: "services target=0 weight=0", events: []string{"Normal Promoted"},
					step: 5, stable: "r2", canary: "r2", conds: cIdle},
			},
			{
				name:   "target deleted: not scaled, traffic still moves to the primary",
				canary: newCanary(base),
				obs:    obs(tgt(missing)),
				want: want{phase: F, reason: "Finalising", desired: "services weight=0",
					requeue: engine.RoutePollInterval, step: 5, stable: "r2", canary: "r2", conds: cRunning},
			},
			{
				name:   "abort is too late",
				canary: newCanary(base, request("abort")),
				obs:    obs(),
				want: want{phase: F, reason: "Finalising", desired: "services target=3 weight=0",
					events: []string{"Warning RequestIgnored"}, requeue: engine.RoutePollInterval,
					step: 5, stable: "r2", canary: "r2", handled: "abort", conds: cRunning},
			},
		})
	})
}

// TestReadyThreshold checks the readiness rule through the one place it
// gates everything: the primary must be Ready for initialization to finish.
func TestReadyThreshold(t *testing.T) {
	cases := []struct {
		name                         string
		replicas, updated, available int32
		current                      bool
		threshold                    *int32
		ready                        bool
	}{
		{"all available, default threshold", 3, 3, 3, true, nil, true},
		{"one short, default threshold", 3, 3, 2, true, nil, false},
		{"2/3 at 60% (needs 2)", 3, 3, 2, true, i32(60), true},
		{"2/3 at 67% (needs 3)", 3, 3, 2, true, i32(67), false},
		{"1/3 at 34% (needs 2)", 3, 3, 1, true, i32(34), false},
		{"1/3 at 33% (needs 1)", 3, 3, 1, true, i32(33), true},
		{"1/10 at 1% (needs 1)", 10, 10, 1, true, i32(1), true},
		{"0/10 at 1%", 10, 10, 0, true, i32(1), false},
		{"available but not all updated", 3, 2, 3, true, i32(50), false},
		{"status not current", 3, 3, 3, false, nil, false},
		{"scaled to 0", 0, 0, 0, true, nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCanary(thresholds(tc.threshold, nil))
			p := engine.Workload{Exists: true, Revision: "r1", Replicas: tc.replicas,
				UpdatedReplicas: tc.updated, AvailableReplicas: tc.available, Current: tc.current}
			out := engine.Decide(engine.Input{Canary: c, Obs: newObs(tgt(ready("r1")), pri(p), route(0)), Now: t0})
			got := out.Status.Phase == v1alpha1.PhaseInitialized
			if got != tc.ready {
				t.Errorf("primary ready = %v (phase %s: %s), want %v", got, out.Status.Phase, out.Status.Message, tc.ready)
			}
		})
	}
	// The canary threshold gates the first setWeight.
	for _, tc := range []struct {
		threshold *int32
		available int32
		weight    bool
	}{{nil, 2, false}, {i32(60), 2, true}, {i32(67), 2, false}, {nil, 3, true}} {
		c := newCanary(releasing(0, 0), thresholds(nil, tc.threshold))
		canary := engine.Workload{Exists: true, Revision: "r2", Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: tc.available, Current: true}
		out := engine.Decide(engine.Input{Canary: c, Obs: newObs(tgt(canary), pri(ready("r1")), route(0)), Now: t0})
		got := out.Desired.CanaryWeight != nil && *out.Desired.CanaryWeight == 20
		if got != tc.weight {
			t.Errorf("canary threshold %v, %d/3 available: weight set = %v, want %v (%s)", tc.threshold, tc.available, got, tc.weight, out.Status.Message)
		}
	}
}

// TestDecideIsDeterministicAndRepeatable: deciding twice on the same input
// gives the same output, and feeding the status back with unchanged
// observations (a steady state) gives the same status again, so the
// controller does not write status in a loop.
func TestDecideIsDeterministicAndRepeatable(t *testing.T) {
	steady := []struct {
		name string
		c    *v1alpha1.Canary
		obs  engine.Observations
	}{
		{"initialized", newCanary(initialized()), newObs(tgt(scaledDown("r1")), pri(ready("r1")), route(0))},
		{"pause step", newCanary(releasing(1, 20), stepStarted(5*time.Second)), newObs(tgt(ready("r2")), pri(ready("r1")), route(20))},
		{"waiting promotion", newCanary(releasing(3, 50)), newObs(tgt(ready("r2")), pri(ready("r1")), route(50))},
		{"paused", newCanary(releasing(1, 20), specPaused), newObs(tgt(ready("r2")), pri(ready("r1")), route(20))},
		{"failed", newCanary(inPhase(v1alpha1.PhaseFailed, "Aborted"), revisions("r1", "r2")), newObs(tgt(scaledDown("r2")), pri(ready("r1")), route(0))},
		{"blocked", newCanary(releasing(1, 20)), newObs(tgt(ready("r2")), pri(ready("r1")), route(20), blocked("BackendNotFound", "x"))},
	}
	for _, s := range steady {
		t.Run(s.name, func(t *testing.T) {
			in := engine.Input{Canary: s.c, Obs: s.obs, Now: t0}
			a, b := engine.Decide(in), engine.Decide(in)
			if !equality.Semantic.DeepEqual(a, b) {
				t.Fatalf("two Decides on the same input differ:\n%+v\n%+v", a, b)
			}
			c2 := s.c.DeepCopy()
			c2.Status = a.Status
			again := engine.Decide(engine.Input{Canary: c2, Obs: s.obs, Now: t0.Add(time.Second)})
			if !equality.Semantic.DeepEqual(again.Status, a.Status) {
				t.Errorf("status not at a fixpoint:\nfirst  %+v\nsecond %+v", a.Status, again.Status)
			}
			if len(again.Events) != 0 {
				t.Errorf("steady state emits events again: %v", fmtEvents(again.Events))
			}
		})
	}
}

// A pause is timed to the microsecond. A step that started 0.7 s into a
// second does not end early, as it did when stepStartedAt was a
// metav1.Time (whole seconds): then the start read back as the whole
// second before it. The next step's start is kept to the microsecond, and
// the whole-second fields stay whole (so that what is held in memory
// equals what is read back).
func TestPauseTimedToTheMicrosecond(t *testing.T) {
	start := t0.Add(700 * time.Millisecond)
	obs := func(w int32) engine.Observations { return newObs(tgt(ready("r2")), pri(ready("r1")), route(w)) }
	c := newCanary(releasing(1, 20))
	c.Status.StepStartedAt = v1alpha1.NewTimestamp(start)

	out := engine.Decide(engine.Input{Canary: c, Obs: obs(20), Now: start.Add(59500 * time.Millisecond)})
	if out.Status.CurrentStep != 1 || out.RequeueAfter != 500*time.Millisecond {
		t.Fatalf("59.5 s into a 1m pause: step %d, requeue %s; want step 1, requeue 500ms", out.Status.CurrentStep, out.RequeueAfter)
	}

	now := start.Add(time.Minute + 1234*time.Nanosecond)
	out = engine.Decide(engine.Input{Canary: c, Obs: obs(20), Now: now})
	if out.Status.CurrentStep != 2 {
		t.Fatalf("the pause is over: step %d, want 2", out.Status.CurrentStep)
	}
	if got, want := out.Status.StepStartedAt.Time, now.Truncate(time.Microsecond); !got.Equal(want) {
		t.Errorf("stepStartedAt = %s, want %s", got.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
	}
	if lp := out.Status.LastProgressTime; lp == nil || lp.Nanosecond() != 0 {
		t.Errorf("lastProgressTime = %v, want a whole second (a metav1.Time)", lp)
	}
}
