package checks

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/engine"
	"github.com/sluice-dev/sluice/internal/webhook"
)

// HookResults returns the last answers of a Canary's webhook calls, by
// type.
func (r *Runner) HookResults(c *v1alpha1.Canary) map[v1alpha1.WebhookType]engine.HookResult {
	r.init()
	canary := client.ObjectKeyFromObject(c)
	r.mu.Lock()
	defer r.mu.Unlock()
	var out map[v1alpha1.WebhookType]engine.HookResult
	// A lookup per type, not a scan of every Canary's jobs: this runs in
	// every reconcile.
	for _, typ := range v1alpha1.WebhookTypes() {
		if j := r.owned(jobKey{canary: canary, hook: typ}, c.UID); j != nil && j.answered != nil {
			if out == nil {
				out = map[v1alpha1.WebhookType]engine.HookResult{}
			}
			out[typ] = j.hook
		}
	}
	return out
}

// SubmitHook calls every webhook of call.Type of the Canary (whose status
// is the one just decided: the payload's phase, weight and step). A call
// already running or answered with the same key and time is not made
// again. It never blocks.
func (r *Runner) SubmitHook(c *v1alpha1.Canary, call engine.HookCall) {
	r.init()
	key, want := jobKey{canary: client.ObjectKeyFromObject(c), hook: call.Type}, run{call: call}
	if !r.begin(key, c.UID, want) {
		return
	}
	c = c.DeepCopy()
	if !r.enqueue(func(ctx context.Context) { r.runHooks(ctx, key, c, want) }) {
		r.end(key, c.UID, want, nil)
	}
}

// runHooks calls the Canary's webhooks of one type at once and keeps the
// answer; a failed post-rollout call is only recorded as an Event, since
// nothing waits for it.
func (r *Runner) runHooks(ctx context.Context, key jobKey, c *v1alpha1.Canary, want run) {
	call := want.call
	var failures []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, h := range c.Spec.Analysis.Webhooks {
		if h.GetType() != call.Type {
			continue
		}
		wg.Go(func() {
			if err := r.call(ctx, c, h, nil); err != nil {
				mu.Lock()
				failures = append(failures, err.Error())
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	res := engine.HookResult{Key: call.Key, Since: call.Since, Done: time.Now(), Passed: len(failures) == 0, Message: strings.Join(failures, "; ")}
	// Only the call still asked for answers: not one a newer call of the
	// same type replaced, nor one of a Canary deleted meanwhile.
	if !r.end(key, c.UID, want, func(j *job) { j.hook = res }) {
		return
	}
	if call.Type == v1alpha1.WebhookPostRollout {
		// Nothing waits for it: a failure is only reported.
		if !res.Passed && r.Recorder != nil {
			r.Recorder.Eventf(c, nil, corev1.EventTypeWarning, v1alpha1.ReasonPostRolloutFailed, "Webhook", "%s", res.Message)
		}
		return
	}
	r.announce(ctx, c)
}

// Notify posts an Event to the Canary's event webhooks, in the
// background. A failure is logged, not recorded: an Event about it would
// be posted to the same hooks. When the runner's queue is full the Event
// is dropped (nothing asks for it again): each webhook that misses it is
// logged and counted in sluice_webhook_events_dropped_total.
func (r *Runner) Notify(ctx context.Context, c *v1alpha1.Canary, e engine.Event) {
	if !engine.HasHooks(c, v1alpha1.WebhookEvent) {
		return
	}
	r.init()
	c = c.DeepCopy()
	ev := &webhook.Event{Type: e.Type(), Reason: e.Reason, Message: e.Message}
	queued := r.enqueue(func(ctx context.Context) {
		for _, h := range c.Spec.Analysis.Webhooks {
			if h.GetType() != v1alpha1.WebhookEvent {
				continue
			}
			if err := r.call(ctx, c, h, ev); err != nil {
				log.FromContext(ctx).Error(err, "Event webhook", "canary", client.ObjectKeyFromObject(c), "reason", e.Reason)
			}
		}
	})
	if queued {
		return
	}
	for _, h := range c.Spec.Analysis.Webhooks {
		if h.GetType() != v1alpha1.WebhookEvent {
			continue
		}
		log.FromContext(ctx).Error(errQueueFull, "Event not posted to its webhook", "canary", client.ObjectKeyFromObject(c),
			"webhook", h.Name, "type", ev.Type, "reason", e.Reason)
		if r.Metrics != nil {
			r.Metrics.EventsDropped.WithLabelValues(ev.Type).Inc()
		}
	}
}

// errQueueFull is why an event webhook's Event was dropped.
var errQueueFull = errors.New("the check runner's queue is full")

// call posts the Canary's payload to one webhook, signed when the hook
// names a key.
func (r *Runner) call(ctx context.Context, c *v1alpha1.Canary, h v1alpha1.Webhook, ev *webhook.Event) error {
	hook := webhook.Hook{Name: h.Name, URL: h.URL, Timeout: h.GetTimeout(), Retries: int(h.GetRetries())}
	if ref := h.SecretRef; ref != nil {
		data, err := r.secret(ctx, types.NamespacedName{Namespace: c.Namespace, Name: ref.Name})
		if err != nil {
			return fmt.Errorf("webhook %s: signing secret %s: %w", h.Name, ref.Name, err)
		}
		name := ref.GetKey()
		if hook.Key = data[name]; len(hook.Key) == 0 {
			return fmt.Errorf("webhook %s: signing secret %s has no key %q (spec.analysis.webhooks[].secretRef.key)", h.Name, ref.Name, name)
		}
	}
	return r.Hooks.Call(ctx, hook, webhook.Payload{
		Type: string(h.GetType()), Name: c.Name, Namespace: c.Namespace,
		Revision: c.Status.CanaryRevision, Phase: string(c.Status.Phase),
		Weight: c.Status.CanaryWeight, Step: c.Status.CurrentStep,
		Metadata: h.Metadata, Event: ev,
	})
}
