// Package nginx routes a Canary's traffic with ingress-nginx's canary
// annotations: beside the user's Ingress (whose backends are the apex
// Service, which selects the primary pods), Sluice owns an
// <ingress>-canary Ingress with the same rules sending to the canary
// Service, marked nginx.ingress.kubernetes.io/canary, whose canary-weight
// is the canary's share; a header step adds canary-by-header with its
// value or pattern. ingress-nginx merges the two Ingresses into one
// upstream choice per request.
//
// ingress-nginx was retired in March 2026; this router serves the clusters
// that still run it.
package nginx

import (
	"context"
	"fmt"
	"maps"
	"strconv"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/engine"
	"github.com/sluice-dev/sluice/internal/router"
)

// ingress-nginx's canary annotations.
const (
	AnnotationCanary        = "nginx.ingress.kubernetes.io/canary"
	AnnotationWeight        = "nginx.ingress.kubernetes.io/canary-weight"
	AnnotationHeader        = "nginx.ingress.kubernetes.io/canary-by-header"
	AnnotationHeaderValue   = "nginx.ingress.kubernetes.io/canary-by-header-value"
	AnnotationHeaderPattern = "nginx.ingress.kubernetes.io/canary-by-header-pattern"
	AnnotationCookie        = "nginx.ingress.kubernetes.io/canary-by-cookie"
)

// Router is the NGINX Ingress router.
type Router struct {
	// Client reads from the manager's cache and writes to the apiserver.
	Client client.Client
	// User reads the user's Ingress (labelling it so that the cache holds
	// it); nil means Client.
	User   client.Reader
	Scheme *runtime.Scheme
	// Labels go on the canary Ingress.
	Labels map[string]string
	// Apex is the Canary's apex Service, the user's Ingress's backend.
	Apex string
}

var (
	_ router.Router  = (*Router)(nil)
	_ router.Checker = (*Router)(nil)
)

// CanaryName is the name of the canary Ingress beside the user's.
func CanaryName(ingress string) string { return ingress + "-canary" }

func ingressName(c *v1alpha1.Canary) (string, error) {
	if c.Spec.Router.NGINX == nil {
		return "", fmt.Errorf("canary %s/%s: spec.router.nginx is not set", c.Namespace, c.Name)
	}
	return c.Spec.Router.NGINX.Ingress, nil
}

// getUser reads the user's Ingress; nil when it does not exist.
func (r *Router) getUser(ctx context.Context, ns, name string) (*networkingv1.Ingress, error) {
	if r.User != nil {
		return r.read(ctx, r.User, ns, name)
	}
	return r.get(ctx, ns, name)
}

// get reads an Ingress Sluice owns; nil when it does not exist.
func (r *Router) get(ctx context.Context, ns, name string) (*networkingv1.Ingress, error) {
	return r.read(ctx, r.Client, ns, name)
}

func (r *Router) read(ctx context.Context, rd client.Reader, ns, name string) (*networkingv1.Ingress, error) {
	var in networkingv1.Ingress
	if err := rd.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &in); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("read ingress %s/%s: %w", ns, name, err)
	}
	return &in, nil
}

// HeaderRegexProblem reports a header regex that is not RE2 syntax: what
// the CRD admits. ingress-nginx matches canary-by-header-pattern with
// PCRE, which accepts every RE2 expression Sluice admits.
func HeaderRegexProblem(c *v1alpha1.Canary) (reason, message string) {
	return router.HeaderRegexProblem(c, router.SyntaxOK)
}

// Check refuses a configuration ingress-nginx would not carry as asked:
// the user's Ingress missing, or sending to no backend that is the apex
// Service (the canary Ingress's rules would then split nothing Sluice
// releases); and a header regex that is not RE2.
func (r *Router) Check(ctx context.Context, c *v1alpha1.Canary) (string, string, error) {
	name, err := ingressName(c)
	if err != nil {
		return "", "", err
	}
	in, err := r.getUser(ctx, c.Namespace, name)
	if err != nil {
		return "", "", err
	}
	if in == nil {
		return v1alpha1.ReasonIngressNotFound, fmt.Sprintf("spec.router.nginx.ingress: Ingress %s/%s not found; create it with the apex Service %q as its backend", c.Namespace, name, r.Apex), nil
	}
	if n := apexBackends(in, r.Apex); n == 0 {
		return v1alpha1.ReasonIngressBackendMismatch, fmt.Sprintf("spec.router.nginx.ingress: Ingress %s/%s sends to no backend Service %q (the apex Service); point its backends at it", c.Namespace, name, r.Apex), nil
	}
	reason, msg := HeaderRegexProblem(c)
	return reason, msg, nil
}

// apexBackends counts the Ingress's backends that are the apex Service.
func apexBackends(in *networkingv1.Ingress, apex string) int {
	n := 0
	visit(in, func(b *networkingv1.IngressBackend) {
		if b.Service != nil && b.Service.Name == apex {
			n++
		}
	})
	return n
}

// visit calls fn with every backend of the Ingress.
func visit(in *networkingv1.Ingress, fn func(*networkingv1.IngressBackend)) {
	if in.Spec.DefaultBackend != nil {
		fn(in.Spec.DefaultBackend)
	}
	for i := range in.Spec.Rules {
		if h := in.Spec.Rules[i].HTTP; h != nil {
			for j := range h.Paths {
				fn(&h.Paths[j].Backend)
			}
		}
	}
}

// desired is the canary Ingress for the split: the user's rules (and class)
// with the apex Service replaced by the canary Service, and the canary
// annotations.
func (r *Router) desired(c *v1alpha1.Canary, user *networkingv1.Ingress, s router.Split) (*networkingv1.Ingress, error) {
	spec := networkingv1.IngressSpec{IngressClassName: user.Spec.IngressClassName}
	if user.Spec.DefaultBackend != nil {
		spec.DefaultBackend = user.Spec.DefaultBackend.DeepCopy()
	}
	for _, rule := range user.Spec.Rules {
		spec.Rules = append(spec.Rules, *rule.DeepCopy())
	}
	out := &networkingv1.Ingress{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "Ingress"},
		ObjectMeta: metav1.ObjectMeta{Name: CanaryName(user.Name), Namespace: c.Namespace, Labels: maps.Clone(r.Labels)},
		Spec:       spec,
	}
	canary := r.Apex + "-canary"
	visit(out, func(b *networkingv1.IngressBackend) {
		if b.Service != nil && b.Service.Name == r.Apex {
			b.Service.Name = canary
		}
	})
	ann := map[string]string{AnnotationCanary: "true", AnnotationWeight: strconv.Itoa(int(s.CanaryWeight))}
	if hr := s.HeaderRoute; hr != nil && hr.Cookie != nil {
		// canary-by-cookie: the cookie's value always sends to the canary
		// (the CRD admits no other value with nginx).
		ann[AnnotationCookie] = hr.Cookie.Name
	} else if hr != nil && len(hr.Match) == 1 {
		m := hr.Match[0]
		ann[AnnotationHeader] = m.Name
		switch {
		case m.Exact != nil:
			ann[AnnotationHeaderValue] = *m.Exact
		case m.Regex != nil:
			ann[AnnotationHeaderPattern] = *m.Regex
		}
	}
	hash, err := router.SpecHash([]any{out.Spec, ann})
	if err != nil {
		return nil, fmt.Errorf("ingress %s/%s: %w", c.Namespace, out.Name, err)
	}
	ann[router.SpecHashAnnotation] = hash
	out.Annotations = ann
	if err := controllerutil.SetControllerReference(c, out, r.Scheme); err != nil {
		return nil, fmt.Errorf("ingress %s/%s: owner: %w", c.Namespace, out.Name, err)
	}
	return out, nil
}

// Apply makes the canary Ingress carry the split (server-side apply,
// skipped when its spec hash already matches).
func (r *Router) Apply(ctx context.Context, c *v1alpha1.Canary, s router.Split) error {
	name, err := ingressName(c)
	if err != nil {
		return err
	}
	user, err := r.getUser(ctx, c.Namespace, name)
	if err != nil {
		return err
	}
	if user == nil {
		return fmt.Errorf("canary %s/%s: ingress %s not found (spec.router.nginx.ingress)", c.Namespace, c.Name, name)
	}
	want, err := r.desired(c, user, s)
	if err != nil {
		return err
	}
	have, err := r.get(ctx, c.Namespace, want.Name)
	if err != nil {
		return err
	}
	if have != nil && have.Annotations[router.SpecHashAnnotation] == want.Annotations[router.SpecHashAnnotation] {
		return nil
	}
	if err := r.Client.Patch(ctx, want, client.Apply, client.FieldOwner(v1alpha1.FieldOwner), client.ForceOwnership); err != nil {
		return fmt.Errorf("apply ingress %s/%s: %w", c.Namespace, want.Name, err)
	}
	return nil
}

// Observe reads the canary Ingress back: its weight and header route.
func (r *Router) Observe(ctx context.Context, c *v1alpha1.Canary, _ router.Split) (engine.Route, error) {
	name, err := ingressName(c)
	if err != nil {
		return engine.Route{}, err
	}
	have, err := r.get(ctx, c.Namespace, CanaryName(name))
	if err != nil || have == nil {
		return engine.Route{}, err
	}
	out := engine.Route{Exists: true}
	if w, err := strconv.Atoi(have.Annotations[AnnotationWeight]); err == nil {
		out.CanaryWeight = int32(w)
	}
	if name := have.Annotations[AnnotationCookie]; name != "" {
		out.HeaderRoute = engine.HeaderRouteKey(&v1alpha1.HeaderRoute{Cookie: &v1alpha1.CookieMatch{Name: name}})
	} else if h := have.Annotations[AnnotationHeader]; h != "" {
		hr := &v1alpha1.HeaderRoute{Match: []v1alpha1.HeaderMatch{{Name: h}}}
		if p, ok := have.Annotations[AnnotationHeaderPattern]; ok {
			hr.Match[0].Regex = &p
		} else {
			v := have.Annotations[AnnotationHeaderValue]
			hr.Match[0].Exact = &v
		}
		out.HeaderRoute = engine.HeaderRouteKey(hr)
	}
	return out, nil
}

// Release deletes the canary Ingress: the user's Ingress sends to the apex
// Service, which the controller points at the copy that serves.
func (r *Router) Release(ctx context.Context, c *v1alpha1.Canary, _ router.Backend) error {
	name, err := ingressName(c)
	if err != nil {
		return err
	}
	have, err := r.get(ctx, c.Namespace, CanaryName(name))
	if err != nil || have == nil {
		return err
	}
	if err := r.Client.Delete(ctx, have); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("delete ingress %s/%s: %w", c.Namespace, have.Name, err)
	}
	return nil
}
