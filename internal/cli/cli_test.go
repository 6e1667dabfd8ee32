package cli

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/version"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var now = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func i32(v int32) *int32     { return &v }
func f64(v float64) *float64 { return &v }
func at(d time.Duration) *metav1.Time {
	t := metav1.NewTime(now.Add(-d))
	return &t
}

func deploy(image string, want, ready int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		Spec: appsv1.DeploymentSpec{Replicas: &want, Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "app", Image: image}}}}},
		Status: appsv1.DeploymentStatus{ReadyReplicas: ready},
	}
}

func midRelease() View {
	c := &v1alpha1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "shop", CreationTimestamp: metav1.NewTime(now.Add(-3 * time.Hour))},
		Spec: v1alpha1.CanarySpec{
			TargetRef: v1alpha1.TargetRef{Name: "podinfo"},
			Strategy: v1alpha1.Strategy{Steps: []v1alpha1.Step{
				{SetWeight: i32(10)}, {Pause: &v1alpha1.PauseStep{Duration: &metav1.Duration{Duration: time.Minute}}},
				{SetWeight: i32(50)}, {Pause: &v1alpha1.PauseStep{}},
			}},
			Analysis: &v1alpha1.Analysis{Threshold: i32(3), Metrics: []v1alpha1.MetricCheck{
				{Name: "request-success-rate", ThresholdRange: &v1alpha1.ThresholdRange{Min: f64(99)}},
				{Name: "latency", TemplateRef: &v1alpha1.TemplateRef{Name: "latency"}, SuccessCondition: "result < 500"},
			}},
		},
		Status: v1alpha1.CanaryStatus{
			Phase: v1alpha1.PhaseProgressing, Reason: "PauseStep", Message: "step 1: holding 10% for 1m0s",
			LastTransitionTime: at(2 * time.Minute), StableRevision: "d611dc796d", CanaryRevision: "b1612f3c6c",
			CurrentStep: 1, Steps: 4, CanaryWeight: 10, ObservedCanaryWeight: i32(10), FailedChecks: 1,
			LastCheckTime: v1alpha1.NewTimestamp(at(20 * time.Second).Time),
			Metrics: []v1alpha1.MetricStatus{
				{Name: "request-success-rate", Value: "99.7", Passed: true},
				{Name: "latency", Value: "640", Message: `640 does not meet successCondition "result < 500"`},
			},
			Conditions: []metav1.Condition{
				{Type: "Ready", Status: "Unknown", Reason: "PauseStep"},
				{Type: "Progressing", Status: "True", Reason: "PauseStep"},
				{Type: "Reconciling", Status: "True", Reason: "PauseStep"},
				{Type: "Stalled", Status: "False", Reason: "NotStalled"},
			},
		},
	}
	return View{Canary: c, Target: deploy("ghcr.io/stefanprodan/podinfo:6.7.1", 3, 3), Primary: deploy("ghcr.io/stefanprodan/podinfo:6.7.0", 3, 3)}
}

// atGate is a release held by its confirm-promotion gate, with a rollout
// webhook checked every round.
func atGate() View {
	v := midRelease()
	c := v.Canary
	c.Spec.Analysis.Webhooks = []v1alpha1.Webhook{
		{Name: "smoke", Type: v1alpha1.WebhookRollout, URL: "http://loadtester.test/smoke"},
		{Name: "approve", Type: v1alpha1.WebhookConfirmPromotion, URL: "https://approvals.example.com/shop",
			SecretRef: &v1alpha1.SecretKeyRef{Name: "hooks"}},
	}
	c.Status.Phase, c.Status.Reason = v1alpha1.PhaseWaitingPromotion, "WaitingForGate"
	c.Status.Message = "promotion: confirm-promotion gate closed, asking again every 1m0s: webhook approve answered 403 Forbidden: change freeze"
	c.Status.CurrentStep, c.Status.CanaryWeight, c.Status.ObservedCanaryWeight = 4, 50, i32(50)
	c.Status.Metrics = append(c.Status.Metrics, v1alpha1.MetricStatus{Name: "smoke", Passed: true, Webhook: true})
	c.Status.Gate = &v1alpha1.GateStatus{Type: v1alpha1.WebhookConfirmPromotion, Point: "promotion",
		Message: "webhook approve answered 403 Forbidden: change freeze", LastAnswer: at(12 * time.Second)}
	return v
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestRenderGet(t *testing.T) {
	var b bytes.Buffer
	Render(&b, midRelease(), now)
	golden(t, "get-mid-release.golden", b.String())
	// The view must carry the facts a person looks for during a release.
	for _, want := range []string{" >  1  pause 1m0s", " ✓  0  setWeight 10%", "canary 10% set, 10% read back",
		"failed rounds 1/3", `FAILED: 640 does not meet successCondition "result < 500"`, "primary 3/3 ready",
		"podinfo:6.7.1", "podinfo:6.7.0"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("get output lacks %q", want)
		}
	}
}

// TestRenderGetBlueGreenNoRouter: a blue/green release without a router
// names its three steps, and a canary walk without a router states the
// endpoints' real share beside the weight.
func TestRenderGetBlueGreenNoRouter(t *testing.T) {
	v := midRelease()
	c := v.Canary
	c.Spec.Analysis = nil
	c.Spec.Strategy = v1alpha1.Strategy{BlueGreen: &v1alpha1.BlueGreen{PreviewReplicaCount: i32(1), AutoPromotionSeconds: i32(300),
		ScaleDownDelay: &metav1.Duration{Duration: 2 * time.Minute}}}
	c.Status.CurrentStep, c.Status.CanaryWeight, c.Status.ObservedCanaryWeight = 2, 100, i32(100)
	c.Status.Reason, c.Status.Message = "PauseStep", "step 2: all traffic on revision b1612f3c6c; the old copy keeps running for 2m0s (scale-down delay)"
	var b bytes.Buffer
	Render(&b, v, now)
	golden(t, "get-blue-green.golden", b.String())
	for _, want := range []string{"Steps:     blue/green", " ✓  0  preview (1 replicas, no traffic) for 5m0s", " ✓  1  switch all traffic (at full size)",
		" >  2  scale-down delay 2m0s (the old copy kept)"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("get output lacks %q:\n%s", want, b.String())
		}
	}

	v = midRelease()
	v.Canary.Status.CanaryWeight, v.Canary.Status.ObservedCanaryWeight = 30, i32(30)
	v.Canary.Status.EndpointShare = &v1alpha1.EndpointShare{Canary: 2, Primary: 4}
	b.Reset()
	Render(&b, v, now)
	if want := "canary 30% set, 30% read back (no router: 2 canary and 4 primary endpoints, 33.3%)"; !strings.Contains(b.String(), want) {
		t.Errorf("get output lacks %q:\n%s", want, b.String())
	}
}

// TestRenderGetJudge: compared metrics show both medians, the shift and
// the verdict; the judge's row shows the score against its thresholds.
func TestRenderGetJudge(t *testing.T) {
	v := midRelease()
	c := v.Canary
	c.Spec.Analysis.Metrics = append(c.Spec.Analysis.Metrics,
		v1alpha1.MetricCheck{Name: "p99-latency", TemplateRef: &v1alpha1.TemplateRef{Name: "p99"}, Compare: &v1alpha1.Comparison{Direction: "Increase"}},
		v1alpha1.MetricCheck{Name: "error-ratio", TemplateRef: &v1alpha1.TemplateRef{Name: "errors"}, Compare: &v1alpha1.Comparison{Direction: "Increase", TolerancePercent: i32(20)}})
	c.Spec.Analysis.Judge = &v1alpha1.Judge{PassScore: i32(90), MarginalScore: i32(50)}
	c.Status.Metrics = append(c.Status.Metrics, v1alpha1.MetricStatus{Name: "judge", Value: "50", Inconclusive: true, Message: "marginal score 50 (pass 90, marginal 50)"})
	c.Status.Judge = &v1alpha1.JudgeStatus{Round: 7, Score: "50", Verdict: v1alpha1.VerdictMarginal, Metrics: []v1alpha1.ComparisonStatus{
		{Name: "p99-latency", Verdict: v1alpha1.VerdictHigh, CanarySamples: 30, PrimarySamples: 30, CanaryMedian: "131", PrimaryMedian: "104", Shift: "+25.3%", PValue: "0.0001",
			Message: "canary higher than primary (median 131 vs 104, shift +25.3%, p=0.0001, n=30/30)"},
		{Name: "error-ratio", Verdict: v1alpha1.VerdictPass, CanarySamples: 30, PrimarySamples: 30, CanaryMedian: "0.002", PrimaryMedian: "0.002", Shift: "+0.0%", PValue: "0.48"},
	}}
	var b bytes.Buffer
	Render(&b, v, now)
	golden(t, "get-judge.golden", b.String())
	for _, want := range []string{"p99-latency           131 vs 104 (+25.3%)", "vs primary (Increase, ±5%)", "HIGH: canary higher than primary",
		"error-ratio           0.002 vs 0.002 (+0.0%)", "judge                 50", "score >= 90 (marginal >= 50)", "MARGINAL: waiting for a round that decides"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("get output lacks %q:\n%s", want, b.String())
		}
	}
}

func TestRenderGetAtGate(t *testing.T) {
	var b bytes.Buffer
	Render(&b, atGate(), now)
	golden(t, "get-at-gate.golden", b.String())
	for _, want := range []string{"Gate:      confirm-promotion before promotion CLOSED: webhook approve answered 403 Forbidden: change freeze, last answer 12s ago",
		"smoke", "webhook 2xx", "approve  confirm-promotion  https://approvals.example.com/shop  signed"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("get output lacks %q", want)
		}
	}
}

func TestRenderList(t *testing.T) {
	v := midRelease()
	other := v.Canary.DeepCopy()
	other.Namespace, other.Name = "web", "front"
	other.Status = v1alpha1.CanaryStatus{Phase: v1alpha1.PhaseSucceeded}
	var b bytes.Buffer
	RenderList(&b, []v1alpha1.Canary{*v.Canary, *other}, true, now)
	golden(t, "list-all.golden", b.String())
}

func TestPlan(t *testing.T) {
	in := func(p v1alpha1.CanaryPhase, paused bool) *v1alpha1.Canary {
		return &v1alpha1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "n"},
			Spec: v1alpha1.CanarySpec{Paused: paused}, Status: v1alpha1.CanaryStatus{Phase: p, CanaryRevision: "r2", StableRevision: "r1"}}
	}
	cases := []struct {
		phase  v1alpha1.CanaryPhase
		paused bool
		action Action
		want   string // substring of the plan, or of the refusal when refused
		refuse bool
	}{
		{v1alpha1.PhaseSucceeded, false, Promote, "is Succeeded: no release is in progress to promote", true},
		{v1alpha1.PhaseProgressing, false, Retry, "only a Failed release can be retried", true},
		{v1alpha1.PhaseFailed, false, Abort, "no release is in progress to abort", true},
		{v1alpha1.PhaseWaitingPromotion, false, Promote, "leaves step 0 now", false},
		{v1alpha1.PhaseProgressing, false, PromoteFull, "promotes revision r2", false},
		{v1alpha1.PhasePaused, true, Abort, "all traffic to the primary (revision r1)", false},
		{v1alpha1.PhaseFailed, false, Retry, "releases revision r2 again", false},
		{v1alpha1.PhaseProgressing, true, Pause, "already paused", true},
		{v1alpha1.PhaseProgressing, false, Resume, "is not paused", true},
		{v1alpha1.PhasePaused, true, Resume, "resumes", false},
		{v1alpha1.PhaseWaiting, false, Abort, "drops revision r2 before its release starts", false},
		{v1alpha1.PhaseWaiting, false, Promote, "is Waiting: no release is in progress", true},
		{v1alpha1.PhasePromoting, false, Abort, "stops its promotion before the primary is updated", false},
	}
	for _, tc := range cases {
		got, err := Plan(in(tc.phase, tc.paused), tc.action)
		text := got
		if err != nil {
			text = err.Error()
		}
		if (err != nil) != tc.refuse || !strings.Contains(text, tc.want) {
			t.Errorf("%s in %s (paused %v): %q, %v; want refuse=%v ~%q", tc.action, tc.phase, tc.paused, got, err, tc.refuse, tc.want)
		}
	}
	// Once the primary took the promoted template (its verification has
	// started), an abort is too late.
	c := in(v1alpha1.PhasePromoting, false)
	c.Status.Verification = &v1alpha1.VerificationStatus{Revision: "r2", State: v1alpha1.VerificationVerifying}
	if got, err := Plan(c, Abort); err == nil || !strings.Contains(err.Error(), "too late to abort") {
		t.Errorf("abort while the primary is verified: %q, %v; want it refused as too late", got, err)
	}
}

func TestFrameRedrawsInPlace(t *testing.T) {
	f := Frame(midRelease(), now)
	if !strings.HasPrefix(f, "\033[H") || !strings.HasSuffix(f, "\033[J") || strings.Contains(f, "\033[2J") {
		t.Errorf("a frame must go home, clear below once and never clear the whole screen: %q", f)
	}
	var b bytes.Buffer
	Render(&b, midRelease(), now)
	lines := strings.Count(b.String(), "\n")
	if got := strings.Count(f, "\033[K\n"); got != lines {
		t.Errorf("%d of %d lines clear their tail", got, lines)
	}
}

// lint: the findings name the file and the field; an error fails the
// command (exit 1), a warning does not; a missing file is a usage error.
func TestLintCommand(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	canary := "apiVersion: sluice.dev/v1alpha1\nkind: Canary\nmetadata: {name: web}\nspec:\n  targetRef: {name: web}\n  service: {port: 80}\n  router: {gatewayAPI: {parentRefs: [{name: gw}]}}\n"
	good := write("good.yaml", canary+"  strategy: {steps: [{setWeight: 10}]}\n")
	warn := write("warn.yaml", canary+"  strategy: {steps: [{pause: {duration: 1m}}]}\n")
	bad := write("bad.yaml", canary+"  strategy: {steps: [{setWeight: 50}, {setWeight: 20}]}\n  progresDeadline: 5m\n")
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		root := NewRoot(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out})
		root.SetArgs(args)
		err := root.Execute()
		return out.String(), err
	}
	if out, err := run("lint", good); err != nil || out != "" {
		t.Errorf("good: %q %v", out, err)
	}
	if out, err := run("lint", warn); err != nil || !strings.Contains(out, "warn.yaml: Canary/web: warning: spec.strategy: no step sends traffic") {
		t.Errorf("warning: %q %v", out, err)
	}
	out, err := run("lint", good, bad)
	if err == nil || !strings.Contains(err.Error(), "2 error(s)") ||
		!strings.Contains(out, "bad.yaml: Canary/web: error: spec.strategy: Invalid value: spec.strategy.steps: setWeight values must increase from step to step") ||
		!strings.Contains(out, "bad.yaml: Canary/web: error: spec.progresDeadline: unknown field") {
		t.Errorf("bad: %q %v", out, err)
	}
	if _, err := run("lint", filepath.Join(dir, "missing.yaml")); !errors.As(err, new(UsageError)) {
		t.Errorf("missing file: %v, want a usage error", err)
	}
}

func records() (*v1alpha1.Canary, []v1alpha1.CanaryRevision) {
	c := &v1alpha1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "shop"},
		Status: v1alpha1.CanaryStatus{Phase: v1alpha1.PhaseFailed, StableRevision: "b2", CanaryRevision: "c3"}}
	rec := func(n int64, rev, image, outcome, reason string, start, took time.Duration) v1alpha1.CanaryRevision {
		r := v1alpha1.CanaryRevision{Spec: v1alpha1.CanaryRevisionSpec{Number: n, Revision: rev, Images: image},
			Status: v1alpha1.CanaryRevisionStatus{Outcome: outcome, Reason: reason, StartTime: at(start)}}
		if outcome != v1alpha1.OutcomeProgressing {
			r.Status.EndTime = at(start - took)
		}
		return r
	}
	return c, []v1alpha1.CanaryRevision{
		rec(1, "a1", "ghcr.io/stefanprodan/podinfo:6.6.0", v1alpha1.OutcomeSucceeded, "Initialized", 72*time.Hour, 0),
		rec(2, "b2", "ghcr.io/stefanprodan/podinfo:6.7.0", v1alpha1.OutcomeSucceeded, "Promoted", 5*time.Hour, 7*time.Minute),
		rec(3, "c3", "ghcr.io/stefanprodan/podinfo:6.7.1", v1alpha1.OutcomeFailed, "AnalysisFailed", 20*time.Minute, 3*time.Minute),
	}
}

func TestRenderHistory(t *testing.T) {
	c, recs := records()
	var b bytes.Buffer
	RenderHistory(&b, c, recs, now)
	golden(t, "history.golden", b.String())
	if !strings.Contains(b.String(), "2*") || !strings.Contains(b.String(), "AnalysisFailed") {
		t.Errorf("history lacks the stable mark or the failure:\n%s", b.String())
	}
}

func TestUndoTarget(t *testing.T) {
	c, recs := records()
	if r, err := UndoTarget(c, recs, 0); err != nil || r.Spec.Number != 2 {
		t.Errorf("default undo after a failure: %v %v, want #2", r, err)
	}
	if r, err := UndoTarget(c, recs, 1); err != nil || r.Spec.Number != 1 {
		t.Errorf("--to-revision 1: %v %v", r, err)
	}
	if _, err := UndoTarget(c, recs, 3); err == nil || !strings.Contains(err.Error(), "is the target's revision already") {
		t.Errorf("--to-revision of the current: %v", err)
	}
	if _, err := UndoTarget(c, recs, 9); err == nil || !strings.Contains(err.Error(), "no recorded revision #9") {
		t.Errorf("unknown revision: %v", err)
	}
	running := c.DeepCopy()
	running.Status.Phase = v1alpha1.PhaseProgressing
	if _, err := UndoTarget(running, recs, 0); err == nil || !strings.Contains(err.Error(), "abort the release first") {
		t.Errorf("undo during a release: %v", err)
	}
	// After a success, the default goes back to the one before.
	ok := c.DeepCopy()
	ok.Status = v1alpha1.CanaryStatus{Phase: v1alpha1.PhaseSucceeded, StableRevision: "b2", CanaryRevision: "b2"}
	if r, err := UndoTarget(ok, recs[:2], 0); err != nil || r.Spec.Number != 1 {
		t.Errorf("default undo after a success: %v %v, want #1", r, err)
	}
}

func TestRenderVerification(t *testing.T) {
	v := midRelease()
	v.Canary.Status.Phase = v1alpha1.PhaseFailed
	v.Canary.Status.Verification = &v1alpha1.VerificationStatus{Revision: "b1612f3c6c", State: v1alpha1.VerificationFailed,
		Mismatches: 2, LastMismatchField: "rollout", LastMismatch: "exceeded quota"}
	var b bytes.Buffer
	Render(&b, v, now)
	if want := "Verify:    Failed primary at revision b1612f3c6c, 2 mismatches, last (rollout): exceeded quota"; !strings.Contains(b.String(), want) {
		t.Errorf("get lacks %q:\n%s", want, b.String())
	}
}

func TestVersionCommand(t *testing.T) {
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		root := NewRoot(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out})
		root.SetArgs(args)
		err := root.Execute()
		return out.String(), err
	}
	out, err := run("version")
	if want := "kubectl-sluice " + version.Get().String() + "\n"; err != nil || out != want {
		t.Errorf("version: %q %v, want %q", out, err, want)
	}
	if !strings.Contains(out, "(commit ") {
		t.Errorf("version names no commit: %q", out)
	}
	if _, err := run("version", "extra"); !errors.As(err, new(UsageError)) {
		t.Errorf("version extra: %v, want a usage error", err)
	}
}
