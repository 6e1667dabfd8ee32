package controller

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/analysis"
	"github.com/sluice-dev/sluice/internal/engine"
	"github.com/sluice-dev/sluice/internal/webhook"
	"github.com/sluice-dev/sluice/internal/workload"
)

// CheckRunner runs check rounds and webhook calls off the reconcile
// workers. Each round (metrics, rollout and rollback webhooks, all at once)
// and each webhook call runs in its own goroutine, bounded by its deadlines,
// so a slow provider or a hanging hook holds neither a reconcile worker nor
// another Canary's checks. Queries go through the shared Querier (cached,
// bounded, with deadlines). Results are kept until the Canary's next
// reconcile reads them; each is announced on Events, which the controller
// watches.
type CheckRunner struct {
	// Reader reads MetricTemplates (an informer cache).
	Reader client.Reader
	// SecretReader reads provider credentials; the controller's cache keeps
	// Secrets without their data, so this is the API reader. A Secret is
	// read at most once per SecretTTL.
	SecretReader client.Reader
	SecretTTL    time.Duration
	// MetricsServer is the Prometheus of the builtin metrics.
	MetricsServer string
	// BuiltinMetrics is the builtin metrics' source: analysis.BuiltinAuto
	// (the default), BuiltinApp, BuiltinEnvoy or BuiltinTraefik.
	BuiltinMetrics string
	Querier        *analysis.Querier
	Judge          *analysis.Judge
	// Hooks posts webhook payloads.
	Hooks *webhook.Caller
	// Recorder reports failed post-rollout hooks.
	Recorder events.EventRecorder
	// Metrics, when set, count Events dropped on the way to event
	// webhooks.
	Metrics *Metrics

	queue  chan func(context.Context)
	events chan event.GenericEvent

	mu sync.Mutex
	// Entries carry the Canary's UID: a job of a deleted Canary never
	// answers for a new one of the same name.
	running     map[types.NamespacedName]roundRun
	results     map[types.NamespacedName]roundResult
	hookRunning map[hookKey]hookRun
	hookResults map[hookKey]hookResult
	secrets     map[types.NamespacedName]cachedSecret
	initOnce    sync.Once
}

type roundRun struct {
	uid   types.UID
	round int64
}

type roundResult struct {
	uid types.UID
	res engine.CheckResult
}

type hookRun struct {
	uid  types.UID
	call engine.HookCall
}

type hookResult struct {
	uid types.UID
	res engine.HookResult
}

type hookKey struct {
	canary types.NamespacedName
	typ    v1alpha1.WebhookType
}

type cachedSecret struct {
	data    map[string][]byte
	err     error
	fetched time.Time
}

func (r *CheckRunner) init() {
	r.initOnce.Do(func() {
		r.queue = make(chan func(context.Context), 4096)
		r.events = make(chan event.GenericEvent, 1024)
		r.running = map[types.NamespacedName]roundRun{}
		r.results = map[types.NamespacedName]roundResult{}
		r.hookRunning = map[hookKey]hookRun{}
		r.hookResults = map[hookKey]hookResult{}
		if r.Hooks == nil {
			r.Hooks = webhook.NewCaller()
		}
		if r.Judge == nil {
			r.Judge = analysis.NewJudge()
		}
		r.secrets = map[types.NamespacedName]cachedSecret{}
		if r.SecretTTL <= 0 {
			r.SecretTTL = 5 * time.Minute
		}
	})
}

// InvalidCondition compiles the successCondition and failureCondition of
// each of the Canary's metrics (the programs are kept for the rounds). It
// returns the reason of the first that does not compile
// (InvalidSuccessCondition, InvalidFailureCondition) and a message naming
// every such condition, its metric and the compiler's complaint; two empty
// strings when all compile. The controller checks this before a release
// moves traffic: a condition that cannot be judged would otherwise fail
// every round until the release is rolled back.
func (r *CheckRunner) InvalidCondition(c *v1alpha1.Canary) (reason, msg string) {
	if c.Spec.Analysis == nil {
		return "", ""
	}
	r.init()
	var bad []string
	for i, m := range c.Spec.Analysis.Metrics {
		for _, e := range r.Judge.Validate(analysis.Check{SuccessCondition: m.SuccessCondition, FailureCondition: m.FailureCondition}) {
			if reason == "" {
				reason = e.Reason()
			}
			bad = append(bad, fmt.Sprintf("spec.analysis.metrics[%d] (%s).%v", i, m.Name, e))
		}
	}
	return reason, strings.Join(bad, "; ")
}

// Events announces finished rounds (the Canary to reconcile).
func (r *CheckRunner) Events() <-chan event.GenericEvent {
	r.init()
	return r.events
}

// Start runs each queued job in its own goroutine until ctx ends (a
// manager Runnable), then waits for the running ones.
func (r *CheckRunner) Start(ctx context.Context) error {
	r.init()
	var wg sync.WaitGroup
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case job := <-r.queue:
			wg.Go(func() { job(ctx) })
		}
	}
}

// enqueue queues a job without blocking; it reports false when the queue
// is full (the caller asks again at the next reconcile).
func (r *CheckRunner) enqueue(job func(context.Context)) bool {
	select {
	case r.queue <- job:
		return true
	default:
		return false
	}
}

// announce wakes the Canary's reconcile.
func (r *CheckRunner) announce(ctx context.Context, c *v1alpha1.Canary) {
	obj := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: c.Namespace, Name: c.Name}}
	select {
	case r.events <- event.GenericEvent{Object: obj}:
	case <-ctx.Done():
	}
}

// Result returns the finished round of a Canary, if any.
func (r *CheckRunner) Result(c *v1alpha1.Canary) (engine.CheckResult, bool) {
	r.init()
	r.mu.Lock()
	defer r.mu.Unlock()
	got, ok := r.results[client.ObjectKeyFromObject(c)]
	if !ok || got.uid != c.UID {
		return engine.CheckResult{}, false
	}
	return got.res, true
}

// Forget drops what the runner keeps for a Canary (when it is deleted).
func (r *CheckRunner) Forget(key types.NamespacedName) {
	r.init()
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.results, key)
	delete(r.running, key)
	for k := range r.hookResults {
		if k.canary == key {
			delete(r.hookResults, k)
		}
	}
	for k := range r.hookRunning {
		if k.canary == key {
			delete(r.hookRunning, k)
		}
	}
}

// Submit queues a round unless it is running or done. It never blocks: when
// the queue is full the round is asked for again at the next reconcile.
func (r *CheckRunner) Submit(c *v1alpha1.Canary, round int64) {
	r.init()
	key := client.ObjectKeyFromObject(c)
	run := roundRun{uid: c.UID, round: round}
	r.mu.Lock()
	if got, ok := r.results[key]; r.running[key] == run || (ok && got.uid == c.UID && got.res.Round == round) {
		r.mu.Unlock()
		return
	}
	r.running[key] = run
	r.mu.Unlock()
	c = c.DeepCopy()
	if !r.enqueue(func(ctx context.Context) { r.run(ctx, c, round) }) {
		r.mu.Lock()
		delete(r.running, key)
		r.mu.Unlock()
	}
}

// run runs one round: every metric and every rollout and rollback webhook
// at once.
func (r *CheckRunner) run(ctx context.Context, c *v1alpha1.Canary, round int64) {
	key := client.ObjectKeyFromObject(c)
	res := engine.CheckResult{Round: round}
	var rollout, rollback []v1alpha1.Webhook
	for _, h := range c.Spec.Analysis.Webhooks {
		switch engine.HookType(h) {
		case v1alpha1.WebhookRollout:
			rollout = append(rollout, h)
		case v1alpha1.WebhookRollback:
			rollback = append(rollback, h)
		}
	}
	checks := make([]v1alpha1.MetricStatus, len(c.Spec.Analysis.Metrics)+len(rollout))
	rollbacks := make([]string, len(rollback))
	var wg sync.WaitGroup
	for i, m := range c.Spec.Analysis.Metrics {
		wg.Go(func() { checks[i] = r.check(ctx, c, m) })
	}
	for i, h := range rollout {
		wg.Go(func() {
			st := v1alpha1.MetricStatus{Name: h.Name, Webhook: true, Passed: true}
			if err := r.call(ctx, c, h, nil); err != nil {
				st.Passed, st.Message = false, err.Error()
			}
			checks[len(c.Spec.Analysis.Metrics)+i] = st
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
	res.Metrics = checks
	for _, msg := range rollbacks {
		if msg != "" {
			res.Rollback = msg
			break
		}
	}
	r.mu.Lock()
	current := r.running[key] == roundRun{uid: c.UID, round: round}
	if current {
		// Only the round still asked for answers (not one of a Canary
		// deleted, or forgotten, meanwhile).
		r.results[key] = roundResult{uid: c.UID, res: res}
		delete(r.running, key)
	}
	r.mu.Unlock()
	if current {
		r.announce(ctx, c)
	}
}

// check runs one metric; every failure to get a value is a failed check
// whose message says which and why.
func (r *CheckRunner) check(ctx context.Context, c *v1alpha1.Canary, m v1alpha1.MetricCheck) v1alpha1.MetricStatus {
	st := v1alpha1.MetricStatus{Name: m.Name}
	p, query, err := r.resolve(ctx, c, m)
	if err != nil {
		st.Message = err.Error()
		return st
	}
	interval := engine.CheckInterval(c.Spec.Analysis)
	window := interval
	if m.Interval != nil {
		window = m.Interval.Duration
	}
	rendered, err := analysis.Render(query, analysis.Vars{
		Namespace: c.Namespace, Name: c.Name, Target: c.Spec.TargetRef.Name,
		Service: workload.ServiceName(c), Interval: window, Variables: m.TemplateVariables,
	})
	if err != nil {
		st.Message = err.Error()
		return st
	}
	// A result is shared for the interval: canaries asking the same query
	// in that time cost one request.
	value, err := r.Querier.Query(ctx, p, rendered, interval)
	if err != nil {
		if errors.Is(err, analysis.ErrNoValues) {
			st.Message = "no values: is the canary receiving traffic? (" + rendered + ")"
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

// resolve finds a metric's provider and query template.
func (r *CheckRunner) resolve(ctx context.Context, c *v1alpha1.Canary, m v1alpha1.MetricCheck) (analysis.Provider, string, error) {
	if m.TemplateRef == nil {
		source := r.BuiltinMetrics
		if source == "" || source == analysis.BuiltinAuto {
			source = analysis.BuiltinApp
			if c.Spec.Router.Traefik != nil {
				source = analysis.BuiltinTraefik
			}
		}
		q, ok := analysis.BuiltinQuery(source, m.Name)
		if !ok {
			return analysis.Provider{}, "", fmt.Errorf("%q is not a builtin metric; set templateRef", m.Name)
		}
		if r.MetricsServer == "" {
			return analysis.Provider{}, "", fmt.Errorf("builtin metric %s needs the controller's --metrics-server", m.Name)
		}
		return analysis.Provider{Address: r.MetricsServer}, q, nil
	}
	ns := m.TemplateRef.Namespace
	if ns == "" {
		ns = c.Namespace
	}
	var t v1alpha1.MetricTemplate
	if err := r.Reader.Get(ctx, types.NamespacedName{Namespace: ns, Name: m.TemplateRef.Name}, &t); err != nil {
		return analysis.Provider{}, "", fmt.Errorf("metric template %s/%s: %w", ns, m.TemplateRef.Name, err)
	}
	pv := t.Spec.Provider
	p := analysis.Provider{Address: pv.Address, Headers: pv.Headers, InsecureSkipVerify: pv.InsecureSkipVerify}
	if pv.Timeout != nil {
		p.Timeout = pv.Timeout.Duration
	}
	if pv.SecretRef != nil {
		data, err := r.secret(ctx, types.NamespacedName{Namespace: ns, Name: pv.SecretRef.Name})
		if err != nil {
			return analysis.Provider{}, "", fmt.Errorf("metric template %s/%s: secret %s: %w", ns, t.Name, pv.SecretRef.Name, err)
		}
		p.BearerToken = string(data["token"])
		p.Username, p.Password = string(data["username"]), string(data["password"])
		if p.BearerToken == "" && p.Username == "" {
			return analysis.Provider{}, "", fmt.Errorf("metric template %s/%s: secret %s has neither a token key nor username/password keys", ns, t.Name, pv.SecretRef.Name)
		}
	}
	return p, t.Spec.Query, nil
}

func (r *CheckRunner) secret(ctx context.Context, key types.NamespacedName) (map[string][]byte, error) {
	r.mu.Lock()
	cs, ok := r.secrets[key]
	r.mu.Unlock()
	if ok && time.Since(cs.fetched) < r.SecretTTL {
		return cs.data, cs.err
	}
	var s corev1.Secret
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := r.SecretReader.Get(ctx, key, &s)
	r.mu.Lock()
	r.secrets[key] = cachedSecret{data: s.Data, err: err, fetched: time.Now()}
	r.mu.Unlock()
	if err != nil {
		log.FromContext(ctx).Error(err, "Read provider secret", "secret", key)
	}
	return s.Data, err
}
