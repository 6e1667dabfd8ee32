package controller

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/analysis"
	"github.com/sluice-dev/sluice/internal/engine"
	"github.com/sluice-dev/sluice/internal/workload"
)

// Builtin metrics, for apps exposing the conventional HTTP metrics
// http_requests_total{code} and http_request_duration_seconds_bucket,
// scraped with namespace and pod labels. They go to --metrics-server.
var builtinQueries = map[string]string{
	"request-success-rate": `100 * sum(rate(http_requests_total{namespace="{{ namespace }}",pod=~"{{ target }}-[0-9a-zA-Z]+-[0-9a-zA-Z]+",code!~"5.."}[{{ interval }}])) / sum(rate(http_requests_total{namespace="{{ namespace }}",pod=~"{{ target }}-[0-9a-zA-Z]+-[0-9a-zA-Z]+"}[{{ interval }}]))`,
	"request-duration":     `1000 * histogram_quantile(0.99, sum(rate(http_request_duration_seconds_bucket{namespace="{{ namespace }}",pod=~"{{ target }}-[0-9a-zA-Z]+-[0-9a-zA-Z]+"}[{{ interval }}])) by (le))`,
}

// CheckRunner runs check rounds off the reconcile workers: a fixed pool of
// goroutines takes rounds from a queue, queries the providers (through the
// shared Querier: cached, bounded, with deadlines), judges the values and
// keeps the result until the Canary's next reconcile reads it. A finished
// round is announced on Events, which the controller watches. A slow
// provider therefore never holds a reconcile worker.
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
	Querier       *analysis.Querier
	Judge         *analysis.Judge

	queue  chan roundJob
	events chan event.GenericEvent

	mu       sync.Mutex
	running  map[types.NamespacedName]int64
	results  map[types.NamespacedName]engine.CheckResult
	secrets  map[types.NamespacedName]cachedSecret
	initOnce sync.Once
}

type roundJob struct {
	canary *v1alpha1.Canary
	round  int64
}

type cachedSecret struct {
	data    map[string][]byte
	err     error
	fetched time.Time
}

func (r *CheckRunner) init() {
	r.initOnce.Do(func() {
		r.queue = make(chan roundJob, 1024)
		r.events = make(chan event.GenericEvent, 1024)
		r.running = map[types.NamespacedName]int64{}
		r.results = map[types.NamespacedName]engine.CheckResult{}
		r.secrets = map[types.NamespacedName]cachedSecret{}
		if r.SecretTTL <= 0 {
			r.SecretTTL = 5 * time.Minute
		}
	})
}

// Events announces finished rounds (the Canary to reconcile).
func (r *CheckRunner) Events() <-chan event.GenericEvent {
	r.init()
	return r.events
}

// Start runs the workers until ctx ends (a manager Runnable).
func (r *CheckRunner) Start(ctx context.Context) error {
	r.init()
	const workers = 8
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case job := <-r.queue:
					r.run(ctx, job)
				}
			}
		}()
	}
	wg.Wait()
	return nil
}

// Result returns the finished round of a Canary, if any.
func (r *CheckRunner) Result(key types.NamespacedName) (engine.CheckResult, bool) {
	r.init()
	r.mu.Lock()
	defer r.mu.Unlock()
	res, ok := r.results[key]
	return res, ok
}

// Forget drops what the runner keeps for a Canary (when it is deleted).
func (r *CheckRunner) Forget(key types.NamespacedName) {
	r.init()
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.results, key)
	delete(r.running, key)
}

// Submit queues a round unless it is running or done. It never blocks: when
// the queue is full the round is asked for again at the next reconcile.
func (r *CheckRunner) Submit(c *v1alpha1.Canary, round int64) {
	r.init()
	key := client.ObjectKeyFromObject(c)
	r.mu.Lock()
	if r.running[key] == round || r.results[key].Round == round {
		r.mu.Unlock()
		return
	}
	r.running[key] = round
	r.mu.Unlock()
	select {
	case r.queue <- roundJob{canary: c.DeepCopy(), round: round}:
	default:
		r.mu.Lock()
		delete(r.running, key)
		r.mu.Unlock()
	}
}

func (r *CheckRunner) run(ctx context.Context, job roundJob) {
	c := job.canary
	key := client.ObjectKeyFromObject(c)
	res := engine.CheckResult{Round: job.round}
	for _, m := range c.Spec.Analysis.Metrics {
		res.Metrics = append(res.Metrics, r.check(ctx, c, m))
	}
	r.mu.Lock()
	r.results[key] = res
	if r.running[key] == job.round {
		delete(r.running, key)
	}
	r.mu.Unlock()
	obj := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: c.Namespace, Name: c.Name}}
	select {
	case r.events <- event.GenericEvent{Object: obj}:
	case <-ctx.Done():
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
		q, ok := builtinQueries[m.Name]
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
