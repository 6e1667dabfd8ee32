package controller

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
)

// An answer, even a refusal, is sight; only an apiserver that cannot
// answer blinds an informer.
func TestUnreachable(t *testing.T) {
	gr := schema.GroupResource{Resource: "deployments"}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, true},
		{fmt.Errorf("list: %w", apierrors.NewServiceUnavailable("starting")), true},
		{apierrors.NewInternalError(errors.New("etcd")), true},
		{apierrors.NewTooManyRequests("slow down", 1), true},
		{apierrors.NewForbidden(gr, "", errors.New("rbac")), false},
		{apierrors.NewNotFound(gr, ""), false},
		{apierrors.NewResourceExpired("too old resource version"), false},
	} {
		if got := unreachable(tc.err); got != tc.want {
			t.Errorf("unreachable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// sightClock is a Sight on a clock the test moves, with one informer
// whose calls the test makes: watch returns a fake watch, or err.
type sightClock struct {
	now time.Time
	s   *Sight
	lw  *toolscache.ListWatch
	err error
	// block, when set, is waited for inside the watch call (a call in
	// flight), after entered is told.
	block   chan struct{}
	entered chan struct{}
	// fake is the last watch made.
	fake *watch.FakeWatcher
}

func newSightClock() *sightClock {
	c := &sightClock{now: time.Unix(1000, 0)}
	c.s = NewSight(func() time.Time { return c.now })
	c.lw = &toolscache.ListWatch{WatchFuncWithContext: func(context.Context, metav1.ListOptions) (watch.Interface, error) {
		if c.block != nil {
			c.entered <- struct{}{}
			<-c.block
		}
		if c.err != nil {
			return nil, c.err
		}
		c.fake = watch.NewFake()
		return c.fake, nil
	}}
	c.s.observe(c.lw, "Thing")
	return c
}

func (c *sightClock) watch(t *testing.T) watch.Interface {
	t.Helper()
	return c.watchFor(t, 0)
}

// watchFor watches asking the apiserver to close the stream after
// timeout (none when 0).
func (c *sightClock) watchFor(t *testing.T, timeout int64) watch.Interface {
	t.Helper()
	o := metav1.ListOptions{}
	if timeout > 0 {
		o.TimeoutSeconds = &timeout
	}
	w, err := c.lw.WatchFuncWithContext(context.Background(), o)
	if err != nil && c.err == nil {
		t.Fatalf("watch: %v", err)
	}
	return w
}

func (c *sightClock) wantSince(t *testing.T, want time.Time, why string) {
	t.Helper()
	if got := c.s.Since(); !got.Equal(want) {
		t.Fatalf("%s: Since() = %v, want %v", why, got.Sub(time.Unix(1000, 0)), want.Sub(time.Unix(1000, 0)))
	}
}

// A watch made again at once after its stream ended is no outage; one
// that takes longer than WatchGap blinds the informer from the end of the
// stream until the new watch returns, and the caches see from then. A
// stream the apiserver closed at the timeout the informer asked for is
// the usual end, however long the next watch takes.
func TestSightCountsAWatchGap(t *testing.T) {
	c := newSightClock()
	w := c.watchFor(t, 300)
	c.now = c.now.Add(300 * time.Second)
	w.Stop()
	c.now = c.now.Add(10 * time.Second)
	c.wantSince(t, time.Time{}, "10 s after a watch ended at its timeout")

	w = c.watchFor(t, 300)
	c.wantSince(t, time.Time{}, "watching")

	w.Stop()
	c.now = c.now.Add(WatchGap / 2)
	c.wantSince(t, time.Time{}, "within WatchGap of the stream's end")
	w = c.watch(t)
	c.now = c.now.Add(time.Minute)
	c.wantSince(t, time.Time{}, "watching again within WatchGap")

	// The stream ends; the next watch waits in client-go's retries (in
	// flight, no error) for 6 s.
	w.Stop()
	c.block, c.entered = make(chan struct{}), make(chan struct{})
	returned := make(chan watch.Interface)
	go func() { returned <- c.watch(t) }()
	<-c.entered
	c.now = c.now.Add(2 * WatchGap)
	c.wantSince(t, c.now, "a watch in flight past WatchGap")
	c.now = c.now.Add(6 * time.Second)
	c.wantSince(t, c.now, "still in flight")
	back := c.now
	close(c.block)
	w = <-returned
	c.block = nil
	c.now = c.now.Add(time.Second)
	c.wantSince(t, back, "the watch returned")

	// A stream the apiserver ended with an answer (410 Gone: the informer
	// lists again after a backoff) is no outage either.
	w.Stop()
	w = c.watch(t)
	go c.fake.Error(&apierrors.NewResourceExpired("too old resource version").ErrStatus)
	if ev := <-w.ResultChan(); ev.Type != watch.Error {
		t.Fatalf("event %v, want the error", ev.Type)
	}
	w.Stop()
	c.now = c.now.Add(5 * time.Second)
	c.wantSince(t, back, "5 s after a stream ended with 410 Gone")
	w = c.watch(t)

	// An answer (a 404) ends the gap too: the apiserver is there.
	w.Stop()
	c.block, c.err = nil, apierrors.NewNotFound(schema.GroupResource{Resource: "things"}, "")
	c.now = c.now.Add(5 * time.Second)
	c.wantSince(t, c.now, "no watch since the stream ended")
	c.watch(t)
	c.wantSince(t, c.now, "answered 404")
	answered := c.now
	c.now = c.now.Add(time.Second)
	c.wantSince(t, answered, "after the answer")
}

// An attempt that finds no apiserver blinds at once, until one succeeds.
func TestSightBlindOnUnreachable(t *testing.T) {
	c := newSightClock()
	c.err = &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	c.watch(t)
	c.wantSince(t, c.now, "refused")
	c.now = c.now.Add(10 * time.Second)
	c.wantSince(t, c.now, "still refused")
	c.err = nil
	c.watch(t)
	back := c.now
	c.now = c.now.Add(time.Second)
	c.wantSince(t, back, "watching again")
}

// An informer that stopped while blind (its cache ended) blinds nobody
// once it has not tried for StaleBlind; one that is stopped on purpose
// (its context cancelled) was never blind.
func TestSightForgetsAStoppedInformer(t *testing.T) {
	c := newSightClock()
	c.err = &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	c.watch(t)
	failed := c.now
	c.wantSince(t, failed, "refused")
	c.now = c.now.Add(StaleBlind + time.Second)
	c.wantSince(t, failed, "no attempt for StaleBlind")

	c = newSightClock()
	ctx, cancel := context.WithCancel(context.Background())
	w, err := c.lw.WatchFuncWithContext(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	w.Stop()
	c.now = c.now.Add(time.Minute)
	c.wantSince(t, time.Time{}, "a watch stopped with its informer")
}
