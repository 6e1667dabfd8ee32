// Package router defines what Sluice asks of a traffic router. Each router
// lives in its own package below this one and only translates: it writes
// the split it is given and reads back the split it carries; it decides
// nothing.
package router

import (
	"context"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/engine"
)

// Backend is one resolved backend of a phase (defaults applied).
type Backend struct {
	Group     string
	Kind      string
	Name      string
	Namespace string
	Port      *int32
	// Weight is relative to the phase's other backends.
	Weight  int32
	Filters []gwv1.HTTPRouteFilter
}

// Split is the traffic split a router must carry.
type Split struct {
	Primary []Backend
	Canary  []Backend
	// CanaryWeight is the canary phase's share in percent; the primary
	// phase gets the rest.
	CanaryWeight int32
	// HeaderRoute, when set, sends the requests matching it to the canary
	// phase, whatever the weight.
	HeaderRoute *v1alpha1.HeaderRoute
}

// Router carries a Canary's traffic.
type Router interface {
	// Apply makes the router carry the split. It writes nothing when the
	// router already does.
	Apply(ctx context.Context, c *v1alpha1.Canary, s Split) error
	// Observe reads back what the router carries for the Canary's phases.
	Observe(ctx context.Context, c *v1alpha1.Canary, s Split) (engine.Route, error)
	// Release hands the routing back when the Canary is deleted: all
	// traffic to backend (the apex Service), and nothing the user's
	// routing depends on is left owned by the Canary.
	Release(ctx context.Context, c *v1alpha1.Canary, backend Backend) error
}
