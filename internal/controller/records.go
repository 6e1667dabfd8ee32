package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/workload"
)

// RecordName is the name of a Canary's record of a revision.
func RecordName(canary, revision string) string { return canary + "-" + revision }

// ReplicasAnnotation on the primary Deployment holds the replicas Sluice
// set, written in the same patch as spec.replicas: a different
// spec.replicas means someone else scaled it.
const ReplicasAnnotation = "sluice.dev/replicas"

// record reads a Canary's record of a revision from the cache; nil when
// there is none.
func (r *CanaryReconciler) record(ctx context.Context, c *v1alpha1.Canary, rev string) (*v1alpha1.CanaryRevision, error) {
	if rev == "" {
		return nil, nil
	}
	var rec v1alpha1.CanaryRevision
	err := r.Client.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: RecordName(c.Name, rev)}, &rec)
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("read canaryrevision %s/%s: %w", c.Namespace, RecordName(c.Name, rev), err)
	}
	return &rec, nil
}

// drift compares the primary with the record of the revision its template
// carries: each container's image and resources, and its replicas with
// the ones Sluice set (unless an HPA scales it). It returns what differs
// and the field, or "" when it matches or there is nothing to compare.
func (r *CanaryReconciler) drift(ctx context.Context, c *v1alpha1.Canary, primary *appsv1.Deployment) (string, string, error) {
	if primary == nil {
		return "", "", nil
	}
	rec, err := r.record(ctx, c, workload.PrimaryRevision(primary))
	if err != nil || rec == nil {
		return "", "", err
	}
	have := primary.Spec.Template.Spec.Containers
	if len(have) != len(rec.Spec.Containers) {
		return fmt.Sprintf("%d containers, recorded %d", len(have), len(rec.Spec.Containers)), "template", nil
	}
	for i, want := range rec.Spec.Containers {
		got := have[i]
		switch {
		case got.Name != want.Name:
			return fmt.Sprintf("container %d is %s, recorded %s", i, got.Name, want.Name), "template", nil
		case got.Image != want.Image:
			return fmt.Sprintf("container %s image %s, recorded %s", got.Name, got.Image, want.Image), "image", nil
		case !equality.Semantic.DeepEqual(got.Resources, want.Resources):
			return fmt.Sprintf("container %s resources %s, recorded %s", got.Name, resourcesString(got.Resources), resourcesString(want.Resources)), "resources", nil
		}
	}
	set, ok := primary.Annotations[ReplicasAnnotation]
	if ok && primary.Spec.Replicas != nil && fmt.Sprint(*primary.Spec.Replicas) != set {
		// With spec.autoscalerRef its copy scales the primary (for a
		// ScaledObject, through an HPA KEDA makes).
		scaled := c.Spec.AutoscalerRef != nil
		if !scaled {
			var err error
			if scaled, err = r.autoscaled(ctx, primary); err != nil {
				return "", "", err
			}
		}
		if !scaled {
			return fmt.Sprintf("replicas %d, Sluice set %s", *primary.Spec.Replicas, set), "replicas", nil
		}
	}
	return "", "", nil
}

// autoscaled says whether a HorizontalPodAutoscaler scales the Deployment.
func (r *CanaryReconciler) autoscaled(ctx context.Context, d *appsv1.Deployment) (bool, error) {
	var hpas autoscalingv2.HorizontalPodAutoscalerList
	if err := r.Client.List(ctx, &hpas, client.InNamespace(d.Namespace)); err != nil {
		return false, fmt.Errorf("list horizontalpodautoscalers in %s: %w", d.Namespace, err)
	}
	for _, h := range hpas.Items {
		ref := h.Spec.ScaleTargetRef
		if ref.Kind == "Deployment" && ref.Name == d.Name {
			return true, nil
		}
	}
	return false, nil
}

func resourcesString(r corev1.ResourceRequirements) string {
	var parts []string
	for _, l := range []struct {
		name string
		list corev1.ResourceList
	}{{"requests", r.Requests}, {"limits", r.Limits}} {
		var kv []string
		for k, v := range l.list {
			kv = append(kv, k.String()+"="+v.String())
		}
		slices.Sort(kv)
		if len(kv) > 0 {
			parts = append(parts, l.name+" "+strings.Join(kv, ","))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "; ")
}

// outcome is a record's outcome for the Canary's phase.
func outcome(p v1alpha1.CanaryPhase) string {
	switch p {
	case v1alpha1.PhaseSucceeded, v1alpha1.PhaseInitialized:
		return v1alpha1.OutcomeSucceeded
	case v1alpha1.PhaseFailed:
		return v1alpha1.OutcomeFailed
	}
	return v1alpha1.OutcomeProgressing
}

// syncRecords keeps the CanaryRevision records true to the status just
// decided: the record of the release's revision is created from the target
// when the release starts, follows its outcome, and the oldest records
// beyond spec.revisionHistoryLimit are deleted (never the stable or the
// current one). Each write happens only when something changed.
func (r *CanaryReconciler) syncRecords(ctx context.Context, c *v1alpha1.Canary, s *scope, st v1alpha1.CanaryStatus) error {
	rev := st.CanaryRevision
	if rev == "" || st.Phase == "" || st.Phase == v1alpha1.PhaseInitializing || c.Spec.Suspend {
		return nil
	}
	now := metav1.NewTime(r.now()).Rfc3339Copy()
	if prev := c.Status.CanaryRevision; prev != "" && prev != rev {
		if err := r.supersede(ctx, c, prev, rev, &now); err != nil {
			return err
		}
	}
	rec, err := r.record(ctx, c, rev)
	if err != nil {
		return err
	}
	// base is the record's status on the apiserver: empty for a record
	// just created, whose status createRecord fills in.
	var base *v1alpha1.CanaryRevision
	if rec == nil {
		if s.target == nil || s.revision != rev {
			return nil // the target moved on; nothing to record it from
		}
		if rec, err = r.createRecord(ctx, c, s, rev, &now); err != nil {
			return err
		}
		base = rec.DeepCopy()
		base.Status = v1alpha1.CanaryRevisionStatus{}
	} else {
		base = rec.DeepCopy()
	}
	want := rec.Status.DeepCopy()
	out := outcome(st.Phase)
	if want.Outcome != v1alpha1.OutcomeProgressing && out == v1alpha1.OutcomeProgressing {
		// The same revision released again (a retry, an undo): a new start,
		// and the newest number, so history and pruning see it as recent.
		want.StartTime, want.EndTime = &now, nil
		want.History, want.CheckRounds = nil, 0
		number, err := r.nextNumber(ctx, c)
		if err != nil {
			return err
		}
		if rec.Spec.Number != number-1 { // not the newest already
			patch := client.MergeFrom(rec.DeepCopy())
			rec.Spec.Number = number
			if err := r.Client.Patch(ctx, rec, patch, client.FieldOwner(v1alpha1.FieldOwner)); err != nil {
				return fmt.Errorf("renumber canaryrevision %s/%s: %w", rec.Namespace, rec.Name, err)
			}
			base = rec.DeepCopy() // as the apiserver answered
		}
	}
	want.Outcome = out
	if out != v1alpha1.OutcomeProgressing {
		want.Reason, want.Message = st.Reason, st.Message
		if want.EndTime == nil {
			want.EndTime = &now
		}
	} else {
		want.Reason, want.Message = "", ""
	}
	want.FailedChecks = st.FailedChecks
	want.Metrics = st.Metrics
	if rec.Status.Outcome == v1alpha1.OutcomeProgressing || rec.Status.Outcome == "" || out == v1alpha1.OutcomeProgressing {
		want.History, want.CheckRounds = addPoint(want.History, want.CheckRounds, st, now)
	}
	if !equality.Semantic.DeepEqual(*want, base.Status) {
		// The history is a list a merge patch replaces whole: a record
		// read from a cache behind our last write would drop that write's
		// point, so the patch holds the resourceVersion it was made from
		// and a stale one is refused (and decided again).
		patch := client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})
		rec.Status = *want
		if err := r.Client.Status().Patch(ctx, rec, patch, client.FieldOwner(v1alpha1.FieldOwner)); err != nil {
			return fmt.Errorf("write status of canaryrevision %s/%s: %w", rec.Namespace, rec.Name, err)
		}
	}
	kept, err := r.pruneRecords(ctx, c, st)
	if err != nil {
		return err
	}
	return r.collectCopies(ctx, c, s, kept)
}

// records lists a Canary's records (from the cache).
func (r *CanaryReconciler) records(ctx context.Context, c *v1alpha1.Canary) ([]v1alpha1.CanaryRevision, error) {
	var list v1alpha1.CanaryRevisionList
	if err := r.Client.List(ctx, &list, client.InNamespace(c.Namespace), client.MatchingLabels{workload.CanaryLabel: c.Name}); err != nil {
		return nil, fmt.Errorf("list canaryrevisions of %s/%s: %w", c.Namespace, c.Name, err)
	}
	return list.Items, nil
}

// nextNumber is one more than the highest number of the Canary's records.
func (r *CanaryReconciler) nextNumber(ctx context.Context, c *v1alpha1.Canary) (int64, error) {
	items, err := r.records(ctx, c)
	if err != nil {
		return 0, err
	}
	number := int64(1)
	for _, it := range items {
		number = max(number, it.Spec.Number+1)
	}
	return number, nil
}

// supersede ends the record of a release another revision replaced.
func (r *CanaryReconciler) supersede(ctx context.Context, c *v1alpha1.Canary, prev, by string, now *metav1.Time) error {
	rec, err := r.record(ctx, c, prev)
	if err != nil || rec == nil || rec.Status.Outcome != v1alpha1.OutcomeProgressing {
		return err
	}
	patch := client.MergeFrom(rec.DeepCopy())
	rec.Status.Outcome, rec.Status.Reason = v1alpha1.OutcomeSuperseded, v1alpha1.ReasonSuperseded
	rec.Status.Message, rec.Status.EndTime = fmt.Sprintf("revision %s replaced it before it ended", by), now
	if err := r.Client.Status().Patch(ctx, rec, patch, client.FieldOwner(v1alpha1.FieldOwner)); err != nil {
		return fmt.Errorf("write status of canaryrevision %s/%s: %w", rec.Namespace, rec.Name, err)
	}
	return nil
}

func (r *CanaryReconciler) createRecord(ctx context.Context, c *v1alpha1.Canary, s *scope, rev string, now *metav1.Time) (*v1alpha1.CanaryRevision, error) {
	number, err := r.nextNumber(ctx, c)
	if err != nil {
		return nil, err
	}
	tmpl, err := json.Marshal(s.target.Spec.Template)
	if err != nil {
		return nil, fmt.Errorf("canaryrevision %s: encode template: %w", RecordName(c.Name, rev), err)
	}
	rec := &v1alpha1.CanaryRevision{
		ObjectMeta: metav1.ObjectMeta{Name: RecordName(c.Name, rev), Namespace: c.Namespace,
			Labels: map[string]string{workload.CanaryLabel: c.Name}},
		Spec: v1alpha1.CanaryRevisionSpec{Canary: c.Name, Revision: rev, Number: number,
			Replicas: s.obs.ReleaseReplicas, Template: runtime.RawExtension{Raw: tmpl},
			Config: workload.ConfigRecords(s.configHashes)},
	}
	var images []string
	for _, ct := range s.target.Spec.Template.Spec.Containers {
		rec.Spec.Containers = append(rec.Spec.Containers, v1alpha1.ContainerRecord{Name: ct.Name, Image: ct.Image, Resources: ct.Resources})
		images = append(images, ct.Image)
	}
	rec.Spec.Images = strings.Join(images, ",")
	if err := controllerutil.SetControllerReference(c, rec, r.Scheme); err != nil {
		return nil, fmt.Errorf("canaryrevision %s: owner: %w", rec.Name, err)
	}
	if err := r.Client.Create(ctx, rec, client.FieldOwner(v1alpha1.FieldOwner)); err != nil {
		// AlreadyExists too: the cache has not seen it yet; a retry will.
		return nil, fmt.Errorf("create canaryrevision %s/%s: %w", rec.Namespace, rec.Name, err)
	}
	rec.Status = v1alpha1.CanaryRevisionStatus{Outcome: v1alpha1.OutcomeProgressing, StartTime: now}
	return rec, nil
}

// pruneRecords deletes the oldest records beyond the history limit (never
// the stable or the current one) and returns the records kept.
func (r *CanaryReconciler) pruneRecords(ctx context.Context, c *v1alpha1.Canary, st v1alpha1.CanaryStatus) ([]v1alpha1.CanaryRevision, error) {
	limit := int(c.Spec.GetRevisionHistoryLimit())
	items, err := r.records(ctx, c)
	if err != nil || len(items) <= limit {
		return items, err
	}
	slices.SortFunc(items, func(a, b v1alpha1.CanaryRevision) int { return int(b.Spec.Number - a.Spec.Number) })
	kept := items[:limit:limit]
	for _, it := range items[limit:] {
		if it.Spec.Revision == st.StableRevision || it.Spec.Revision == st.CanaryRevision {
			kept = append(kept, it)
			continue
		}
		if err := r.Client.Delete(ctx, &it); client.IgnoreNotFound(err) != nil {
			return nil, fmt.Errorf("delete canaryrevision %s/%s: %w", it.Namespace, it.Name, err)
		}
	}
	return kept, nil
}

// restoredPrimary builds the primary from the stable revision's record:
// the target's Deployment spec with the recorded pod template.
func (r *CanaryReconciler) restoredPrimary(ctx context.Context, c *v1alpha1.Canary, s *scope, rev string, replicas int32) (*appsv1.Deployment, error) {
	// The cache holds records without their templates (StripRecordTemplate).
	var rd client.Reader = r.Client
	if r.APIReader != nil {
		rd = r.APIReader
	}
	rec := &v1alpha1.CanaryRevision{}
	key := types.NamespacedName{Namespace: c.Namespace, Name: RecordName(c.Name, rev)}
	if err := rd.Get(ctx, key, rec); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("canaryrevision %s not found: cannot restore the primary", key)
		}
		return nil, fmt.Errorf("read canaryrevision %s: %w", key, err)
	}
	var tmpl corev1.PodTemplateSpec
	if err := json.Unmarshal(rec.Spec.Template.Raw, &tmpl); err != nil {
		return nil, fmt.Errorf("canaryrevision %s/%s: decode template: %w", rec.Namespace, rec.Name, err)
	}
	from := s.target.DeepCopy()
	from.Spec.Template = tmpl
	want, err := workload.Primary(c, from, rev, replicas, r.revisionAnnotation(c))
	if err != nil {
		return nil, err
	}
	// The recorded data, from the copies made when it was promoted.
	if err := r.isolateConfig(ctx, c, want, workload.ConfigHashes(rec.Spec.Config), false); err != nil {
		return nil, err
	}
	return want, nil
}

// addPoint adds a point to a release's history when a check round was
// counted since the last point, or the weight moved, and counts
// the round; it returns the history unchanged otherwise. A round belongs
// to the release once its results are in the status (a new release starts
// with none), and is new when its number is above every recorded one.
func addPoint(h []v1alpha1.ReleasePoint, rounds int64, st v1alpha1.CanaryStatus, now metav1.Time) ([]v1alpha1.ReleasePoint, int64) {
	var last *v1alpha1.ReleasePoint
	seen := int64(0)
	for i := range h {
		seen = max(seen, h[i].Round)
		last = &h[i]
	}
	p := v1alpha1.ReleasePoint{Time: now, Step: st.CurrentStep, Weight: st.CanaryWeight, FailedChecks: st.FailedChecks}
	if len(st.Metrics) > 0 && st.CheckedRound > seen {
		p.Round = st.CheckedRound
		rounds++
		for _, m := range st.Metrics {
			p.Values = append(p.Values, v1alpha1.PointValue{Name: m.Name, Value: clip(m.Value, 128), Result: m.Result()})
		}
		if len(p.Values) > 64 {
			p.Values = p.Values[:64]
		}
	} else if last != nil && last.Weight == p.Weight {
		// A step that does not move the weight (a pause) is no point:
		// the chart does not change, and every point is a write.
		return h, rounds
	}
	h = append(slices.Clone(h), p)
	if len(h) > v1alpha1.MaxHistory {
		h = thin(h)
	}
	return h, rounds
}

// thin halves the older half of a history: the first point and every
// other one after it are kept, the newer half whole.
func thin(h []v1alpha1.ReleasePoint) []v1alpha1.ReleasePoint {
	half := len(h) / 2
	out := make([]v1alpha1.ReleasePoint, 0, len(h))
	for i := 0; i < half; i++ {
		if i%2 == 0 {
			out = append(out, h[i])
		}
	}
	return append(out, h[half:]...)
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
