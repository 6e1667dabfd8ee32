package scale

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/workload"
)

// weightAt is a canary weight seen on a route, and when the bench's watch
// delivered it.
type weightAt struct {
	weight int32
	at     time.Time
}

// recorder watches the router's objects (benchRouter.route) and the Canaries from the
// bench's own process: every change of a route's canary weight is
// stamped with the time its watch event arrived (milliseconds after the
// write), and every Canary's phase is kept.
type recorder struct {
	router  benchRouter
	mu      sync.Mutex
	weights map[client.ObjectKey][]weightAt
	phases  map[client.ObjectKey]string
	// statusAt: when each change of a Canary's status arrived
	statusAt map[client.ObjectKey][]time.Time
}

func newRecorder(ctx context.Context, cfg *rest.Config, scheme *runtime.Scheme, instance string, br benchRouter) (*recorder, error) {
	owned, err := labels.NewRequirement(workload.CanaryLabel, selection.Exists, nil)
	if err != nil {
		return nil, err
	}
	route := &unstructured.Unstructured{}
	route.SetGroupVersionKind(br.route)
	c, err := cache.New(cfg, cache.Options{Scheme: scheme, ByObject: map[client.Object]cache.ByObject{
		route:              {Label: labels.NewSelector().Add(*owned)},
		&v1alpha1.Canary{}: {Label: labels.SelectorFromSet(labels.Set{"sluice.dev/instance": instance})},
	}})
	if err != nil {
		return nil, fmt.Errorf("bench cache: %w", err)
	}
	r := &recorder{router: br, weights: map[client.ObjectKey][]weightAt{}, phases: map[client.ObjectKey]string{}, statusAt: map[client.ObjectKey][]time.Time{}}
	routes, err := c.GetInformer(ctx, route)
	if err != nil {
		return nil, err
	}
	if _, err := routes.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    r.route,
		UpdateFunc: func(_, o any) { r.route(o) },
	}); err != nil {
		return nil, err
	}
	canaries, err := c.GetInformer(ctx, &v1alpha1.Canary{})
	if err != nil {
		return nil, err
	}
	if _, err := canaries.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: r.canary,
		UpdateFunc: func(old, o any) {
			r.canary(o)
			before, ok1 := old.(*v1alpha1.Canary)
			after, ok2 := o.(*v1alpha1.Canary)
			if ok1 && ok2 && !equality.Semantic.DeepEqual(before.Status, after.Status) {
				r.mu.Lock()
				k := client.ObjectKeyFromObject(after)
				r.statusAt[k] = append(r.statusAt[k], time.Now())
				r.mu.Unlock()
			}
		},
	}); err != nil {
		return nil, err
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		return nil, fmt.Errorf("bench cache did not sync")
	}
	return r, nil
}

func (r *recorder) route(o any) {
	u, ok := o.(*unstructured.Unstructured)
	if !ok {
		return
	}
	now := time.Now()
	name := r.router.canaryOf(u)
	if name == "" {
		return
	}
	share, ok := r.router.share(u, name)
	if !ok {
		return
	}
	key := client.ObjectKey{Namespace: u.GetNamespace(), Name: name}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.weights[key] = addWeight(r.weights[key], share, now)
}

// addWeight adds a weight seen at a time to a route's sequence when it
// differs from the last one.
func addWeight(seen []weightAt, share int32, at time.Time) []weightAt {
	if len(seen) == 0 || seen[len(seen)-1].weight != share {
		return append(seen, weightAt{weight: share, at: at})
	}
	return seen
}

func (r *recorder) canary(o any) {
	c, ok := o.(*v1alpha1.Canary)
	if !ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.phases[client.ObjectKeyFromObject(c)] = string(c.Status.Phase)
}

// count says how many of keys are in one of phases.
func (r *recorder) count(keys []client.ObjectKey, phases ...v1alpha1.CanaryPhase) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, k := range keys {
		if slices.Contains(phases, v1alpha1.CanaryPhase(r.phases[k])) {
			n++
		}
	}
	return n
}

// weightsAfter is the weights seen on k's route after since; r.mu is held.
func (r *recorder) weightsAfter(k client.ObjectKey, since time.Time) []weightAt {
	var seq []weightAt
	for _, w := range r.weights[k] {
		if w.at.After(since) {
			seq = append(seq, w)
		}
	}
	return seq
}

// lags returns, for each release of keys that started after since, how
// late each weight after the first was written: the time the weight was
// seen minus the time it was due, which is when the previous weight was
// seen plus the route settle and the pause. want is the sequence of
// weights a release goes through (the steps, then 100 at promotion);
// releases whose sequence differs are counted in bad.
func (r *recorder) lags(keys []client.ObjectKey, since time.Time, want []int32, wait time.Duration) (lags []time.Duration, bad int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range keys {
		seq := r.weightsAfter(k, since)
		if len(seq) < len(want) {
			bad++
			continue
		}
		got := make([]int32, len(want))
		for i := range want {
			got[i] = seq[i].weight
		}
		if !slices.Equal(got, want) {
			bad++
			continue
		}
		for i := 1; i < len(want); i++ {
			lags = append(lags, seq[i].at.Sub(seq[i-1].at.Add(wait)))
		}
	}
	return lags, bad
}

// stepStatusWrites counts, over the releases of keys that went through
// want after since, the changes of their status that the bench's watch saw
// between the first weight and the promotion's 100: the status writes of
// the weight steps, without the ones a release makes before its first
// step and after its last (which depend on how many of the Deployment's
// rollout states a reconcile happens to see). released is how many
// releases were counted.
func (r *recorder) stepStatusWrites(keys []client.ObjectKey, since time.Time, want []int32) (writes, released int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range keys {
		seq := r.weightsAfter(k, since)
		if len(seq) < len(want) || seq[0].weight != want[0] || seq[len(want)-1].weight != want[len(want)-1] {
			continue
		}
		from, to := seq[0].at, seq[len(want)-1].at
		for _, at := range r.statusAt[k] {
			if !at.Before(from) && at.Before(to) {
				writes++
			}
		}
		released++
	}
	return writes, released
}
