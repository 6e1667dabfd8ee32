package ambassador

import (
	"k8s.io/apimachinery/pkg/runtime/schema"

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
			return &Router{Client: d.Client, User: d.UserReader(), Scheme: d.Scheme, Mapper: d.Mapper, Labels: d.Labels, Apex: d.Apex, Now: d.Now}
		},
		Kinds:    kinds(),
		Refs:     refs,
		Validate: HeaderRegexProblem,
	}
}

// kinds is Mapping in DefaultVersions' order, as GVK chooses.
func kinds() []schema.GroupVersionKind {
	out := make([]schema.GroupVersionKind, 0, len(DefaultVersions))
	for _, v := range DefaultVersions {
		out = append(out, schema.GroupVersionKind{Group: "getambassador.io", Version: v, Kind: "Mapping"})
	}
	return out
}

// refs are the user's stable Mappings.
func refs(c *v1alpha1.Canary) []string {
	a := c.Spec.Router.Ambassador
	if a == nil {
		return nil
	}
	out := make([]string, 0, len(a.Mappings))
	for _, m := range a.Mappings {
		out = append(out, router.Ref("Mapping", m))
	}
	return out
}
