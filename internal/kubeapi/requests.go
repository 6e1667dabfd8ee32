// Package kubeapi counts what a client asks of the apiserver, by verb and
// resource, so that the cost of a Canary (reads that missed the cache,
// route writes, status writes) can be read off the controller's metrics.
// client-go's own rest_client_requests_total carries only method, host
// and code, which cannot tell a route write from a status write.
package kubeapi

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Requests is the counter sluice_kube_requests_total{verb, resource,
// subresource} and the histogram sluice_kube_request_duration_seconds{verb}.
type Requests struct {
	vec *prometheus.CounterVec
	dur *prometheus.HistogramVec
}

// NewRequests makes the counter; Register adds it to a registry.
func NewRequests() *Requests {
	return &Requests{vec: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_kube_requests_total",
		Help: "Requests the controller sent to the apiserver, by verb (get, list, watch, create, update, patch, delete, deletecollection, other), resource (plural.group) and subresource. Informers' lists and watches are included; gets and lists outside them are reads the cache did not answer.",
	}, []string{"verb", "resource", "subresource"}),
		dur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_kube_request_duration_seconds",
			Help:    "Time from sending a request to the apiserver to its response headers, by verb; watches are left out. The client's own rate limit is not included: this is the apiserver's (and the network's) share.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}, []string{"verb"})}
}

// Register adds the counter and the histogram to reg.
func (r *Requests) Register(reg prometheus.Registerer) error {
	if err := reg.Register(r.vec); err != nil {
		return err
	}
	return reg.Register(r.dur)
}

// Wrap counts every request that goes through rt (for rest.Config.Wrap).
func (r *Requests) Wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripper{next: rt, vec: r.vec, dur: r.dur}
}

type roundTripper struct {
	next http.RoundTripper
	vec  *prometheus.CounterVec
	dur  *prometheus.HistogramVec
}

func (c roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	verb, resource, sub := Classify(req.Method, req.URL)
	c.vec.WithLabelValues(verb, resource, sub).Inc()
	if verb == "watch" {
		return c.next.RoundTrip(req)
	}
	start := time.Now()
	resp, err := c.next.RoundTrip(req)
	c.dur.WithLabelValues(verb).Observe(time.Since(start).Seconds())
	return resp, err
}

// Classify names a request the way the apiserver's audit log does: the
// verb from the method, the object name and the watch parameter; the
// resource as plural.group ("deployments.apps", "services" for the core
// group); paths outside /api and /apis (discovery, /version) are resource
// "-" with verb "get".
func Classify(method string, u *url.URL) (verb, resource, subresource string) {
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	var group string
	switch {
	case len(parts) >= 2 && parts[0] == "api":
		parts = parts[2:]
	case len(parts) >= 3 && parts[0] == "apis":
		group, parts = parts[1], parts[3:]
	default:
		return strings.ToLower(method), "-", ""
	}
	namespaceSub := len(parts) == 3 && (parts[2] == "status" || parts[2] == "finalize")
	if len(parts) >= 3 && parts[0] == "namespaces" && !namespaceSub {
		parts = parts[2:] // namespaced: skip "namespaces/<ns>"
	}
	if len(parts) == 0 {
		return strings.ToLower(method), "-", "" // discovery of a group version
	}
	resource = parts[0]
	if group != "" {
		resource += "." + group
	}
	named := len(parts) >= 2
	if len(parts) >= 3 {
		subresource = parts[2]
	}
	switch method {
	case http.MethodGet:
		switch {
		case isTrue(u.Query().Get("watch")):
			verb = "watch"
		case named:
			verb = "get"
		default:
			verb = "list"
		}
	case http.MethodPost:
		verb = "create"
	case http.MethodPut:
		verb = "update"
	case http.MethodPatch:
		verb = "patch"
	case http.MethodDelete:
		verb = "delete"
		if !named {
			verb = "deletecollection"
		}
	default:
		verb = "other"
	}
	return verb, resource, subresource
}

func isTrue(v string) bool { return v == "true" || v == "1" }

// IsWrite says whether verb changes state.
func IsWrite(verb string) bool {
	switch verb {
	case "create", "update", "patch", "delete", "deletecollection":
		return true
	}
	return false
}
