// Package startup holds a controller back until the apiserver serves the
// kinds it reads. In a cluster the CRDs and the controller's Deployment
// arrive together, and a controller that comes up first must wait for its
// kinds instead of exiting; its readiness probe says it is waiting.
package startup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
)

// Defaults of the Waiter's optional fields.
const (
	// DefaultMinDelay is the delay after the first lookup that finds a kind
	// missing; it doubles after each miss up to DefaultMaxDelay.
	DefaultMinDelay = 250 * time.Millisecond
	DefaultMaxDelay = 5 * time.Second
	// DefaultLogEvery is how often the wait repeats what it waits for.
	DefaultLogEvery = 30 * time.Second
	// LookupTimeout bounds one discovery request.
	LookupTimeout = 10 * time.Second
)

// Lookup returns the resources the apiserver serves in one group version
// (its discovery document). A group version not served at all is a
// NotFound error.
type Lookup func(ctx context.Context, gv schema.GroupVersion) (*metav1.APIResourceList, error)

// Discovery is a Lookup that reads /apis/<group>/<version> (/api/v1 for the
// core group) through client, a discovery client's REST client.
func Discovery(client rest.Interface) Lookup {
	return func(ctx context.Context, gv schema.GroupVersion) (*metav1.APIResourceList, error) {
		p := path.Join("/apis", gv.Group, gv.Version)
		if gv.Group == "" {
			p = path.Join("/api", gv.Version)
		}
		raw, err := client.Get().AbsPath(p).SetHeader("Accept", "application/json").DoRaw(ctx)
		if err != nil {
			return nil, fmt.Errorf("discover %s: %w", gv, err)
		}
		var list metav1.APIResourceList
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, fmt.Errorf("discover %s: %w", gv, err)
		}
		return &list, nil
	}
}

// Waiter waits until the apiserver serves every one of Kinds, and answers
// a readiness probe meanwhile (Check). Kinds and Lookup are required; the
// other fields take the defaults above when zero. A Waiter is used once.
type Waiter struct {
	Kinds  []schema.GroupVersionKind
	Lookup Lookup
	// Log gets one line when the wait begins, one every LogEvery while it
	// lasts, and one when it ends (none when every kind was served at the
	// first lookup).
	Log      logr.Logger
	MinDelay time.Duration
	MaxDelay time.Duration
	LogEvery time.Duration

	// now and after are the clock (time.Now, time.After unless a test sets
	// them).
	now   func() time.Time
	after func(time.Duration) <-chan time.Time

	mu sync.Mutex
	// missing are the kinds the last lookup did not find.
	missing []schema.GroupVersionKind
	// ready is set by MarkReady.
	ready bool
}

// Wait looks the kinds up until every one is served, with a delay between
// lookups that starts at MinDelay and doubles up to MaxDelay. It returns
// nil once they are all served, or ctx's error when ctx ends first. A
// failed lookup (the apiserver not answering) counts as a miss: it is
// logged with the wait, never returned.
func (w *Waiter) Wait(ctx context.Context) error {
	if len(w.Kinds) == 0 || w.Lookup == nil {
		return errors.New("startup: Waiter needs Kinds and a Lookup")
	}
	now, after := w.clock()
	minDelay, maxDelay, logEvery := orDefault(w.MinDelay, DefaultMinDelay), orDefault(w.MaxDelay, DefaultMaxDelay), orDefault(w.LogEvery, DefaultLogEvery)
	start := now()
	var logged time.Time
	delay := minDelay
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		missing, lookupErr := w.lookup(ctx)
		w.setMissing(missing)
		if len(missing) == 0 {
			if !logged.IsZero() {
				w.Log.Info("Kinds served", "waited", now().Sub(start).Round(time.Millisecond).String())
			}
			return nil
		}
		switch t := now(); {
		case logged.IsZero():
			w.Log.Info("Waiting for the apiserver to serve these kinds (are their CRDs installed?)", withErr(lookupErr, "missing", names(missing))...)
			logged = t
		case t.Sub(logged) >= logEvery:
			w.Log.Info("Still waiting for the apiserver to serve these kinds", withErr(lookupErr, "missing", names(missing), "waited", t.Sub(start).Round(time.Second).String())...)
			logged = t
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-after(delay):
		}
		delay = min(2*delay, maxDelay)
	}
}

// lookup returns the kinds not served, looking each group version up once
// (with a LookupTimeout deadline), and the first lookup error other than
// NotFound.
func (w *Waiter) lookup(ctx context.Context) ([]schema.GroupVersionKind, error) {
	var missing []schema.GroupVersionKind
	var firstErr error
	served := map[schema.GroupVersion]*metav1.APIResourceList{}
	for _, gvk := range w.Kinds {
		gv := gvk.GroupVersion()
		list, seen := served[gv]
		if !seen {
			lctx, cancel := context.WithTimeout(ctx, LookupTimeout)
			var err error
			list, err = w.Lookup(lctx, gv)
			cancel()
			if err != nil && !apierrors.IsNotFound(err) && firstErr == nil {
				firstErr = err
			}
			served[gv] = list
		}
		if !serves(list, gvk.Kind) {
			missing = append(missing, gvk)
		}
	}
	return missing, firstErr
}

// serves tells whether list has a resource (not a subresource) of kind.
func serves(list *metav1.APIResourceList, kind string) bool {
	if list == nil {
		return false
	}
	return slices.ContainsFunc(list.APIResources, func(r metav1.APIResource) bool {
		return r.Kind == kind && !strings.Contains(r.Name, "/")
	})
}

// MarkReady makes Check pass from now on: the caller has built what waited
// for the kinds.
func (w *Waiter) MarkReady() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ready = true
}

// Check is a readiness check (a controller-runtime healthz.Checker): it
// fails, naming the kinds still missing, until MarkReady is called.
func (w *Waiter) Check(*http.Request) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.ready:
		return nil
	case len(w.missing) > 0:
		return fmt.Errorf("waiting for the apiserver to serve %s", strings.Join(names(w.missing), ", "))
	default:
		return errors.New("starting")
	}
}

func (w *Waiter) setMissing(m []schema.GroupVersionKind) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.missing = m
}

func (w *Waiter) clock() (func() time.Time, func(time.Duration) <-chan time.Time) {
	now, after := w.now, w.after
	if now == nil {
		now = time.Now
	}
	if after == nil {
		after = time.After
	}
	return now, after
}

// names spells kinds as kubectl spells a fully qualified resource:
// Canary.v1alpha1.sluice.dev.
func names(kinds []schema.GroupVersionKind) []string {
	out := make([]string, len(kinds))
	for i, k := range kinds {
		out[i] = strings.TrimSuffix(k.Kind+"."+k.Version+"."+k.Group, ".")
	}
	return out
}

// withErr appends the lookup error to a log line's key-value pairs, if any.
func withErr(err error, kv ...any) []any {
	if err != nil {
		kv = append(kv, "lastError", err.Error())
	}
	return kv
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
