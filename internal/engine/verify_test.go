package engine_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/engine"
)

func verifying(rev string, started time.Duration, mismatches int32, lastMismatch *time.Duration) canaryOpt {
	return func(c *v1alpha1.Canary) {
		c.Status.Verification = &v1alpha1.VerificationStatus{Revision: rev, State: v1alpha1.VerificationVerifying,
			StartedAt: ago(started), Mismatches: mismatches}
		if lastMismatch != nil {
			c.Status.Verification.LastMismatchTime = ago(*lastMismatch)
		}
	}
}

func drift(msg, field string) obsOpt {
	return func(o *engine.Observations) { o.Drift, o.DriftField = msg, field }
}

func stableRecord(o *engine.Observations) { o.StableRecord = true }

func withProblem(w engine.Workload, p string) engine.Workload { w.Problem = p; return w }

func TestDecideVerification(t *testing.T) {
	d := func(x time.Duration) *time.Duration { return &x }
	promoting := all(inPhase(v1alpha1.PhasePromoting, "Promoting"), revisions("r1", "r2"), atStep(5, 80),
		stepStarted(time.Minute), lastProgress(time.Minute))
	quota := `pods "web-primary-x" is forbidden: exceeded quota: pods, requested: pods=1, used: pods=4, limited: pods=4`
	// The quota case: the new ReplicaSet cannot create pods, the old ones
	// still run and are the only available ones.
	blocked := engine.Workload{Exists: true, Revision: "r2", Replicas: 3, UpdatedReplicas: 0, AvailableReplicas: 3,
		StatusReplicas: 3, Current: true, Problem: quota}
	cases := []struct {
		name       string
		canary     *v1alpha1.Canary
		obs        engine.Observations
		phase      v1alpha1.CanaryPhase
		reason     string
		desired    string
		state      string
		mismatches int32
		msgHas     string
		event      string
	}{
		{"old pods still available do not verify a promotion",
			newCanary(promoting), newObs(tgt(ready("r2")), pri(engine.Workload{Exists: true, Revision: "r2", Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3, StatusReplicas: 4, Current: true}), route(80)),
			v1alpha1.PhasePromoting, "Promoting", "fromTarget services primary=3 target=3", v1alpha1.VerificationVerifying, 0, "1 old replicas still running", ""},
		{"a failing primary rollout counts a mismatch",
			newCanary(promoting, verifying("r2", time.Minute, 0, nil)), newObs(tgt(ready("r2")), pri(blocked), route(80)),
			v1alpha1.PhasePromoting, "Promoting", "fromTarget services primary=3 target=3", v1alpha1.VerificationVerifying, 1, "exceeded quota", "VerificationMismatch"},
		{"a mismatch is counted at most once per interval",
			newCanary(promoting, verifying("r2", time.Minute, 1, d(3*time.Second))), newObs(tgt(ready("r2")), pri(blocked), route(80)),
			v1alpha1.PhasePromoting, "Promoting", "fromTarget services primary=3 target=3", v1alpha1.VerificationVerifying, 1, "exceeded quota", ""},
		{"one mismatch more than retries fails safe: the primary restored, the Ready canary carries everything",
			newCanary(promoting, verifying("r2", time.Minute, 3, d(11*time.Second))), newObs(tgt(ready("r2")), pri(blocked), route(80), stableRecord),
			v1alpha1.PhaseFailed, "VerificationFailed", "restore services primary=3 target=3 weight=100", v1alpha1.VerificationFailed, 4,
			"primary 0/3 updated, 3 old replicas still running after 4 mismatches (rollout): pods \"web-primary-x\" is forbidden: exceeded quota", "VerificationFailed"},
		{"an edited primary template is a mismatch (and re-applied)",
			newCanary(promoting, verifying("r2", time.Minute, 0, nil)),
			newObs(tgt(ready("r2")), pri(ready("r2")), route(80), drift("container app image example.com/x:9, recorded example.com/x:2", "image")),
			v1alpha1.PhasePromoting, "Promoting", "fromTarget services primary=3 target=3", v1alpha1.VerificationVerifying, 1, "recorded example.com/x:2", "VerificationMismatch"},
		{"a matching Ready primary is verified",
			newCanary(promoting, verifying("r2", time.Minute, 2, d(time.Minute))), newObs(tgt(ready("r2")), pri(ready("r2")), route(80)),
			v1alpha1.PhaseFinalising, "Finalising", "fromTarget services primary=3 target=3 weight=0", v1alpha1.VerificationVerified, 2, "", "Verified"},
		{"after the failure: the primary restored and Ready, traffic returns to it",
			newCanary(inPhase(v1alpha1.PhaseFailed, "VerificationFailed"), revisions("r1", "r2"), atStep(5, 100), func(c *v1alpha1.Canary) {
				c.Status.Verification = &v1alpha1.VerificationStatus{Revision: "r2", State: v1alpha1.VerificationFailed, StartedAt: ago(time.Minute)}
			}),
			newObs(tgt(ready("r2")), pri(ready("r1")), route(100), stableRecord),
			v1alpha1.PhaseFailed, "VerificationFailed", "services weight=0", v1alpha1.VerificationFailed, 0, "", ""},
		{"after the failure: without a stable record nothing is restored, traffic stays on the Ready canary",
			newCanary(inPhase(v1alpha1.PhaseFailed, "VerificationFailed"), revisions("r1", "r2"), atStep(5, 100), func(c *v1alpha1.Canary) {
				c.Status.Verification = &v1alpha1.VerificationStatus{Revision: "r2", State: v1alpha1.VerificationFailed, StartedAt: ago(time.Minute)}
			}),
			newObs(tgt(ready("r2")), pri(withProblem(notReady("r2"), quota)), route(100)),
			v1alpha1.PhaseFailed, "VerificationFailed", "services target=3 weight=100", v1alpha1.VerificationFailed, 0, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := engine.Decide(engine.Input{Canary: tc.canary, Obs: tc.obs, Now: t0})
			st := out.Status
			if st.Phase != tc.phase || st.Reason != tc.reason {
				t.Errorf("phase/reason = %s/%s (%s), want %s/%s", st.Phase, st.Reason, st.Message, tc.phase, tc.reason)
			}
			if got := fmtDesired(out.Desired); got != tc.desired {
				t.Errorf("desired = %q, want %q", got, tc.desired)
			}
			if v := st.Verification; v == nil || v.State != tc.state || v.Mismatches != tc.mismatches {
				t.Errorf("verification = %+v, want state %s with %d mismatches", v, tc.state, tc.mismatches)
			}
			if tc.msgHas != "" && !strings.Contains(st.Message, tc.msgHas) {
				t.Errorf("message %q lacks %q", st.Message, tc.msgHas)
			}
			evs := fmtEvents(out.Events)
			if tc.event != "" && !slices.ContainsFunc(evs, func(e string) bool { return strings.HasSuffix(e, " "+tc.event) }) {
				t.Errorf("events %q lack %s", evs, tc.event)
			}
			if tc.event == "" && slices.ContainsFunc(evs, func(e string) bool { return strings.Contains(e, "Mismatch") }) {
				t.Errorf("unexpected mismatch event: %q", evs)
			}
		})
	}
}

// A succeeded primary edited by hand is reported (once), not fought.
func TestDecideDrift(t *testing.T) {
	succeeded := all(inPhase(v1alpha1.PhaseSucceeded, "Promoted"), revisions("r2", "r2"))
	obs := newObs(tgt(scaledDown("r2")), pri(ready("r2")), route(0), drift("replicas 5, recorded 3", "replicas"))
	out := engine.Decide(engine.Input{Canary: newCanary(succeeded), Obs: obs, Now: t0})
	c := meta.FindStatusCondition(out.Status.Conditions, v1alpha1.ConditionDrifted)
	if c == nil || c.Status != "True" || !strings.Contains(c.Message, "replicas 5, recorded 3") {
		t.Fatalf("Drifted = %+v", c)
	}
	if evs := fmtEvents(out.Events); !slices.Contains(evs, "Warning PrimaryDrifted") {
		t.Errorf("events %q lack PrimaryDrifted", evs)
	}
	if out.Desired.PrimaryFromTarget || out.Desired.RestorePrimary {
		t.Errorf("drift is fought: %s", fmtDesired(out.Desired))
	}
	// The next decision, same drift: no second Event.
	next := newCanary(succeeded)
	next.Status = out.Status
	again := engine.Decide(engine.Input{Canary: next, Obs: obs, Now: t0.Add(time.Minute)})
	if evs := fmtEvents(again.Events); slices.Contains(evs, "Warning PrimaryDrifted") {
		t.Errorf("drift reported twice: %q", evs)
	}
	// Drift gone: the condition clears.
	clean := engine.Decide(engine.Input{Canary: next, Obs: newObs(tgt(scaledDown("r2")), pri(ready("r2")), route(0)), Now: t0})
	if meta.IsStatusConditionTrue(clean.Status.Conditions, v1alpha1.ConditionDrifted) {
		t.Error("Drifted stays True without drift")
	}
}

// After a failed release the target is set back to the stable revision
// (kubectl sluice undo): nothing is released, the Canary is healthy again.
func TestDecideTargetRevertedToStable(t *testing.T) {
	c := newCanary(inPhase(v1alpha1.PhaseFailed, "AnalysisFailed"), revisions("r1", "r2"))
	out := engine.Decide(engine.Input{Canary: c, Obs: newObs(tgt(scaledDown("r1")), pri(ready("r1")), route(0)), Now: t0})
	st := out.Status
	if st.Phase != v1alpha1.PhaseSucceeded || st.Reason != "RevertedToStable" || st.CanaryRevision != "r1" {
		t.Errorf("phase %s reason %s canary %s; want Succeeded/RevertedToStable at r1", st.Phase, st.Reason, st.CanaryRevision)
	}
	if !meta.IsStatusConditionTrue(st.Conditions, v1alpha1.ConditionReady) {
		t.Errorf("not Ready after reverting to the stable revision")
	}
	if got := fmtDesired(out.Desired); got != "services target=0 weight=0" {
		t.Errorf("desired = %q", got)
	}
}

func failedVerification(c *v1alpha1.Canary) {
	c.Status.Verification = &v1alpha1.VerificationStatus{Revision: "r2", State: v1alpha1.VerificationFailed,
		StartedAt: ago(time.Hour), Mismatches: 9, LastMismatchTime: ago(time.Hour)}
}

// A retry of a revision that failed verification verifies afresh.
func TestDecideRetryAfterVerificationFailureStartsFresh(t *testing.T) {
	c := newCanary(inPhase(v1alpha1.PhasePromoting, "Promoting"), revisions("r1", "r2"), atStep(5, 80), failedVerification)
	out := engine.Decide(engine.Input{Canary: c, Obs: newObs(tgt(ready("r2")), pri(notReady("r2")), route(80), stableRecord), Now: t0})
	if v := out.Status.Verification; out.Status.Phase != v1alpha1.PhasePromoting || v == nil || v.State != v1alpha1.VerificationVerifying ||
		v.Mismatches != 0 || !v.StartedAt.Time.Equal(t0) {
		t.Errorf("phase %s, verification %+v; want a fresh Verifying", out.Status.Phase, v)
	}
	// A new release clears it too.
	next := newCanary(initialized(), failedVerification)
	out = engine.Decide(engine.Input{Canary: next, Obs: newObs(tgt(scaledDown("r3")), pri(ready("r1")), route(0)), Now: t0})
	if out.Status.Verification != nil {
		t.Errorf("a new release kept the old verification: %+v", out.Status.Verification)
	}
}

// While the primary is being restored after a failed promotion, a new
// revision is not released: it would move the traffic the canary carries
// onto pods nobody checked.
func TestDecideNewRevisionWaitsForTheRestore(t *testing.T) {
	c := newCanary(inPhase(v1alpha1.PhaseFailed, "VerificationFailed"), revisions("r1", "r2"), atStep(5, 100), failedVerification)
	out := engine.Decide(engine.Input{Canary: c, Obs: newObs(tgt(notReady("r3")), pri(notReady("r2")), route(100), stableRecord), Now: t0})
	st := out.Status
	if st.Phase != v1alpha1.PhaseFailed || st.CanaryRevision != "r2" || st.Reason != "WaitingForPrimaryRestore" {
		t.Errorf("phase %s canary %s reason %s; want Failed at r2, waiting for the restore", st.Phase, st.CanaryRevision, st.Reason)
	}
	if !out.Desired.RestorePrimary {
		t.Errorf("the restore stopped: %s", fmtDesired(out.Desired))
	}
	// Once the primary is back, the new revision is released.
	c.Status = st
	out = engine.Decide(engine.Input{Canary: c, Obs: newObs(tgt(notReady("r3")), pri(ready("r1")), route(0), stableRecord), Now: t0})
	if out.Status.Phase != v1alpha1.PhaseProgressing || out.Status.CanaryRevision != "r3" {
		t.Errorf("after the restore: %s at %s", out.Status.Phase, out.Status.CanaryRevision)
	}
}
