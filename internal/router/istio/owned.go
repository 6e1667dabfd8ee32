package istio

import (
	"context"
	"fmt"
	"math"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/engine"
	"github.com/sluice-dev/sluice/internal/router"
)

// destination is an Istio destination for a backend: a Service by name
// (its namespace's FQDN when it is not the Canary's) and port.
func destination(b router.Backend, ns string) map[string]any {
	host := b.Name
	if b.Namespace != "" && b.Namespace != ns {
		host = b.Name + "." + b.Namespace + ".svc.cluster.local"
	}
	d := map[string]any{"host": host}
	if b.Port != nil {
		d["port"] = map[string]any{"number": int64(*b.Port)}
	}
	return d
}

// weights are the Istio weights of a split's destinations, primary phase
// first: percents when each phase has one backend (Istio's convention),
// else the basis points of router.PhaseWeights (Istio's weights are
// relative).
func weights(s router.Split) []int64 {
	bp := append(router.PhaseWeights(100-s.CanaryWeight, s.Primary), router.PhaseWeights(s.CanaryWeight, s.Canary)...)
	out := make([]int64, len(bp))
	whole := true
	for i, w := range bp {
		out[i] = int64(w)
		whole = whole && w%100 == 0
	}
	if whole {
		for i := range out {
			out[i] /= 100
		}
	}
	return out
}

// ownedSpec is the spec of the VirtualService Sluice owns for a split.
func ownedSpec(c *v1alpha1.Canary, is *v1alpha1.IstioRouter, apex string, s router.Split) map[string]any {
	hosts := []any{}
	for _, h := range is.Hosts {
		hosts = append(hosts, h)
	}
	if len(hosts) == 0 {
		hosts = []any{apex}
	}
	spec := map[string]any{"hosts": hosts}
	if len(is.Gateways) > 0 {
		gws := []any{}
		for _, g := range is.Gateways {
			gws = append(gws, g)
		}
		spec["gateways"] = gws
	}
	policy := func(route map[string]any) map[string]any {
		if is.Timeout != nil {
			route["timeout"] = protoDuration(*is.Timeout)
		}
		if rt := is.Retries; rt != nil {
			p := map[string]any{"attempts": int64(rt.Attempts)}
			if rt.PerTryTimeout != nil {
				p["perTryTimeout"] = protoDuration(*rt.PerTryTimeout)
			}
			if rt.RetryOn != "" {
				p["retryOn"] = rt.RetryOn
			}
			route["retries"] = p
		}
		return route
	}
	var dests []any
	ws := weights(s)
	sticky := s.StickyOn()
	for i, b := range append(append([]router.Backend{}, s.Primary...), s.Canary...) {
		d := map[string]any{"destination": destination(b, c.Namespace), "weight": ws[i]}
		if sticky != nil && i >= len(s.Primary) {
			// The canary's answers set the sticky cookie.
			d["headers"] = map[string]any{"response": map[string]any{"add": map[string]any{"Set-Cookie": sticky.SetCookie()}}}
		}
		dests = append(dests, d)
	}
	split := policy(map[string]any{"name": SplitRoute, "route": dests})
	if s.MirrorPercent > 0 && len(s.Canary) > 0 {
		split["mirror"] = destination(s.Canary[0], c.Namespace)
		split["mirrorPercentage"] = map[string]any{"value": float64(s.MirrorPercent)}
	}
	var http []any
	canaryOnly := func(name string, hr *v1alpha1.HeaderRoute) {
		var canary []any
		for i, b := range s.Canary {
			canary = append(canary, map[string]any{"destination": destination(b, c.Namespace), "weight": ws[len(s.Primary)+i]})
		}
		if len(canary) == 1 {
			delete(canary[0].(map[string]any), "weight")
		}
		http = append(http, policy(map[string]any{
			"name":  name,
			"match": []any{map[string]any{"headers": headerMatch(hr)}},
			"route": canary,
		}))
	}
	if s.HeaderRoute != nil && len(s.Canary) > 0 {
		canaryOnly(HeaderRoute, s.HeaderRoute)
	}
	if sticky != nil && len(s.Canary) > 0 {
		re := sticky.CookieRegex()
		canaryOnly(StickyRoute, &v1alpha1.HeaderRoute{Match: []v1alpha1.HeaderMatch{{Name: "Cookie", Regex: &re}}})
	}
	spec["http"] = append(http, split)
	return spec
}

// RuleNames are the names of the DestinationRules Sluice owns, with
// spec.router.istio.trafficPolicy, for the primary and the canary
// Services.
func RuleNames(c *v1alpha1.Canary) (primary, canary string) {
	return c.Name + "-primary", c.Name + "-canary"
}

// applyRules keeps the DestinationRules of the copies: one per copy's
// Service with the Canary's trafficPolicy, or none without one.
func (r *Router) applyRules(ctx context.Context, c *v1alpha1.Canary, is *v1alpha1.IstioRouter) error {
	var policy map[string]any
	if is.TrafficPolicy != nil && len(is.TrafficPolicy.Raw) > 0 {
		if err := utiljson.Unmarshal(is.TrafficPolicy.Raw, &policy); err != nil {
			return fmt.Errorf("canary %s/%s: spec.router.istio.trafficPolicy: %w", c.Namespace, c.Name, err)
		}
	}
	primary, canary := router.Backends(c, r.Apex)
	pName, cName := RuleNames(c)
	for _, x := range []struct {
		name string
		b    router.Backend
	}{{pName, primary[0]}, {cName, canary[0]}} {
		have, err := r.get(ctx, r.Client, DestinationRule, c.Namespace, x.name)
		if err == nil && have == nil && policy != nil {
			have, err = r.uncached(ctx, DestinationRule, c.Namespace, x.name)
		}
		if err != nil {
			return err
		}
		if have != nil && !router.OwnedBy(have, c) {
			return fmt.Errorf("destinationrule %s/%s is not this Canary's: not overwritten", c.Namespace, x.name)
		}
		if policy == nil {
			if have != nil {
				if err := r.Client.Delete(ctx, have); client.IgnoreNotFound(err) != nil {
					return fmt.Errorf("delete destinationrule %s/%s: %w", c.Namespace, x.name, err)
				}
			}
			continue
		}
		spec := map[string]any{"host": destination(x.b, c.Namespace)["host"], "trafficPolicy": policy}
		if err := router.ApplyOwned(ctx, r.Client, r.Scheme, c, have, router.Owned{GVK: GVK(DestinationRule), Name: x.name, Labels: r.Labels, Spec: spec}); err != nil {
			return err
		}
	}
	return nil
}

func (r *Router) applyOwned(ctx context.Context, c *v1alpha1.Canary, is *v1alpha1.IstioRouter, s router.Split) error {
	// The copies' policies first: the route sends to them.
	if err := r.applyRules(ctx, c, is); err != nil {
		return err
	}
	have, err := r.get(ctx, r.Client, VirtualService, c.Namespace, OwnedName(c))
	if err == nil && have == nil {
		have, err = r.uncached(ctx, VirtualService, c.Namespace, OwnedName(c))
	}
	if err != nil {
		return err
	}
	if have != nil && !router.OwnedBy(have, c) {
		return fmt.Errorf("virtualservice %s/%s is not this Canary's: not overwritten", c.Namespace, OwnedName(c))
	}
	return router.ApplyOwned(ctx, r.Client, r.Scheme, c, have, router.Owned{GVK: GVK(VirtualService), Name: OwnedName(c), Labels: r.Labels,
		Spec: ownedSpec(c, is, r.Apex, s)})
}

// uncached reads an object past the cache, which holds only the objects
// Sluice has labelled: before Sluice creates one, to find another's of
// that name, which server-side apply would otherwise take over.
func (r *Router) uncached(ctx context.Context, kind, ns, name string) (*unstructured.Unstructured, error) {
	if r.Reader == nil {
		return nil, nil
	}
	return r.get(ctx, r.Reader, kind, ns, name)
}

// observeOwned reads the split route's canary share and mirror, and the
// header route, of the VirtualService Sluice owns.
func (r *Router) observeOwned(ctx context.Context, c *v1alpha1.Canary, s router.Split) (engine.Route, error) {
	vs, err := r.get(ctx, r.Client, VirtualService, c.Namespace, OwnedName(c))
	if err != nil || vs == nil {
		return engine.Route{}, err
	}
	isCanary := map[string]bool{}
	for _, b := range s.Canary {
		isCanary[destination(b, c.Namespace)["host"].(string)] = true
	}
	out := engine.Route{Exists: true}
	http, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
	for _, x := range http {
		route, _ := x.(map[string]any)
		switch route["name"] {
		case SplitRoute:
			var total, canary float64
			dests, _ := route["route"].([]any)
			for _, d := range dests {
				dm, _ := d.(map[string]any)
				w, ok := number(dm["weight"])
				if !ok {
					w = 100 // a single destination without a weight takes everything
				}
				total += w
				host, _, _ := unstructured.NestedString(dm, "destination", "host")
				if isCanary[host] {
					canary += w
				}
			}
			if total > 0 {
				out.CanaryWeight = int32(math.Round(canary * 100 / total))
			}
			if host, _, _ := unstructured.NestedString(route, "mirror", "host"); isCanary[host] {
				out.MirrorPercent = mirrorPercent(route)
			}
		case HeaderRoute:
			matches, _ := route["match"].([]any)
			if len(matches) > 0 {
				headers, _, _ := unstructured.NestedMap(matches[0].(map[string]any), "headers")
				out.HeaderRoute = headerKey(headers, c, s)
			}
		}
	}
	return out, nil
}

// releaseOwned makes the VirtualService send everything to backend and
// stop being the Canary's, so that the hosts it serves keep working.
func (r *Router) releaseOwned(ctx context.Context, c *v1alpha1.Canary, is *v1alpha1.IstioRouter, backend router.Backend) error {
	have, err := r.get(ctx, r.Client, VirtualService, c.Namespace, OwnedName(c))
	if err != nil || have == nil || !router.OwnedBy(have, c) {
		return err
	}
	patch := client.MergeFromWithOptions(have.DeepCopy(), client.MergeFromWithOptimisticLock{})
	want := ownedSpec(c, is, r.Apex, router.Split{Primary: []router.Backend{backend}})
	have.Object["spec"] = want
	router.Disown(have, c, r.Labels)
	if err := r.Client.Patch(ctx, have, patch, client.FieldOwner(v1alpha1.FieldOwner)); err != nil {
		return fmt.Errorf("release virtualservice %s/%s: %w", have.GetNamespace(), have.GetName(), err)
	}
	return nil
}
