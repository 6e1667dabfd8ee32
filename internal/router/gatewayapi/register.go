package gatewayapi

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/router"
)

// The RBAC the router needs (controller-gen collects it into
// config/rbac/role.yaml):
//
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=httproutes,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=referencegrants,verbs=get;list;watch

// Registration describes the Gateway API router to the controller: the
// default, chosen when spec.router names no other.
func Registration() router.Registration {
	return router.Registration{
		Name:    "gatewayapi",
		Selects: func(s v1alpha1.RouterSpec) bool { return s.GatewayAPI != nil },
		New: func(d router.Deps) router.Router {
			return &Router{Client: d.Client, Scheme: d.Scheme, Labels: d.Labels}
		},
		Kinds: []schema.GroupVersionKind{gwv1.SchemeGroupVersion.WithKind("HTTPRoute")},
	}
}
