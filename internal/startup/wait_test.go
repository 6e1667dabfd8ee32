package startup

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	canary   = schema.GroupVersionKind{Group: "sluice.dev", Version: "v1alpha1", Kind: "Canary"}
	template = schema.GroupVersionKind{Group: "sluice.dev", Version: "v1alpha1", Kind: "MetricTemplate"}
	widget   = schema.GroupVersionKind{Group: "startup.test.sluice.dev", Version: "v1", Kind: "Widget"}
)

// fakeAPI serves discovery documents that change with the number of
// lookups made so far.
type fakeAPI struct {
	lookups int
	// serve returns what the apiserver serves in gv at the n-th lookup
	// (from 0): the kinds, or an error.
	serve func(n int, gv schema.GroupVersion) ([]string, error)
}

func (f *fakeAPI) lookup(_ context.Context, gv schema.GroupVersion) (*metav1.APIResourceList, error) {
	n := f.lookups
	f.lookups++
	kinds, err := f.serve(n, gv)
	if err != nil {
		return nil, err
	}
	list := &metav1.APIResourceList{GroupVersion: gv.String()}
	for _, k := range kinds {
		name := strings.ToLower(k) + "s"
		list.APIResources = append(list.APIResources,
			metav1.APIResource{Name: name, Kind: k, Namespaced: true},
			metav1.APIResource{Name: name + "/status", Kind: k, Namespaced: true})
	}
	return list, nil
}

func notFound(gv schema.GroupVersion) error {
	return apierrors.NewNotFound(schema.GroupResource{Group: gv.Group}, gv.Version)
}

// fakeClock is a clock that moves only when the wait sleeps, by the delay
// asked for, which it records.
type fakeClock struct {
	t      time.Time
	delays []time.Duration
}

func (c *fakeClock) now() time.Time { return c.t }

func (c *fakeClock) after(d time.Duration) <-chan time.Time {
	c.delays = append(c.delays, d)
	c.t = c.t.Add(d)
	ch := make(chan time.Time, 1)
	ch <- c.t
	return ch
}

// lineLog is a logger that appends each line's message and values to
// lines.
func lineLog(lines *[]string) logr.Logger {
	noLevel := ""
	return funcr.New(func(_, args string) { *lines = append(*lines, args) }, funcr.Options{LogInfoLevel: &noLevel})
}

func newWaiter(api *fakeAPI, clock *fakeClock, lines *[]string, kinds ...schema.GroupVersionKind) *Waiter {
	return &Waiter{
		Kinds:    kinds,
		Lookup:   api.lookup,
		Log:      lineLog(lines),
		MinDelay: 250 * time.Millisecond,
		MaxDelay: 2 * time.Second,
		LogEvery: 3 * time.Second,
		now:      clock.now,
		after:    clock.after,
	}
}

func TestWaitServedAtOnce(t *testing.T) {
	api := &fakeAPI{serve: func(int, schema.GroupVersion) ([]string, error) { return []string{"Canary", "MetricTemplate"}, nil }}
	clock := &fakeClock{t: time.Unix(0, 0)}
	var lines []string
	w := newWaiter(api, clock, &lines, canary, template)
	if err := w.Check(nil); err == nil || err.Error() != "starting" {
		t.Fatalf("readiness before the wait: %v, want starting", err)
	}
	if err := w.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if api.lookups != 1 {
		t.Errorf("%d lookups of one group version, want 1", api.lookups)
	}
	if len(clock.delays) != 0 || len(lines) != 0 {
		t.Errorf("served kinds: slept %v, logged %q; want neither", clock.delays, lines)
	}
	if err := w.Check(nil); err == nil {
		t.Errorf("ready before MarkReady")
	}
	w.MarkReady()
	if err := w.Check(nil); err != nil {
		t.Errorf("not ready after MarkReady: %v", err)
	}
}

// A kind that comes late: the wait backs off to MaxDelay, says what it
// waits for once and then every LogEvery, and readiness names the kind.
func TestWaitUntilServed(t *testing.T) {
	const servedAt = 8 // the lookup that first finds the Widget
	var w *Waiter
	var checks []string
	api := &fakeAPI{serve: func(n int, gv schema.GroupVersion) ([]string, error) {
		if n > 0 {
			checks = append(checks, fmt.Sprint(w.Check(nil)))
		}
		switch {
		case gv == canary.GroupVersion():
			return []string{"Canary"}, nil
		case n/2 < servedAt: // two group versions per round
			return nil, notFound(gv)
		}
		return []string{"Widget"}, nil
	}}
	clock := &fakeClock{t: time.Unix(0, 0)}
	var lines []string
	w = newWaiter(api, clock, &lines, canary, widget)
	if err := w.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	ms := time.Millisecond
	wantDelays := []time.Duration{250 * ms, 500 * ms, 1000 * ms, 2000 * ms, 2000 * ms, 2000 * ms, 2000 * ms, 2000 * ms}
	if fmt.Sprint(clock.delays) != fmt.Sprint(wantDelays) {
		t.Errorf("delays %v, want %v", clock.delays, wantDelays)
	}
	// Misses at 0, 0.25, 0.75, 1.75, 3.75, 5.75, 7.75 and 9.75 s: logged
	// at 0, 3.75 and 7.75; served at 11.75 s.
	want := []string{
		`"msg"="Waiting for the apiserver to serve these kinds (are their CRDs installed?)" "missing"=["Widget.v1.startup.test.sluice.dev"]`,
		`"msg"="Still waiting for the apiserver to serve these kinds" "missing"=["Widget.v1.startup.test.sluice.dev"] "waited"="4s"`,
		`"msg"="Still waiting for the apiserver to serve these kinds" "missing"=["Widget.v1.startup.test.sluice.dev"] "waited"="8s"`,
		`"msg"="Kinds served" "waited"="11.75s"`,
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("logged:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	for _, c := range checks[1:] { // the first was before any lookup
		if c != "waiting for the apiserver to serve Widget.v1.startup.test.sluice.dev" {
			t.Errorf("readiness while waiting: %s", c)
		}
	}
	if err := w.Check(nil); err == nil || err.Error() != "starting" {
		t.Errorf("readiness after the wait, before MarkReady: %v, want starting", err)
	}
}

// A kind missing from a served group version is missing; a failed lookup
// is a miss, logged with its error, never returned.
func TestWaitMissingKindAndFailedLookup(t *testing.T) {
	api := &fakeAPI{serve: func(n int, gv schema.GroupVersion) ([]string, error) {
		switch n {
		case 0:
			return []string{"Canary"}, nil // no MetricTemplate yet
		case 1:
			return nil, errors.New("connection refused")
		}
		return []string{"Canary", "MetricTemplate"}, nil
	}}
	clock := &fakeClock{t: time.Unix(0, 0)}
	var lines []string
	w := newWaiter(api, clock, &lines, canary, template)
	w.LogEvery = 100 * time.Millisecond
	if err := w.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`"msg"="Waiting for the apiserver to serve these kinds (are their CRDs installed?)" "missing"=["MetricTemplate.v1alpha1.sluice.dev"]`,
		`"msg"="Still waiting for the apiserver to serve these kinds" "missing"=["Canary.v1alpha1.sluice.dev" "MetricTemplate.v1alpha1.sluice.dev"] "waited"="0s" "lastError"="connection refused"`,
		`"msg"="Kinds served" "waited"="750ms"`,
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("logged:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

// A context that ends while the wait sleeps ends the wait with its error;
// readiness still fails.
func TestWaitCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	api := &fakeAPI{serve: func(_ int, gv schema.GroupVersion) ([]string, error) { return nil, notFound(gv) }}
	var lines []string
	w := &Waiter{
		Kinds:  []schema.GroupVersionKind{widget},
		Lookup: api.lookup,
		Log:    lineLog(&lines),
		after: func(time.Duration) <-chan time.Time {
			cancel()
			return nil // never fires
		},
	}
	if err := w.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait: %v, want context.Canceled", err)
	}
	if api.lookups != 1 || len(lines) != 1 {
		t.Errorf("%d lookups, logged %q; want 1 lookup and the first line", api.lookups, lines)
	}
	if err := w.Check(nil); err == nil {
		t.Errorf("ready after a cancelled wait")
	}
	if err := w.Wait(ctx); !errors.Is(err, context.Canceled) || api.lookups != 1 {
		t.Errorf("Wait on an ended context: %v after %d lookups, want context.Canceled and no lookup", err, api.lookups)
	}
}

func TestWaitNeedsKindsAndLookup(t *testing.T) {
	if err := (&Waiter{}).Wait(context.Background()); err == nil {
		t.Error("a Waiter without kinds waited")
	}
}
