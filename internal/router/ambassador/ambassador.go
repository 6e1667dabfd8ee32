package ambassador

import (
	"context"
	"fmt"
	"time"

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

// Annotations on a canary Mapping (besides router.SpecHashAnnotation).
const (
	// ZeroedAtAnnotation is when its weight went to 0: it is deleted once
	// the proxy had DefaultDrain to stop sending to it.
	ZeroedAtAnnotation = "sluice.dev/zeroed-at"
)

// DefaultDrain is how long a canary Mapping stays at weight 0 before it is
// deleted.
const DefaultDrain = 10 * time.Second

// DefaultVersions of getambassador.io Mapping, preferred first.
var DefaultVersions = []string{"v3alpha1", "v2"}

// Router is the Ambassador/Emissary router: a <mapping>-canary copy of each
// stable Mapping carries the canary's share.
type Router struct {
	Client client.Client
	Scheme *runtime.Scheme
	Mapper meta.RESTMapper
	Labels map[string]string
	// User reads the user's stable Mappings (labelling them so that the
	// cache holds them); nil means Client.
	User client.Reader
	// Apex is the Canary's apex Service, the stable Mappings' service.
	Apex string
	// Drain before a zeroed canary Mapping is deleted; 0 means DefaultDrain.
	Drain time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Versions of Mapping to look for, preferred first; nil means
	// DefaultVersions.
	Versions []string
}

var (
	_ router.Router  = (*Router)(nil)
	_ router.Checker = (*Router)(nil)
)

// HeaderRegexProblem reports a header regex Emissary's Envoy would refuse
// (Emissary then keeps its last good configuration for every Mapping).
func HeaderRegexProblem(c *v1alpha1.Canary) (reason, message string) {
	limit := int(c.Spec.Router.Ambassador.GetRegexMaxProgramSize())
	return router.HeaderRegexProblem(c, router.ProgramSizeAtMost(limit, "spec.router.ambassador.regexMaxProgramSize (with the Module's regex_max_size)"))
}

// GVK is Mapping in the first version the cluster serves.
func (r *Router) GVK() (schema.GroupVersionKind, error) {
	versions := r.Versions
	if versions == nil {
		versions = DefaultVersions
	}
	for _, v := range versions {
		gvk := schema.GroupVersionKind{Group: "getambassador.io", Version: v, Kind: "Mapping"}
		if _, err := r.Mapper.RESTMapping(gvk.GroupKind(), v); err == nil {
			return gvk, nil
		}
	}
	return schema.GroupVersionKind{}, fmt.Errorf("the cluster serves no getambassador.io Mapping (v3alpha1 or v2): install Emissary's CRDs")
}

// CanaryName is the name of a stable Mapping's canary copy.
func CanaryName(mapping string) string { return mapping + "-canary" }

// HeaderName is the name of a stable Mapping's header-route copy: it sends
// the requests with the A/B step's headers to the canary (Emissary prefers
// the Mapping with more constraints).
func HeaderName(mapping string) string { return mapping + "-canary-headers" }

// ShadowName is the name of a stable Mapping's mirror copy: a shadow
// Mapping whose weight is the share of requests copied to the canary
// (Emissary discards the shadow's answers).
func ShadowName(mapping string) string { return mapping + "-canary-shadow" }

func (r *Router) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Router) drain() time.Duration {
	if r.Drain > 0 {
		return r.Drain
	}
	return DefaultDrain
}

func mappings(c *v1alpha1.Canary) ([]string, error) {
	if a := c.Spec.Router.Ambassador; a != nil {
		return a.Mappings, nil
	}
	return nil, fmt.Errorf("canary %s/%s: spec.router.ambassador is not set", c.Namespace, c.Name)
}

func (r *Router) get(ctx context.Context, ns, name string) (*unstructured.Unstructured, error) {
	return r.read(ctx, r.Client, ns, name)
}

// getStable reads a user's stable Mapping.
func (r *Router) getStable(ctx context.Context, ns, name string) (*unstructured.Unstructured, error) {
	rd := client.Reader(r.Client)
	if r.User != nil {
		rd = r.User
	}
	return r.read(ctx, rd, ns, name)
}

func (r *Router) read(ctx context.Context, rd client.Reader, ns, name string) (*unstructured.Unstructured, error) {
	gvk, err := r.GVK()
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	if err := rd.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("read mapping %s/%s: %w", ns, name, err)
	}
	return u, nil
}

// canarySpec checks a stable Mapping and derives its canary copy's spec at
// weight w.
func (r *Router) canarySpec(stable *unstructured.Unstructured, i int, w int32) (map[string]any, error) {
	name := stable.GetNamespace() + "/" + stable.GetName()
	spec, ok := stable.Object["spec"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("mapping %s has no spec", name)
	}
	if _, has := spec["weight"]; has {
		return nil, fmt.Errorf("mapping %s (spec.router.ambassador.mappings[%d]) already carries a weight; Sluice puts the canary's weight on %s: remove spec.weight from the stable Mapping", name, i, CanaryName(stable.GetName()))
	}
	svc, _ := spec["service"].(string)
	canarySvc, err := RewriteService(svc, r.Apex, r.Apex+"-canary")
	if err != nil {
		return nil, fmt.Errorf("mapping %s (spec.router.ambassador.mappings[%d]) spec.service: %w; point it at %s", name, i, err, r.Apex)
	}
	out := runtime.DeepCopyJSON(spec)
	out["service"] = canarySvc
	out["weight"] = int64(w)
	return out, nil
}

// Apply makes each stable Mapping's canary copy carry the canary's share;
// at 0 the copy is zeroed, then deleted once the proxy drained it.
func (r *Router) Apply(ctx context.Context, c *v1alpha1.Canary, s router.Split) error {
	names, err := mappings(c)
	if err != nil {
		return err
	}
	gvk, err := r.GVK()
	if err != nil {
		return err
	}
	withdraw := s.CanaryWeight == 0 && s.HeaderRoute == nil && s.MirrorPercent == 0
	for i, name := range names {
		stable, err := r.getStable(ctx, c.Namespace, name)
		if err != nil {
			return err
		}
		if _, why := r.usable(stable, c, i, name); why != "" {
			if !withdraw {
				return fmt.Errorf("canary %s/%s: %s", c.Namespace, c.Name, why)
			}
			// A stable Mapping Sluice cannot use (see Check) never
			// stops the canary's copies from being taken away.
			if err := r.withdraw(ctx, c.Namespace, name); err != nil {
				return err
			}
			continue
		}
		if err := r.applyHeaders(ctx, c, gvk, stable, i, s.HeaderRoute); err != nil {
			return err
		}
		if err := r.applyShadow(ctx, c, gvk, stable, i, s.MirrorPercent); err != nil {
			return err
		}
		have, err := r.get(ctx, c.Namespace, CanaryName(name))
		if err != nil {
			return err
		}
		if s.CanaryWeight == 0 {
			if err := r.retire(ctx, have); err != nil {
				return err
			}
			continue
		}
		spec, err := r.canarySpec(stable, i, s.CanaryWeight)
		if err != nil {
			return err
		}
		if err := r.applyCopy(ctx, c, gvk, have, CanaryName(name), spec); err != nil {
			return err
		}
	}
	return nil
}

// withdraw takes away every copy of the stable Mapping name: the header
// and mirror copies at once, the weighted copy zeroed then drained.
func (r *Router) withdraw(ctx context.Context, ns, name string) error {
	for _, copyName := range []string{HeaderName(name), ShadowName(name)} {
		have, err := r.get(ctx, ns, copyName)
		if err != nil {
			return err
		}
		if err := r.remove(ctx, have); err != nil {
			return err
		}
	}
	have, err := r.get(ctx, ns, CanaryName(name))
	if err != nil {
		return err
	}
	return r.retire(ctx, have)
}

// usable says why Sluice cannot derive canary copies from the stable
// Mapping listed at spec.router.ambassador.mappings[i] (missing, already
// weighted, or not routing to the apex Service), with a reason, or two
// empty strings.
func (r *Router) usable(stable *unstructured.Unstructured, c *v1alpha1.Canary, i int, name string) (reason, why string) {
	if stable == nil {
		return v1alpha1.ReasonMappingNotFound, fmt.Sprintf("mapping %s/%s not found (spec.router.ambassador.mappings[%d]): create it or fix the name", c.Namespace, name, i)
	}
	if _, err := r.canarySpec(stable, i, 0); err != nil {
		return v1alpha1.ReasonMappingNotUsable, err.Error()
	}
	return "", ""
}

// Check reports a header regex Emissary's Envoy would refuse, and the
// first stable Mapping Sluice cannot use, with the field and the fix: the
// Canary stalls and no copy carries traffic until it is fixed.
func (r *Router) Check(ctx context.Context, c *v1alpha1.Canary) (string, string, error) {
	if reason, msg := HeaderRegexProblem(c); msg != "" {
		return reason, msg, nil
	}
	names, err := mappings(c)
	if err != nil {
		return "", "", err
	}
	for i, name := range names {
		stable, err := r.getStable(ctx, c.Namespace, name)
		if err != nil {
			return "", "", err
		}
		if reason, why := r.usable(stable, c, i, name); why != "" {
			return reason, why, nil
		}
	}
	return "", "", nil
}

// applyCopy server-side applies a Mapping Sluice owns, unless have
// already carries spec.
func (r *Router) applyCopy(ctx context.Context, c *v1alpha1.Canary, gvk schema.GroupVersionKind, have *unstructured.Unstructured, name string, spec map[string]any) error {
	return router.ApplyOwned(ctx, r.Client, r.Scheme, c, have, router.Owned{GVK: gvk, Name: name, Labels: r.Labels, Spec: spec})
}

// applyHeaders keeps (or deletes) the header-route copy of a stable
// Mapping: the canary Service, no weight, and the step's headers as
// `headers` (exact) and `regex_headers`.
func (r *Router) applyHeaders(ctx context.Context, c *v1alpha1.Canary, gvk schema.GroupVersionKind, stable *unstructured.Unstructured, i int, hr *v1alpha1.HeaderRoute) error {
	have, err := r.get(ctx, c.Namespace, HeaderName(stable.GetName()))
	if err != nil {
		return err
	}
	if hr == nil {
		return r.remove(ctx, have)
	}
	spec, err := r.canarySpec(stable, i, 0)
	if err != nil {
		return err
	}
	delete(spec, "weight")
	exact, regex := map[string]any{}, map[string]any{}
	for _, m := range hr.Headers() {
		switch {
		case m.Exact != nil:
			exact[m.Name] = *m.Exact
		case m.Regex != nil:
			regex[m.Name] = *m.Regex
		}
	}
	if len(exact) > 0 {
		spec["headers"] = exact
	}
	if len(regex) > 0 {
		spec["regex_headers"] = regex
	}
	return r.applyCopy(ctx, c, gvk, have, HeaderName(stable.GetName()), spec)
}

// applyShadow keeps (or deletes, at 0) the mirror copy of a stable
// Mapping. A shadow carries no client traffic, so it is deleted at once.
func (r *Router) applyShadow(ctx context.Context, c *v1alpha1.Canary, gvk schema.GroupVersionKind, stable *unstructured.Unstructured, i int, percent int32) error {
	have, err := r.get(ctx, c.Namespace, ShadowName(stable.GetName()))
	if err != nil {
		return err
	}
	if percent <= 0 {
		return r.remove(ctx, have)
	}
	spec, err := r.canarySpec(stable, i, percent)
	if err != nil {
		return err
	}
	spec["shadow"] = true
	return r.applyCopy(ctx, c, gvk, have, ShadowName(stable.GetName()), spec)
}

// headerKey is engine.HeaderRouteKey of a header-route copy.
func headerKey(u *unstructured.Unstructured) string {
	hr := &v1alpha1.HeaderRoute{}
	for _, f := range []string{"headers", "regex_headers"} {
		m, _, _ := unstructured.NestedStringMap(u.Object, "spec", f)
		for k, v := range m {
			v := v
			hm := v1alpha1.HeaderMatch{Name: k}
			if f == "headers" {
				hm.Exact = &v
			} else {
				hm.Regex = &v
			}
			hr.Match = append(hr.Match, hm)
		}
	}
	return engine.HeaderRouteKey(hr)
}

// retire zeroes a canary Mapping, then deletes it once it drained.
func (r *Router) retire(ctx context.Context, have *unstructured.Unstructured) error {
	if have == nil {
		return nil
	}
	w, _, _ := unstructured.NestedInt64(have.Object, "spec", "weight")
	at, err := time.Parse(time.RFC3339, have.GetAnnotations()[ZeroedAtAnnotation])
	switch {
	case w != 0 || err != nil:
		patch := client.MergeFrom(have.DeepCopy())
		_ = unstructured.SetNestedField(have.Object, int64(0), "spec", "weight")
		ann := have.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann[ZeroedAtAnnotation] = r.now().UTC().Format(time.RFC3339)
		delete(ann, router.SpecHashAnnotation)
		have.SetAnnotations(ann)
		if err := r.Client.Patch(ctx, have, patch, client.FieldOwner(v1alpha1.FieldOwner)); err != nil {
			return fmt.Errorf("zero mapping %s/%s: %w", have.GetNamespace(), have.GetName(), err)
		}
	case !r.now().Before(at.Add(r.drain())):
		return r.remove(ctx, have)
	}
	return nil
}

// remove deletes a Mapping Sluice owns, if there is one.
func (r *Router) remove(ctx context.Context, have *unstructured.Unstructured) error {
	if have == nil {
		return nil
	}
	if err := r.Client.Delete(ctx, have); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("delete mapping %s/%s: %w", have.GetNamespace(), have.GetName(), err)
	}
	return nil
}

// Observe reads back the canary's share: the weight of the canary copies
// (all equal). A copy still draining at 0, or a stable Mapping Sluice
// cannot use, is reported as pending, so nothing moves on until it is
// resolved.
func (r *Router) Observe(ctx context.Context, c *v1alpha1.Canary, s router.Split) (engine.Route, error) {
	names, err := mappings(c)
	if err != nil {
		return engine.Route{}, err
	}
	out := engine.Route{Exists: true}
	var first *engine.Route // what the first usable Mapping's copies carry
	for i, name := range names {
		stable, err := r.getStable(ctx, c.Namespace, name)
		if err != nil {
			return engine.Route{}, err
		}
		if stable == nil {
			out.Pending = fmt.Sprintf("mapping %s/%s not found (spec.router.ambassador.mappings[%d])", c.Namespace, name, i)
			continue
		}
		if _, err := r.canarySpec(stable, i, 0); err != nil {
			out.Pending = err.Error()
			continue
		}
		got, draining, err := r.observeCopies(ctx, c.Namespace, name)
		if err != nil {
			return engine.Route{}, err
		}
		if draining != "" {
			out.Pending = draining
		}
		if first == nil {
			first = &got
			continue
		}
		if got != *first {
			// Copies written together read back apart: one Mapping's
			// write has not landed (or was undone); the route is not
			// carried as a whole.
			out.Pending = fmt.Sprintf("the copies of mapping %s/%s carry weight %d%%, header route %q, mirror %d%%, unlike those of %s (%d%%, %q, %d%%)",
				c.Namespace, name, got.CanaryWeight, got.HeaderRoute, got.MirrorPercent, names[0], first.CanaryWeight, first.HeaderRoute, first.MirrorPercent)
		}
	}
	if first != nil {
		out.CanaryWeight, out.HeaderRoute, out.MirrorPercent = first.CanaryWeight, first.HeaderRoute, first.MirrorPercent
	}
	return out, nil
}

// observeCopies reads what one stable Mapping's copies carry, and whether
// its canary copy is draining.
func (r *Router) observeCopies(ctx context.Context, ns, name string) (engine.Route, string, error) {
	var got engine.Route
	hdr, err := r.get(ctx, ns, HeaderName(name))
	if err != nil {
		return got, "", err
	}
	if hdr != nil {
		got.HeaderRoute = headerKey(hdr)
	}
	shadow, err := r.get(ctx, ns, ShadowName(name))
	if err != nil {
		return got, "", err
	}
	if shadow != nil {
		w, _, _ := unstructured.NestedInt64(shadow.Object, "spec", "weight")
		got.MirrorPercent = int32(w)
	}
	have, err := r.get(ctx, ns, CanaryName(name))
	if err != nil || have == nil {
		return got, "", err
	}
	w, _, _ := unstructured.NestedInt64(have.Object, "spec", "weight")
	got.CanaryWeight = int32(w)
	if w == 0 {
		return got, fmt.Sprintf("mapping %s/%s is draining at weight 0 before it is deleted", ns, have.GetName()), nil
	}
	return got, "", nil
}

// Release deletes the canary copies: the stable Mappings, which send to the
// apex Service, carry everything.
func (r *Router) Release(ctx context.Context, c *v1alpha1.Canary, _ router.Backend) error {
	names, err := mappings(c)
	if err != nil {
		return err
	}
	for _, name := range names {
		for _, copyName := range []string{CanaryName(name), HeaderName(name), ShadowName(name)} {
			have, err := r.get(ctx, c.Namespace, copyName)
			if err != nil {
				return err
			}
			if err := r.remove(ctx, have); err != nil {
				return err
			}
		}
	}
	return nil
}
