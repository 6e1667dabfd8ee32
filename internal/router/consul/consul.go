// Package consul routes a Canary's traffic with consul-k8s config entries
// (consul.hashicorp.com/v1alpha1): the primary's and the canary's pods
// register under one Consul service, told apart by the service meta
// <metaKey> = their pod template's revision (see RevisionAnnotation);
// a ServiceResolver's stable and canary subsets select them by that value,
// a ServiceSplitter splits between the two subsets, and, for A/B steps, a
// ServiceRouter sends requests with given headers to the canary subset.
//
// The ServiceResolver may be Sluice's (created and owned when none exists)
// or the user's: then Sluice changes only the filters of its two subsets,
// with a read-modify-update that retries on conflict, and leaves every
// other subset and field alone. A ServiceSplitter or ServiceRouter of the
// user's is used only when it holds nothing but Sluice's two subsets;
// otherwise the Canary is stalled with the reason, and nothing is written.
//
// consul-k8s reports each entry Synced once Consul has it. With
// waitForSync (the default) a route is read back as carried only when
// every entry is Synced with a lastSyncedTime no older than Sluice's last
// write to it (from the object's managedFields, read past the cache; both
// have one-second precision).
//
// Both copies' pods join the one Consul service only through the
// connect-service annotation on the target's template (see
// ConnectServiceAnnotation); Check refuses a target without it.
package consul

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
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

// Kinds of consul-k8s config entries Sluice writes.
const (
	Resolver = "ServiceResolver"
	Splitter = "ServiceSplitter"
	Routes   = "ServiceRouter"
)

const maxConflictRetries = 5

// GVK of a consul-k8s kind.
func GVK(kind string) schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: "consul.hashicorp.com", Version: "v1alpha1", Kind: kind}
}

// Router is the Consul router.
type Router struct {
	// Client reads (unstructured: from the API) and writes.
	Client client.Client
	// Reader reads past any cache, for re-reads after a conflict and
	// managedFields.
	Reader client.Reader
	// User reads the splitter, router and resolver, which may be the
	// user's (labelling them so that the cache holds them); nil means
	// Client.
	User   client.Reader
	Scheme *runtime.Scheme
	Labels map[string]string
	// Apex is the Canary's apex Service: the Consul service by default.
	Apex string
}

var _ router.Router = (*Router)(nil)

// settings are spec.router.consul with defaults applied.
type settings struct {
	service, key, stable, canary string
	wait                         bool
}

func (r *Router) settings(c *v1alpha1.Canary) (settings, error) {
	cr := c.Spec.Router.Consul
	if cr == nil {
		return settings{}, fmt.Errorf("canary %s/%s: spec.router.consul is not set", c.Namespace, c.Name)
	}
	return settings{service: cr.GetServiceName(r.Apex), key: cr.GetMetaKey(), stable: cr.GetStableSubset(),
		canary: cr.GetCanarySubset(), wait: cr.GetWaitForSync()}, nil
}

// Filter is a subset's filter: the service meta key equal to revision.
func Filter(key, revision string) string {
	return fmt.Sprintf("Service.Meta.%s == %q", key, revision)
}

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

// user reads the user's objects.
func (r *Router) user() client.Reader {
	if r.User != nil {
		return r.User
	}
	return r.Client
}

// filters are the subsets' filters for a split.
func filters(st settings, s router.Split) (stable, canary string) {
	canaryRev := s.CanaryRevision
	if canaryRev == "" {
		canaryRev = s.PrimaryRevision
	}
	return Filter(st.key, s.PrimaryRevision), Filter(st.key, canaryRev)
}

// HeaderRegexProblem reports a header regex the Envoy proxies would
// refuse: Consul accepts the ServiceRouter (consul-k8s marks it Synced)
// and each proxy then rejects the route configuration.
func HeaderRegexProblem(c *v1alpha1.Canary) (reason, message string) {
	limit := int(c.Spec.Router.Consul.GetRegexMaxProgramSize())
	return router.HeaderRegexProblem(c, router.ProgramSizeAtMost(limit, "spec.router.consul.regexMaxProgramSize (with the proxies' re2.max_program_size.error_level)"))
}

// Check reports a header regex the proxies would refuse, a user's
// ServiceSplitter or ServiceRouter that Sluice cannot use without
// overwriting someone else's routing, then a target whose pods would not
// join the Consul service (see connectService).
func (r *Router) Check(ctx context.Context, c *v1alpha1.Canary) (string, string, error) {
	st, err := r.settings(c)
	if err != nil {
		return "", "", err
	}
	if reason, msg := HeaderRegexProblem(c); msg != "" {
		return reason, msg, nil
	}
	sp, err := r.get(ctx, r.user(), Splitter, c.Namespace, st.service)
	if err != nil {
		return "", "", err
	}
	if sp != nil && !router.OwnedBy(sp, c) {
		if other := foreignSplits(sp, st); other != "" {
			return v1alpha1.ReasonSplitterNotOwned, fmt.Sprintf("servicesplitter %s/%s is not Sluice's and splits to %s besides subsets %s and %s: Sluice does not overwrite it; delete it (Sluice then owns one) or leave it only those two subsets",
				c.Namespace, st.service, other, st.stable, st.canary), nil
		}
	}
	hasHeaders := false
	for _, s := range c.Spec.Strategy.Steps {
		hasHeaders = hasHeaders || s.SetHeaderRoute != nil
	}
	if hasHeaders {
		rt, err := r.get(ctx, r.user(), Routes, c.Namespace, st.service)
		if err != nil {
			return "", "", err
		}
		if rt != nil && !router.OwnedBy(rt, c) {
			return v1alpha1.ReasonRouterNotOwned, fmt.Sprintf("servicerouter %s/%s is not Sluice's: header steps need a ServiceRouter Sluice owns; delete it or remove the setHeaderRoute steps", c.Namespace, st.service), nil
		}
	}
	return r.connectService(ctx, c, st)
}

// ConnectServiceAnnotation names, on a pod, the Consul service it
// registers as. Without it consul-k8s registers a pod under the name of
// each Kubernetes Service that selects it, and a value listing several
// services (a multi-port pod) is ignored the same way.
const ConnectServiceAnnotation = "consul.hashicorp.com/connect-service"

// connectService checks that the target's pods register as the Consul
// service whose subsets Sluice splits. Only the annotation does that: the
// canary's pods are selected by the <apex>-canary Service alone, so without
// it they would register as that service and the canary subset would hold
// no pod, every request split to it failing. A missing target is left to
// the engine. The target is read from the cache, or past it before Sluice
// has labelled it.
func (r *Router) connectService(ctx context.Context, c *v1alpha1.Canary, st settings) (string, string, error) {
	key := client.ObjectKey{Namespace: c.Namespace, Name: c.Spec.TargetRef.Name}
	var d appsv1.Deployment
	err := r.Client.Get(ctx, key, &d)
	if apierrors.IsNotFound(err) && r.Reader != nil {
		err = r.Reader.Get(ctx, key, &d)
	}
	switch {
	case apierrors.IsNotFound(err):
		return "", "", nil
	case err != nil:
		return "", "", fmt.Errorf("canary %s/%s: read deployment %s: %w", c.Namespace, c.Name, key, err)
	}
	got, set := d.Spec.Template.Annotations[ConnectServiceAnnotation]
	if got == st.service {
		return "", "", nil
	}
	field := fmt.Sprintf("deployment %s: spec.template.metadata.annotations[%q]", key, ConnectServiceAnnotation)
	want := fmt.Sprintf("Consul service %q (spec.router.consul.serviceName)", st.service)
	var msg string
	switch {
	case !set || got == "":
		msg = fmt.Sprintf("%s is not set, so consul-k8s registers each pod under the Kubernetes Service that selects it: the canary's pods as %q, outside %s, whose canary subset would hold no pod; set it to %q",
			field, r.Apex+"-canary", want, st.service)
	case strings.Contains(got, ","):
		msg = fmt.Sprintf("%s is %q: with several services consul-k8s registers each pod under the Kubernetes Service that selects it, outside %s; set it to %q",
			field, got, want, st.service)
	default:
		msg = fmt.Sprintf("%s is %q, so the pods register as Consul service %q, outside %s; set it to %q, or spec.router.consul.serviceName to %q",
			field, got, got, want, st.service, got)
	}
	return v1alpha1.ReasonConnectServiceMismatch, msg, nil
}

// foreignSplits names a splitter's splits that are not one of Sluice's two
// subsets of the service, "" when there are none.
func foreignSplits(sp *unstructured.Unstructured, st settings) string {
	splits, _, _ := unstructured.NestedSlice(sp.Object, "spec", "splits")
	var other []string
	for _, x := range splits {
		e, _ := x.(map[string]any)
		svc, _ := e["service"].(string)
		sub, _ := e["serviceSubset"].(string)
		if (svc == "" || svc == st.service) && (sub == st.stable || sub == st.canary) {
			continue
		}
		other = append(other, fmt.Sprintf("%s/%s", orDefault(svc, st.service), orDefault(sub, "(default subset)")))
	}
	return strings.Join(other, ", ")
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Apply makes the config entries carry the split.
func (r *Router) Apply(ctx context.Context, c *v1alpha1.Canary, s router.Split) error {
	st, err := r.settings(c)
	if err != nil {
		return err
	}
	stableF, canaryF := filters(st, s)
	if err := r.applyResolver(ctx, c, st, stableF, canaryF); err != nil {
		return err
	}
	if err := r.applySplitter(ctx, c, st, s.CanaryWeight); err != nil {
		return err
	}
	return r.applyRoutes(ctx, c, st, s.HeaderRoute)
}

func (r *Router) applyResolver(ctx context.Context, c *v1alpha1.Canary, st settings, stableF, canaryF string) error {
	have, err := r.get(ctx, r.user(), Resolver, c.Namespace, st.service)
	if err != nil {
		return err
	}
	if have == nil || router.OwnedBy(have, c) {
		spec := map[string]any{"defaultSubset": st.stable, "subsets": map[string]any{
			st.stable: map[string]any{"filter": stableF, "onlyPassing": true},
			st.canary: map[string]any{"filter": canaryF, "onlyPassing": true},
		}}
		return router.ApplyOwned(ctx, r.Client, r.Scheme, c, have, router.Owned{GVK: GVK(Resolver), Name: st.service, Labels: r.Labels, Spec: spec})
	}
	// The user's resolver: only the two subsets' filters change.
	return r.update(ctx, have, func(u *unstructured.Unstructured) bool {
		changed := false
		for sub, f := range map[string]string{st.stable: stableF, st.canary: canaryF} {
			cur, _, _ := unstructured.NestedString(u.Object, "spec", "subsets", sub, "filter")
			if cur != f {
				_ = unstructured.SetNestedField(u.Object, f, "spec", "subsets", sub, "filter")
				changed = true
			}
		}
		return changed
	})
}

// update read-modify-updates a user's object: mutate reports whether it
// changed anything; a conflict reads again (past the cache) and retries.
func (r *Router) update(ctx context.Context, u *unstructured.Unstructured, mutate func(*unstructured.Unstructured) bool) error {
	kind, ns, name := u.GetKind(), u.GetNamespace(), u.GetName()
	for attempt := 0; ; attempt++ {
		if !mutate(u) {
			return nil
		}
		err := r.Client.Update(ctx, u, client.FieldOwner(v1alpha1.FieldOwner))
		switch {
		case err == nil:
			return nil
		case apierrors.IsConflict(err) && attempt < maxConflictRetries:
			if u, err = r.get(ctx, r.Reader, kind, ns, name); err != nil || u == nil {
				return err
			}
		default:
			return fmt.Errorf("update %s %s/%s: %w", strings.ToLower(kind), ns, name, err)
		}
	}
}

func (r *Router) applySplitter(ctx context.Context, c *v1alpha1.Canary, st settings, w int32) error {
	have, err := r.get(ctx, r.user(), Splitter, c.Namespace, st.service)
	if err != nil {
		return err
	}
	splits := []any{
		map[string]any{"serviceSubset": st.stable, "weight": int64(100 - w)},
		map[string]any{"serviceSubset": st.canary, "weight": int64(w)},
	}
	if have == nil || router.OwnedBy(have, c) {
		return router.ApplyOwned(ctx, r.Client, r.Scheme, c, have, router.Owned{GVK: GVK(Splitter), Name: st.service, Labels: r.Labels,
			Spec: map[string]any{"splits": splits}})
	}
	if other := foreignSplits(have, st); other != "" {
		return fmt.Errorf("servicesplitter %s/%s is not Sluice's and splits to %s: not overwritten", c.Namespace, st.service, other)
	}
	return r.update(ctx, have, func(u *unstructured.Unstructured) bool {
		cur, _, _ := unstructured.NestedSlice(u.Object, "spec", "splits")
		if splitWeight(cur, st.canary) == float64(w) && splitWeight(cur, st.stable) == float64(100-w) {
			return false
		}
		_ = unstructured.SetNestedSlice(u.Object, splits, "spec", "splits")
		return true
	})
}

// splitWeight is the weight of a subset's split (-1 when it has none).
func splitWeight(splits []any, subset string) float64 {
	for _, x := range splits {
		e, _ := x.(map[string]any)
		if e["serviceSubset"] == subset {
			switch v := e["weight"].(type) {
			case int64:
				return float64(v)
			case float64:
				return v
			}
			return 0
		}
	}
	return -1
}

func (r *Router) applyRoutes(ctx context.Context, c *v1alpha1.Canary, st settings, hr *v1alpha1.HeaderRoute) error {
	// Without a header route only Sluice's own router matters (it goes):
	// read from the cache, never past it for a router nobody made.
	rd := r.user()
	if hr == nil {
		rd = r.Client
	}
	have, err := r.get(ctx, rd, Routes, c.Namespace, st.service)
	if err != nil {
		return err
	}
	if hr == nil {
		if have != nil && router.OwnedBy(have, c) {
			if err := r.Client.Delete(ctx, have); client.IgnoreNotFound(err) != nil {
				return fmt.Errorf("delete servicerouter %s/%s: %w", c.Namespace, st.service, err)
			}
		}
		return nil
	}
	if have != nil && !router.OwnedBy(have, c) {
		return fmt.Errorf("servicerouter %s/%s is not Sluice's: header steps need one Sluice owns", c.Namespace, st.service)
	}
	var headers []any
	for _, m := range hr.Headers() {
		h := map[string]any{"name": m.Name}
		if m.Exact != nil {
			h["exact"] = *m.Exact
		} else if m.Regex != nil {
			h["regex"] = *m.Regex
		}
		headers = append(headers, h)
	}
	spec := map[string]any{"routes": []any{map[string]any{
		"match":       map[string]any{"http": map[string]any{"header": headers}},
		"destination": map[string]any{"service": st.service, "serviceSubset": st.canary},
	}}}
	return router.ApplyOwned(ctx, r.Client, r.Scheme, c, have, router.Owned{GVK: GVK(Routes), Name: st.service, Labels: r.Labels, Spec: spec})
}

// Observe reads the entries back: the canary subset's weight, the header
// route, and, pending, subsets not yet following the revisions or entries
// consul-k8s has not synced since Sluice's last write.
func (r *Router) Observe(ctx context.Context, c *v1alpha1.Canary, s router.Split) (engine.Route, error) {
	st, err := r.settings(c)
	if err != nil {
		return engine.Route{}, err
	}
	sp, err := r.get(ctx, r.user(), Splitter, c.Namespace, st.service)
	if err != nil || sp == nil {
		return engine.Route{}, err
	}
	splits, _, _ := unstructured.NestedSlice(sp.Object, "spec", "splits")
	out := engine.Route{Exists: true, CanaryWeight: int32(math.Round(math.Max(0, splitWeight(splits, st.canary))))}
	// Only Sluice's own router carries a header route: the cache has it.
	rt, err := r.get(ctx, r.Client, Routes, c.Namespace, st.service)
	if err != nil {
		return engine.Route{}, err
	}
	if rt != nil && router.OwnedBy(rt, c) {
		out.HeaderRoute = headerKey(rt)
	}
	res, err := r.get(ctx, r.user(), Resolver, c.Namespace, st.service)
	if err != nil {
		return engine.Route{}, err
	}
	stableF, canaryF := filters(st, s)
	if res == nil {
		out.Pending = fmt.Sprintf("serviceresolver %s/%s not found", c.Namespace, st.service)
		return out, nil
	}
	for sub, f := range map[string]string{st.stable: stableF, st.canary: canaryF} {
		if cur, _, _ := unstructured.NestedString(res.Object, "spec", "subsets", sub, "filter"); cur != f {
			out.Pending = fmt.Sprintf("serviceresolver %s/%s subset %s filters %q, want %q", c.Namespace, st.service, sub, cur, f)
			return out, nil
		}
	}
	if st.wait {
		objs := []*unstructured.Unstructured{res, sp}
		if rt != nil && router.OwnedBy(rt, c) {
			objs = append(objs, rt)
		}
		for _, u := range objs {
			if why := r.unsynced(u); why != "" {
				out.Pending = why
				return out, nil
			}
		}
	}
	return out, nil
}

// unsynced says why consul-k8s has not synced an entry since Sluice last
// wrote it ("" when it has), from the entry as read: the controller's
// cache keeps Sluice's own managed-fields entries, with their times.
func (r *Router) unsynced(u *unstructured.Unstructured) string {
	name := strings.ToLower(u.GetKind()) + " " + u.GetNamespace() + "/" + u.GetName()
	var written time.Time
	for _, m := range u.GetManagedFields() {
		if m.Manager == v1alpha1.FieldOwner && m.Subresource == "" && m.Time != nil && m.Time.After(written) {
			written = m.Time.Time
		}
	}
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	synced := false
	for _, x := range conds {
		cond, _ := x.(map[string]any)
		if cond["type"] == "Synced" {
			synced = cond["status"] == string(metav1.ConditionTrue)
		}
	}
	if !synced {
		return fmt.Sprintf("consul-k8s has not reported %s Synced", name)
	}
	lastS, _, _ := unstructured.NestedString(u.Object, "status", "lastSyncedTime")
	last, err := time.Parse(time.RFC3339, lastS)
	if err != nil || last.Before(written.Truncate(time.Second)) {
		return fmt.Sprintf("consul-k8s has not synced %s since Sluice wrote it at %s (last synced %q)", name, written.Format(time.RFC3339), lastS)
	}
	return ""
}

// headerKey is engine.HeaderRouteKey of Sluice's ServiceRouter.
func headerKey(u *unstructured.Unstructured) string {
	routes, _, _ := unstructured.NestedSlice(u.Object, "spec", "routes")
	if len(routes) == 0 {
		return ""
	}
	first, _ := routes[0].(map[string]any)
	headers, _, _ := unstructured.NestedSlice(first, "match", "http", "header")
	hr := &v1alpha1.HeaderRoute{}
	for _, x := range headers {
		h, _ := x.(map[string]any)
		m := v1alpha1.HeaderMatch{Name: fmt.Sprint(h["name"])}
		if v, ok := h["exact"].(string); ok {
			m.Exact = &v
		} else if v, ok := h["regex"].(string); ok {
			m.Regex = &v
		}
		hr.Match = append(hr.Match, m)
	}
	return engine.HeaderRouteKey(hr)
}

// Release hands the routing back when the Canary is deleted: Sluice's
// entries are deleted (Consul then routes to every instance of the
// service); a user's resolver keeps the filters last written.
func (r *Router) Release(ctx context.Context, c *v1alpha1.Canary, _ router.Backend) error {
	st, err := r.settings(c)
	if err != nil {
		return err
	}
	for _, kind := range []string{Routes, Splitter, Resolver} {
		u, err := r.get(ctx, r.user(), kind, c.Namespace, st.service)
		if err != nil {
			return err
		}
		if u == nil || !router.OwnedBy(u, c) {
			continue
		}
		if err := r.Client.Delete(ctx, u); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("delete %s %s/%s: %w", strings.ToLower(kind), c.Namespace, st.service, err)
		}
	}
	return nil
}
