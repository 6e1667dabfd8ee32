package e2e_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/controller"
	"github.com/sluice-dev/sluice/internal/dataplane"
)

// The transition checks judge a release from the moment its revision is
// applied to its end, not only the steady window of each step:
//
//   - every answer is attributed to the copy that gave it (the pod in its
//     X-Pod header: <name>-primary-… is the primary, any other pod of the
//     app the canary), and that copy must have carried weight in the
//     route at some moment of [sent − settle − sampleSlack, sent +
//     sampleSlack], by the route's own history as sampled every 100 ms.
//     The route settle (controller.DefaultRouteSettle, 3 s) is the time
//     Sluice gives the proxy to load a route it reads back, so a request
//     may reach a copy that far behind the route; sampleSlack covers the
//     sampling period and the request's own time in flight.
//   - at every sample, status.canaryWeight is compared with the share the
//     route carries; a difference may last no longer than statusLag (the
//     time from the route's read-back to the status write, and one
//     sample).
const (
	sampleSlack = 500 * time.Millisecond
	statusLag   = 2 * time.Second
)

// routeSample is one sample of the status and the route, read together.
type routeSample struct {
	at     time.Time
	phase  v1alpha1.CanaryPhase
	status int32
	// route is the canary's share of the route, in percent.
	route float64
}

// routeReader reads the canary's share (percent) of a Canary's route.
type routeReader func(ctx context.Context, cl client.Client, ns, name string) (float64, error)

// ingressRouteShare is the canary Service's share of the first route of
// the user's IngressRoute <name> (in-place mode).
func ingressRouteShare(ctx context.Context, cl client.Client, ns, name string) (float64, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(schema.GroupVersionKind{Group: "traefik.io", Version: "v1alpha1", Kind: "IngressRoute"})
	if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
		return 0, err
	}
	routes, _, _ := unstructured.NestedSlice(u.Object, "spec", "routes")
	if len(routes) == 0 {
		return 0, fmt.Errorf("ingressroute %s/%s has no routes", ns, name)
	}
	services, _, _ := unstructured.NestedSlice(routes[0].(map[string]any), "services")
	var total, canary int64
	for _, s := range services {
		e, _ := s.(map[string]any)
		w := int64(1)
		if v, ok := e["weight"].(int64); ok {
			w = v
		}
		total += w
		if e["name"] == name+"-canary" {
			canary += w
		}
	}
	if total == 0 {
		return 0, nil
	}
	return 100 * float64(canary) / float64(total), nil
}

// httpRouteShare is the canary Service's share of the weighted (last)
// rule of the HTTPRoute Sluice generates.
func httpRouteShare(ctx context.Context, cl client.Client, ns, name string) (float64, error) {
	var r gwv1.HTTPRoute
	if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &r); err != nil {
		return 0, err
	}
	if len(r.Spec.Rules) == 0 {
		return 0, nil
	}
	var total, canary int64
	for _, b := range r.Spec.Rules[len(r.Spec.Rules)-1].BackendRefs {
		w := int64(1)
		if b.Weight != nil {
			w = int64(*b.Weight)
		}
		total += w
		if string(b.Name) == name+"-canary" {
			canary += w
		}
	}
	if total == 0 {
		return 0, nil
	}
	return 100 * float64(canary) / float64(total), nil
}

// copyOf says which copy answered: the primary or the canary.
func copyOf(name string, r dataplane.Result) string {
	if strings.HasPrefix(r.Pod, name+"-primary-") {
		return "primary"
	}
	return "canary"
}

// carried says whether the route gave copy weight at some moment of
// [from, to], by the samples (the route is taken as constant between two
// samples).
func (tl *timeline) carried(copy string, from, to time.Time) bool {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	weight := func(s routeSample) float64 {
		if copy == "primary" {
			return 100 - s.route
		}
		return s.route
	}
	for i, s := range tl.samples {
		inForce := !s.at.After(from) && (i+1 == len(tl.samples) || tl.samples[i+1].at.After(from))
		if (inForce || (s.at.After(from) && !s.at.After(to))) && weight(s) > 0 {
			return true
		}
	}
	return false
}

// checkTransitions prints the transition table of a release and fails the
// test on an answer from a copy the route did not carry, or on a status
// that disagreed with the route for longer than statusLag, between from
// and to.
func checkTransitions(t *testing.T, title string, tl *timeline, results []dataplane.Result, name string, from, to time.Time) {
	t.Helper()
	settle := controller.DefaultRouteSettle
	attributed, stray := 0, 0
	var examples []string
	for _, r := range window(results, "plain", from, to) {
		if r.Code != 200 || r.Pod == "" {
			continue
		}
		attributed++
		cp := copyOf(name, r)
		if tl.carried(cp, r.At.Add(-settle-sampleSlack), r.At.Add(sampleSlack)) {
			continue
		}
		stray++
		if len(examples) < 5 {
			p := tl.phaseAt(r.At)
			examples = append(examples, fmt.Sprintf("%s after the release: %s (%s %s) answered while %s step %d weight %d",
				r.At.Sub(from).Round(10*time.Millisecond), r.Pod, cp, r.Version, p.phase, p.step, p.weight))
		}
	}
	if attributed == 0 {
		t.Errorf("no answer could be attributed to a copy (no X-Pod header?)")
	}
	if stray > 0 {
		t.Errorf("%d of %d answers came from a copy the route gave no weight within %s before them (settle %s): %s",
			stray, attributed, settle+sampleSlack, settle, strings.Join(examples, "; "))
	}

	tl.mu.Lock()
	samples, differ := 0, 0
	var longest time.Duration
	var since time.Time
	var worst string
	for _, s := range tl.samples {
		if s.at.Before(from) || s.at.After(to) {
			continue
		}
		samples++
		if int32(math.Round(s.route)) == s.status {
			since = time.Time{}
			continue
		}
		differ++
		if since.IsZero() {
			since = s.at
		}
		if d := s.at.Sub(since); d >= longest {
			longest = d
			worst = fmt.Sprintf("status %d%%, route %.1f%% (%s) from %s after the release", s.status, s.route, s.phase, since.Sub(from).Round(10*time.Millisecond))
		}
	}
	tl.mu.Unlock()
	var b strings.Builder
	row := func(check, bound string, measured any) {
		fmt.Fprintf(&b, "| %-58s | %8s | %10v |\n", check, bound, measured)
	}
	fmt.Fprintf(&b, "\n%s\n", title)
	row("check", "bound", "measured")
	fmt.Fprintf(&b, "|%s|%s|%s|\n", strings.Repeat("-", 60), strings.Repeat("-", 10), strings.Repeat("-", 12))
	row("answers attributed to a copy (X-Pod)", "", attributed)
	row(fmt.Sprintf("  from a copy with no weight in the route %s before", settle+sampleSlack), "0", stray)
	row("status and route samples (every 100 ms)", "", samples)
	row("  where status.canaryWeight differs from the route", "", differ)
	row("  longest such difference", "≤ "+statusLag.String(), longest.Round(10*time.Millisecond))
	t.Log(b.String())
	if samples == 0 {
		t.Errorf("no sample of the status and the route during the release")
	}
	if longest > statusLag {
		t.Errorf("status.canaryWeight disagreed with the route for %s (longer than %s): %s", longest, statusLag, worst)
	}
}
