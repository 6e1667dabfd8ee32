// Package traefik routes a Canary's traffic through Traefik (v2.10+ or v3),
// in one of two ways:
//
//   - TraefikService mode (spec.router.traefik without ingressRoute): Sluice
//     owns a weighted TraefikService named like the Canary, which the user's
//     IngressRoute references (kind: TraefikService). It is written with
//     server-side apply.
//   - IngressRoute mode (spec.router.traefik.ingressRoute): Sluice edits the
//     user's own IngressRoute in place, and only the weights and the canary
//     entry of one route's services (and, while a release runs, an
//     annotation remembering the user's apex weight, given back at 0%): it
//     reads the object, changes those fields, writes it back with the
//     resourceVersion it read, and on a conflict reads again and retries.
//     Everything else stays as it was.
//
// Both API groups are served: traefik.io/v1alpha1 and, for Traefik v2,
// traefik.containo.us/v1alpha1; Sluice uses the first the cluster serves.
// Objects are handled as unstructured: Traefik's Go module cannot be
// imported for its types alone.
package traefik

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/engine"
	"github.com/sluice-dev/sluice/internal/router"
)

// DefaultGroups are the groups Traefik's CRDs are served in, preferred
// first.
var DefaultGroups = []string{"traefik.io", "traefik.containo.us"}

// ApexWeightsAnnotation is where, in IngressRoute mode, Sluice remembers
// the weight the user wrote on the apex entry of the route it splits,
// while a release runs: a JSON object from Canary name to that weight,
// null when the user wrote none. It is written with the release's first
// weights and removed with the canary entry at 0%, in the same updates,
// so it survives a restart, and a weight the user changes between
// releases is the one the next release remembers.
const ApexWeightsAnnotation = "sluice.dev/apex-weights"

// maxConflictRetries bounds the read-modify-write retries of an
// IngressRoute another writer keeps changing.
const maxConflictRetries = 5

// Router is the Traefik router.
type Router struct {
	// Client reads from the manager's cache and writes to the apiserver.
	Client client.Client
	// Reader reads from the apiserver, for the re-read after a conflict.
	Reader client.Reader
	// User reads the user's IngressRoutes and Middlewares (labelling them
	// so that the cache holds them); nil means Client.
	User   client.Reader
	Scheme *runtime.Scheme
	Mapper meta.RESTMapper
	// Labels go on the TraefikService Sluice owns.
	Labels map[string]string
	// Groups to look for Traefik's kinds in, preferred first; nil means
	// DefaultGroups.
	Groups []string
	// Apex is the Canary's apex Service, which selects the primary pods:
	// in IngressRoute mode the route's entry for it carries the stable
	// share, so the route needs nothing from Sluice when no release runs.
	Apex string
}

var _ router.Router = (*Router)(nil)

// GVK returns the kind in the first Traefik group the cluster serves.
func (r *Router) GVK(kind string) (schema.GroupVersionKind, error) {
	groups := r.Groups
	if groups == nil {
		groups = DefaultGroups
	}
	for _, g := range groups {
		gvk := schema.GroupVersionKind{Group: g, Version: "v1alpha1", Kind: kind}
		if _, err := r.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err == nil {
			return gvk, nil
		}
	}
	return schema.GroupVersionKind{}, fmt.Errorf("the cluster serves no Traefik %s (traefik.io/v1alpha1 or traefik.containo.us/v1alpha1): install Traefik's CRDs", kind)
}

// user reads the user's objects.
func (r *Router) user() client.Reader {
	if r.User != nil {
		return r.User
	}
	return r.Client
}

func spec(c *v1alpha1.Canary) (*v1alpha1.TraefikRouter, error) {
	if t := c.Spec.Router.Traefik; t != nil {
		return t, nil
	}
	return nil, fmt.Errorf("canary %s/%s: spec.router.traefik is not set", c.Namespace, c.Name)
}

// ServiceName is the name of the TraefikService Sluice owns.
func ServiceName(c *v1alpha1.Canary) string { return c.Name }

// Apply makes Traefik carry the split.
func (r *Router) Apply(ctx context.Context, c *v1alpha1.Canary, s router.Split) error {
	t, err := spec(c)
	if err != nil {
		return err
	}
	// The header routes go first when they are removed (their canary
	// must not outlive the weight) and last when they are added.
	if s.HeaderRoute == nil {
		if err := r.applyHeaderRoutes(ctx, c, s); err != nil {
			return err
		}
	}
	if t.IngressRoute != nil {
		err = r.applyIngressRoute(ctx, c, t.IngressRoute, s)
	} else {
		err = r.applyService(ctx, c, s)
	}
	if err != nil || s.HeaderRoute == nil {
		return err
	}
	return r.applyHeaderRoutes(ctx, c, s)
}

// Observe reads back the canary's share.
func (r *Router) Observe(ctx context.Context, c *v1alpha1.Canary, s router.Split) (engine.Route, error) {
	t, err := spec(c)
	if err != nil {
		return engine.Route{}, err
	}
	out := engine.Route{Exists: true}
	if out.HeaderRoute, err = r.observeHeaderRoute(ctx, c); err != nil {
		return engine.Route{}, err
	}
	var services []any
	if t.IngressRoute != nil {
		ir, err := r.get(ctx, r.user(), "IngressRoute", c.Namespace, t.IngressRoute.Name)
		if err != nil || ir == nil {
			return engine.Route{}, err
		}
		route, _, err := findRoute(ir, t.IngressRoute.Match)
		if err != nil {
			return engine.Route{Exists: true, Pending: err.Error()}, nil
		}
		services, _ = route["services"].([]any)
	} else {
		ts, err := r.get(ctx, r.Client, "TraefikService", c.Namespace, ServiceName(c))
		if err != nil || ts == nil {
			return engine.Route{}, err
		}
		services, _, _ = unstructured.NestedSlice(ts.Object, "spec", "weighted", "services")
		if mirrors, ok, _ := unstructured.NestedSlice(ts.Object, "spec", "mirroring", "mirrors"); ok {
			out.MirrorPercent = mirrorPercent(mirrors, s)
			split, err := r.get(ctx, r.Client, "TraefikService", c.Namespace, SplitName(c))
			if err != nil {
				return engine.Route{}, err
			}
			if split == nil {
				out.Pending = fmt.Sprintf("traefikservice %s/%s, the mirroring service's main, not found", c.Namespace, SplitName(c))
				return out, nil
			}
			services, _, _ = unstructured.NestedSlice(split.Object, "spec", "weighted", "services")
		}
	}
	// Traefik reports nothing back: what is written is what it carries.
	out.CanaryWeight = canaryPercent(services, s)
	return out, nil
}

// get reads a Traefik object; nil when it does not exist.
func (r *Router) get(ctx context.Context, rd client.Reader, kind, ns, name string) (*unstructured.Unstructured, error) {
	gvk, err := r.GVK(kind)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	if err := rd.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("read %s %s/%s: %w", strings.ToLower(kind), ns, name, err)
	}
	return u, nil
}

// entries builds the services list of a split: each backend with its port
// and its weight in basis points (the namespace only when it is not ns).
func entries(s router.Split, ns string) []any {
	var out []any
	add := func(backends []router.Backend, share int32) {
		for i, w := range router.PhaseWeights(share, backends) {
			b := backends[i]
			e := map[string]any{"name": b.Name, "weight": int64(w)}
			if b.Port != nil {
				e["port"] = int64(*b.Port)
			}
			if b.Kind == "TraefikService" {
				e["kind"] = "TraefikService"
			}
			if b.Namespace != "" && b.Namespace != ns {
				e["namespace"] = b.Namespace
			}
			out = append(out, e)
		}
	}
	add(s.Primary, 100-s.CanaryWeight)
	add(s.Canary, s.CanaryWeight)
	return out
}

// applyService keeps the TraefikService the user's IngressRoute
// references: weighted between the phases, or, while a mirror step is in
// force, mirroring to the canary with the weighted split in <canary>-split
// as its main service.
func (r *Router) applyService(ctx context.Context, c *v1alpha1.Canary, s router.Split) error {
	gvk, err := r.GVK("TraefikService")
	if err != nil {
		return err
	}
	weighted := map[string]any{"weighted": weightedSpec(s, c.Namespace, gvk.Group, c.Spec.Router.Traefik.NativeLB)}
	split, err := r.get(ctx, r.Client, "TraefikService", c.Namespace, SplitName(c))
	if err != nil {
		return err
	}
	main, err := r.get(ctx, r.Client, "TraefikService", c.Namespace, ServiceName(c))
	if err != nil {
		return err
	}
	if s.MirrorPercent <= 0 || len(s.Canary) == 0 {
		if err := r.applyOwned(ctx, c, gvk, main, ServiceName(c), r.Labels, nil, weighted); err != nil {
			return err
		}
		// The main service no longer points at the split: it can go.
		if split != nil {
			if err := r.Client.Delete(ctx, split); client.IgnoreNotFound(err) != nil {
				return fmt.Errorf("delete traefikservice %s/%s: %w", c.Namespace, split.GetName(), err)
			}
		}
		return nil
	}
	// The split first, so the mirroring service never points at nothing.
	if err := r.applyOwned(ctx, c, gvk, split, SplitName(c), r.Labels, nil, weighted); err != nil {
		return err
	}
	b := s.Canary[0]
	mirror := map[string]any{"name": b.Name, "percent": int64(s.MirrorPercent)}
	if b.Port != nil {
		mirror["port"] = int64(*b.Port)
	}
	if b.Kind == "TraefikService" {
		mirror["kind"] = "TraefikService"
	}
	if b.Namespace != "" && b.Namespace != c.Namespace {
		mirror["namespace"] = b.Namespace
	}
	mirroring := map[string]any{"mirroring": map[string]any{
		"kind": "TraefikService", "name": SplitName(c), "mirrors": []any{mirror},
	}}
	return r.applyOwned(ctx, c, gvk, main, ServiceName(c), r.Labels, nil, mirroring)
}

// weightedSpec is a weighted TraefikService's spec: the phases' entries
// with a weight (an entry at 0 is left out: a canary scaled to zero has no
// endpoints, and Traefik refuses a TraefikService with a Service that has
// none, unless allowEmptyServices is set), nativeLB on each when asked,
// and, for a sticky canary with a share, Traefik's own sticky cookie.
// Traefik sets it on the first answer of a client with the service it
// chose, and sends the requests carrying it to that service: a client the
// canary answered stays on the canary (and one the primary answered on the
// primary). Its value is Traefik's (it names the chosen service), so the
// cookie is named after the canary's revision too: a client kept by one
// release is not kept by the next. Traefik v2's CRDs (traefik.containo.us)
// have no maxAge: there the cookie lasts the browser's session.
func weightedSpec(s router.Split, ns, group string, nativeLB *bool) map[string]any {
	var services []any
	for _, x := range entries(s, ns) {
		e := x.(map[string]any)
		if e["weight"] == int64(0) {
			continue
		}
		if nativeLB != nil {
			e["nativeLB"] = *nativeLB
		}
		services = append(services, e)
	}
	out := map[string]any{"services": services}
	if st := s.StickyOn(); st != nil {
		cookie := map[string]any{"name": StickyCookieName(st), "httpOnly": true}
		if group == "traefik.io" {
			cookie["maxAge"] = int64(st.MaxAge.Seconds())
		}
		out["sticky"] = map[string]any{"cookie": cookie}
	}
	return out
}

// StickyCookieName is the name of Traefik's sticky cookie for a sticky
// canary: the cookie name and the canary's revision.
func StickyCookieName(st *router.Sticky) string { return st.Cookie + "-" + st.Value }

// findRoute returns the route of an IngressRoute whose match is match (any
// route when the IngressRoute has exactly one and match is empty), and its
// index.
func findRoute(ir *unstructured.Unstructured, match string) (map[string]any, int, error) {
	routes, _, _ := unstructured.NestedSlice(ir.Object, "spec", "routes")
	name := ir.GetNamespace() + "/" + ir.GetName()
	if match == "" {
		if len(routes) != 1 {
			return nil, 0, fmt.Errorf("ingressroute %s has %d routes: set spec.router.traefik.ingressRoute.match to the match of the route to split", name, len(routes))
		}
		m, _ := routes[0].(map[string]any)
		return m, 0, nil
	}
	for i, rt := range routes {
		m, _ := rt.(map[string]any)
		if m["match"] == match {
			return m, i, nil
		}
	}
	return nil, 0, fmt.Errorf("ingressroute %s has no route whose match is %q (spec.router.traefik.ingressRoute.match)", name, match)
}

// entryKey identifies a services entry by kind, namespace and name.
func entryKey(e map[string]any) string {
	ns, _ := e["namespace"].(string)
	kind, _ := e["kind"].(string)
	if kind == "" {
		kind = "Service"
	}
	return kind + "/" + ns + "/" + fmt.Sprint(e["name"])
}

// restWeight is what the stable entry's weight returns to when a release
// ends: the user's weight, or none when Value is nil.
type restWeight struct{ Value *int64 }

// splitRoute sets the weights of the split's backends in a route's
// services, adding the canary's entries when its share is above 0 and
// removing them at 0. At 0 the stable entry's weight becomes rest's, or
// stays as it is when rest is nil (no release was running: the weight is
// the user's). Entries of other services are kept as they are. It reports
// whether anything changed.
func splitRoute(route map[string]any, s router.Split, ns string, rest *restWeight) (bool, error) {
	services, _ := route["services"].([]any)
	want := entries(s, ns)
	key := entryKey
	wantBy := map[string]map[string]any{}
	for _, w := range want {
		e := w.(map[string]any)
		wantBy[key(e)] = e
	}
	isCanary := map[string]bool{}
	for i := len(s.Primary); i < len(want); i++ {
		isCanary[key(want[i].(map[string]any))] = true
	}
	changed := false
	seen := map[string]bool{}
	var out []any
	for _, sv := range services {
		e, ok := sv.(map[string]any)
		if !ok {
			out = append(out, sv)
			continue
		}
		k := key(e)
		w, ours := wantBy[k]
		switch {
		case !ours:
			out = append(out, e) // someone else's entry: untouched
		case isCanary[k] && s.CanaryWeight == 0:
			changed = true // the canary's entry goes at 0
		case s.CanaryWeight == 0 && len(s.Primary) == 1:
			// No release: the stable entry's weight is the user's again.
			seen[k] = true
			if rest != nil && setWeight(e, rest.Value) {
				changed = true
			}
			out = append(out, e)
		default:
			seen[k] = true
			if !sameNumber(e["weight"], w["weight"]) {
				e["weight"] = w["weight"]
				changed = true
			}
			out = append(out, e)
		}
	}
	for _, w := range want {
		e := w.(map[string]any)
		k := key(e)
		if seen[k] || (isCanary[k] && s.CanaryWeight == 0) {
			continue
		}
		if !isCanary[k] {
			return false, fmt.Errorf("the route's services have no entry for Service %s: reference the apex Service from the route (it carries the stable share)", fmt.Sprint(e["name"]))
		}
		out = append(out, e)
		changed = true
	}
	route["services"] = out
	return changed, nil
}

func sameNumber(a, b any) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

// setWeight sets an entry's weight to w, removing it when w is nil, and
// reports whether that changed the entry.
func setWeight(e map[string]any, w *int64) bool {
	have, has := e["weight"]
	if w == nil {
		delete(e, "weight")
		return has
	}
	e["weight"] = *w
	return !has || !sameNumber(have, *w)
}

// weightOf is an entry's weight; nil when it has none.
func weightOf(e map[string]any) (*int64, error) {
	switch v := e["weight"].(type) {
	case nil:
		return nil, nil
	case int64:
		return &v, nil
	case float64:
		w := int64(v)
		return &w, nil
	default:
		return nil, fmt.Errorf("weight %v of Service %s is not a number", v, fmt.Sprint(e["name"]))
	}
}

// findEntry returns the entry of a services list for backend b in
// namespace ns; nil when there is none.
func findEntry(services []any, b router.Backend, ns string) map[string]any {
	want := entries(router.Split{Primary: []router.Backend{b}}, ns)[0].(map[string]any)
	for _, sv := range services {
		if e, ok := sv.(map[string]any); ok && entryKey(e) == entryKey(want) {
			return e
		}
	}
	return nil
}

// apexWeights reads ApexWeightsAnnotation: the user's apex weight per
// Canary whose release runs.
func apexWeights(ir *unstructured.Unstructured) (map[string]*int64, error) {
	out := map[string]*int64{}
	v, ok := ir.GetAnnotations()[ApexWeightsAnnotation]
	if !ok {
		return out, nil
	}
	if err := json.Unmarshal([]byte(v), &out); err != nil {
		return nil, fmt.Errorf("annotation %s: %w (Sluice writes it while a release runs; remove it only when none does)", ApexWeightsAnnotation, err)
	}
	return out, nil
}

// rememberApexWeight keeps, in ApexWeightsAnnotation, the user's weight on
// the route's apex entry while the Canary's release runs, and tells what
// that entry's weight returns to at 0% (nil: leave it as it is). A release
// runs while the route has the canary's entry: Sluice adds it with the
// first weights and removes it at 0%. It reports whether the annotation
// changed.
func rememberApexWeight(ir *unstructured.Unstructured, route map[string]any, c *v1alpha1.Canary, s router.Split) (*restWeight, bool, error) {
	saved, err := apexWeights(ir)
	if err != nil {
		return nil, false, err
	}
	services, _ := route["services"].([]any)
	running := len(s.Canary) > 0 && findEntry(services, s.Canary[0], c.Namespace) != nil
	userWeight, remembered := saved[c.Name]
	var rest *restWeight
	switch {
	case s.CanaryWeight > 0 && !running:
		// The release starts: the apex weight is still the user's.
		apex := findEntry(services, s.Primary[0], c.Namespace)
		if apex == nil {
			return nil, false, nil // splitRoute reports the missing entry
		}
		if saved[c.Name], err = weightOf(apex); err != nil {
			return nil, false, err
		}
	case s.CanaryWeight > 0:
		return nil, false, nil // running: the weight is remembered (or was never, by an older Sluice)
	case running:
		// The release ends. Without the annotation it was begun by a
		// Sluice that did not remember the weight: the user's is unknown,
		// and none is what that Sluice restored.
		rest = &restWeight{Value: userWeight}
		delete(saved, c.Name)
	default:
		if !remembered {
			return nil, false, nil
		}
		delete(saved, c.Name) // left by a release whose canary entry someone else removed
	}
	ann := ir.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	if len(saved) == 0 {
		delete(ann, ApexWeightsAnnotation)
	} else {
		b, err := json.Marshal(saved)
		if err != nil {
			return nil, false, err
		}
		ann[ApexWeightsAnnotation] = string(b)
	}
	if len(ann) == 0 {
		ann = nil
	}
	ir.SetAnnotations(ann)
	return rest, true, nil
}

// stableViaApex makes the apex Service the stable share's backend, as the
// route references it.
func (r *Router) stableViaApex(c *v1alpha1.Canary, s router.Split) router.Split {
	port := c.Spec.Service.Port
	s.Primary = []router.Backend{{Kind: "Service", Name: r.Apex, Port: &port, Weight: 1}}
	return s
}

func (r *Router) applyIngressRoute(ctx context.Context, c *v1alpha1.Canary, ref *v1alpha1.TraefikIngressRouteRef, s router.Split) error {
	s = r.stableViaApex(c, s)
	rd := r.user()
	for attempt := 0; ; attempt++ {
		ir, err := r.get(ctx, rd, "IngressRoute", c.Namespace, ref.Name)
		if err != nil {
			return err
		}
		if ir == nil {
			return fmt.Errorf("ingressroute %s/%s not found (spec.router.traefik.ingressRoute.name)", c.Namespace, ref.Name)
		}
		route, i, err := findRoute(ir, ref.Match)
		if err != nil {
			return err
		}
		rest, noted, err := rememberApexWeight(ir, route, c, s)
		if err != nil {
			return fmt.Errorf("ingressroute %s/%s: %w", c.Namespace, ref.Name, err)
		}
		changed, err := splitRoute(route, s, c.Namespace, rest)
		if err != nil {
			return fmt.Errorf("ingressroute %s/%s: %w", c.Namespace, ref.Name, err)
		}
		if !changed && !noted {
			return nil
		}
		routes, _, _ := unstructured.NestedSlice(ir.Object, "spec", "routes")
		routes[i] = route
		if err := unstructured.SetNestedSlice(ir.Object, routes, "spec", "routes"); err != nil {
			return fmt.Errorf("ingressroute %s/%s: %w", c.Namespace, ref.Name, err)
		}
		// An update carries the resourceVersion read: a concurrent change
		// makes it fail with a conflict instead of being overwritten.
		err = r.Client.Update(ctx, ir, client.FieldOwner(v1alpha1.FieldOwner))
		switch {
		case err == nil:
			return nil
		case apierrors.IsConflict(err) && attempt < maxConflictRetries:
			rd = r.Reader // the cache may not have the newer version yet
			continue
		default:
			return fmt.Errorf("update ingressroute %s/%s: %w", c.Namespace, ref.Name, err)
		}
	}
}

// canaryPercent is the canary backends' share of a services list's
// weights, in percent (rounded). An entry without a weight counts 1, as
// Traefik counts it.
func canaryPercent(services []any, s router.Split) int32 {
	isCanary := map[string]bool{}
	for _, b := range s.Canary {
		isCanary[b.Name] = true
	}
	var total, canary int64
	for _, sv := range services {
		e, ok := sv.(map[string]any)
		if !ok {
			continue
		}
		w := int64(1)
		switch v := e["weight"].(type) {
		case int64:
			w = v
		case float64:
			w = int64(v)
		}
		total += w
		if isCanary[fmt.Sprint(e["name"])] {
			canary += w
		}
	}
	if total == 0 {
		return 0
	}
	return int32((canary*100 + total/2) / total)
}

// mirrorPercent is the percent a mirroring service's mirrors copy to the
// canary phase's backends.
func mirrorPercent(mirrors []any, s router.Split) int32 {
	isCanary := map[string]bool{}
	for _, b := range s.Canary {
		isCanary[b.Name] = true
	}
	for _, m := range mirrors {
		e, _ := m.(map[string]any)
		if isCanary[fmt.Sprint(e["name"])] {
			return int32(number(e["percent"]))
		}
	}
	return 0
}

// Release hands Traefik's routing back when the Canary is deleted. The
// TraefikService Sluice owns sends everything to backend (the apex
// Service) and is no longer owned by the Canary, so the user's
// IngressRoute that references it keeps working; in IngressRoute mode the
// canary's entries are removed.
func (r *Router) Release(ctx context.Context, c *v1alpha1.Canary, backend router.Backend) error {
	t, err := spec(c)
	if err != nil {
		return err
	}
	_, canary := router.Backends(c, r.Apex)
	if err := r.applyHeaderRoutes(ctx, c, router.Split{Canary: canary}); err != nil {
		return err
	}
	if t.IngressRoute != nil {
		return r.applyIngressRoute(ctx, c, t.IngressRoute, router.Split{Canary: canary, CanaryWeight: 0})
	}
	have, err := r.get(ctx, r.Client, "TraefikService", c.Namespace, ServiceName(c))
	if err != nil || have == nil {
		return err
	}
	patch := client.MergeFromWithOptions(have.DeepCopy(), client.MergeFromWithOptimisticLock{})
	_ = unstructured.SetNestedSlice(have.Object, entries(router.Split{Primary: []router.Backend{backend}}, c.Namespace), "spec", "weighted", "services")
	unstructured.RemoveNestedField(have.Object, "spec", "mirroring")
	router.Disown(have, c, r.Labels)
	if err := r.Client.Patch(ctx, have, patch, client.FieldOwner(v1alpha1.FieldOwner)); err != nil {
		return fmt.Errorf("release traefikservice %s/%s: %w", have.GetNamespace(), have.GetName(), err)
	}
	return nil
}
