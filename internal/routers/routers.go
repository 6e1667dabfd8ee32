// Package routers lists the routers Sluice is built with. Adding a router
// is one line here (and its package under internal/router).
package routers

import (
	"github.com/sluice-dev/sluice/internal/router"
	"github.com/sluice-dev/sluice/internal/router/ambassador"
	"github.com/sluice-dev/sluice/internal/router/consul"
	"github.com/sluice-dev/sluice/internal/router/gatewayapi"
	"github.com/sluice-dev/sluice/internal/router/istio"
	"github.com/sluice-dev/sluice/internal/router/nginx"
	"github.com/sluice-dev/sluice/internal/router/service"
	"github.com/sluice-dev/sluice/internal/router/traefik"
)

// All returns every router; the last, chosen when a Canary names none, is
// the apex Service alone.
func All() router.Registry {
	return router.Registry{
		traefik.Registration(),
		ambassador.Registration(),
		consul.Registration(),
		nginx.Registration(),
		istio.Registration(),
		gatewayapi.Registration(),
		service.Registration(),
	}
}
