package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/workload"
)

// canaryLabel selects a Canary's records (workload.CanaryLabel).
const canaryLabel = "sluice.dev/canary"

// loadHistory reads a Canary and its CanaryRevision records, oldest first.
func loadHistory(ctx context.Context, cl client.Client, ns, name string) (*v1alpha1.Canary, []v1alpha1.CanaryRevision, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c := &v1alpha1.Canary{}
	if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, c); err != nil {
		return nil, nil, fmt.Errorf("canary %s/%s: %w", ns, name, err)
	}
	var list v1alpha1.CanaryRevisionList
	if err := cl.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels{canaryLabel: name}); err != nil {
		return nil, nil, fmt.Errorf("list canaryrevisions of %s/%s: %w", ns, name, err)
	}
	slices.SortFunc(list.Items, func(a, b v1alpha1.CanaryRevision) int { return int(a.Spec.Number - b.Spec.Number) })
	return c, list.Items, nil
}

// RenderHistory writes one line per recorded revision, oldest first; the
// stable one (the primary's) is marked with *.
func RenderHistory(w io.Writer, c *v1alpha1.Canary, recs []v1alpha1.CanaryRevision, now time.Time) {
	if len(recs) == 0 {
		fmt.Fprintf(w, "canary %s/%s has no recorded revisions yet\n", c.Namespace, c.Name)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NUMBER\tREVISION\tOUTCOME\tSTARTED\tDURATION\tIMAGES\tREASON")
	for _, r := range recs {
		num := fmt.Sprint(r.Spec.Number)
		if r.Spec.Revision == c.Status.StableRevision {
			num += "*"
		}
		started, took := "-", "-"
		if st := r.Status.StartTime; st != nil {
			started = duration.HumanDuration(now.Sub(st.Time)) + " ago"
			end := now
			if r.Status.EndTime != nil {
				end = r.Status.EndTime.Time
			}
			took = duration.HumanDuration(end.Sub(st.Time))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", num, r.Spec.Revision, orDash(r.Status.Outcome), started, took,
			orDash(r.Spec.Images), orDash(r.Status.Reason))
	}
	tw.Flush()
}

// UndoTarget picks the record undo returns to: number n, or (n == 0) the
// newest Succeeded revision other than the one the target runs now. It
// refuses while a release runs.
func UndoTarget(c *v1alpha1.Canary, recs []v1alpha1.CanaryRevision, n int64) (*v1alpha1.CanaryRevision, error) {
	name := c.Namespace + "/" + c.Name
	if releasing(c.Status.Phase) || c.Status.Phase == v1alpha1.PhasePromoting || c.Status.Phase == v1alpha1.PhaseFinalising || c.Status.Phase == v1alpha1.PhaseWaiting {
		return nil, fmt.Errorf("canary %s is %s: abort the release first (kubectl sluice abort %s)", name, c.Status.Phase, c.Name)
	}
	for i := len(recs) - 1; i >= 0; i-- {
		r := &recs[i]
		switch {
		case n != 0 && r.Spec.Number == n:
			if r.Spec.Revision == c.Status.CanaryRevision {
				return nil, fmt.Errorf("canary %s: revision #%d (%s) is the target's revision already", name, n, r.Spec.Revision)
			}
			return r, nil
		case n == 0 && r.Status.Outcome == v1alpha1.OutcomeSucceeded && r.Spec.Revision != c.Status.CanaryRevision:
			return r, nil
		}
	}
	if n != 0 {
		return nil, fmt.Errorf("canary %s has no recorded revision #%d (kubectl sluice history %s)", name, n, c.Name)
	}
	return nil, fmt.Errorf("canary %s has no earlier Succeeded revision to go back to", name)
}

// Undone is what Undo did.
type Undone struct {
	// Restored are the ConfigMaps and Secrets set back to their data at
	// the revision; Missing the ones whose data is no longer kept (left
	// as they are).
	Restored, Missing []string
	// Number is the recorded revision gone back to.
	Number int64
	// Message says where the target is now and what Sluice does next.
	Message string
}

// Undo sets the ConfigMaps and Secrets a recorded revision references back
// to their recorded data (restoreConfig) and the target Deployment's pod
// template to the recorded one; Sluice then handles it like any change: a
// release, or nothing to release when it is the primary's revision.
// Revision n 0 is the newest Succeeded one before the current (UndoTarget).
func Undo(ctx context.Context, cl client.Client, ns, name string, n int64) (Undone, error) {
	var out Undone
	c, recs, err := loadHistory(ctx, cl, ns, name)
	if err != nil {
		return out, err
	}
	rec, err := UndoTarget(c, recs, n)
	if err != nil {
		return out, err
	}
	out.Number = rec.Spec.Number
	var tmpl corev1.PodTemplateSpec
	if err := json.Unmarshal(rec.Spec.Template.Raw, &tmpl); err != nil {
		return out, fmt.Errorf("canaryrevision %s/%s: decode template: %w", ns, rec.Name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var d appsv1.Deployment
	if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: c.Spec.TargetRef.Name}, &d); err != nil {
		return out, fmt.Errorf("deployment %s/%s: %w", ns, c.Spec.TargetRef.Name, err)
	}
	out.Restored, out.Missing, err = restoreConfig(ctx, cl, ns, workload.PrimaryName(d.Name), rec)
	if err != nil {
		return out, err
	}
	patch := client.MergeFrom(d.DeepCopy())
	d.Spec.Template = tmpl
	if err := cl.Patch(ctx, &d, patch, client.FieldOwner(v1alpha1.CLIFieldOwner)); err != nil {
		return out, fmt.Errorf("undo deployment %s/%s: %w", ns, d.Name, err)
	}
	next := "Sluice releases it as a new revision"
	if rec.Spec.Revision == c.Status.StableRevision {
		next = "the primary runs it already: nothing is released"
	}
	out.Message = fmt.Sprintf("deployment %s/%s back to revision #%d %s (%s); %s", ns, d.Name, rec.Spec.Number, rec.Spec.Revision, rec.Spec.Images, next)
	return out, nil
}

// undo is Undo for the command line.
func undo(ctx context.Context, cl client.Client, ns, name string, n int64, streams genericiooptions.IOStreams) error {
	done, err := Undo(ctx, cl, ns, name, n)
	for _, ref := range done.Restored {
		fmt.Fprintf(streams.Out, "%s back to its data at revision #%d\n", ref, done.Number)
	}
	for _, ref := range done.Missing {
		fmt.Fprintf(streams.ErrOut, "warning: %s: its data at revision #%d is no longer kept; left as it is\n", ref, done.Number)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(streams.Out, done.Message)
	return nil
}
