// Package istio routes a Canary's traffic with Istio's VirtualService and
// DestinationRule (networking.istio.io/v1, served by Istio 1.22 and
// later), in one of two shapes:
//
//   - Owned (spec.router.istio without virtualService): Sluice owns a
//     VirtualService named after the Canary, for spec.router.istio.hosts
//     (default the apex Service) through its gateways (default the mesh's
//     sidecars). Its route sends to the <apex>-primary and <apex>-canary
//     Services by weight, as hosts of their own, so no DestinationRule is
//     needed; with spec.router.istio.trafficPolicy Sluice also owns one
//     per copy's Service, <canary>-primary and <canary>-canary, carrying
//     it. They are written with server-side apply.
//   - In place (spec.router.istio.virtualService and destinationRule):
//     the user's VirtualService and DestinationRule. In each named HTTP
//     route, whose destinations are the DestinationRule's host with
//     subsets stable and canary, Sluice changes the two weights only; the
//     DestinationRule's stable and canary subsets get the labels of the
//     -primary and -canary Services' selectors (added when missing),
//     its other subsets and fields untouched. Each object is read,
//     changed and written back with the resourceVersion read; a conflict
//     reads it again and retries. Everything else in both objects stays
//     as it was, byte for byte.
//
// In both shapes a setHeaderRoute step puts a route before the split one
// (in place: a copy of the user's route, its retries, timeout, corsPolicy
// and the rest kept, with the step's headers added to each match and the
// canary destination alone), and a setMirror step sets the split route's
// mirror and mirrorPercentage. Istio reports nothing back about what its
// proxies load: what is written is what is read back.
//
// Objects are handled as unstructured: the CRDs are Istio's own, and
// istio.io/client-go would bring a second copy of every Istio type for a
// few fields.
package istio

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/engine"
	"github.com/sluice-dev/sluice/internal/router"
)

// Istio's kinds Sluice writes, in Group at Version.
const (
	Group           = "networking.istio.io"
	Version         = "v1"
	VirtualService  = "VirtualService"
	DestinationRule = "DestinationRule"
)

// The DestinationRule's subsets Sluice keeps in place.
const (
	StableSubset = "stable"
	CanarySubset = "canary"
)

// Names of the routes in the VirtualService Sluice owns.
const (
	SplitRoute  = "split"
	HeaderRoute = "canary-headers"
	// StickyRoute sends the requests with a sticky canary's cookie to
	// the canary (spec.strategy.sessionAffinity, owned shape).
	StickyRoute = "canary-sticky"
)

// HeaderRouteSuffix names, in place, the header route Sluice puts before
// each route it splits: <route>-sluice-canary.
const HeaderRouteSuffix = "-sluice-canary"

// RegexMaxProgramSize is the largest RE2 program Istio's proxies accept
// for a header regex: Istio's bootstrap raises Envoy's runtime key
// re2.max_program_size.error_level to 32768.
const RegexMaxProgramSize = 32768

const maxConflictRetries = 5

// GVK of an Istio networking kind.
func GVK(kind string) schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: Group, Version: Version, Kind: kind}
}

// Router is the Istio router.
type Router struct {
	// Client reads Sluice's objects from the manager's cache and writes.
	Client client.Client
	// Reader reads past the cache: a re-read after a conflict, the host
	// Service of the user's DestinationRule.
	Reader client.Reader
	// User reads the user's VirtualService and DestinationRule.
	User   client.Reader
	Scheme *runtime.Scheme
	// Labels go on the VirtualService Sluice owns.
	Labels map[string]string
	// Apex is the Canary's apex Service.
	Apex string
}

var _ router.Router = (*Router)(nil)

func spec(c *v1alpha1.Canary) (*v1alpha1.IstioRouter, error) {
	if is := c.Spec.Router.Istio; is != nil {
		return is, nil
	}
	return nil, fmt.Errorf("canary %s/%s: spec.router.istio is not set", c.Namespace, c.Name)
}

// inPlace says whether the Canary edits the user's objects.
func inPlace(is *v1alpha1.IstioRouter) bool {
	return is.VirtualService != nil && is.DestinationRule != nil
}

// OwnedName is the name of the VirtualService Sluice owns.
func OwnedName(c *v1alpha1.Canary) string { return c.Name }

func (r *Router) get(ctx context.Context, rd client.Reader, kind, ns, name string) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(GVK(kind))
	if err := rd.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("read %s %s/%s: %w", strings.ToLower(kind), ns, name, err)
	}
	return u, nil
}

// HeaderRegexProblem reports a header regex Istio's proxies would refuse.
func HeaderRegexProblem(c *v1alpha1.Canary) (reason, message string) {
	return router.HeaderRegexProblem(c, router.ProgramSizeAtMost(RegexMaxProgramSize, "re2.max_program_size.error_level in your proxies' bootstrap runtime"))
}

// Apply makes Istio carry the split.
func (r *Router) Apply(ctx context.Context, c *v1alpha1.Canary, s router.Split) error {
	is, err := spec(c)
	if err != nil {
		return err
	}
	if inPlace(is) {
		return r.applyInPlace(ctx, c, is, s)
	}
	return r.applyOwned(ctx, c, is, s)
}

// Observe reads back what the VirtualService carries.
func (r *Router) Observe(ctx context.Context, c *v1alpha1.Canary, s router.Split) (engine.Route, error) {
	is, err := spec(c)
	if err != nil {
		return engine.Route{}, err
	}
	if inPlace(is) {
		return r.observeInPlace(ctx, c, is, s)
	}
	return r.observeOwned(ctx, c, s)
}

// Release hands the routing back when the Canary is deleted: everything
// goes to backend (the apex Service, which then selects the copy that
// serves). The VirtualService Sluice owns is kept, no longer owned by the
// Canary, so that its hosts keep being served; in place, the routes get
// weights 100 and 0 without header route or mirror, and both subsets
// select the apex Service's pods.
func (r *Router) Release(ctx context.Context, c *v1alpha1.Canary, backend router.Backend) error {
	is, err := spec(c)
	if err != nil {
		return err
	}
	if inPlace(is) {
		return r.releaseInPlace(ctx, c, is, backend)
	}
	return r.releaseOwned(ctx, c, is, backend)
}

// Check reports a header regex Istio's proxies would refuse, a
// VirtualService of someone else's where Sluice's would go, and, in place,
// user's objects Sluice cannot split as they are.
func (r *Router) Check(ctx context.Context, c *v1alpha1.Canary) (string, string, error) {
	is, err := spec(c)
	if err != nil {
		return "", "", err
	}
	if reason, msg := HeaderRegexProblem(c); msg != "" {
		return reason, msg, nil
	}
	if inPlace(is) {
		return r.checkInPlace(ctx, c, is)
	}
	vs, err := r.foreign(ctx, c, VirtualService, OwnedName(c))
	if err != nil {
		return "", "", err
	}
	if vs {
		return v1alpha1.ReasonVirtualServiceNotOwned, fmt.Sprintf("virtualservice %s/%s exists and is not this Canary's: Sluice would own one by that name; rename or delete it, or set spec.router.istio.virtualService and destinationRule to have Sluice edit yours in place",
			c.Namespace, OwnedName(c)), nil
	}
	if is.TrafficPolicy == nil {
		return "", "", nil
	}
	primary, canary := RuleNames(c)
	for _, name := range []string{primary, canary} {
		dr, err := r.foreign(ctx, c, DestinationRule, name)
		if err != nil {
			return "", "", err
		}
		if dr {
			return v1alpha1.ReasonDestinationRuleNotOwned, fmt.Sprintf("destinationrule %s/%s exists and is not this Canary's: with spec.router.istio.trafficPolicy Sluice owns one by that name; rename or delete it, or remove trafficPolicy",
				c.Namespace, name), nil
		}
	}
	return "", "", nil
}

// foreign says whether an object of kind named name exists and is not
// the Canary's.
func (r *Router) foreign(ctx context.Context, c *v1alpha1.Canary, kind, name string) (bool, error) {
	u, err := r.get(ctx, r.Client, kind, c.Namespace, name)
	if err == nil && u == nil {
		u, err = r.uncached(ctx, kind, c.Namespace, name)
	}
	return u != nil && !router.OwnedBy(u, c), err
}

// headerMatch is the Istio headers map of a header route (its cookie a
// regex on the Cookie header: v1alpha1.HeaderRoute.Headers): names lower
// case (HTTP/2 sends them so, and Envoy matches them so).
func headerMatch(hr *v1alpha1.HeaderRoute) map[string]any {
	out := map[string]any{}
	for _, m := range hr.Headers() {
		switch {
		case m.Exact != nil:
			out[strings.ToLower(m.Name)] = map[string]any{"exact": *m.Exact}
		case m.Regex != nil:
			out[strings.ToLower(m.Name)] = map[string]any{"regex": *m.Regex}
		}
	}
	return out
}

// headerKey is engine.HeaderRouteKey of a headers map, in the Canary's
// own spelling: Sluice writes header names lower case, so a header route
// of the Canary's steps (or the split's) that is the same but for the
// names' case gives the key.
func headerKey(headers map[string]any, c *v1alpha1.Canary, s router.Split) string {
	hr := &v1alpha1.HeaderRoute{}
	for _, name := range slices.Sorted(maps.Keys(headers)) {
		m, _ := headers[name].(map[string]any)
		hm := v1alpha1.HeaderMatch{Name: name}
		if v, ok := m["exact"].(string); ok {
			hm.Exact = &v
		} else if v, ok := m["regex"].(string); ok {
			hm.Regex = &v
		} else {
			continue
		}
		hr.Match = append(hr.Match, hm)
	}
	if len(hr.Match) == 0 {
		return ""
	}
	got := engine.HeaderRouteKey(hr)
	candidates := []*v1alpha1.HeaderRoute{s.HeaderRoute}
	for _, st := range c.Spec.Strategy.Steps {
		candidates = append(candidates, st.SetHeaderRoute)
	}
	for _, want := range candidates {
		if want != nil && got == engine.HeaderRouteKey(lowerNames(want)) {
			return engine.HeaderRouteKey(want)
		}
	}
	return got
}

// lowerNames is a header route as Sluice writes it: its headers (the
// cookie among them), names lower case.
func lowerNames(hr *v1alpha1.HeaderRoute) *v1alpha1.HeaderRoute {
	out := &v1alpha1.HeaderRoute{Match: hr.Headers()}
	for i := range out.Match {
		out.Match[i].Name = strings.ToLower(out.Match[i].Name)
	}
	return out
}

// number reads a JSON number of an unstructured object.
func number(v any) (float64, bool) {
	switch n := v.(type) {
	case int64:
		return float64(n), true
	case float64:
		return n, true
	case int32:
		return float64(n), true
	case int:
		return float64(n), true
	}
	return 0, false
}

// protoDuration writes a duration as protobuf's JSON does ("1.5s"), the
// only form istiod reads.
func protoDuration(d metav1.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
}

// mirrorPercent is the percent a route with a mirror copies to it: its
// mirrorPercentage, 100 without one (Istio's default).
func mirrorPercent(route map[string]any) int32 {
	p, ok := route["mirrorPercentage"].(map[string]any)
	if !ok {
		return 100
	}
	v, _ := number(p["value"])
	return int32(math.Round(v))
}

// equalJSON says whether two values encode to the same JSON.
func equalJSON(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}
