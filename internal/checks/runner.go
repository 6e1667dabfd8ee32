// Package checks runs a Canary's check rounds (metric queries with the
// rollout and rollback webhooks) and its gate, post-rollout and event
// webhook calls, off the reconcile workers. The controller submits what
// the engine asked for and reads the answers back as observations at the
// Canary's next reconcile, which the runner wakes when an answer arrives.
package checks

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/analysis"
	"github.com/sluice-dev/sluice/internal/engine"
	"github.com/sluice-dev/sluice/internal/router"
	"github.com/sluice-dev/sluice/internal/secretcache"
	"github.com/sluice-dev/sluice/internal/webhook"
)

// Runner runs check rounds and webhook calls off the reconcile workers.
// Each round (metrics, rollout and rollback webhooks, all at once) and each
// webhook call runs in its own goroutine, bounded by its deadlines, so a
// slow provider or a hanging hook holds neither a reconcile worker nor
// another Canary's checks. Queries go through the shared Querier (cached,
// bounded, with deadlines). Answers are kept until the Canary's next
// reconcile reads them; each is announced on Events, which the controller
// watches.
type Runner struct {
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
	// (the default), BuiltinApp, BuiltinEnvoy, or the name of a router
	// with builtin queries of its own.
	BuiltinMetrics string
	// Routers are the routers the controller knows (for their builtin
	// queries).
	Routers router.Registry
	Querier *analysis.Querier
	Judge   *analysis.Judge
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
	// jobs holds each Canary's check round and gate calls: what runs and
	// the last answer.
	jobs     map[jobKey]*job
	secrets  *secretcache.Cache
	initOnce sync.Once
}

// jobKey names one job of a Canary: its check round (hook empty), or the
// calls of one webhook type (a gate, pre-rollout, post-rollout).
type jobKey struct {
	canary types.NamespacedName
	hook   v1alpha1.WebhookType
}

// job is what the runner keeps of one job of a Canary.
type job struct {
	// uid is the Canary's: a job of a deleted Canary never answers for a
	// new one of the same name (see owned).
	uid types.UID
	// running is the run asked for that has not answered; nil when none.
	// A newer run replaces it, and the older one's answer is then dropped.
	running *run
	// answered is the run whose answer is kept, nil before the first;
	// round holds it for a check round, hook for webhook calls.
	answered *run
	round    engine.CheckResult
	hook     engine.HookResult
}

// run is what a job was asked to do: a round's number, or a webhook call.
type run struct {
	round int64
	call  engine.HookCall
}

// same reports whether a and b ask for the same work: a call is made once
// per (type, key, time).
func (a run) same(b run) bool {
	return a.round == b.round && a.call.Type == b.call.Type && a.call.Key == b.call.Key && a.call.Since.Equal(b.call.Since)
}

func (r *Runner) init() {
	r.initOnce.Do(func() {
		r.queue = make(chan func(context.Context), 4096)
		r.events = make(chan event.GenericEvent, 1024)
		r.jobs = map[jobKey]*job{}
		if r.Hooks == nil {
			r.Hooks = webhook.NewCaller()
		}
		if r.Judge == nil {
			r.Judge = analysis.NewJudge()
		}
		r.secrets = &secretcache.Cache{Reader: r.SecretReader, TTL: r.SecretTTL}
	})
}

// owned returns the job of key if it belongs to the Canary whose UID is
// uid, else nil: an entry left by a deleted Canary of the same name
// neither answers for nor blocks the new one. The caller holds r.mu.
func (r *Runner) owned(key jobKey, uid types.UID) *job {
	if j := r.jobs[key]; j != nil && j.uid == uid {
		return j
	}
	return nil
}

// begin marks want as the run of job key of the Canary uid. It reports
// false when want already runs or has answered (nothing to queue).
func (r *Runner) begin(key jobKey, uid types.UID, want run) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	j := r.owned(key, uid)
	if j == nil {
		j = &job{uid: uid}
		r.jobs[key] = j
	} else if (j.running != nil && j.running.same(want)) || (j.answered != nil && j.answered.same(want)) {
		return false
	} else if j.running != nil && want.round == 0 && j.running.call.Type == want.call.Type && j.running.call.Key == want.call.Key {
		// The same question is being asked already, for an earlier time:
		// a decision repeated from an older status (its write lost) asks
		// it again with a later one. The answer on its way serves it;
		// replacing the call would drop that answer and ask again at
		// every retry.
		return false
	}
	j.running = &want
	return true
}

// end ends want, if it is still the run the job key of the Canary uid
// asked for (not replaced by a newer run, nor dropped with a deleted or
// forgotten Canary), and keeps its answer through answer; a nil answer
// withdraws a run that could not be queued. It reports whether want was
// still asked for.
func (r *Runner) end(key jobKey, uid types.UID, want run, answer func(*job)) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	j := r.owned(key, uid)
	if j == nil || j.running == nil || !j.running.same(want) {
		return false
	}
	j.running = nil
	if answer != nil {
		answer(j)
		j.answered = &want
	}
	return true
}

// Forget drops what the runner keeps for a Canary (when it is deleted).
func (r *Runner) Forget(key types.NamespacedName) {
	r.init()
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.jobs, jobKey{canary: key})
	for _, typ := range v1alpha1.WebhookTypes() {
		delete(r.jobs, jobKey{canary: key, hook: typ})
	}
}

// Unjudgeable finds the Canary's metrics no round could judge: a
// builtin metric while the controller has no --metrics-server
// (NoMetricsServer), and a successCondition or failureCondition that does
// not compile (InvalidSuccessCondition, InvalidFailureCondition; the
// programs are kept for the rounds). It returns the reason of the first
// and a message naming every such metric and what is wrong with it; two
// empty strings when every metric can be judged. The controller checks
// this before a release moves traffic: such a metric would otherwise fail
// every round until the release is rolled back.
func (r *Runner) Unjudgeable(c *v1alpha1.Canary) (reason, msg string) {
	if c.Spec.Analysis == nil {
		return "", ""
	}
	r.init()
	var bad []string
	for i, m := range c.Spec.Analysis.Metrics {
		if m.TemplateRef == nil && r.MetricsServer == "" {
			if reason == "" {
				reason = v1alpha1.ReasonNoMetricsServer
			}
			bad = append(bad, fmt.Sprintf("spec.analysis.metrics[%d] (%s): a builtin metric, and the controller has no --metrics-server (Helm value metricsServer): give it the Prometheus URL, or name a MetricTemplate in templateRef", i, m.Name))
		}
		for _, e := range r.Judge.Validate(analysis.Check{SuccessCondition: m.SuccessCondition, FailureCondition: m.FailureCondition}) {
			if reason == "" {
				reason = e.Reason()
			}
			bad = append(bad, fmt.Sprintf("spec.analysis.metrics[%d] (%s).%v", i, m.Name, e))
		}
	}
	return reason, strings.Join(bad, "; ")
}

// Events announces finished rounds and gate calls (the Canary to
// reconcile).
func (r *Runner) Events() <-chan event.GenericEvent {
	r.init()
	return r.events
}

// Start runs each queued job in its own goroutine until ctx ends (a
// manager Runnable), then waits for the running ones.
func (r *Runner) Start(ctx context.Context) error {
	r.init()
	var wg sync.WaitGroup
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case work := <-r.queue:
			wg.Go(func() { work(ctx) })
		}
	}
}

// enqueue queues a job without blocking; it reports false when the queue
// is full (the caller asks again at the next reconcile).
func (r *Runner) enqueue(work func(context.Context)) bool {
	select {
	case r.queue <- work:
		return true
	default:
		return false
	}
}

// announce wakes the Canary's reconcile.
func (r *Runner) announce(ctx context.Context, c *v1alpha1.Canary) {
	obj := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: c.Namespace, Name: c.Name}}
	select {
	case r.events <- event.GenericEvent{Object: obj}:
	case <-ctx.Done():
	}
}

// secret reads a Secret's data past the cache, at most once per SecretTTL
// (an error is kept as long).
func (r *Runner) secret(ctx context.Context, key types.NamespacedName) (map[string][]byte, error) {
	r.init()
	data, err := r.secrets.Get(ctx, key)
	if err != nil {
		log.FromContext(ctx).Error(err, "Read provider secret", "secret", key)
	}
	return data, err
}
