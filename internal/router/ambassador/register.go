package ambassador

import (
	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/router"
)

// The RBAC the router needs (controller-gen collects it into
// config/rbac/role.yaml):
//
// +kubebuilder:rbac:groups=getambassador.io,resources=mappings,verbs=get;list;watch;create;update;patch;delete

// Registration describes the Ambassador / Emissary router to the
// controller.
func Registration() router.Registration {
	return router.Registration{
		Name:    "ambassador",
		Selects: func(s v1alpha1.RouterSpec) bool { return s.Ambassador != nil },
		New: func(d router.Deps) router.Router {
			return &Router{Client: d.Client, Scheme: d.Scheme, Mapper: d.Mapper, Labels: d.Labels, Apex: d.Apex, Now: d.Now}
		},
		Validate: HeaderRegexProblem,
	}
}
