package traefik

import (
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/router"
)

// The RBAC the router needs (controller-gen collects it into
// config/rbac/role.yaml):
//
// +kubebuilder:rbac:groups=traefik.io;traefik.containo.us,resources=traefikservices;ingressroutes,verbs=get;list;watch;create;update;patch;delete
//
// Middlewares are the user's: patch only adds the sluice.dev/canary label
// to the ones a Canary names, so that their changes reach it through the
// router cache's watch (found by running the tests under this role).
//
// +kubebuilder:rbac:groups=traefik.io;traefik.containo.us,resources=middlewares,verbs=get;list;watch;patch

// Registration describes the Traefik router to the controller.
func Registration() router.Registration {
	return router.Registration{
		Name:    "traefik",
		Selects: func(s v1alpha1.RouterSpec) bool { return s.Traefik != nil },
		New: func(d router.Deps) router.Router {
			return &Router{Client: d.Client, Reader: d.Reader, User: d.UserReader(), Scheme: d.Scheme, Mapper: d.Mapper, Labels: d.Labels, Apex: d.Apex}
		},
		Kinds:          kinds(),
		Refs:           refs,
		Validate:       HeaderRegexProblem,
		BuiltinQueries: builtinQueries,
	}
}

// kinds are Traefik's kinds in both groups, traefik.io preferred (as GVK
// chooses).
func kinds() []schema.GroupVersionKind {
	var out []schema.GroupVersionKind
	for _, g := range DefaultGroups {
		for _, k := range []string{"TraefikService", "IngressRoute", "Middleware"} {
			out = append(out, schema.GroupVersionKind{Group: g, Version: "v1alpha1", Kind: k})
		}
	}
	return out
}

// refs are the user's IngressRoute (in place) and canary Middlewares in
// the Canary's namespace.
func refs(c *v1alpha1.Canary) []string {
	t := c.Spec.Router.Traefik
	if t == nil {
		return nil
	}
	var out []string
	if t.IngressRoute != nil {
		out = append(out, router.Ref("IngressRoute", t.IngressRoute.Name))
	}
	for _, m := range t.CanaryMiddlewares {
		if m.GetNamespace(c.Namespace) == c.Namespace {
			out = append(out, router.Ref("Middleware", m.Name))
		}
	}
	return out
}

// builtinQueries are the builtin metrics asked of Traefik's own series for
// the canary Service: traefik_service_requests_total{code} and
// traefik_service_request_duration_seconds_bucket.
var builtinQueries = map[string]string{
	"request-success-rate": `100 * sum(rate(traefik_service_requests_total{service=~"` + canaryServiceSeries + `",code!~"5.."}[{{ interval }}])) / sum(rate(traefik_service_requests_total{service=~"` + canaryServiceSeries + `"}[{{ interval }}]))`,
	"request-duration":     `1000 * histogram_quantile(0.99, sum(rate(traefik_service_request_duration_seconds_bucket{service=~"` + canaryServiceSeries + `"}[{{ interval }}])) by (le))`,
}

// canaryServiceSeries matches the canary Service as Traefik's Kubernetes
// providers name it in traefik_service_* series: <ns>-<service>-<port>
// for the CRD provider (IngressRoute, TraefikService) and
// <ns>-<service>-http-<port> for the Gateway API provider, then the
// provider's suffix.
const canaryServiceSeries = `{{ namespace }}-{{ service }}-canary-(http-)?[0-9a-zA-Z]+@kubernetes(crd|gateway)`
