package controller

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	toolscache "k8s.io/client-go/tools/cache"
)

// Sight knows whether this process's caches see the cluster. The lists and
// watches of the informers it makes (NewInformer: the main cache's and the
// router cache's) go through it: an informer
// whose last attempt failed because the apiserver could not be reached,
// or answered with a server error, is blind until an attempt succeeds.
//
// A client-go informer retries a failed list or watch after a backoff that
// doubles up to 30 s (with as much jitter again) and resets only after two
// quiet minutes, so after an apiserver restart the caches may show the old
// cluster for tens of seconds, and a release waiting on them looks stuck.
// The reconciler starts the progress deadline again once the caches see
// (engine.Input.ActingSince), as it does after a controller outage.
type Sight struct {
	now func() time.Time
	// Log, when set, hears when the caches go blind and see again.
	Log logr.Logger

	mu sync.Mutex
	// next numbers the next informer wrapped; names are their kinds.
	next  int
	names map[int]string
	// blind holds the informers whose last attempt failed, with the time
	// of that attempt.
	blind map[int]time.Time
	// back is when the last blind informer saw again.
	back time.Time
}

// NewSight returns a Sight reading the clock now (time.Now when nil).
func NewSight(now func() time.Time) *Sight {
	if now == nil {
		now = time.Now
	}
	return &Sight{now: now, blind: map[int]time.Time{}, names: map[int]string{}}
}

// Since is when the caches last started to see the whole cluster: the
// current time while any informer is blind, when the last of them saw
// again otherwise, and zero if none has ever been blind.
func (s *Sight) Since() time.Time {
	if s == nil {
		return time.Time{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for id, at := range s.blind {
		// An informer retries at least every StaleBlind; one that has
		// not is gone (its cache stopped) and blinds nobody.
		if now.Sub(at) > StaleBlind {
			delete(s.blind, id)
			if at.After(s.back) {
				s.back = at
			}
		}
	}
	if len(s.blind) > 0 {
		return now
	}
	return s.back
}

// StaleBlind is how long an informer's failed attempt keeps it blind
// without another attempt: more than client-go's longest retry interval
// (30 s, plus up to as much jitter).
const StaleBlind = 90 * time.Second

// NewInformer is a cache.Options.NewInformer: a shared informer whose
// lists and watches report to s.
func (s *Sight) NewInformer(lw toolscache.ListerWatcher, obj runtime.Object, resync time.Duration, idx toolscache.Indexers) toolscache.SharedIndexInformer {
	if l, ok := lw.(*toolscache.ListWatch); ok {
		s.observe(l, informerKind(obj))
	}
	return toolscache.NewSharedIndexInformer(lw, obj, resync, idx)
}

// newInformer is s.NewInformer, or nil (client-go's own) for a nil s.
func (s *Sight) newInformer() func(toolscache.ListerWatcher, runtime.Object, time.Duration, toolscache.Indexers) toolscache.SharedIndexInformer {
	if s == nil {
		return nil
	}
	return s.NewInformer
}

// observe wraps l's list and watch functions. controller-runtime fills
// only the context-taking ones, which client-go prefers when both are set.
func (s *Sight) observe(l *toolscache.ListWatch, name string) {
	s.mu.Lock()
	id := s.next
	s.next++
	s.names[id] = name
	s.mu.Unlock()
	if l.ListWithContextFunc != nil {
		l.ListWithContextFunc = reporting(s, id, l.ListWithContextFunc)
	}
	if l.WatchFuncWithContext != nil {
		l.WatchFuncWithContext = reporting(s, id, l.WatchFuncWithContext)
	}
}

// reporting is f, reporting each outcome to s for informer id.
func reporting[T any](s *Sight, id int, f func(context.Context, metav1.ListOptions) (T, error)) func(context.Context, metav1.ListOptions) (T, error) {
	return func(ctx context.Context, o metav1.ListOptions) (T, error) {
		out, err := f(ctx, o)
		s.report(ctx, id, err)
		return out, err
	}
}

// report records the outcome of informer id's list or watch. Only an
// apiserver that cannot answer makes an informer blind: a refusal (403,
// 404, 410) is an answer, and a stopping informer's cancelled context is
// nobody's outage.
func (s *Sight) report(ctx context.Context, id int, err error) {
	if err != nil && (ctx.Err() != nil || !unreachable(err)) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if len(s.blind) == 0 && s.Log.GetSink() != nil {
			s.Log.Info("Caches blind: the progress deadline waits until they see again", "informer", s.names[id], "error", err.Error())
		}
		s.blind[id] = s.now()
		return
	}
	if _, ok := s.blind[id]; ok {
		delete(s.blind, id)
		if len(s.blind) == 0 {
			s.back = s.now()
			if s.Log.GetSink() != nil {
				s.Log.Info("Caches see the cluster again: progress deadlines count from now", "informer", s.names[id])
			}
		}
	}
}

// informerKind names an informer's object: its kind when it carries one
// (unstructured, metadata-only), else its Go type.
func informerKind(obj runtime.Object) string {
	if k := obj.GetObjectKind().GroupVersionKind(); k.Kind != "" {
		return k.GroupKind().String()
	}
	return fmt.Sprintf("%T", obj)
}

// unreachable tells an apiserver that could not answer (no connection, a
// timeout, a 5xx or 429) from one that answered no.
func unreachable(err error) bool {
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		code := st.Status().Code
		return code >= http.StatusInternalServerError || code == http.StatusTooManyRequests
	}
	return true
}
