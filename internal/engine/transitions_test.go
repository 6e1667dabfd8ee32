package engine_test

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/engine"
)

// Conditions a row expects, as fmtConds renders them.
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

// Short names of the phases of a running release, for the tables.
const (
	P  = v1alpha1.PhaseProgressing
	Pa = v1alpha1.PhasePaused
	WP = v1alpha1.PhaseWaitingPromotion
)

// TestDecideTransitions walks the transition table of Decide: one table
// per phase the Canary starts in, kept in transitions_initializing,
// _idle, _progressing, _paused, _promoting and _finalising_test.go; a
// phase's rows run as TestDecideTransitions/<phase>/<row>.
func TestDecideTransitions(t *testing.T) {
	for _, phase := range []struct {
		name string
		rows func() []row
	}{
		{"New", newRows},
		{"Initializing", initializingRows},
		{"Initialized", initializedRows},
		{"Succeeded", succeededRows},
		{"Failed", failedRows},
		{"Progressing", progressingRows},
		{"Paused", pausedRows},
		{"WaitingPromotion", waitingPromotionRows},
		{"Promoting", promotingRows},
		{"Finalising", finalisingRows},
	} {
		t.Run(phase.name, func(t *testing.T) {
			runRows(t, phase.rows())
		})
	}
}
