package controller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/controller"
	"github.com/sluice-dev/sluice/internal/testenv"
)

// readySampler checks, every 20 ms, that no copy gets traffic without an
// available replica: the canary's share needs an available canary pod, the
// primary's an available primary pod.
type readySampler struct {
	mu         sync.Mutex
	samples    int
	onCanary   int // samples in which the canary carried traffic
	violations []string
	sample     func(ctx context.Context)
	stop       func()
}

func sampleReadiness(t *testing.T, cl client.Client, ns, name string) *readySampler {
	s := &readySampler{}
	s.sample = func(ctx context.Context) {
		split, err := routeSplit(ctx, cl, ns, name)
		if err != nil {
			return
		}
		target, err1 := deployment(ctx, cl, ns, name)
		primary, err2 := deployment(ctx, cl, ns, name+"-primary")
		if err1 != nil || err2 != nil {
			return
		}
		share := canaryShare(split, name)
		s.mu.Lock()
		defer s.mu.Unlock()
		s.samples++
		if share > 0 {
			s.onCanary++
		}
		if share > 0 && target.Status.AvailableReplicas == 0 {
			s.violations = append(s.violations, fmt.Sprintf("canary has %d%% with no available pod", share))
		}
		if share < 100 && primary.Status.AvailableReplicas == 0 {
			s.violations = append(s.violations, fmt.Sprintf("primary has %d%% with no available pod", 100-share))
		}
	}
	s.stop = inBackground(t, s.sample)
	return s
}

// check stops the sampling, takes one last sample of the end state and
// reports. The check proves something only if some sample caught the
// canary carrying traffic, whatever the machine's speed: the number of
// samples is not the measure.
func (s *readySampler) check(t *testing.T) {
	t.Helper()
	s.stop()
	s.sample(t.Context())
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.onCanary == 0 {
		t.Errorf("none of %d samples caught the canary carrying traffic: the check proves nothing", s.samples)
	}
	if len(s.violations) > 0 {
		t.Errorf("traffic on a copy without an available pod (%d times), first: %s", len(s.violations), s.violations[0])
	}
}

func verified(c *v1alpha1.Canary, v v1alpha1.Verification) *v1alpha1.Canary {
	c.Spec.Verification = &v
	return c
}

func getRecord(ctx context.Context, cl client.Client, ns, canary, rev string) (*v1alpha1.CanaryRevision, error) {
	var r v1alpha1.CanaryRevision
	err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: controller.RecordName(canary, rev)}, &r)
	return &r, err
}

// waitRecord waits for the record of rev to reach outcome.
func waitRecord(t *testing.T, cl client.Client, ns, canary, rev, outcome string) *v1alpha1.CanaryRevision {
	t.Helper()
	var got *v1alpha1.CanaryRevision
	testenv.Eventually(t, 30*time.Second, "record "+rev+" "+outcome, func(ctx context.Context) error {
		r, err := getRecord(ctx, cl, ns, canary, rev)
		if err != nil {
			return err
		}
		if r.Status.Outcome != outcome {
			return fmt.Errorf("outcome %q", r.Status.Outcome)
		}
		got = r
		return nil
	})
	return got
}

// waitPrimaryRestored waits until the primary runs image, fully rolled
// out, the route sends it everything and the canary is scaled down.
func waitPrimaryRestored(t *testing.T, cl client.Client, ns, name, image string, replicas int32) {
	t.Helper()
	testenv.Eventually(t, 60*time.Second, "primary restored", func(ctx context.Context) error {
		p, err := deployment(ctx, cl, ns, name+"-primary")
		if err != nil {
			return err
		}
		if img := p.Spec.Template.Spec.Containers[0].Image; img != image {
			return fmt.Errorf("primary image %s", img)
		}
		if p.Status.UpdatedReplicas != replicas || p.Status.AvailableReplicas != replicas || p.Status.Replicas != replicas {
			return fmt.Errorf("primary %d updated, %d available, %d in all", p.Status.UpdatedReplicas, p.Status.AvailableReplicas, p.Status.Replicas)
		}
		split, err := routeSplit(ctx, cl, ns, name)
		if err != nil {
			return err
		}
		if share := canaryShare(split, name); share != 0 {
			return fmt.Errorf("canary share %d%%", share)
		}
		tg, err := deployment(ctx, cl, ns, name)
		if err != nil {
			return err
		}
		if tg.Spec.Replicas == nil || *tg.Spec.Replicas != 0 {
			return fmt.Errorf("canary replicas %v", tg.Spec.Replicas)
		}
		return nil
	})
}

// A ResourceQuota leaves no room for the promoted primary's new pods: the
// promotion fails safe. The primary returns to the last good revision from
// its record, traffic is never on a copy without an available pod, and the
// Canary ends Failed naming the quota.
func TestPromotionBlockedByQuotaFailsSafe(t *testing.T) {
	_, ns, cl := setup(t)
	limitQuota(t, cl, ns, "four-pods", corev1.ResourcePods, "4")
	c := verified(canary(ns, "quota", weightStep(50)), v1alpha1.Verification{
		Retries: ptr.To(int32(1)), Interval: &metav1.Duration{Duration: time.Second}, Timeout: &metav1.Duration{Duration: 2 * time.Minute}})
	// Two primary pods and, during the release, two canary pods fill the
	// quota: the primary's rolling update has no room for a surge pod.
	create(t, cl, app(ns, "quota", "example.com/quota:1", 2), c)
	init := waitPhase(t, cl, ns, "quota", v1alpha1.PhaseInitialized, 60*time.Second)
	waitRecord(t, cl, ns, "quota", init.Status.StableRevision, v1alpha1.OutcomeSucceeded)
	mismatches := testutil.ToFloat64(testMetrics.VerificationMismatches.WithLabelValues("rollout"))

	sampler := sampleReadiness(t, cl, ns, "quota")
	setImage(t, cl, ns, "quota", "example.com/quota:2")
	got := waitPhase(t, cl, ns, "quota", v1alpha1.PhaseFailed, 90*time.Second)
	t.Logf("ended %s/%s: %s", got.Status.Phase, got.Status.Reason, got.Status.Message)
	if got.Status.Reason != "VerificationFailed" || !strings.Contains(got.Status.Message, "exceeded quota") {
		t.Errorf("reason %s: %s; want VerificationFailed naming the quota", got.Status.Reason, got.Status.Message)
	}
	if v := got.Status.Verification; v == nil || v.State != v1alpha1.VerificationFailed || v.Mismatches != 2 || v.LastMismatchField != "rollout" {
		t.Errorf("verification = %+v, want Failed after 2 rollout mismatches", v)
	}
	waitPrimaryRestored(t, cl, ns, "quota", "example.com/quota:1", 2)
	sampler.check(t)

	rec := waitRecord(t, cl, ns, "quota", got.Status.CanaryRevision, v1alpha1.OutcomeFailed)
	if rec.Status.Reason != "VerificationFailed" || rec.Spec.Images != "example.com/quota:2" || rec.Status.EndTime == nil {
		t.Errorf("record of the failed revision: %+v %+v", rec.Spec, rec.Status)
	}
	good := waitRecord(t, cl, ns, "quota", init.Status.StableRevision, v1alpha1.OutcomeSucceeded)
	if good.Spec.Images != "example.com/quota:1" || good.Spec.Number != 1 || rec.Spec.Number != 2 {
		t.Errorf("records: good %s #%d, failed #%d", good.Spec.Images, good.Spec.Number, rec.Spec.Number)
	}
	if d := testutil.ToFloat64(testMetrics.VerificationMismatches.WithLabelValues("rollout")) - mismatches; d != 2 {
		t.Errorf("sluice_verification_mismatches_total{field=rollout} grew by %v, want 2", d)
	}
	if v := testutil.ToFloat64(testMetrics.VerificationState.WithLabelValues(ns, "quota", v1alpha1.VerificationFailed)); v != 1 {
		t.Errorf("sluice_canary_verification{state=Failed} = %v", v)
	}
	assertEvents(t, cl, ns, "quota", "VerificationMismatch", "VerificationFailed")
}

// A promoted primary that never becomes Ready (its pods crash while the
// canary's serve) fails at the verification timeout; the primary is
// restored and no traffic ever goes to a copy without an available pod.
func TestPrimaryNeverReadyFailsSafeAtTimeout(t *testing.T) {
	_, ns, cl := setup(t)
	c := verified(canary(ns, "crashy", weightStep(50)), v1alpha1.Verification{Timeout: &metav1.Duration{Duration: 10 * time.Second}})
	create(t, cl, app(ns, "crashy", "example.com/crashy:1", 1), c)
	waitPhase(t, cl, ns, "crashy", v1alpha1.PhaseInitialized, 60*time.Second)

	sampler := sampleReadiness(t, cl, ns, "crashy")
	var d appsv1.Deployment
	if err := cl.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "crashy"}, &d); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(d.DeepCopy())
	d.Spec.Template.Spec.Containers[0].Image = "example.com/crashy:2"
	d.Spec.Template.Labels[testenv.UnreadyPrimaryLabel] = "true"
	if err := cl.Patch(t.Context(), &d, patch); err != nil {
		t.Fatal(err)
	}
	got := waitPhase(t, cl, ns, "crashy", v1alpha1.PhaseFailed, 90*time.Second)
	t.Logf("ended %s/%s: %s", got.Status.Phase, got.Status.Reason, got.Status.Message)
	if got.Status.Reason != "VerificationFailed" || !strings.Contains(got.Status.Message, "after 10s") {
		t.Errorf("reason %s: %s; want VerificationFailed at the 10s timeout", got.Status.Reason, got.Status.Message)
	}
	waitPrimaryRestored(t, cl, ns, "crashy", "example.com/crashy:1", 1)
	sampler.check(t)
}

// The happy path leaves a Succeeded record whose expected state is the
// primary's; afterwards a primary scaled or edited by hand is reported as
// Drifted (not fought), and an HPA's scaling is not drift.
func TestRecordsAndDrift(t *testing.T) {
	cluster, ns, cl := setup(t)
	create(t, cl, app(ns, "steady", "example.com/steady:1", 2), canary(ns, "steady", weightStep(50)))
	init := waitPhase(t, cl, ns, "steady", v1alpha1.PhaseInitialized, 60*time.Second)
	setImage(t, cl, ns, "steady", "example.com/steady:2")
	done := waitPhase(t, cl, ns, "steady", v1alpha1.PhaseSucceeded, 60*time.Second)
	if v := done.Status.Verification; v == nil || v.State != v1alpha1.VerificationVerified || v.Revision != done.Status.StableRevision {
		t.Errorf("verification = %+v, want Verified at %s", v, done.Status.StableRevision)
	}
	rec := waitRecord(t, cl, ns, "steady", done.Status.StableRevision, v1alpha1.OutcomeSucceeded)
	primary, err := deployment(t.Context(), cl, ns, "steady-primary")
	if err != nil {
		t.Fatal(err)
	}
	pc := primary.Spec.Template.Spec.Containers
	if rec.Spec.Number != 2 || rec.Spec.Replicas != *primary.Spec.Replicas || len(rec.Spec.Containers) != len(pc) ||
		rec.Spec.Containers[0].Image != pc[0].Image || rec.Spec.Images != "example.com/steady:2" ||
		rec.Status.StartTime == nil || rec.Status.EndTime == nil || rec.Status.Reason != "Promoted" {
		t.Errorf("record %+v / %+v does not match the primary (%d replicas, %s)", rec.Spec, rec.Status, *primary.Spec.Replicas, pc[0].Image)
	}
	waitRecord(t, cl, ns, "steady", init.Status.StableRevision, v1alpha1.OutcomeSucceeded)
	// What `kubectl get canaryrevisions` prints: the apiserver's table.
	raw, err := cluster.Client.CoreV1().RESTClient().Get().AbsPath("/apis/sluice.dev/v1alpha1/namespaces/"+ns+"/canaryrevisions").
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").DoRaw(t.Context())
	var table metav1.Table
	if err != nil || json.Unmarshal(raw, &table) != nil {
		t.Fatalf("table of canaryrevisions: %v", err)
	}
	var cols []string
	for _, col := range table.ColumnDefinitions {
		cols = append(cols, col.Name)
	}
	if strings.Join(cols, ",") != "Name,Canary,Number,Revision,Outcome,Images,Started,Reason" || len(table.Rows) != 2 ||
		!strings.Contains(fmt.Sprint(table.Rows[0].Cells, table.Rows[1].Cells), "example.com/steady:2") {
		t.Errorf("kubectl get canaryrevisions would show columns %v, rows %v", cols, table.Rows)
	}
	if v := testutil.ToFloat64(testMetrics.VerificationState.WithLabelValues(ns, "steady", v1alpha1.VerificationVerified)); v != 1 {
		t.Errorf("sluice_canary_verification{state=Verified} = %v", v)
	}

	drifted := func(want string) {
		t.Helper()
		testenv.Eventually(t, 30*time.Second, "Drifted: "+want, func(ctx context.Context) error {
			c, err := getCanary(ctx, cl, ns, "steady")
			if err != nil {
				return err
			}
			cond := meta.FindStatusCondition(c.Status.Conditions, v1alpha1.ConditionDrifted)
			switch {
			case cond == nil:
				return fmt.Errorf("no Drifted condition")
			case want == "" && cond.Status != metav1.ConditionFalse:
				return fmt.Errorf("Drifted %s: %s", cond.Status, cond.Message)
			case want != "" && (cond.Status != metav1.ConditionTrue || !strings.Contains(cond.Message, want)):
				return fmt.Errorf("Drifted %s: %s", cond.Status, cond.Message)
			}
			return nil
		})
	}
	editPrimary := func(edit func(*appsv1.Deployment)) {
		t.Helper()
		var p appsv1.Deployment
		if err := cl.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "steady-primary"}, &p); err != nil {
			t.Fatal(err)
		}
		patch := client.MergeFrom(p.DeepCopy())
		edit(&p)
		if err := cl.Patch(t.Context(), &p, patch); err != nil {
			t.Fatal(err)
		}
	}
	drifted("")
	editPrimary(func(p *appsv1.Deployment) { p.Spec.Replicas = ptr.To(int32(4)) })
	drifted("replicas 4, Sluice set 2")

	// An HPA scaling the primary is legitimate: no drift.
	create(t, cl, &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "steady", Namespace: ns},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "steady-primary"},
			MinReplicas:    ptr.To(int32(1)), MaxReplicas: 10,
		},
	})
	drifted("")

	editPrimary(func(p *appsv1.Deployment) { p.Spec.Template.Spec.Containers[0].Image = "example.com/steady:hotfix" })
	drifted("container app image example.com/steady:hotfix, recorded example.com/steady:2")
	assertEvents(t, cl, ns, "steady", "Verified", "PrimaryDrifted")
	// Reported, not fought: the hand edit stays.
	p, err := deployment(t.Context(), cl, ns, "steady-primary")
	if err != nil || p.Spec.Template.Spec.Containers[0].Image != "example.com/steady:hotfix" {
		t.Errorf("the primary's hand edit was undone: %v %v", p.Spec.Template.Spec.Containers[0].Image, err)
	}
}

// A release replaced mid-way by a newer revision ends its record as
// Superseded; the newer one is recorded with the next number.
func TestSupersededRecord(t *testing.T) {
	_, ns, cl := setup(t)
	create(t, cl, app(ns, "busy", "example.com/busy:1", 1), canary(ns, "busy", weightStep(20), untilPromoted()))
	second := releaseToPausedStep(t, cl, ns, "busy")
	setImage(t, cl, ns, "busy", "example.com/busy:3")
	testenv.Eventually(t, 30*time.Second, "release of busy:3", func(ctx context.Context) error {
		c, err := getCanary(ctx, cl, ns, "busy")
		if err != nil || c.Status.CanaryRevision == second.Status.CanaryRevision {
			return fmt.Errorf("still at %s (%v)", c.Status.CanaryRevision, err)
		}
		return nil
	})
	old := waitRecord(t, cl, ns, "busy", second.Status.CanaryRevision, v1alpha1.OutcomeSuperseded)
	if old.Status.EndTime == nil || !strings.Contains(old.Status.Message, "replaced it") || old.Spec.Number != 2 {
		t.Errorf("superseded record: #%d %+v", old.Spec.Number, old.Status)
	}
	c, _ := getCanary(t.Context(), cl, ns, "busy")
	if cur := waitRecord(t, cl, ns, "busy", c.Status.CanaryRevision, v1alpha1.OutcomeProgressing); cur.Spec.Number != 3 {
		t.Errorf("the newer revision is #%d, want 3", cur.Spec.Number)
	}
}
