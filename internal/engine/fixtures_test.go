package engine_test

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/engine"
)

// Builders of Canaries and observations, and renderings of outputs,
// shared by the tables of this package.

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
