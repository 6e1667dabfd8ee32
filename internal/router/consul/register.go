package consul

import (
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/router"
	"github.com/sluice-dev/sluice/internal/workload"
)

// MetaPrefix prefixes the pod annotations consul-k8s turns into service
// meta.
const MetaPrefix = "consul.hashicorp.com/service-meta-"

// RevisionAnnotation is the pod-template annotation set to each copy's
// revision, which consul-k8s registers as service meta so that the
// resolver's subsets can tell the copies apart; "" without the consul
// router.
func RevisionAnnotation(c *v1alpha1.Canary) string {
	cr := c.Spec.Router.Consul
	if cr == nil {
		return ""
	}
	return MetaPrefix + cr.GetMetaKey()
}

// The RBAC the router needs (controller-gen collects it into
// config/rbac/role.yaml):
//
// +kubebuilder:rbac:groups=consul.hashicorp.com,resources=serviceresolvers;servicesplitters;servicerouters,verbs=get;list;watch;create;update;patch;delete

// Registration describes the Consul router to the controller.
func Registration() router.Registration {
	return router.Registration{
		Name:    "consul",
		Selects: func(s v1alpha1.RouterSpec) bool { return s.Consul != nil },
		New: func(d router.Deps) router.Router {
			return &Router{Client: d.Client, Reader: d.Reader, User: d.UserReader(), Scheme: d.Scheme, Labels: d.Labels, Apex: d.Apex}
		},
		Kinds:              []schema.GroupVersionKind{GVK(Splitter), GVK(Routes), GVK(Resolver)},
		Refs:               refs,
		Validate:           HeaderRegexProblem,
		RevisionAnnotation: RevisionAnnotation,
	}
}

// refs are the config entries named after the Consul service, which may be
// the user's.
func refs(c *v1alpha1.Canary) []string {
	cr := c.Spec.Router.Consul
	if cr == nil {
		return nil
	}
	svc := cr.GetServiceName(workload.ServiceName(c))
	return []string{router.Ref(Splitter, svc), router.Ref(Routes, svc), router.Ref(Resolver, svc)}
}
