package startup

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/healthz"
)

// Probes is an HTTP server of /healthz and /readyz, with the handlers and
// answers of a controller-runtime manager's, that runs before the manager
// exists and for as long as the process does.
type Probes struct {
	srv  *http.Server
	ln   net.Listener
	done chan error
}

// ServeProbes listens on addr and serves /healthz from live and /readyz
// from ready (each also at /<endpoint>/<check>). An empty addr or "0"
// serves nothing (the flag's way of turning probes off); the returned
// Probes then only stops.
func ServeProbes(addr string, live, ready map[string]healthz.Checker) (*Probes, error) {
	if addr == "" || addr == "0" {
		return &Probes{}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("health probes on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	for endpoint, checks := range map[string]map[string]healthz.Checker{"/healthz": live, "/readyz": ready} {
		h := http.StripPrefix(endpoint, &healthz.Handler{Checks: checks})
		mux.Handle(endpoint, h)
		mux.Handle(endpoint+"/", h)
	}
	p := &Probes{
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		ln:   ln,
		done: make(chan error, 1),
	}
	go func() { p.done <- p.srv.Serve(ln) }()
	return p, nil
}

// Addr is the address the probes listen on (nil when off).
func (p *Probes) Addr() net.Addr {
	if p.ln == nil {
		return nil
	}
	return p.ln.Addr()
}

// Stop closes the listener and waits, up to ctx's end, for the requests in
// flight.
func (p *Probes) Stop(ctx context.Context) error {
	if p.srv == nil {
		return nil
	}
	if err := p.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("stop health probes: %w", err)
	}
	if err := <-p.done; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("health probes: %w", err)
	}
	return nil
}
