package istio

import (
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/router"
)

// The RBAC the router needs (controller-gen collects it into
// config/rbac/role.yaml):
//
// +kubebuilder:rbac:groups=networking.istio.io,resources=virtualservices;destinationrules,verbs=get;list;watch;create;update;patch;delete

// Registration describes the Istio router to the controller.
func Registration() router.Registration {
	return router.Registration{
		Name:    "istio",
		Selects: func(s v1alpha1.RouterSpec) bool { return s.Istio != nil },
		New: func(d router.Deps) router.Router {
			return &Router{Client: d.Client, Reader: d.Reader, User: d.UserReader(), Scheme: d.Scheme, Labels: d.Labels, Apex: d.Apex}
		},
		Validate:       HeaderRegexProblem,
		Kinds:          []schema.GroupVersionKind{GVK(VirtualService), GVK(DestinationRule)},
		Refs:           Refs,
		BuiltinQueries: builtinQueries,
	}
}

// Refs are the user's VirtualService and DestinationRule a Canary edits in
// place; none for the VirtualService Sluice owns.
func Refs(c *v1alpha1.Canary) []string {
	is := c.Spec.Router.Istio
	if is == nil || is.VirtualService == nil || is.DestinationRule == nil {
		return nil
	}
	return []string{router.Ref(VirtualService, is.VirtualService.Name), router.Ref(DestinationRule, is.DestinationRule.Name)}
}

// builtinQueries are the builtin metrics asked of Istio's standard
// metrics, which every sidecar reports without configuration:
// istio_requests_total{response_code} and
// istio_request_duration_milliseconds_bucket, as the canary's pods report
// them (reporter destination). Istio names a pod's workload after its
// Deployment, so the canary's pods are destination_workload <target>
// (the primary's are <target>-primary), in both shapes.
var builtinQueries = map[string]string{
	"request-success-rate": `100 * sum(rate(istio_requests_total{` + canaryWorkload + `,response_code!~"5.."}[{{ interval }}])) / sum(rate(istio_requests_total{` + canaryWorkload + `}[{{ interval }}]))`,
	"request-duration":     `histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{` + canaryWorkload + `}[{{ interval }}])) by (le))`,
}

const canaryWorkload = `reporter="destination",destination_workload_namespace="{{ namespace }}",destination_workload="{{ target }}"`
