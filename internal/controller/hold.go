package controller

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// holdSlack is how much longer than the route settle a status may be held
// (engine.Output.Hold): the time for a router to read its write back.
// Past it, the status is written as it stands, so a route that does not
// come back is reported.
const holdSlack = 5 * time.Second

// heldStatuses keeps, per Canary, a status decided but not written: a
// weight step in flight. It is used only while the Canary is at the
// resourceVersion it was decided from; any other write to the Canary
// drops it and the next decision starts from what is written.
type heldStatuses struct {
	mu sync.Mutex
	m  map[types.NamespacedName]heldStatus
}

type heldStatus struct {
	status          v1alpha1.CanaryStatus
	resourceVersion string
	since           time.Time // when the first status still unwritten was held
}

// get returns the status held for the Canary at resourceVersion rv.
func (h *heldStatuses) get(key types.NamespacedName, rv string) (v1alpha1.CanaryStatus, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.m[key]
	if !ok || e.resourceVersion != rv {
		delete(h.m, key)
		return v1alpha1.CanaryStatus{}, false
	}
	return *e.status.DeepCopy(), true
}

// keep holds st for the Canary at rv unless the unwritten statuses have
// been held for limit already; it returns how long it may stay held.
func (h *heldStatuses) keep(key types.NamespacedName, rv string, st v1alpha1.CanaryStatus, now time.Time, limit time.Duration) (time.Duration, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	since := now
	if e, ok := h.m[key]; ok && e.resourceVersion == rv {
		since = e.since
	}
	left := limit - now.Sub(since)
	if left <= 0 {
		delete(h.m, key)
		return 0, false
	}
	if h.m == nil {
		h.m = map[types.NamespacedName]heldStatus{}
	}
	h.m[key] = heldStatus{status: *st.DeepCopy(), resourceVersion: rv, since: since}
	return left, true
}

func (h *heldStatuses) forget(key types.NamespacedName) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.m, key)
}
