package engine_test

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/engine"
)

func TestDecideHandover(t *testing.T) {
	deleted := func(ago time.Duration) canaryOpt {
		return func(c *v1alpha1.Canary) {
			ts := metav1.NewTime(t0.Add(-ago))
			c.DeletionTimestamp = &ts
		}
	}
	handBack := func(h v1alpha1.HandBack) canaryOpt {
		return func(c *v1alpha1.Canary) { c.Spec.HandBackOnDeletion = h }
	}
	cases := []struct {
		name      string
		canary    *v1alpha1.Canary
		target    engine.Workload
		primary   engine.Workload
		action    engine.HandoverAction
		scale     int32 // 0: no scale
		requeue   time.Duration
		event     string // "Warning Reason" or "Normal Reason", "" for none
		eventHas  string
		replicas  int32
		targetRev string
	}{
		{
			name:   "target at the stable revision, scaled down: scaled to the primary's replicas first",
			canary: newCanary(initialized(), deleted(0)), target: scaledDown("r1"), primary: ready("r1"),
			action: engine.HandoverWait, scale: 3, requeue: engine.HandoverPoll, replicas: 3,
		},
		{
			name:   "target at the stable revision, available: handed back",
			canary: newCanary(initialized(), deleted(5*time.Second)), target: ready("r1"), primary: ready("r1"),
			action: engine.HandoverToTarget, event: "Normal HandedBack", eventHas: "3 replicas, revision r1", replicas: 3,
		},
		{
			name:   "target at the stable revision, not available yet: waits",
			canary: newCanary(initialized(), deleted(5*time.Second)), target: notReady("r1"), primary: ready("r1"),
			action: engine.HandoverWait, requeue: engine.HandoverPoll, replicas: 3,
		},
		{
			name:   "target at the stable revision, not available by the deadline: the primary is kept",
			canary: newCanary(initialized(), deleted(v1alpha1.DefaultProgressDeadline)), target: notReady("r1"), primary: ready("r1"),
			action: engine.HandoverKeepPrimary, event: "Warning PrimaryKept", eventHas: "not available 10m0s after deletion", replicas: 3,
		},
		{
			name:   "target not available by the deadline and no primary: handed back anyway",
			canary: newCanary(initialized(), deleted(v1alpha1.DefaultProgressDeadline)), target: notReady("r1"), primary: engine.Workload{},
			action: engine.HandoverToTarget, event: "Warning HandoverUnready", eventHas: "no primary to keep", replicas: 3,
		},
		{
			// Issue 21 item 4: its pods are Ready, and it used to get all
			// the traffic.
			name:   "after a failed release: the primary keeps serving the last good revision",
			canary: newCanary(inPhase(v1alpha1.PhaseFailed, "AnalysisFailed"), revisions("r1", "r2"), deleted(0)), target: ready("r2"), primary: ready("r1"),
			action: engine.HandoverKeepPrimary, event: "Warning PrimaryKept", eventHas: "runs revision r2, not the last good revision r1 (the last release failed: AnalysisFailed)", replicas: 3,
		},
		{
			// Issue 21 item 4: deleted at 20%, the revision under analysis
			// used to get all the traffic and the primary was deleted.
			name:   "mid-release: the primary keeps serving, the unverified revision gets nothing",
			canary: newCanary(releasing(1, 20), deleted(0)), target: ready("r2"), primary: ready("r1"),
			action: engine.HandoverKeepPrimary, event: "Warning PrimaryKept", eventHas: "was still running (Progressing)", replicas: 3,
		},
		{
			name:   "mid-release with handBackOnDeletion Target: the user's Deployment gets it once available",
			canary: newCanary(releasing(1, 20), deleted(0), handBack(v1alpha1.HandBackTarget)), target: ready("r2"), primary: ready("r1"),
			action: engine.HandoverToTarget, event: "Normal HandedBack", eventHas: "revision r2", replicas: 3,
		},
		{
			name:   "after a failed release with handBackOnDeletion Target, target scaled down: scaled up first",
			canary: newCanary(inPhase(v1alpha1.PhaseFailed, "AnalysisFailed"), revisions("r1", "r2"), deleted(0), handBack(v1alpha1.HandBackTarget)),
			target: scaledDown("r2"), primary: ready("r1"),
			action: engine.HandoverWait, scale: 3, requeue: engine.HandoverPoll, replicas: 3,
		},
		{
			name:   "never initialised (no stable revision): handed back",
			canary: newCanary(deleted(0)), target: ready("r1"), primary: engine.Workload{},
			action: engine.HandoverToTarget, event: "Normal HandedBack", replicas: 3,
		},
		{
			name:   "new revision applied but not noticed yet: the primary keeps serving",
			canary: newCanary(initialized(), deleted(0)), target: ready("r9"), primary: ready("r1"),
			action: engine.HandoverKeepPrimary, event: "Warning PrimaryKept", eventHas: "runs revision r9, not the last good revision r1", replicas: 3,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.canary.DeepCopy()
			got := engine.DecideHandover(engine.HandoverInput{Canary: tc.canary, Target: tc.target, Primary: tc.primary, Now: t0})
			if got.Action != tc.action {
				t.Errorf("action = %s, want %s", got.Action, tc.action)
			}
			if (got.ScaleTarget == nil) != (tc.scale == 0) || (got.ScaleTarget != nil && *got.ScaleTarget != tc.scale) {
				t.Errorf("scale target = %v, want %d", got.ScaleTarget, tc.scale)
			}
			if got.RequeueAfter != tc.requeue {
				t.Errorf("requeue = %s, want %s", got.RequeueAfter, tc.requeue)
			}
			if got.Replicas != tc.replicas {
				t.Errorf("replicas = %d, want %d", got.Replicas, tc.replicas)
			}
			ev := ""
			if got.Event.Reason != "" {
				ev = fmtEvents([]engine.Event{got.Event})[0]
			}
			if ev != tc.event || !strings.Contains(got.Event.Message, tc.eventHas) {
				t.Errorf("event = %q %q, want %q containing %q", ev, got.Event.Message, tc.event, tc.eventHas)
			}
			if tc.canary.Spec.HandBackOnDeletion != before.Spec.HandBackOnDeletion || tc.canary.Status.Phase != before.Status.Phase {
				t.Errorf("DecideHandover modified its input")
			}
		})
	}
}
