package checks

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/analysis"
	"github.com/sluice-dev/sluice/internal/engine"
	"github.com/sluice-dev/sluice/internal/workload"
)

// Submit queues a round unless it is running or done. It never blocks: when
// the queue is full the round is asked for again at the next reconcile.
func (r *Runner) Submit(c *v1alpha1.Canary, round int64) {
	r.init()
	key, want := jobKey{canary: client.ObjectKeyFromObject(c)}, run{round: round}
	if !r.begin(key, c.UID, want) {
		return
	}
	c = c.DeepCopy()
	if !r.enqueue(func(ctx context.Context) { r.run(ctx, key, c, want) }) {
		r.end(key, c.UID, want, nil)
	}
}

// Result returns the finished round of a Canary, if any.
func (r *Runner) Result(c *v1alpha1.Canary) (engine.CheckResult, bool) {
	r.init()
	r.mu.Lock()
	defer r.mu.Unlock()
	j := r.owned(jobKey{canary: client.ObjectKeyFromObject(c)}, c.UID)
	if j == nil || j.answered == nil {
		return engine.CheckResult{}, false
	}
	return j.round, true
}

// run runs one round: every metric and every rollout and rollback webhook
// at once.
func (r *Runner) run(ctx context.Context, key jobKey, c *v1alpha1.Canary, want run) {
	res := engine.CheckResult{Round: want.round}
	// Every answer of the round is measured during it.
	start := time.Now()
	var rollout, rollback []v1alpha1.Webhook
	for _, h := range c.Spec.Analysis.Webhooks {
		switch h.GetType() {
		case v1alpha1.WebhookRollout:
			rollout = append(rollout, h)
		case v1alpha1.WebhookRollback:
			rollback = append(rollback, h)
		}
	}
	var plain, compared []v1alpha1.MetricCheck
	for _, m := range c.Spec.Analysis.Metrics {
		if m.Compare != nil {
			compared = append(compared, m)
		} else {
			plain = append(plain, m)
		}
	}
	checks := make([]v1alpha1.MetricStatus, len(plain)+len(rollout))
	rollbacks := make([]string, len(rollback))
	var wg sync.WaitGroup
	preview := engine.InPreview(c.Spec.Strategy, c.Status)
	for i, m := range plain {
		if preview && m.TemplateRef == nil {
			checks[i] = v1alpha1.MetricStatus{Name: m.Name, Passed: true, Skipped: true,
				Message: "not judged in the blue/green preview: a builtin metric reads the router's traffic, which the preview does not get"}
			continue
		}
		wg.Go(func() { checks[i] = r.check(ctx, c, m, start) })
	}
	var judged v1alpha1.MetricStatus
	if len(compared) > 0 {
		wg.Go(func() { res.Judge, judged = r.judge(ctx, c, want.round, start, compared) })
	}
	for i, h := range rollout {
		wg.Go(func() {
			st := v1alpha1.MetricStatus{Name: h.Name, Webhook: true, Passed: true}
			if err := r.call(ctx, c, h, nil); err != nil {
				st.Passed, st.Message = false, err.Error()
			}
			checks[len(plain)+i] = st
		})
	}
	for i, h := range rollback {
		wg.Go(func() {
			// Only a 2xx answer asks for a rollback; anything else,
			// including no answer, does not.
			if r.call(ctx, c, h, nil) == nil {
				rollbacks[i] = fmt.Sprintf("rollback webhook %s (%s) answered 2xx", h.Name, h.URL)
			}
		})
	}
	wg.Wait()
	if res.Judge != nil {
		checks = append(checks, judged)
	}
	res.Metrics = checks
	for _, msg := range rollbacks {
		if msg != "" {
			res.Rollback = msg
			break
		}
	}
	// Only the round still asked for answers (not one of a Canary
	// deleted, or forgotten, meanwhile).
	if r.end(key, c.UID, want, func(j *job) { j.round = res }) {
		r.announce(ctx, c)
	}
}

// check runs one metric; every failure to get a value is a failed check
// whose message says which and why.
func (r *Runner) check(ctx context.Context, c *v1alpha1.Canary, m v1alpha1.MetricCheck, start time.Time) v1alpha1.MetricStatus {
	st := v1alpha1.MetricStatus{Name: m.Name}
	p, query, err := r.resolve(ctx, c, m)
	if err != nil {
		st.Message = err.Error()
		return st
	}
	interval := c.Spec.Analysis.GetInterval()
	window := interval
	if m.Interval != nil {
		window = m.Interval.Duration
	}
	vars := analysis.Vars{
		Namespace: c.Namespace, Name: c.Name, Target: c.Spec.TargetRef.Name,
		Service: workload.ServiceName(c), Interval: window, Variables: m.TemplateVariables,
	}
	req := analysis.Request{Window: window, NotBefore: start}
	if req.Query, err = analysis.Render(query, vars); err != nil {
		st.Message = err.Error()
		return st
	}
	if p.Web != nil && p.Web.Body != "" {
		if req.Body, err = analysis.Render(p.Web.Body, vars); err != nil {
			st.Message = "spec.provider.web.body: " + err.Error()
			return st
		}
	}
	// A result is shared for the interval by canaries asking the same
	// query in the same moment (one request), never with a later round.
	value, err := r.Querier.Query(ctx, p, req, interval)
	if err != nil {
		if errors.Is(err, analysis.ErrNoValues) {
			st.Message = "no values: is the canary receiving traffic? (" + err.Error() + ")"
		} else {
			st.Message = err.Error()
		}
		return st
	}
	st.Value = strconv.FormatFloat(value, 'g', 6, 64)
	check := analysis.Check{SuccessCondition: m.SuccessCondition, FailureCondition: m.FailureCondition}
	if tr := m.ThresholdRange; tr != nil {
		check.Min, check.Max = tr.Min, tr.Max
	}
	pass, why, err := r.Judge.Pass(check, value)
	switch {
	case err != nil:
		st.Message = err.Error()
	case !pass:
		st.Message = why
	default:
		st.Passed = true
	}
	return st
}

// builtinQuery returns the query template of a builtin metric from the
// source --builtin-metrics names: auto takes the Canary's router's own
// queries when it has them, else the app's; a router's name takes that
// router's.
func (r *Runner) builtinQuery(c *v1alpha1.Canary, metric string) (string, bool) {
	source := r.BuiltinMetrics
	if source == "" || source == analysis.BuiltinAuto {
		source = analysis.BuiltinApp
		if len(r.Routers) > 0 {
			if reg := r.Routers.For(c); reg.BuiltinQueries != nil {
				source = reg.Name
			}
		}
	}
	if reg, ok := r.Routers.Named(source); ok {
		q, ok := reg.BuiltinQueries[metric]
		return q, ok
	}
	return analysis.BuiltinQuery(source, metric)
}

// resolve finds a metric's provider and query template.
func (r *Runner) resolve(ctx context.Context, c *v1alpha1.Canary, m v1alpha1.MetricCheck) (analysis.Provider, string, error) {
	if m.TemplateRef == nil {
		q, ok := r.builtinQuery(c, m.Name)
		if !ok {
			return analysis.Provider{}, "", fmt.Errorf("%q is not a builtin metric; set templateRef", m.Name)
		}
		if r.MetricsServer == "" {
			return analysis.Provider{}, "", fmt.Errorf("builtin metric %s needs the controller's --metrics-server", m.Name)
		}
		return analysis.Prometheus(r.MetricsServer), q, nil
	}
	ns := m.TemplateRef.GetNamespace(c.Namespace)
	var t v1alpha1.MetricTemplate
	if err := r.Reader.Get(ctx, types.NamespacedName{Namespace: ns, Name: m.TemplateRef.Name}, &t); err != nil {
		return analysis.Provider{}, "", fmt.Errorf("metric template %s/%s: %w", ns, m.TemplateRef.Name, err)
	}
	p := analysis.Provider{MetricProvider: *t.Spec.Provider.DeepCopy()}
	if ref := p.SecretRef; ref != nil {
		data, err := r.secret(ctx, types.NamespacedName{Namespace: ns, Name: ref.Name})
		if err != nil {
			return analysis.Provider{}, "", fmt.Errorf("metric template %s/%s: secret %s: %w", ns, t.Name, ref.Name, err)
		}
		p.Secret = data
		if err := analysis.CheckSecret(p); err != nil {
			return analysis.Provider{}, "", fmt.Errorf("metric template %s/%s: secret %s %w", ns, t.Name, ref.Name, err)
		}
	}
	return p, t.Spec.Query, nil
}
