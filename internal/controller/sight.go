package controller

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
)

// Sight knows whether this process's caches see the cluster. The lists and
// watches of the informers it makes (NewInformer: the main cache's and the
// router cache's) go through it, and so do the ends of their watch streams.
// An informer is blind
//
//   - from an attempt that found no apiserver (no connection, a 5xx or a
//     429) until an attempt succeeds, and
//   - from the end of its watch stream, when it ends before the timeout
//     the informer asked for, until its next list or watch returns, when
//     that takes longer than WatchGap.
//
// After an apiserver restart the caches may show the old cluster for tens
// of seconds either way: a client-go informer retries a failed list or
// watch after a backoff that doubles up to 30 s (with as much jitter
// again) and resets only after two quiet minutes; and client-go's own
// request retries keep a watch call waiting, without an error, while the
// connection keeps closing (up to ten tries a second apart). A release
// waiting on such a cache looks stuck, so the reconciler starts the
// progress deadline again once the caches see (engine.Input.ActingSince),
// as it does after a controller outage.
type Sight struct {
	now func() time.Time
	// Log, when set, hears when the caches go blind and see again.
	Log logr.Logger

	mu    sync.Mutex
	infs  []*sighted
	blind int // informers seen blind at the last look, for the log
	// back is when the last blind informer saw again.
	back time.Time
}

// sighted is one informer as the Sight knows it.
type sighted struct {
	name string
	// lost is when the informer stopped seeing (its watch stream ended, or
	// an attempt found no apiserver); zero while it sees.
	lost time.Time
	// failed: the last attempt found no apiserver (blind at once).
	failed bool
	// calling counts its lists and watches in flight; tried is when the
	// last one started or ended.
	calling int
	tried   time.Time
}

// blindAt says whether the informer was blind at t: its last call failed
// for want of an apiserver, or its watch has been gone for longer than
// WatchGap. The caller holds the Sight's lock.
func (in *sighted) blindAt(t time.Time) bool {
	return !in.lost.IsZero() && (in.failed || t.Sub(in.lost) > WatchGap)
}

// WatchGap is how long an informer may take to watch again after its
// watch stream ended early before the Sight counts it blind: a stream
// ends early when the apiserver goes away, and also when its events
// expire (410 Gone, then a list), which is no outage if quick.
const WatchGap = time.Second

// StaleBlind is how long an informer stays blind without a list or watch
// in flight or another attempt: more than client-go's longest retry
// interval (30 s, plus up to as much jitter). One that has not tried for
// that long is gone (its cache stopped) and blinds nobody.
const StaleBlind = 90 * time.Second

// NewSight returns a Sight reading the clock now (time.Now when nil).
func NewSight(now func() time.Time) *Sight {
	if now == nil {
		now = time.Now
	}
	return &Sight{now: now}
}

// Since is when the caches last started to see the whole cluster: the
// current time while any informer is blind, when the last of them saw
// again otherwise, and zero if none has ever been blind.
func (s *Sight) Since() time.Time {
	if s == nil {
		return time.Time{}
	}
	s.mu.Lock()
	now := s.now()
	blind := 0
	for _, in := range s.infs {
		if in.lost.IsZero() {
			continue
		}
		if in.calling == 0 && now.Sub(in.tried) > StaleBlind {
			if in.blindAt(in.tried) {
				s.back = later(s.back, in.tried)
			}
			in.lost, in.failed = time.Time{}, false
			continue
		}
		if in.blindAt(now) {
			blind++
		}
	}
	wentBlind := blind > 0 && s.blind == 0
	s.blind = blind
	since := s.back
	if blind > 0 {
		since = now
	}
	s.mu.Unlock()
	if wentBlind && s.Log.GetSink() != nil {
		s.Log.Info("Caches blind: the progress deadline waits until they see again", "informers", blind)
	}
	return since
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

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
	in := &sighted{name: name}
	s.mu.Lock()
	s.infs = append(s.infs, in)
	s.mu.Unlock()
	if l.ListWithContextFunc != nil {
		l.ListWithContextFunc = reporting(s, in, l.ListWithContextFunc, func(_ context.Context, o runtime.Object) runtime.Object { return o })
	}
	if l.WatchFuncWithContext != nil {
		watchFunc := l.WatchFuncWithContext
		l.WatchFuncWithContext = func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			// The apiserver's timeout runs from the request.
			deadline := time.Time{}
			if o.TimeoutSeconds != nil {
				deadline = s.now().Add(time.Duration(*o.TimeoutSeconds) * time.Second)
			}
			return reporting(s, in, watchFunc, func(ctx context.Context, w watch.Interface) watch.Interface {
				return s.watched(ctx, in, w, deadline)
			})(ctx, o)
		}
	}
}

// reporting is f, reporting each call and its outcome to s for informer
// in; wrap wraps what a successful call returns.
func reporting[T any](s *Sight, in *sighted, f func(context.Context, metav1.ListOptions) (T, error), wrap func(context.Context, T) T) func(context.Context, metav1.ListOptions) (T, error) {
	return func(ctx context.Context, o metav1.ListOptions) (T, error) {
		s.mu.Lock()
		in.calling++
		in.tried = s.now()
		s.mu.Unlock()
		out, err := f(ctx, o)
		s.report(ctx, in, err)
		if err != nil {
			return out, err
		}
		return wrap(ctx, out), nil
	}
}

// report records the outcome of an informer's list or watch. Only an
// apiserver that cannot answer makes an informer blind: a refusal (403,
// 404, 410) is an answer, and a stopping informer's cancelled context is
// nobody's outage.
func (s *Sight) report(ctx context.Context, in *sighted, err error) {
	var blindNow bool
	var blindFor time.Duration
	s.mu.Lock()
	now := s.now()
	in.calling--
	in.tried = now
	switch {
	case err != nil && ctx.Err() != nil:
		in.lost, in.failed = time.Time{}, false
	case err != nil && unreachable(err):
		if in.lost.IsZero() {
			in.lost = now
		}
		blindNow = !in.failed
		in.failed = true
	case !in.lost.IsZero():
		if in.blindAt(now) {
			s.back = later(s.back, now)
			blindFor = now.Sub(in.lost)
		}
		in.lost, in.failed = time.Time{}, false
	}
	s.mu.Unlock()
	if s.Log.GetSink() == nil {
		return
	}
	if blindNow {
		s.Log.Info("Cache blind: no apiserver answers its list or watch", "informer", in.name, "error", err.Error())
	}
	if blindFor > 0 {
		s.Log.Info("Cache sees the cluster again: progress deadlines count from now", "informer", in.name, "blindFor", blindFor.Round(time.Millisecond).String())
	}
}

// watched is w, telling s when the informer stops it before deadline
// (zero: none), the timeout it asked for: its stream ended early (client-go
// stops every watch whose stream ends before it watches again), and it
// sees nothing new until it watches again. A watch the apiserver closed at
// its timeout is the usual end, and so is one it ended with an answer (an
// error event such as 410 Gone: the informer lists again after a
// backoff); neither is an outage however long the next call takes (a busy
// apiserver may queue it).
func (s *Sight) watched(ctx context.Context, in *sighted, w watch.Interface, deadline time.Time) watch.Interface {
	out := &sightedWatch{inner: w, events: make(chan watch.Event), stop: make(chan struct{})}
	out.ended = func() {
		if ctx.Err() != nil || out.answered.Load() {
			return // the informer is stopping, or the apiserver answered
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		now := s.now()
		if !deadline.IsZero() && !now.Before(deadline) {
			return
		}
		if in.lost.IsZero() {
			in.lost = now
			in.tried = now
		}
	}
	go func() {
		defer close(out.events)
		for ev := range w.ResultChan() {
			if ev.Type == watch.Error && !unreachable(apierrors.FromObject(ev.Object)) {
				// Before the informer reads it, so before it stops the
				// watch.
				out.answered.Store(true)
			}
			select {
			case out.events <- ev:
			case <-out.stop:
				return
			}
		}
	}()
	return out
}

// sightedWatch passes a watch's events on, and reports when it is stopped.
type sightedWatch struct {
	inner    watch.Interface
	events   chan watch.Event
	ended    func()
	answered atomic.Bool
	once     sync.Once
	stop     chan struct{}
}

// Stop stops the watch. It records the end at once, before the informer
// can watch again, so the end of one watch never follows the start of the
// next.
func (w *sightedWatch) Stop() {
	w.once.Do(func() {
		close(w.stop)
		w.ended()
	})
	w.inner.Stop()
}

func (w *sightedWatch) ResultChan() <-chan watch.Event { return w.events }

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
