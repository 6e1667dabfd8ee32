package router

import (
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// Deps is what a router is built from: the controller's clients and the
// names of one Canary's objects.
type Deps struct {
	// Client reads from the manager's cache and writes to the apiserver.
	Client client.Client
	// Reader reads past the cache (a re-read after a conflict).
	Reader client.Reader
	// User reads the user's objects the router works on (an IngressRoute,
	// a Mapping, an Ingress, a resolver): from the cache when Sluice has
	// labelled them, else from the apiserver, labelling what it finds
	// (Labels) so that from then on the cache holds it and a change to it
	// wakes the Canary.
	User   client.Reader
	Scheme *runtime.Scheme
	Mapper meta.RESTMapper
	// Labels go on the objects the router owns (the controller's cache
	// selects on them).
	Labels map[string]string
	// Apex is the Canary's apex Service, which selects the primary pods.
	Apex string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Registration is a router as the controller, the check runner and lint
// know it. Each router package gives its own (its Registration function);
// internal/routers lists them. Optional capabilities are nil when the
// router has none.
type Registration struct {
	// Name names the router: in --builtin-metrics, in docs and errors.
	Name string
	// Selects says whether a Canary's spec.router chooses this router.
	Selects func(v1alpha1.RouterSpec) bool
	// New builds the router for one Canary.
	New func(Deps) Router

	// Validate finds what the router's proxy would refuse in the Canary
	// alone, without the cluster (lint runs it; the router's Check runs
	// it too): a CamelCase reason and a message naming the field, or two
	// empty strings.
	Validate func(*v1alpha1.Canary) (reason, message string)
	// RevisionAnnotation is the pod-template annotation the router needs
	// set to each copy's revision ("" for none): Consul tells the subsets
	// apart by service meta that consul-k8s takes from pod annotations.
	RevisionAnnotation func(*v1alpha1.Canary) string
	// Kinds are the kinds the router reads and writes through Deps.Client
	// and Deps.User, in order of preference: for each Kind name the
	// controller uses the first group and version listed that the
	// cluster serves (the router must choose the same). The controller
	// caches them (only the objects labelled with Deps.Labels' key) and
	// watches them once a Canary uses the router; a kind the cluster does
	// not serve is skipped.
	Kinds []schema.GroupVersionKind
	// Refs are the user's objects a Canary's router reads, as Ref(kind,
	// name) in the Canary's namespace: a change to one wakes the Canaries
	// that name it.
	Refs func(*v1alpha1.Canary) []string

	// BuiltinQueries are the builtin metrics' query templates asked of
	// the router's own series (Traefik's), by metric name.
	BuiltinQueries map[string]string
}

// UserReader is d.User, or d.Client when the router is built without one
// (in tests).
func (d Deps) UserReader() client.Reader {
	if d.User != nil {
		return d.User
	}
	return d.Client
}

// Ref names a user's object in a Registration's Refs.
func Ref(kind, name string) string { return kind + "/" + name }

// Registry is the routers a controller knows. The last one is the default,
// chosen when no other selects a Canary.
type Registry []Registration

// For returns the registration of the router the Canary selects.
func (rs Registry) For(c *v1alpha1.Canary) Registration {
	for _, r := range rs {
		if r.Selects != nil && r.Selects(c.Spec.Router) {
			return r
		}
	}
	return rs[len(rs)-1]
}

// Named returns the registration named name.
func (rs Registry) Named(name string) (Registration, bool) {
	for _, r := range rs {
		if r.Name == name {
			return r, true
		}
	}
	return Registration{}, false
}

// Names are the routers' names, in order.
func (rs Registry) Names() []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.Name)
	}
	return out
}
