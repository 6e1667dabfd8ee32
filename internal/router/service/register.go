package service

import (
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/router"
)

// The RBAC the router needs (controller-gen collects it into
// config/rbac/role.yaml):
//
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=endpoints,verbs=delete

// Name is the router's name: a Canary whose spec.router names none.
const Name = "service"

// Registration describes the no-router router to the controller.
func Registration() router.Registration {
	return router.Registration{
		Name:    Name,
		Selects: func(s v1alpha1.RouterSpec) bool { return s.NoRouter() },
		New: func(d router.Deps) router.Router {
			return &Router{Client: d.Client, Scheme: d.Scheme, Labels: d.Labels, Apex: d.Apex}
		},
		// The slices of the apex, -primary and -canary Services carry
		// the Services' sluice.dev/canary label (the EndpointSlice
		// controller copies a Service's labels), and so do Sluice's own.
		Kinds: []schema.GroupVersionKind{discoveryv1.SchemeGroupVersion.WithKind("EndpointSlice")},
	}
}
