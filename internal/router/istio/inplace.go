package istio

import (
	"context"
	"fmt"
	"maps"
	"math"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/engine"
	"github.com/sluice-dev/sluice/internal/router"
	"github.com/sluice-dev/sluice/internal/workload"
)

// hostKey is a host as Istio resolves it in namespace ns: a Service's
// short, name.namespace, .svc and .svc.cluster.local forms are one
// name.namespace; any other host is itself.
func hostKey(host, ns string) string {
	h := strings.TrimSuffix(strings.TrimSuffix(host, "."), ".cluster.local")
	h = strings.TrimSuffix(h, ".svc")
	switch strings.Count(h, ".") {
	case 0:
		return h + "." + ns
	case 1:
		return h
	}
	return host
}

// serviceOf is the Service a host names, when it names one.
func serviceOf(host, ns string) (name, namespace string, ok bool) {
	k := hostKey(host, ns)
	name, namespace, ok = strings.Cut(k, ".")
	return name, namespace, ok && !strings.Contains(namespace, ".")
}

func destOf(entry map[string]any) (host, subset string) {
	host, _, _ = unstructured.NestedString(entry, "destination", "host")
	subset, _, _ = unstructured.NestedString(entry, "destination", "subset")
	return host, subset
}

// splitOf returns a route's stable and canary destination entries: the
// route must send to host's subsets StableSubset and CanarySubset, and
// nowhere else.
func splitOf(route map[string]any, host, ns string) (stable, canary map[string]any, err error) {
	name := route["name"]
	dests, _ := route["route"].([]any)
	if len(dests) == 0 {
		return nil, nil, fmt.Errorf("route %q has no destinations to split (a redirect, direct response or delegate cannot be)", name)
	}
	for _, x := range dests {
		e, _ := x.(map[string]any)
		h, sub := destOf(e)
		if hostKey(h, ns) != hostKey(host, ns) {
			return nil, nil, fmt.Errorf("route %q sends to host %q, not to %q, the DestinationRule's host: Sluice splits a route between that host's subsets %s and %s only", name, h, host, StableSubset, CanarySubset)
		}
		switch {
		case sub == StableSubset && stable == nil:
			stable = e
		case sub == CanarySubset && canary == nil:
			canary = e
		default:
			return nil, nil, fmt.Errorf("route %q sends to subset %q of %q: it must send to subset %s once and subset %s once, and nowhere else", name, sub, h, StableSubset, CanarySubset)
		}
	}
	if stable == nil || canary == nil {
		return nil, nil, fmt.Errorf("route %q needs two destinations, host %q with subset %s (weight 100) and with subset %s (weight 0): Sluice sets their weights", name, host, StableSubset, CanarySubset)
	}
	return stable, canary, nil
}

// mirrorIsOurs says whether a route's mirror is the canary subset of host
// (what Sluice writes); false when it has none.
func mirrorIsOurs(route map[string]any, host, ns string) bool {
	m, ok := route["mirror"].(map[string]any)
	if !ok {
		return false
	}
	h, _ := m["host"].(string)
	sub, _ := m["subset"].(string)
	return hostKey(h, ns) == hostKey(host, ns) && sub == CanarySubset
}

func findRoute(http []any, name string) (int, map[string]any) {
	for i, x := range http {
		if rt, ok := x.(map[string]any); ok && rt["name"] == name {
			return i, rt
		}
	}
	return -1, nil
}

// splitHTTP returns a VirtualService's http routes with the named routes
// split: weights 100-w and w on their stable and canary destinations,
// Sluice's mirror set (percent above 0) or removed, and each one's header
// route before it when hr is set (removed when not). The routes are
// copied; anything else stays as it is.
func splitHTTP(http []any, names []string, host, ns string, w, mirror int32, hr *v1alpha1.HeaderRoute) ([]any, error) {
	copies := map[string]bool{}
	for _, n := range names {
		copies[n+HeaderRouteSuffix] = true
	}
	var out []any
	for _, x := range http {
		if rt, ok := x.(map[string]any); ok && copies[fmt.Sprint(rt["name"])] {
			continue
		}
		out = append(out, runtime.DeepCopyJSONValue(x))
	}
	for _, name := range names {
		i, route := findRoute(out, name)
		if route == nil {
			return nil, fmt.Errorf("no HTTP route named %q (spec.router.istio.virtualService.routes)", name)
		}
		stable, canary, err := splitOf(route, host, ns)
		if err != nil {
			return nil, err
		}
		stable["weight"] = int64(100 - w)
		canary["weight"] = int64(w)
		_, mirrors := route["mirror"]
		switch {
		case mirrors && !mirrorIsOurs(route, host, ns):
			if mirror > 0 {
				return nil, fmt.Errorf("route %q mirrors to %v already: Sluice does not replace a mirror of yours; remove it, or the setMirror steps", name, route["mirror"])
			}
		case mirror > 0:
			m := map[string]any{"host": stable["destination"].(map[string]any)["host"], "subset": CanarySubset}
			if port, ok := canary["destination"].(map[string]any)["port"]; ok {
				m["port"] = runtime.DeepCopyJSONValue(port)
			}
			route["mirror"] = m
			route["mirrorPercentage"] = map[string]any{"value": float64(mirror)}
		case mirrors:
			delete(route, "mirror")
			delete(route, "mirrorPercentage")
		}
		if hr == nil {
			continue
		}
		hc, err := headerCopy(route, canary, host, ns, hr)
		if err != nil {
			return nil, err
		}
		out = append(out[:i], append([]any{hc}, out[i:]...)...)
	}
	return out, nil
}

// headerCopy is the header route of a route: the route as it is (its
// retries, timeout, corsPolicy, rewrite, headers...), named
// <route>-sluice-canary, with hr's headers added to each of its matches
// and the canary destination alone.
func headerCopy(route, canary map[string]any, host, ns string, hr *v1alpha1.HeaderRoute) (map[string]any, error) {
	name := route["name"]
	out := runtime.DeepCopyJSONValue(route).(map[string]any)
	out["name"] = fmt.Sprint(name) + HeaderRouteSuffix
	if mirrorIsOurs(out, host, ns) {
		delete(out, "mirror")
		delete(out, "mirrorPercentage")
	}
	dest := runtime.DeepCopyJSONValue(canary).(map[string]any)
	delete(dest, "weight")
	out["route"] = []any{dest}
	headers := headerMatch(hr)
	matches, _ := out["match"].([]any)
	if len(matches) == 0 {
		out["match"] = []any{map[string]any{"headers": headers}}
		return out, nil
	}
	for _, x := range matches {
		m, ok := x.(map[string]any)
		if !ok {
			continue
		}
		have, _ := m["headers"].(map[string]any)
		if have == nil {
			have = map[string]any{}
		}
		for k, v := range headers {
			if _, dup := have[k]; dup {
				return nil, fmt.Errorf("route %q already matches header %q: a setHeaderRoute step cannot narrow it by the same header", name, k)
			}
			have[k] = runtime.DeepCopyJSONValue(v)
		}
		m["headers"] = have
	}
	return out, nil
}

// subsetLabels are the labels of the stable and canary subsets: the
// selectors of the -primary and -canary Services, so that the subsets
// hold the same pods.
func (r *Router) subsetLabels(ctx context.Context, c *v1alpha1.Canary) (map[string]map[string]string, error) {
	primary, canary := router.Backends(c, r.Apex)
	out := map[string]map[string]string{}
	for sub, b := range map[string]router.Backend{StableSubset: primary[0], CanarySubset: canary[0]} {
		var svc corev1.Service
		if err := r.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: b.Name}, &svc); err != nil {
			return nil, fmt.Errorf("read service %s/%s (the %s subset's pods): %w", c.Namespace, b.Name, sub, err)
		}
		out[sub] = svc.Spec.Selector
	}
	return out, nil
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// setSubsets gives a DestinationRule's stable and canary subsets the
// labels, adding a subset that is missing, and reports whether that
// changed it. Other subsets, and the two subsets' other fields, stay.
func setSubsets(dr *unstructured.Unstructured, labels map[string]map[string]string) bool {
	subsets, _, _ := unstructured.NestedSlice(dr.Object, "spec", "subsets")
	changed := false
	for _, name := range []string{StableSubset, CanarySubset} {
		want := toAny(labels[name])
		found := false
		for _, x := range subsets {
			sm, ok := x.(map[string]any)
			if !ok || sm["name"] != name {
				continue
			}
			found = true
			if !equalJSON(sm["labels"], want) {
				sm["labels"] = want
				changed = true
			}
		}
		if !found {
			subsets = append(subsets, map[string]any{"name": name, "labels": want})
			changed = true
		}
	}
	if changed {
		_ = unstructured.SetNestedSlice(dr.Object, subsets, "spec", "subsets")
	}
	return changed
}

// subsetsPending says why a DestinationRule's subsets do not carry the
// labels yet ("" when they do).
func subsetsPending(dr *unstructured.Unstructured, labels map[string]map[string]string) string {
	subsets, _, _ := unstructured.NestedSlice(dr.Object, "spec", "subsets")
	for _, name := range []string{StableSubset, CanarySubset} {
		var got any
		for _, x := range subsets {
			if sm, ok := x.(map[string]any); ok && sm["name"] == name {
				got = sm["labels"]
			}
		}
		if !equalJSON(got, toAny(labels[name])) {
			return fmt.Sprintf("destinationrule %s/%s subset %s selects %v, want %v", dr.GetNamespace(), dr.GetName(), name, got, labels[name])
		}
	}
	return ""
}

// update read-modify-writes a user's object: mutate changes it and
// reports whether it did; the update carries the resourceVersion read,
// and a conflict reads the object again, past the cache, and retries.
func (r *Router) update(ctx context.Context, kind, ns, name, field string, mutate func(*unstructured.Unstructured) (bool, error)) error {
	rd := r.User
	for attempt := 0; ; attempt++ {
		u, err := r.get(ctx, rd, kind, ns, name)
		if err != nil {
			return err
		}
		if u == nil {
			return fmt.Errorf("%s %s/%s not found (%s)", strings.ToLower(kind), ns, name, field)
		}
		changed, err := mutate(u)
		if err != nil {
			return fmt.Errorf("%s %s/%s: %w", strings.ToLower(kind), ns, name, err)
		}
		if !changed {
			return nil
		}
		err = r.Client.Update(ctx, u, client.FieldOwner(v1alpha1.FieldOwner))
		switch {
		case err == nil:
			return nil
		case apierrors.IsConflict(err) && attempt < maxConflictRetries:
			rd = r.Reader // the cache may not have the newer version yet
		default:
			return fmt.Errorf("update %s %s/%s: %w", strings.ToLower(kind), ns, name, err)
		}
	}
}

// drHost reads the user's DestinationRule's host.
func (r *Router) drHost(ctx context.Context, c *v1alpha1.Canary, is *v1alpha1.IstioRouter) (string, error) {
	dr, err := r.get(ctx, r.User, DestinationRule, c.Namespace, is.DestinationRule.Name)
	if err != nil {
		return "", err
	}
	if dr == nil {
		return "", fmt.Errorf("destinationrule %s/%s not found (spec.router.istio.destinationRule.name)", c.Namespace, is.DestinationRule.Name)
	}
	host, _, _ := unstructured.NestedString(dr.Object, "spec", "host")
	return host, nil
}

func (r *Router) applyInPlace(ctx context.Context, c *v1alpha1.Canary, is *v1alpha1.IstioRouter, s router.Split) error {
	labels, err := r.subsetLabels(ctx, c)
	if err != nil {
		return err
	}
	// The subsets first: the routes send to them.
	if err := r.update(ctx, DestinationRule, c.Namespace, is.DestinationRule.Name, "spec.router.istio.destinationRule.name", func(dr *unstructured.Unstructured) (bool, error) {
		return setSubsets(dr, labels), nil
	}); err != nil {
		return err
	}
	return r.splitRoutes(ctx, c, is, s.CanaryWeight, s.MirrorPercent, s.HeaderRoute)
}

func (r *Router) splitRoutes(ctx context.Context, c *v1alpha1.Canary, is *v1alpha1.IstioRouter, w, mirror int32, hr *v1alpha1.HeaderRoute) error {
	host, err := r.drHost(ctx, c, is)
	if err != nil {
		return err
	}
	return r.update(ctx, VirtualService, c.Namespace, is.VirtualService.Name, "spec.router.istio.virtualService.name", func(vs *unstructured.Unstructured) (bool, error) {
		http, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
		out, err := splitHTTP(http, is.VirtualService.Routes, host, c.Namespace, w, mirror, hr)
		if err != nil || equalJSON(http, out) {
			return false, err
		}
		return true, unstructured.SetNestedSlice(vs.Object, out, "spec", "http")
	})
}

func (r *Router) observeInPlace(ctx context.Context, c *v1alpha1.Canary, is *v1alpha1.IstioRouter, s router.Split) (engine.Route, error) {
	vs, err := r.get(ctx, r.User, VirtualService, c.Namespace, is.VirtualService.Name)
	if err != nil || vs == nil {
		return engine.Route{}, err
	}
	out := engine.Route{Exists: true}
	dr, err := r.get(ctx, r.User, DestinationRule, c.Namespace, is.DestinationRule.Name)
	if err != nil {
		return engine.Route{}, err
	}
	if dr == nil {
		out.Pending = fmt.Sprintf("destinationrule %s/%s not found", c.Namespace, is.DestinationRule.Name)
		return out, nil
	}
	host, _, _ := unstructured.NestedString(dr.Object, "spec", "host")
	http, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
	for i, name := range is.VirtualService.Routes {
		_, route := findRoute(http, name)
		if route == nil {
			out.Pending = fmt.Sprintf("virtualservice %s/%s has no HTTP route named %q", c.Namespace, vs.GetName(), name)
			return out, nil
		}
		stable, canary, err := splitOf(route, host, c.Namespace)
		if err != nil {
			out.Pending = fmt.Sprintf("virtualservice %s/%s: %v", c.Namespace, vs.GetName(), err)
			return out, nil
		}
		sw, _ := number(stable["weight"])
		cw, _ := number(canary["weight"])
		var got engine.Route
		if sw+cw > 0 {
			got.CanaryWeight = int32(math.Round(cw * 100 / (sw + cw)))
		}
		if mirrorIsOurs(route, host, c.Namespace) {
			got.MirrorPercent = mirrorPercent(route)
		}
		if _, hdr := findRoute(http, name+HeaderRouteSuffix); hdr != nil {
			got.HeaderRoute = headerKey(addedHeaders(route, hdr), c, s)
		}
		if i == 0 {
			out.CanaryWeight, out.MirrorPercent, out.HeaderRoute = got.CanaryWeight, got.MirrorPercent, got.HeaderRoute
			continue
		}
		if got.CanaryWeight != out.CanaryWeight || got.MirrorPercent != out.MirrorPercent || got.HeaderRoute != out.HeaderRoute {
			out.Pending = fmt.Sprintf("virtualservice %s/%s: route %q carries %d%% (mirror %d%%, headers %q), route %q %d%% (mirror %d%%, headers %q)", c.Namespace, vs.GetName(),
				is.VirtualService.Routes[0], out.CanaryWeight, out.MirrorPercent, out.HeaderRoute, name, got.CanaryWeight, got.MirrorPercent, got.HeaderRoute)
			return out, nil
		}
	}
	labels, err := r.subsetLabels(ctx, c)
	if err != nil {
		out.Pending = err.Error()
		return out, nil
	}
	out.Pending = subsetsPending(dr, labels)
	return out, nil
}

// addedHeaders are the headers a header route matches on that its route
// does not (in their first matches): the step's.
func addedHeaders(route, hdr map[string]any) map[string]any {
	first := func(rt map[string]any) map[string]any {
		matches, _ := rt["match"].([]any)
		if len(matches) == 0 {
			return nil
		}
		m, _ := matches[0].(map[string]any)
		h, _ := m["headers"].(map[string]any)
		return h
	}
	out := maps.Clone(first(hdr))
	for k := range first(route) {
		delete(out, k)
	}
	return out
}

func (r *Router) releaseInPlace(ctx context.Context, c *v1alpha1.Canary, is *v1alpha1.IstioRouter, backend router.Backend) error {
	// What the user has deleted needs nothing handed back.
	vs, err := r.get(ctx, r.User, VirtualService, c.Namespace, is.VirtualService.Name)
	if err != nil {
		return err
	}
	dr, err := r.get(ctx, r.User, DestinationRule, c.Namespace, is.DestinationRule.Name)
	if err != nil || dr == nil {
		return err
	}
	if vs != nil {
		if err := r.splitRoutes(ctx, c, is, 0, 0, nil); err != nil {
			return err
		}
	}
	// The apex Service selects the copy that serves from now on; it has
	// just been released, out of the cache.
	var svc corev1.Service
	if err := r.Reader.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: backend.Name}, &svc); err != nil {
		return fmt.Errorf("read service %s/%s: %w", c.Namespace, backend.Name, err)
	}
	labels := map[string]map[string]string{StableSubset: svc.Spec.Selector, CanarySubset: svc.Spec.Selector}
	return r.update(ctx, DestinationRule, c.Namespace, is.DestinationRule.Name, "spec.router.istio.destinationRule.name", func(dr *unstructured.Unstructured) (bool, error) {
		return setSubsets(dr, labels), nil
	})
}

// checkInPlace finds what keeps Sluice from splitting the user's objects:
// either missing, a named route it cannot split, and a DestinationRule
// host whose Service does not select both copies' pods.
func (r *Router) checkInPlace(ctx context.Context, c *v1alpha1.Canary, is *v1alpha1.IstioRouter) (string, string, error) {
	vs, err := r.get(ctx, r.User, VirtualService, c.Namespace, is.VirtualService.Name)
	if err != nil {
		return "", "", err
	}
	if vs == nil {
		return v1alpha1.ReasonVirtualServiceNotFound, fmt.Sprintf("spec.router.istio.virtualService.name: VirtualService %s/%s not found; create it, its routes %s sending to the DestinationRule's host with subsets %s and %s",
			c.Namespace, is.VirtualService.Name, strings.Join(is.VirtualService.Routes, ", "), StableSubset, CanarySubset), nil
	}
	dr, err := r.get(ctx, r.User, DestinationRule, c.Namespace, is.DestinationRule.Name)
	if err != nil {
		return "", "", err
	}
	if dr == nil {
		return v1alpha1.ReasonDestinationRuleNotFound, fmt.Sprintf("spec.router.istio.destinationRule.name: DestinationRule %s/%s not found; create it for the host the routes send to (Sluice adds the %s and %s subsets)",
			c.Namespace, is.DestinationRule.Name, StableSubset, CanarySubset), nil
	}
	host, _, _ := unstructured.NestedString(dr.Object, "spec", "host")
	http, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
	var mirror int32
	var hr *v1alpha1.HeaderRoute
	for _, st := range c.Spec.Strategy.Steps {
		if st.SetMirror != nil && st.SetMirror.Percent > mirror {
			mirror = st.SetMirror.Percent
		}
		if st.SetHeaderRoute != nil && hr == nil {
			hr = st.SetHeaderRoute
		}
	}
	// What a release's steps will write, tried on a copy.
	if _, err := splitHTTP(http, is.VirtualService.Routes, host, c.Namespace, 0, mirror, hr); err != nil {
		return v1alpha1.ReasonVirtualServiceRouteNotUsable, fmt.Sprintf("spec.router.istio.virtualService: VirtualService %s/%s: %v", c.Namespace, vs.GetName(), err), nil
	}
	return r.checkHost(ctx, c, host)
}

// checkHost checks that the DestinationRule's host is a Service in the
// Canary's namespace selecting the pods of both copies: a subset holds
// the host's endpoints that have its labels, and the apex Service (like
// the -primary one) selects the primary's pods only.
func (r *Router) checkHost(ctx context.Context, c *v1alpha1.Canary, host string) (string, string, error) {
	name, ns, ok := serviceOf(host, c.Namespace)
	field := "spec.router.istio.destinationRule"
	if !ok || ns != c.Namespace {
		return v1alpha1.ReasonDestinationRuleNotUsable, fmt.Sprintf("%s: host %q is not a Service in namespace %s: the stable and canary subsets select pods of such a Service", field, host, c.Namespace), nil
	}
	key := client.ObjectKey{Namespace: c.Namespace, Name: c.Spec.TargetRef.Name}
	var d appsv1.Deployment
	err := r.Client.Get(ctx, key, &d)
	if apierrors.IsNotFound(err) && r.Reader != nil {
		err = r.Reader.Get(ctx, key, &d)
	}
	switch {
	case apierrors.IsNotFound(err):
		return "", "", nil // the engine reports a missing target
	case err != nil:
		return "", "", fmt.Errorf("canary %s/%s: read deployment %s: %w", c.Namespace, c.Name, key, err)
	}
	primarySel, err := workload.PrimarySelector(&d)
	if err != nil {
		return "", "", nil // the engine reports the selector
	}
	canaryPods := d.Spec.Template.Labels
	primaryPods := maps.Clone(canaryPods)
	if primaryPods == nil {
		primaryPods = map[string]string{}
	}
	maps.Copy(primaryPods, primarySel)
	var svc corev1.Service
	// The user's Service is not in the cache (Sluice does not label it).
	if err := r.Reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &svc); err != nil {
		if apierrors.IsNotFound(err) {
			return v1alpha1.ReasonDestinationRuleNotUsable, fmt.Sprintf("%s: host %q: Service %s/%s not found", field, host, ns, name), nil
		}
		return "", "", fmt.Errorf("read service %s/%s: %w", ns, name, err)
	}
	sel := svc.Spec.Selector
	selects := func(pods map[string]string) bool {
		for k, v := range sel {
			if pods[k] != v {
				return false
			}
		}
		return len(sel) > 0
	}
	if !selects(primaryPods) || !selects(canaryPods) {
		return v1alpha1.ReasonDestinationRuleNotUsable, fmt.Sprintf("%s: host %q: Service %s/%s selects %v, which does not match the pods of both copies (primary %v, canary %v), so a subset would hold no pod; "+
			"point the routes and the DestinationRule at a Service selecting a label of the pod template outside the Deployment's selector (the apex, -primary and -canary Services each select one copy)",
			field, host, ns, name, sel, primaryPods, canaryPods), nil
	}
	return "", "", nil
}
