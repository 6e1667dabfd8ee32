package nginx

import (
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/router"
)

// The RBAC the router needs (controller-gen collects it into
// config/rbac/role.yaml):
//
// +kubebuilder:rbac:groups=networking.k8s.io,resources=ingresses,verbs=get;list;watch;create;update;patch;delete

// Registration describes the NGINX Ingress router to the controller.
func Registration() router.Registration {
	return router.Registration{
		Name:    "nginx",
		Selects: func(s v1alpha1.RouterSpec) bool { return s.NGINX != nil },
		New: func(d router.Deps) router.Router {
			return &Router{Client: d.Client, User: d.UserReader(), Scheme: d.Scheme, Labels: d.Labels, Apex: d.Apex}
		},
		Kinds: []schema.GroupVersionKind{networkingv1.SchemeGroupVersion.WithKind("Ingress")},
		Refs: func(c *v1alpha1.Canary) []string {
			if n := c.Spec.Router.NGINX; n != nil {
				return []string{router.Ref("Ingress", n.Ingress)}
			}
			return nil
		},
		Validate: HeaderRegexProblem,
	}
}
