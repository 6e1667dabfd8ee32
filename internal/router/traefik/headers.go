package traefik

import (
	"context"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/engine"
	"github.com/sluice-dev/sluice/internal/router"
)

// Header routes. An A/B step needs a route that sends the requests with
// its headers to the canary ahead of the weighted one. Sluice never edits
// the user's routes for it: for each IngressRoute whose route carries the
// Canary's traffic (the route named in IngressRoute mode; every route that
// references the Canary's TraefikService otherwise) it owns a header
// IngressRoute, <ingressroute>-<canary>-headers, with the same entry
// points and TLS, and per route the same rule narrowed by the headers, the
// route's middlewares followed by spec.router.traefik.canaryMiddlewares,
// and the canary Service as its only service. Its rule is longer than the
// route's, so Traefik's default priority (the rule's length) puts it
// first; a route with an explicit priority p gets p+1.

// Labels and annotations on a header IngressRoute.
const (
	RoleLabel      = "sluice.dev/role"
	HeaderRoleName = "header-route"
	// HeaderRouteAnnotation is engine.HeaderRouteKey of the header route
	// the object carries (Traefik reports nothing back).
	HeaderRouteAnnotation = "sluice.dev/header-route"
)

// HeaderRouteName is the name of the header IngressRoute for a base
// IngressRoute.
func HeaderRouteName(c *v1alpha1.Canary, base string) string {
	return base + "-" + c.Name + "-headers"
}

// SplitName is the weighted TraefikService a mirroring one sends client
// traffic to while a mirror step is in force.
func SplitName(c *v1alpha1.Canary) string { return c.Name + "-split" }

// baseRoute is a route of a user's IngressRoute that carries the Canary's
// traffic.
type baseRoute struct {
	ir    *unstructured.Unstructured
	route map[string]any
}

// baseRoutes finds the routes a header route narrows, grouped by
// IngressRoute name. The message, when not empty, says why there are none.
func (r *Router) baseRoutes(ctx context.Context, c *v1alpha1.Canary) (map[string][]baseRoute, string, error) {
	t, err := spec(c)
	if err != nil {
		return nil, "", err
	}
	out := map[string][]baseRoute{}
	if t.IngressRoute != nil {
		ir, err := r.get(ctx, r.user(), "IngressRoute", c.Namespace, t.IngressRoute.Name)
		if err != nil {
			return nil, "", err
		}
		if ir == nil {
			return nil, fmt.Sprintf("ingressroute %s/%s not found (spec.router.traefik.ingressRoute.name)", c.Namespace, t.IngressRoute.Name), nil
		}
		route, _, err := findRoute(ir, t.IngressRoute.Match)
		if err != nil {
			return nil, err.Error(), nil
		}
		out[ir.GetName()] = []baseRoute{{ir: ir, route: route}}
		return out, "", nil
	}
	gvk, err := r.GVK("IngressRoute")
	if err != nil {
		return nil, "", err
	}
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(gvk.GroupVersion().WithKind("IngressRouteList"))
	if err := r.user().List(ctx, list, client.InNamespace(c.Namespace)); err != nil {
		return nil, "", fmt.Errorf("list ingressroutes in %s: %w", c.Namespace, err)
	}
	for i := range list.Items {
		ir := &list.Items[i]
		if ir.GetLabels()[RoleLabel] == HeaderRoleName {
			continue
		}
		routes, _, _ := unstructured.NestedSlice(ir.Object, "spec", "routes")
		for _, rt := range routes {
			route, _ := rt.(map[string]any)
			if referencesService(route, c) {
				out[ir.GetName()] = append(out[ir.GetName()], baseRoute{ir: ir, route: route})
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Sprintf("no IngressRoute in %s references TraefikService %s: a header route narrows the routes that do; reference it from your IngressRoute", c.Namespace, ServiceName(c)), nil
	}
	return out, "", nil
}

// referencesService reports whether a route sends to the Canary's
// TraefikService.
func referencesService(route map[string]any, c *v1alpha1.Canary) bool {
	services, _ := route["services"].([]any)
	for _, sv := range services {
		e, _ := sv.(map[string]any)
		ns, _ := e["namespace"].(string)
		if e["kind"] == "TraefikService" && e["name"] == ServiceName(c) && (ns == "" || ns == c.Namespace) {
			return true
		}
	}
	return false
}

// syntaxOf is the rule syntax of the header route narrowing a route.
func (r *Router) syntaxOf(c *v1alpha1.Canary, gvk schema.GroupVersionKind, route map[string]any) string {
	if t := c.Spec.Router.Traefik; t != nil && t.RuleSyntax != "" {
		return t.RuleSyntax
	}
	if s, _ := route["syntax"].(string); s == SyntaxV2 || s == SyntaxV3 {
		return s
	}
	if gvk.Group == "traefik.containo.us" {
		return SyntaxV2
	}
	return SyntaxV3
}

// headerSpec builds the spec of the header IngressRoute for one base
// IngressRoute.
func (r *Router) headerSpec(c *v1alpha1.Canary, gvk schema.GroupVersionKind, bases []baseRoute, s router.Split) map[string]any {
	spec := map[string]any{}
	baseSpec, _ := bases[0].ir.Object["spec"].(map[string]any)
	for _, f := range []string{"entryPoints", "tls"} {
		if v, ok := baseSpec[f]; ok {
			spec[f] = runtime.DeepCopyJSONValue(v)
		}
	}
	var middlewares []any
	for _, m := range c.Spec.Router.Traefik.CanaryMiddlewares {
		ref := map[string]any{"name": m.Name}
		if m.Namespace != "" {
			ref["namespace"] = m.Namespace
		}
		middlewares = append(middlewares, ref)
	}
	var routes []any
	for _, b := range bases {
		match, _ := b.route["match"].(string)
		syntax := r.syntaxOf(c, gvk, b.route)
		rt := map[string]any{
			"kind":     "Rule",
			"match":    NarrowRule(match, s.HeaderRoute, syntax),
			"services": entries(router.Split{Canary: s.Canary, CanaryWeight: 100}, c.Namespace),
		}
		if v, ok := b.route["syntax"]; ok {
			rt["syntax"] = v
		}
		if p := number(b.route["priority"]); p > 0 {
			rt["priority"] = p + 1
		}
		own, _ := b.route["middlewares"].([]any)
		if mws := append(runtime.DeepCopyJSONValue(own).([]any), middlewares...); len(mws) > 0 {
			rt["middlewares"] = mws
		}
		routes = append(routes, rt)
	}
	spec["routes"] = routes
	return spec
}

func number(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case float64:
		return int64(n)
	}
	return 0
}

// applyHeaderRoutes keeps one header IngressRoute per base IngressRoute
// while the split has a header route, and none otherwise.
func (r *Router) applyHeaderRoutes(ctx context.Context, c *v1alpha1.Canary, s router.Split) error {
	gvk, err := r.GVK("IngressRoute")
	if err != nil {
		return err
	}
	have, err := r.headerRoutes(ctx, c, gvk)
	if err != nil {
		return err
	}
	wanted := map[string]bool{}
	if s.HeaderRoute != nil {
		bases, msg, err := r.baseRoutes(ctx, c)
		if err != nil {
			return err
		}
		if msg != "" {
			return fmt.Errorf("canary %s/%s: header route: %s", c.Namespace, c.Name, msg)
		}
		names := make([]string, 0, len(bases))
		for name := range bases {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, base := range names {
			name := HeaderRouteName(c, base)
			wanted[name] = true
			labels := map[string]string{RoleLabel: HeaderRoleName}
			for k, v := range r.Labels {
				labels[k] = v
			}
			ann := map[string]string{HeaderRouteAnnotation: engine.HeaderRouteKey(s.HeaderRoute)}
			if err := r.applyOwned(ctx, c, gvk, have[name], name, labels, ann, r.headerSpec(c, gvk, bases[base], s)); err != nil {
				return err
			}
		}
	}
	for name, u := range have {
		if !wanted[name] {
			if err := r.Client.Delete(ctx, u); client.IgnoreNotFound(err) != nil {
				return fmt.Errorf("delete ingressroute %s/%s: %w", c.Namespace, name, err)
			}
		}
	}
	return nil
}

// headerRoutes lists the Canary's header IngressRoutes by name.
func (r *Router) headerRoutes(ctx context.Context, c *v1alpha1.Canary, gvk schema.GroupVersionKind) (map[string]*unstructured.Unstructured, error) {
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(gvk.GroupVersion().WithKind("IngressRouteList"))
	sel := client.MatchingLabels{RoleLabel: HeaderRoleName}
	for k, v := range r.Labels {
		sel[k] = v
	}
	if err := r.Client.List(ctx, list, client.InNamespace(c.Namespace), sel); err != nil {
		return nil, fmt.Errorf("list header ingressroutes of canary %s/%s: %w", c.Namespace, c.Name, err)
	}
	out := map[string]*unstructured.Unstructured{}
	for i := range list.Items {
		out[list.Items[i].GetName()] = &list.Items[i]
	}
	return out, nil
}

// observeHeaderRoute is the header route the Canary's header IngressRoutes
// carry: "" for none, and a value no route key equals when they disagree.
func (r *Router) observeHeaderRoute(ctx context.Context, c *v1alpha1.Canary) (string, error) {
	gvk, err := r.GVK("IngressRoute")
	if err != nil {
		return "", err
	}
	have, err := r.headerRoutes(ctx, c, gvk)
	if err != nil {
		return "", err
	}
	keys := map[string]bool{}
	for _, u := range have {
		keys[u.GetAnnotations()[HeaderRouteAnnotation]] = true
	}
	switch len(keys) {
	case 0:
		return "", nil
	case 1:
		for k := range keys {
			return k, nil
		}
	}
	return "(header routes disagree)", nil
}

// Check verifies, when the steps have a header route, that Traefik takes
// its regexes, and what it references but Sluice does not own: each
// canary middleware, and the routes it narrows.
func (r *Router) Check(ctx context.Context, c *v1alpha1.Canary) (string, string, error) {
	t, err := spec(c)
	if err != nil {
		return "", "", err
	}
	// Canary middlewares and base routes matter only to header routes.
	if !slices.ContainsFunc(c.Spec.Strategy.Steps, func(s v1alpha1.Step) bool { return s.SetHeaderRoute != nil }) {
		return "", "", nil
	}
	if reason, msg := HeaderRegexProblem(c); msg != "" {
		return reason, msg, nil
	}
	for i, m := range t.CanaryMiddlewares {
		ns := m.GetNamespace(c.Namespace)
		mw, err := r.get(ctx, r.user(), "Middleware", ns, m.Name)
		if err != nil {
			return "", "", err
		}
		if mw == nil {
			return v1alpha1.ReasonMiddlewareNotFound, fmt.Sprintf("spec.router.traefik.canaryMiddlewares[%d]: Middleware %s/%s not found; Sluice references canary middlewares and never creates them: create it or remove it from the list", i, ns, m.Name), nil
		}
	}
	if _, msg, err := r.baseRoutes(ctx, c); err != nil || msg != "" {
		return v1alpha1.ReasonHeaderRouteBaseNotFound, msg, err
	}
	return "", "", nil
}

// applyOwned server-side applies an object Sluice owns, unless have
// already carries it.
func (r *Router) applyOwned(ctx context.Context, c *v1alpha1.Canary, gvk schema.GroupVersionKind, have *unstructured.Unstructured, name string, labels, ann map[string]string, spec map[string]any) error {
	return router.ApplyOwned(ctx, r.Client, r.Scheme, c, have, router.Owned{GVK: gvk, Name: name, Labels: labels, Annotations: ann, Spec: spec})
}
