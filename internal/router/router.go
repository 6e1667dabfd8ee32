// Package router defines what Sluice asks of a traffic router. Each router
// lives in its own package below this one and only translates: it writes
// the split it is given and reads back the split it carries; it decides
// nothing.
package router

import (
	"context"
	"fmt"
	"time"

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
	// MirrorPercent is the share of the route's requests copied to the
	// canary phase (answers discarded); 0 for none.
	MirrorPercent int32
	// Sticky, when set, keeps the clients the canary has answered on it
	// while the canary has a share (spec.strategy.sessionAffinity).
	Sticky *Sticky
	// PrimaryRevision and CanaryRevision are the revisions the primary's
	// and the canary's pod templates run, for routers that select pods by
	// revision (consul).
	PrimaryRevision, CanaryRevision string
}

// Sticky is a sticky canary's cookie: the canary's responses set it, and
// requests that carry it go to the canary whatever the weight.
type Sticky struct {
	Cookie string
	MaxAge time.Duration
	// Value is the cookie's value: the canary's revision, so that a
	// cookie from an earlier release matches no later canary.
	Value string
}

// StickyOn is the split's Sticky while it keeps clients on the canary
// (the canary has a share), else nil.
func (s Split) StickyOn() *Sticky {
	if s.CanaryWeight > 0 {
		return s.Sticky
	}
	return nil
}

// SetCookie is the Set-Cookie header value the canary's responses carry.
func (s *Sticky) SetCookie() string {
	return fmt.Sprintf("%s=%s; Max-Age=%d; Path=/; HttpOnly", s.Cookie, s.Value, int64(s.MaxAge.Seconds()))
}

// CookieRegex matches a Cookie header that carries the cookie
// (v1alpha1.CookieRegex).
func (s *Sticky) CookieRegex() string { return v1alpha1.CookieRegex(s.Cookie, s.Value) }

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

// Checker is a Router with references of its own to check before it
// carries traffic (for example Middlewares it must reference, never
// create). Check returns a CamelCase reason and a message naming the
// missing object and the fix, or two empty strings.
type Checker interface {
	Check(ctx context.Context, c *v1alpha1.Canary) (reason, message string, err error)
}
