// Package statusbatch decides when a Canary's status is written.
//
// A weight step changes the status several times while its route is in
// flight: the weight asked for, the router carrying it, the step done.
// Writing each would cost three status writes per step at 10,000 Canaries;
// the statuses of a step that only waits for its route are kept in memory
// instead (held) and the next decision starts from them, so a step costs
// its route write and two status writes (the router carrying the weight,
// the step done). A held status is lost with the controller, which only
// repeats the wait: it records nothing the cluster does not show again.
// Progress told only in words (a Deployment rolling: "canary 0/1
// available") is held the same way, so a release writes its status when
// something other than a message changes, or when the words have stood
// for the hold's limit.
//
// The package also remembers which resourceVersion each of our own status
// writes replaced, so that a reconcile of a cached Canary that predates
// the write (the informer has not caught up) is recognised and skipped.
//
// It has no client: the controller writes, and tells the Batcher so.
package statusbatch

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/engine"
)

// Slack is how much longer than the route settle a status may be held:
// the time for a router to read its write back. Past it the status is
// written as it stands, so a route that does not come back is reported.
const Slack = 5 * time.Second

// Batcher keeps, per Canary, the status held back and the resourceVersion
// our last status write replaced. It is safe for concurrent use.
type Batcher struct {
	// Limit is how long the statuses of one step may stay unwritten
	// (the route settle plus Slack).
	Limit time.Duration

	mu sync.Mutex
	m  map[types.NamespacedName]*entry
}

type entry struct {
	// superseded is the resourceVersion our last status write replaced
	// ("" when the cache has caught up with it).
	superseded string
	// held is the status decided but not written, for the Canary at
	// heldRV; since is when the first status still unwritten was held.
	held   *v1alpha1.CanaryStatus
	heldRV string
	since  time.Time
}

// Holdable says whether next may stay unwritten, given written (the status
// on the apiserver) and the decision out, which records no Event. Two
// kinds of change are held:
//
//   - a weight step waiting for its router to carry the weight
//     (engine.Output.RouteInFlight), changing none of what other parts act
//     on (the phase stays Progressing, the revisions, check rounds and
//     handled request are those written: check rounds are submitted and
//     requests handled from the status, and holding a change to them could
//     repeat either);
//   - progress told in words only: next differs from written in
//     status.message and the conditions' messages alone ("canary 0/1
//     available", "1 old replicas still running"), as a Deployment rolls.
//     Each such change would be a write; the words the Canary settles on
//     are written once they stand for the hold's limit, or with the next
//     change that must be written.
func Holdable(written, next v1alpha1.CanaryStatus, out engine.Output) bool {
	if len(out.Events) > 0 || equality.Semantic.DeepEqual(written, next) {
		return false
	}
	if out.RouteInFlight &&
		written.Phase == v1alpha1.PhaseProgressing && next.Phase == v1alpha1.PhaseProgressing &&
		next.CanaryRevision == written.CanaryRevision && next.StableRevision == written.StableRevision &&
		next.CheckRound == written.CheckRound && next.FailedChecks == written.FailedChecks &&
		next.LastHandledRequest == written.LastHandledRequest {
		return true
	}
	return onlyWords(written, next)
}

// onlyWords says whether next and written differ in messages alone: the
// status's and its conditions' (each condition of the same type, status
// and reason).
func onlyWords(written, next v1alpha1.CanaryStatus) bool {
	if len(written.Conditions) != len(next.Conditions) {
		return false
	}
	n := next
	n.Message = written.Message
	n.Conditions = make([]metav1.Condition, len(next.Conditions))
	for i, c := range next.Conditions {
		if w := written.Conditions[i]; w.Type == c.Type {
			c.Message = w.Message
		}
		n.Conditions[i] = c
	}
	return equality.Semantic.DeepEqual(written, n)
}

// Stale says whether a Canary read at resourceVersion rv predates our own
// last status write to it.
func (b *Batcher) Stale(key types.NamespacedName, rv string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.m[key]
	if e == nil || e.superseded == "" {
		return false
	}
	if e.superseded != rv {
		e.superseded = "" // the cache has moved past our write
		b.gc(key, e)
		return false
	}
	return true
}

// Start returns the status a decision starts from: the one held for the
// Canary at rv, else written. A held status of another resourceVersion
// (someone else wrote the Canary) is dropped.
func (b *Batcher) Start(key types.NamespacedName, rv string, written v1alpha1.CanaryStatus) v1alpha1.CanaryStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.m[key]
	if e == nil || e.held == nil {
		return written
	}
	if e.heldRV != rv {
		e.held = nil
		b.gc(key, e)
		return written
	}
	return *e.held.DeepCopy()
}

// Hold keeps next unwritten when Holdable allows it, the decision was
// applied without error, and the statuses of this step have not been held
// for Limit already. It returns how long next may stay held; when it
// returns false the caller writes next (and anything held is dropped).
func (b *Batcher) Hold(key types.NamespacedName, rv string, written, next v1alpha1.CanaryStatus, out engine.Output, applied bool, now time.Time) (time.Duration, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.m[key]
	hold := applied && Holdable(written, next, out)
	since := now
	if e != nil && e.held != nil && e.heldRV == rv {
		since = e.since
	}
	left := b.Limit - now.Sub(since)
	if !hold || left <= 0 {
		if e != nil {
			e.held = nil
			b.gc(key, e)
		}
		return 0, false
	}
	if e == nil {
		if b.m == nil {
			b.m = map[types.NamespacedName]*entry{}
		}
		e = &entry{}
		b.m[key] = e
	}
	e.held, e.heldRV, e.since = next.DeepCopy(), rv, since
	return left, true
}

// Wrote records our status write that moved the Canary from resourceVersion
// from to to.
func (b *Batcher) Wrote(key types.NamespacedName, from, to string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.m[key]
	if e == nil {
		if from == to {
			return
		}
		if b.m == nil {
			b.m = map[types.NamespacedName]*entry{}
		}
		e = &entry{}
		b.m[key] = e
	}
	e.held = nil
	e.superseded = ""
	if from != to {
		e.superseded = from
	}
	b.gc(key, e)
}

// Forget drops what is kept for a Canary (it is gone).
func (b *Batcher) Forget(key types.NamespacedName) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.m, key)
}

// Len is the number of Canaries something is kept for.
func (b *Batcher) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.m)
}

// gc drops an entry that keeps nothing any more; b.mu is held.
func (b *Batcher) gc(key types.NamespacedName, e *entry) {
	if e.held == nil && e.superseded == "" {
		delete(b.m, key)
	}
}
