package checks

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/analysis"
	"github.com/sluice-dev/sluice/internal/workload"
)

// judge runs a round's compared metrics: each template's query asked for
// samples of the canary and of the primary over the window, each metric's
// verdict, and the score. It returns the judge's status and its entry
// among the round's checks (passed, inconclusive or failed).
func (r *Runner) judge(ctx context.Context, c *v1alpha1.Canary, round int64, start time.Time, metrics []v1alpha1.MetricCheck) (*v1alpha1.JudgeStatus, v1alpha1.MetricStatus) {
	cfg := c.Spec.Analysis.Judge
	alpha := 1 - float64(cfg.GetConfidence())/100
	st := &v1alpha1.JudgeStatus{Round: round, Metrics: make([]v1alpha1.ComparisonStatus, len(metrics))}
	scored := make([]analysis.Scored, len(metrics))
	var wg sync.WaitGroup
	for i, m := range metrics {
		wg.Go(func() {
			st.Metrics[i] = r.compare(ctx, c, m, alpha, start)
			scored[i] = analysis.Scored{Verdict: st.Metrics[i].Verdict, Weight: int(m.Compare.GetWeight()), Critical: m.Compare.Critical}
		})
	}
	wg.Wait()
	score, verdict := analysis.Score(scored, cfg.GetPassScore(), cfg.GetMarginalScore())
	st.Score = strconv.FormatFloat(score, 'f', -1, 64)
	st.Verdict = verdict
	check := v1alpha1.MetricStatus{Name: v1alpha1.JudgeCheckName, Value: st.Score}
	var worse []string
	for _, m := range st.Metrics {
		if m.Verdict != v1alpha1.VerdictPass {
			worse = append(worse, m.Name+" "+m.Verdict+": "+m.Message)
		}
	}
	why := fmt.Sprintf("score %s (pass %d, marginal %d)", st.Score, cfg.GetPassScore(), cfg.GetMarginalScore())
	if len(worse) > 0 {
		why += "; " + strings.Join(worse, "; ")
	}
	switch st.Verdict {
	case v1alpha1.VerdictPass:
		check.Passed = true
	case v1alpha1.VerdictMarginal:
		check.Inconclusive = true
		check.Message = "marginal " + why
	case v1alpha1.VerdictNoData:
		check.Inconclusive = true
		check.Value = ""
		check.Message = "not enough data yet; " + strings.Join(worse, "; ")
	default:
		check.Message = why
	}
	return st, check
}

// compare samples one metric of both copies and judges the canary's.
func (r *Runner) compare(ctx context.Context, c *v1alpha1.Canary, m v1alpha1.MetricCheck, alpha float64, start time.Time) v1alpha1.ComparisonStatus {
	out := v1alpha1.ComparisonStatus{Name: m.Name, Verdict: v1alpha1.VerdictError}
	p, query, err := r.resolve(ctx, c, m)
	if err != nil {
		out.Message = err.Error()
		return out
	}
	window := c.Spec.Analysis.GetInterval()
	if m.Interval != nil {
		window = m.Interval.Duration
	}
	// Samples of this step only: none from before its weight, or from
	// the last revision.
	var from time.Time
	if t := c.Status.StepStartedAt; t != nil {
		from = t.Time
	}
	samples := map[string][]float64{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var errs []string
	for _, cp := range []struct{ copy, target string }{
		{"canary", c.Spec.TargetRef.Name},
		{"primary", workload.PrimaryName(c.Spec.TargetRef.Name)},
	} {
		wg.Go(func() {
			q, err := analysis.Render(query, analysis.Vars{
				Namespace: c.Namespace, Name: c.Name, Target: cp.target, Copy: cp.copy,
				Service: workload.ServiceName(c), Interval: window, Variables: m.TemplateVariables,
			})
			var v []float64
			if err == nil {
				v, err = r.Querier.Samples(ctx, p, analysis.Request{Query: q, Window: window, Step: m.Compare.GetSampleInterval(window), From: from, NotBefore: start},
					c.Spec.Analysis.GetInterval())
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, cp.copy+": "+err.Error())
			}
			samples[cp.copy] = v
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		out.Message = strings.Join(errs, "; ")
		return out
	}
	v := analysis.Compare(samples["canary"], samples["primary"], analysis.Comparison{
		Direction:  m.Compare.GetDirection(),
		Tolerance:  float64(m.Compare.GetTolerancePercent()) / 100,
		MinSamples: int(m.Compare.GetMinSamples()),
		Alpha:      alpha,
	})
	out.Verdict, out.Message = v.Verdict, v.Message
	out.CanarySamples, out.PrimarySamples = int32(v.Canary), int32(v.Primary)
	out.CanaryMedian, out.PrimaryMedian = analysis.FormatValue(v.CanaryMedian), analysis.FormatValue(v.PrimaryMedian)
	if !math.IsNaN(v.RelativeShift) {
		out.Shift = analysis.FormatPercent(v.RelativeShift)
	}
	out.PValue = analysis.FormatValue(v.P)
	return out
}
