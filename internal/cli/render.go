// Package cli is kubectl-sluice: a view of a release and the actions on it.
// Rendering is a pure function of the objects and the time, so it is tested
// with golden files.
package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/engine"
)

// View is what `get` shows: the Canary and its two Deployments (nil when
// absent).
type View struct {
	Canary  *v1alpha1.Canary
	Target  *appsv1.Deployment
	Primary *appsv1.Deployment
}

// Render writes the view of one release.
func Render(w io.Writer, v View, now time.Time) {
	c := v.Canary
	st := c.Status
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Name:\t%s/%s\n", c.Namespace, c.Name)
	phase := string(st.Phase)
	if phase == "" {
		phase = "(new)"
	}
	fmt.Fprintf(tw, "Phase:\t%s\t%s\n", phase, since(st.LastTransitionTime, now))
	if st.Reason != "" {
		fmt.Fprintf(tw, "Reason:\t%s: %s\n", st.Reason, st.Message)
	}
	fmt.Fprintf(tw, "Revision:\tstable %s (%s)\tcanary %s (%s)\n", orDash(st.StableRevision), images(v.Primary),
		orDash(st.CanaryRevision), images(v.Target))
	read := "-"
	if st.ObservedCanaryWeight != nil {
		read = fmt.Sprintf("%d%%", *st.ObservedCanaryWeight)
	}
	weight := fmt.Sprintf("canary %d%% set, %s read back", st.CanaryWeight, read)
	if sh := st.EndpointShare; sh != nil {
		weight += fmt.Sprintf(" (no router: %d canary and %d primary endpoints, %.1f%%)", sh.Canary, sh.Primary, sh.Percent())
	}
	fmt.Fprintf(tw, "Weight:\t%s\n", weight)
	fmt.Fprintf(tw, "Replicas:\tprimary %s\tcanary %s\n", replicas(v.Primary), replicas(v.Target))
	tw.Flush()

	steps := engine.Steps(c.Spec.Strategy)
	bg := c.Spec.Strategy.BlueGreen
	if bg != nil {
		fmt.Fprintln(w, "Steps:     blue/green")
	} else {
		fmt.Fprintln(w, "Steps:")
	}
	for i, s := range steps {
		mark := "   "
		switch {
		case releasing(st.Phase) && int32(i) == st.CurrentStep:
			mark = " > "
		case releasing(st.Phase) && int32(i) < st.CurrentStep, st.Phase == v1alpha1.PhaseSucceeded:
			mark = " ✓ "
		}
		fmt.Fprintf(w, "%s%2d  %s\n", mark, i, StepText(c, i, s))
	}
	if a := c.Spec.Analysis; a != nil && (len(a.Metrics) > 0 || engine.HasHooks(c, v1alpha1.WebhookRollout)) {
		fmt.Fprintf(w, "Analysis:  failed rounds %d/%d, last round %s\n", st.FailedChecks, a.GetThreshold(), since(timeOf(st.LastCheckTime), now))
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		results := map[string]v1alpha1.MetricStatus{}
		for _, m := range st.Metrics {
			results[m.Name] = m
		}
		row := func(name, bound string) {
			r, ok := results[name]
			verdict := "not yet checked"
			if ok {
				verdict = "passed"
				if r.Skipped {
					verdict = "skipped: " + r.Message
				}
				if !r.Passed {
					verdict = "FAILED: " + r.Message
				}
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", name, orDash(r.Value), bound, verdict)
		}
		compared := map[string]v1alpha1.ComparisonStatus{}
		if st.Judge != nil {
			for _, m := range st.Judge.Metrics {
				compared[m.Name] = m
			}
		}
		for _, m := range a.Metrics {
			if m.Compare == nil {
				row(m.Name, bound(m))
				continue
			}
			// A compared metric: its medians and its verdict from the judge.
			value, verdict := "-", "not yet judged"
			if r, ok := compared[m.Name]; ok {
				value = fmt.Sprintf("%s vs %s", orDash(r.CanaryMedian), orDash(r.PrimaryMedian))
				if r.Shift != "" {
					value += " (" + r.Shift + ")"
				}
				verdict = "passed"
				if r.Verdict != v1alpha1.VerdictPass {
					verdict = strings.ToUpper(r.Verdict) + ": " + r.Message
				}
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", m.Name, value, fmt.Sprintf("vs primary (%s, ±%d%%)", m.Compare.GetDirection(), m.Compare.GetTolerancePercent()), verdict)
		}
		if a.Compares() {
			r, ok := results[v1alpha1.JudgeCheckName]
			verdict := "not yet scored"
			if ok {
				switch {
				case r.Inconclusive:
					verdict = "MARGINAL: waiting for a round that decides (or promote/abort)"
				case r.Passed:
					verdict = "passed"
				default:
					verdict = "FAILED"
				}
			}
			j := a.Judge
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", v1alpha1.JudgeCheckName, orDash(r.Value), fmt.Sprintf("score >= %d (marginal >= %d)", j.GetPassScore(), j.GetMarginalScore()), verdict)
		}
		for _, h := range a.Webhooks {
			if h.GetType() == v1alpha1.WebhookRollout {
				row(h.Name, "webhook 2xx")
			}
		}
		tw.Flush()
	}
	if g := st.Gate; g != nil {
		state := "open"
		if !g.Open {
			state = "CLOSED"
			if g.Message != "" {
				state += ": " + g.Message
			} else {
				state += ": waiting for the first answer"
			}
		}
		fmt.Fprintf(w, "Gate:      %s before %s %s, last answer %s\n", g.Type, g.Point, state, since(g.LastAnswer, now))
	}
	if v := st.Verification; v != nil {
		line := fmt.Sprintf("Verify:    %s primary at revision %s", v.State, v.Revision)
		if v.Mismatches > 0 {
			line += fmt.Sprintf(", %d mismatches, last (%s): %s", v.Mismatches, v.LastMismatchField, v.LastMismatch)
		}
		fmt.Fprintln(w, line)
	}
	if a := c.Spec.Analysis; a != nil && len(a.Webhooks) > 0 {
		fmt.Fprintln(w, "Webhooks:")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, h := range a.Webhooks {
			signed := "unsigned"
			if h.SecretRef != nil {
				signed = "signed"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", h.Name, h.GetType(), h.URL, signed)
		}
		tw.Flush()
	}
	if len(st.Conditions) > 0 {
		fmt.Fprintln(w, "Conditions:")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, cond := range st.Conditions {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", cond.Type, cond.Status, cond.Reason)
		}
		tw.Flush()
	}
}

// RenderList writes one line per Canary.
func RenderList(w io.Writer, cs []v1alpha1.Canary, allNamespaces bool, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if allNamespaces {
		fmt.Fprint(tw, "NAMESPACE\t")
	}
	fmt.Fprintln(tw, "NAME\tPHASE\tWEIGHT\tSTEP\tFAILED\tAGE")
	for _, c := range cs {
		if allNamespaces {
			fmt.Fprintf(tw, "%s\t", c.Namespace)
		}
		steps := len(engine.Steps(c.Spec.Strategy))
		phase := string(c.Status.Phase)
		if phase == "" {
			phase = "(new)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d%%\t%d/%d\t%d\t%s\n", c.Name, phase, c.Status.CanaryWeight,
			c.Status.CurrentStep, steps, c.Status.FailedChecks, duration.HumanDuration(now.Sub(c.CreationTimestamp.Time)))
	}
	tw.Flush()
}

// Releasing says whether a release walks its steps in the phase (the
// phases promote, pause and abort act on).
func Releasing(p v1alpha1.CanaryPhase) bool { return releasing(p) }

func releasing(p v1alpha1.CanaryPhase) bool {
	switch p {
	case v1alpha1.PhaseProgressing, v1alpha1.PhasePaused, v1alpha1.PhaseWaitingPromotion:
		return true
	}
	return false
}

// StepText says what step i of the Canary's release does.
func StepText(c *v1alpha1.Canary, i int, s v1alpha1.Step) string {
	if bg := c.Spec.Strategy.BlueGreen; bg != nil {
		return describeBlueGreen(bg, i, s)
	}
	return describe(s)
}

func describe(s v1alpha1.Step) string {
	switch {
	case s.SetWeight != nil:
		return fmt.Sprintf("setWeight %d%%", *s.SetWeight)
	case s.Pause != nil && s.Pause.Duration != nil:
		return "pause " + s.Pause.Duration.Duration.String()
	case s.Pause != nil:
		return "pause until promoted"
	case s.SetHeaderRoute != nil:
		return "setHeaderRoute " + engine.HeaderRouteKey(s.SetHeaderRoute)
	}
	return "(empty)"
}

// describeBlueGreen names the steps of a blue/green release.
func describeBlueGreen(bg *v1alpha1.BlueGreen, i int, s v1alpha1.Step) string {
	switch i {
	case engine.BlueGreenPreviewStep:
		size := "full size"
		if n := bg.PreviewReplicaCount; n != nil {
			size = fmt.Sprintf("%d replicas", *n)
		}
		switch {
		case !bg.AutoPromotes():
			return fmt.Sprintf("preview (%s, no traffic) until promoted", size)
		case bg.GetAutoPromotion() > 0:
			return fmt.Sprintf("preview (%s, no traffic) for %s", size, bg.GetAutoPromotion())
		}
		return fmt.Sprintf("preview (%s, no traffic)", size)
	case engine.BlueGreenSwitchStep:
		return "switch all traffic (at full size)"
	case engine.BlueGreenDelayStep:
		return fmt.Sprintf("scale-down delay %s (the old copy kept)", bg.GetScaleDownDelay())
	}
	return describe(s)
}

// Bound says what a metric's value must be to pass.
func Bound(m v1alpha1.MetricCheck) string { return bound(m) }

func bound(m v1alpha1.MetricCheck) string {
	var parts []string
	if r := m.ThresholdRange; r != nil {
		if r.Min != nil {
			parts = append(parts, fmt.Sprintf(">= %g", *r.Min))
		}
		if r.Max != nil {
			parts = append(parts, fmt.Sprintf("<= %g", *r.Max))
		}
	}
	if m.SuccessCondition != "" {
		parts = append(parts, m.SuccessCondition)
	}
	if m.FailureCondition != "" {
		parts = append(parts, "not ("+m.FailureCondition+")")
	}
	return strings.Join(parts, ", ")
}

func images(d *appsv1.Deployment) string {
	if d == nil {
		return "-"
	}
	var out []string
	for _, c := range d.Spec.Template.Spec.Containers {
		out = append(out, c.Image)
	}
	return strings.Join(out, ",")
}

func replicas(d *appsv1.Deployment) string {
	if d == nil {
		return "-"
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	return fmt.Sprintf("%d/%d ready", d.Status.ReadyReplicas, want)
}

// timeOf reads a status Timestamp as since wants it.
func timeOf(t *v1alpha1.Timestamp) *metav1.Time {
	if t == nil {
		return nil
	}
	return &metav1.Time{Time: t.Time}
}

func since(t *metav1.Time, now time.Time) string {
	if t == nil {
		return "-"
	}
	return duration.HumanDuration(now.Sub(t.Time)) + " ago"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
