// Package gatewayapi routes a Canary's traffic with a Gateway API HTTPRoute
// that Sluice generates and owns: one rule whose backendRefs are the
// primary phase's and the canary phase's backends, weighted. It is written
// with server-side apply under Sluice's field manager.
package gatewayapi

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/engine"
	"github.com/sluice-dev/sluice/internal/router"
)

// Router is the Gateway API router.
type Router struct {
	// Client reads from the manager's cache and writes to the apiserver.
	Client client.Client
	Scheme *runtime.Scheme
	// Labels are put on the generated HTTPRoute (the controller's cache
	// selects on them).
	Labels map[string]string
}

var (
	_ router.Router  = (*Router)(nil)
	_ router.Checker = (*Router)(nil)
)

// Check refuses, before anything is written, a header regex that is not
// RE2 syntax (admitted before the CRD checked it). Whether a Gateway takes
// a regex is its implementation's call (the dialect is
// implementation-specific); one it refuses is read back as not accepted.
func (r *Router) Check(_ context.Context, c *v1alpha1.Canary) (string, string, error) {
	reason, msg := router.HeaderRegexProblem(c, router.SyntaxOK)
	return reason, msg, nil
}

// RouteName is the name of the generated HTTPRoute.
func RouteName(c *v1alpha1.Canary) string { return c.Name }

// Desired builds the HTTPRoute that carries the split.
func (r *Router) Desired(c *v1alpha1.Canary, s router.Split) (*gwv1.HTTPRoute, error) {
	spec := c.Spec.Router.GatewayAPI
	if spec == nil {
		return nil, fmt.Errorf("canary %s/%s: spec.router.gatewayAPI is not set", c.Namespace, c.Name)
	}
	sticky := s.StickyOn()
	build := func(withPrimary bool, canaryShare int32) []gwv1.HTTPBackendRef {
		var refs []gwv1.HTTPBackendRef
		add := func(backends []router.Backend, share int32, setCookie bool) {
			for i, w := range router.PhaseWeights(share, backends) {
				b := backends[i]
				ref := gwv1.HTTPBackendRef{
					BackendRef: gwv1.BackendRef{
						BackendObjectReference: gwv1.BackendObjectReference{
							Group: ptr(gwv1.Group(b.Group)),
							Kind:  ptr(gwv1.Kind(b.Kind)),
							Name:  gwv1.ObjectName(b.Name),
						},
						Weight: ptr(w),
					},
					Filters: b.Filters,
				}
				if setCookie {
					ref.Filters = withSetCookie(b.Filters, sticky)
				}
				if b.Namespace != c.Namespace {
					ref.Namespace = ptr(gwv1.Namespace(b.Namespace))
				}
				if b.Port != nil {
					ref.Port = ptr(gwv1.PortNumber(*b.Port))
				}
				refs = append(refs, ref)
			}
		}
		if withPrimary {
			add(s.Primary, 100-canaryShare, false)
		}
		// The canary's answers in the weighted rule set the sticky
		// cookie.
		add(s.Canary, canaryShare, withPrimary && sticky != nil)
		return refs
	}
	rules := []gwv1.HTTPRouteRule{{
		Matches:     spec.Matches,
		Filters:     withMirror(spec.Filters, c.Namespace, s),
		Timeouts:    spec.Timeouts,
		BackendRefs: build(true, s.CanaryWeight),
	}}
	if sticky != nil {
		// Requests with the cookie go to the canary: before the weighted
		// rule, and with more header matches than it.
		rules = append([]gwv1.HTTPRouteRule{{
			Matches:     withHeaders(spec.Matches, stickyMatch(sticky)),
			Filters:     spec.Filters,
			Timeouts:    spec.Timeouts,
			BackendRefs: build(false, 100),
		}}, rules...)
	}
	if hr := s.HeaderRoute; hr != nil {
		// The header route comes first: requests with these headers go to
		// the canary whatever the weight (Gateway API prefers the match
		// with more header matches anyway).
		rules = append([]gwv1.HTTPRouteRule{{
			Matches:     withHeaders(spec.Matches, hr),
			Filters:     spec.Filters,
			Timeouts:    spec.Timeouts,
			BackendRefs: build(false, 100),
		}}, rules...)
	}
	route := &gwv1.HTTPRoute{
		TypeMeta: metav1.TypeMeta{APIVersion: gwv1.GroupVersion.String(), Kind: "HTTPRoute"},
		ObjectMeta: metav1.ObjectMeta{
			Name: RouteName(c), Namespace: c.Namespace, Labels: r.Labels,
		},
		Spec: gwv1.HTTPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: spec.ParentRefs},
			Hostnames:       spec.Hostnames,
			Rules:           rules,
		},
	}
	hash, err := router.SpecHash(route.Spec)
	if err != nil {
		return nil, fmt.Errorf("httproute %s/%s: %w", c.Namespace, route.Name, err)
	}
	route.Annotations = map[string]string{router.SpecHashAnnotation: hash}
	if err := controllerutil.SetControllerReference(c, route, r.Scheme); err != nil {
		return nil, fmt.Errorf("httproute %s/%s: owner: %w", c.Namespace, route.Name, err)
	}
	return route, nil
}

// Apply writes the route with server-side apply unless the cached route
// already carries exactly this spec.
func (r *Router) Apply(ctx context.Context, c *v1alpha1.Canary, s router.Split) error {
	want, err := r.Desired(c, s)
	if err != nil {
		return err
	}
	var have gwv1.HTTPRoute
	err = r.Client.Get(ctx, client.ObjectKeyFromObject(want), &have)
	switch {
	case err == nil:
		if have.Annotations[router.SpecHashAnnotation] == want.Annotations[router.SpecHashAnnotation] &&
			canaryPercent(&have, s) == s.CanaryWeight {
			return nil
		}
	case !apierrors.IsNotFound(err):
		return fmt.Errorf("read httproute %s/%s: %w", want.Namespace, want.Name, err)
	}
	if err := r.Client.Patch(ctx, want, client.Apply, client.FieldOwner(v1alpha1.FieldOwner), client.ForceOwnership); err != nil {
		return fmt.Errorf("apply httproute %s/%s: %w", want.Namespace, want.Name, err)
	}
	return nil
}

// Observe reads the route back from the cache: the canary phase's share of
// the rule's weights, and whether a Gateway has refused or not yet taken
// the current generation.
func (r *Router) Observe(ctx context.Context, c *v1alpha1.Canary, s router.Split) (engine.Route, error) {
	var have gwv1.HTTPRoute
	key := client.ObjectKey{Namespace: c.Namespace, Name: RouteName(c)}
	if err := r.Client.Get(ctx, key, &have); err != nil {
		if apierrors.IsNotFound(err) {
			return engine.Route{}, nil
		}
		return engine.Route{}, fmt.Errorf("read httproute %s: %w", key, err)
	}
	out := engine.Route{Exists: true, CanaryWeight: canaryPercent(&have, s), HeaderRoute: headerRouteKey(&have, s.Sticky),
		MirrorPercent: mirrorPercent(&have, s)}
	// A route no Gateway reports on (no controller, as in tests) counts as
	// taken; one that a Gateway reports on counts once it is Accepted for
	// the current generation, whole: PartiallyInvalid says the Gateway
	// dropped rules it could not use (a header route whose regex its
	// dialect refuses, say) and runs the rest.
	for _, p := range have.Status.Parents {
		acc := meta.FindStatusCondition(p.Conditions, string(gwv1.RouteConditionAccepted))
		partial := meta.FindStatusCondition(p.Conditions, string(gwv1.RouteConditionPartiallyInvalid))
		switch {
		case acc == nil:
			out.Pending = fmt.Sprintf("parent %s has not reported Accepted", p.ParentRef.Name)
		case acc.ObservedGeneration < have.Generation:
			out.Pending = fmt.Sprintf("parent %s has not processed generation %d", p.ParentRef.Name, have.Generation)
		case acc.Status != metav1.ConditionTrue:
			out.Pending = fmt.Sprintf("parent %s does not accept the route: %s: %s", p.ParentRef.Name, acc.Reason, acc.Message)
		case partial != nil && partial.Status == metav1.ConditionTrue:
			out.Pending = fmt.Sprintf("parent %s accepts only part of the route: %s: %s", p.ParentRef.Name, partial.Reason, partial.Message)
		}
	}
	return out, nil
}

// canaryPercent is the canary phase's share of the first rule's weights,
// in percent (rounded), matching backends by group, kind, namespace and
// name.
func canaryPercent(route *gwv1.HTTPRoute, s router.Split) int32 {
	if len(route.Spec.Rules) == 0 {
		return 0
	}
	// The weighted rule is the last; a header route comes before it.
	rule := route.Spec.Rules[len(route.Spec.Rules)-1]
	key := func(group, kind, ns, name string) string {
		if kind == "" {
			kind = "Service"
		}
		return group + "/" + kind + "/" + ns + "/" + name
	}
	isCanary := map[string]bool{}
	for _, b := range s.Canary {
		isCanary[key(b.Group, b.Kind, b.Namespace, b.Name)] = true
	}
	var total, canary int64
	for _, ref := range rule.BackendRefs {
		w := int64(1)
		if ref.Weight != nil {
			w = int64(*ref.Weight)
		}
		ns := route.Namespace
		if ref.Namespace != nil {
			ns = string(*ref.Namespace)
		}
		total += w
		group, kind := "", ""
		if ref.Group != nil {
			group = string(*ref.Group)
		}
		if ref.Kind != nil {
			kind = string(*ref.Kind)
		}
		if isCanary[key(group, kind, ns, string(ref.Name))] {
			canary += w
		}
	}
	if total == 0 {
		return 0
	}
	return int32((canary*100 + total/2) / total)
}

func ptr[T any](v T) *T { return &v }

// withMirror adds, when the split mirrors, a RequestMirror filter that
// copies that share of the rule's requests to the canary phase's first
// backend (a mirror filter names one backend).
func withMirror(filters []gwv1.HTTPRouteFilter, ns string, s router.Split) []gwv1.HTTPRouteFilter {
	if s.MirrorPercent <= 0 || len(s.Canary) == 0 {
		return filters
	}
	b := s.Canary[0]
	ref := gwv1.BackendObjectReference{Group: ptr(gwv1.Group(b.Group)), Kind: ptr(gwv1.Kind(b.Kind)), Name: gwv1.ObjectName(b.Name)}
	if b.Namespace != ns {
		ref.Namespace = ptr(gwv1.Namespace(b.Namespace))
	}
	if b.Port != nil {
		ref.Port = ptr(gwv1.PortNumber(*b.Port))
	}
	out := append(make([]gwv1.HTTPRouteFilter, 0, len(filters)+1), filters...)
	return append(out, gwv1.HTTPRouteFilter{
		Type:          gwv1.HTTPRouteFilterRequestMirror,
		RequestMirror: &gwv1.HTTPRequestMirrorFilter{BackendRef: ref, Percent: ptr(s.MirrorPercent)},
	})
}

// isMirrorTo reports whether a filter mirrors to one of the canary
// phase's backends.
func isMirrorTo(f gwv1.HTTPRouteFilter, ns string, canary []router.Backend) bool {
	if f.Type != gwv1.HTTPRouteFilterRequestMirror || f.RequestMirror == nil {
		return false
	}
	ref := f.RequestMirror.BackendRef
	refNS := ns
	if ref.Namespace != nil {
		refNS = string(*ref.Namespace)
	}
	for _, b := range canary {
		if string(ref.Name) == b.Name && refNS == b.Namespace {
			return true
		}
	}
	return false
}

// mirrorPercent is the share the weighted rule mirrors to the canary
// phase (a mirror filter without a percent or fraction mirrors all).
func mirrorPercent(route *gwv1.HTTPRoute, s router.Split) int32 {
	if len(route.Spec.Rules) == 0 {
		return 0
	}
	for _, f := range route.Spec.Rules[len(route.Spec.Rules)-1].Filters {
		if !isMirrorTo(f, route.Namespace, s.Canary) {
			continue
		}
		if p := f.RequestMirror.Percent; p != nil {
			return *p
		}
		if fr := f.RequestMirror.Fraction; fr != nil && fr.Denominator != nil && *fr.Denominator > 0 {
			return fr.Numerator * 100 / *fr.Denominator
		}
		return 100
	}
	return 0
}

// withHeaders adds a header route's matches to each of the user's matches
// (or makes one match of them when there are none).
func withHeaders(matches []gwv1.HTTPRouteMatch, hr *v1alpha1.HeaderRoute) []gwv1.HTTPRouteMatch {
	var headers []gwv1.HTTPHeaderMatch
	for _, m := range hr.Headers() {
		h := gwv1.HTTPHeaderMatch{Name: gwv1.HTTPHeaderName(m.Name)}
		if m.Exact != nil {
			h.Type, h.Value = ptr(gwv1.HeaderMatchExact), *m.Exact
		} else if m.Regex != nil {
			h.Type, h.Value = ptr(gwv1.HeaderMatchRegularExpression), *m.Regex
		}
		headers = append(headers, h)
	}
	if len(matches) == 0 {
		return []gwv1.HTTPRouteMatch{{Headers: headers}}
	}
	out := make([]gwv1.HTTPRouteMatch, 0, len(matches))
	for _, m := range matches {
		m = *m.DeepCopy()
		m.Headers = append(m.Headers, headers...)
		out = append(out, m)
	}
	return out
}

// stickyMatch is the header match of a sticky canary's cookie.
func stickyMatch(st *router.Sticky) *v1alpha1.HeaderRoute {
	re := st.CookieRegex()
	return &v1alpha1.HeaderRoute{Match: []v1alpha1.HeaderMatch{{Name: "Cookie", Regex: &re}}}
}

// withSetCookie adds to a backend's filters one that sets the sticky
// cookie on its responses.
func withSetCookie(filters []gwv1.HTTPRouteFilter, st *router.Sticky) []gwv1.HTTPRouteFilter {
	out := append(make([]gwv1.HTTPRouteFilter, 0, len(filters)+1), filters...)
	return append(out, gwv1.HTTPRouteFilter{
		Type: gwv1.HTTPRouteFilterResponseHeaderModifier,
		ResponseHeaderModifier: &gwv1.HTTPHeaderFilter{Add: []gwv1.HTTPHeader{
			{Name: "Set-Cookie", Value: st.SetCookie()},
		}},
	})
}

// isStickyRule reports whether a rule is the sticky cookie's rule: its
// first match's last header is the cookie's regex on Cookie (a header
// step of the user's on Cookie is told apart by the regex).
func isStickyRule(rule gwv1.HTTPRouteRule, st *router.Sticky) bool {
	if st == nil || len(rule.Matches) == 0 || len(rule.Matches[0].Headers) == 0 {
		return false
	}
	h := rule.Matches[0].Headers[len(rule.Matches[0].Headers)-1]
	return h.Name == "Cookie" && h.Type != nil && *h.Type == gwv1.HeaderMatchRegularExpression && h.Value == st.CookieRegex()
}

// headerRouteKey is engine.HeaderRouteKey of the header route a generated
// route carries: its first rule's Sluice headers when it has two rules
// and the first is not the sticky cookie's.
func headerRouteKey(route *gwv1.HTTPRoute, st *router.Sticky) string {
	if len(route.Spec.Rules) < 2 || len(route.Spec.Rules[0].Matches) == 0 || isStickyRule(route.Spec.Rules[0], st) {
		return ""
	}
	m := route.Spec.Rules[0].Matches[0]
	// The user's own header matches come first; Sluice's follow.
	n := len(m.Headers) - userHeaders(route.Spec.Rules[len(route.Spec.Rules)-1].Matches)
	if n <= 0 {
		return ""
	}
	hr := &v1alpha1.HeaderRoute{}
	for _, h := range m.Headers[len(m.Headers)-n:] {
		v := h.Value
		hm := v1alpha1.HeaderMatch{Name: string(h.Name)}
		if h.Type != nil && *h.Type == gwv1.HeaderMatchRegularExpression {
			hm.Regex = &v
		} else {
			hm.Exact = &v
		}
		hr.Match = append(hr.Match, hm)
	}
	return engine.HeaderRouteKey(hr)
}

// userHeaders is the number of header matches of the user's first match.
func userHeaders(matches []gwv1.HTTPRouteMatch) int {
	if len(matches) == 0 {
		return 0
	}
	return len(matches[0].Headers)
}

// Release hands the generated route over to the user when the Canary is
// deleted: every request goes to backend (the apex Service), and the route
// is no longer owned by the Canary nor labelled as Sluice's, so it outlives
// it.
func (r *Router) Release(ctx context.Context, c *v1alpha1.Canary, backend router.Backend) error {
	var have gwv1.HTTPRoute
	key := client.ObjectKey{Namespace: c.Namespace, Name: RouteName(c)}
	if err := r.Client.Get(ctx, key, &have); err != nil {
		return client.IgnoreNotFound(err)
	}
	patch := client.MergeFromWithOptions(have.DeepCopy(), client.MergeFromWithOptimisticLock{})
	ref := gwv1.HTTPBackendRef{BackendRef: gwv1.BackendRef{
		BackendObjectReference: gwv1.BackendObjectReference{Name: gwv1.ObjectName(backend.Name)},
		Weight:                 ptr(int32(1)),
	}}
	if backend.Port != nil {
		ref.Port = ptr(gwv1.PortNumber(*backend.Port))
	}
	_, canary := router.Backends(c, backend.Name)
	for i := range have.Spec.Rules {
		have.Spec.Rules[i].BackendRefs = []gwv1.HTTPBackendRef{ref}
		var filters []gwv1.HTTPRouteFilter
		for _, f := range have.Spec.Rules[i].Filters {
			if !isMirrorTo(f, have.Namespace, canary) {
				filters = append(filters, f)
			}
		}
		have.Spec.Rules[i].Filters = filters
	}
	router.Disown(&have, c, r.Labels)
	if err := r.Client.Patch(ctx, &have, patch, client.FieldOwner(v1alpha1.FieldOwner)); err != nil {
		return fmt.Errorf("release httproute %s: %w", key, err)
	}
	return nil
}
