package analysis_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/analysis"
	"github.com/sluice-dev/sluice/internal/router/traefik"
	"github.com/sluice-dev/sluice/internal/testenv"
)

// appSeries serves conventional HTTP metrics for pods named as Deployments
// name them: counters growing at fixed rates, so rate() has a known answer.
type appSeries struct {
	mu    sync.Mutex
	start time.Time
	// pod -> (2xx per second, 5xx per second, p99-ish latency bucket)
	pods map[string][2]float64
}

func (a *appSeries) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	el := time.Since(a.start).Seconds()
	fmt.Fprintln(w, "# TYPE http_requests_total counter")
	for pod, r := range a.pods {
		fmt.Fprintf(w, "http_requests_total{namespace=\"shop\",pod=%q,code=\"200\"} %g\n", pod, r[0]*el)
		fmt.Fprintf(w, "http_requests_total{namespace=\"shop\",pod=%q,code=\"503\"} %g\n", pod, r[1]*el)
	}
	fmt.Fprintln(w, "# TYPE http_request_duration_seconds histogram")
	for pod, r := range a.pods {
		total := (r[0] + r[1]) * el
		// Every request of the canary takes 0.2-0.4s; of the others 0-0.1s.
		fast, slow := total, 0.0
		if pod[:4] == "web-" && pod[4:11] != "primary" {
			fast, slow = 0, total
		}
		for _, b := range []struct {
			le string
			v  float64
		}{{"0.1", fast}, {"0.4", fast + slow}, {"+Inf", fast + slow}} {
			fmt.Fprintf(w, "http_request_duration_seconds_bucket{namespace=\"shop\",pod=%q,le=%q} %g\n", pod, b.le, b.v)
		}
	}
}

// The builtin queries select exactly the target's (canary's) pods: not the
// primary's, not another app whose name starts the same.
func TestBuiltinQueriesSelectTheCanaryPods(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Prometheus")
	}
	app := &appSeries{start: time.Now(), pods: map[string][2]float64{
		"web-5d9c7b8f6d-x7k2p":         {90, 10}, // canary: 10% errors, slow
		"web-5d9c7b8f6d-q8r4t":         {90, 10},
		"web-primary-6f7c8d9b5c-a1b2c": {100, 0}, // primary: healthy
		"web-api-7b8c9d6f5e-k3l4m":     {50, 50}, // another app
	}}
	expectBuiltins(t, analysis.BuiltinApp, builtin(analysis.BuiltinApp), app)
}

// proxySeries serves a proxy's per-upstream statistics: a request
// counter by upstream and status code, and a latency histogram, growing
// at fixed rates so rate() has a known answer.
type proxySeries struct {
	start              time.Time
	counter, histogram string
	upstream, codeKey  string
	// le are the two finite bucket bounds: fast requests fall under the
	// first, slow ones (100-400ms) under the second.
	le [2]string
	// upstream -> (2xx per second, 5xx per second, 1 when slow)
	rates map[string][3]float64
}

func (p *proxySeries) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	el := time.Since(p.start).Seconds()
	fmt.Fprintf(w, "# TYPE %s counter\n", p.counter)
	for u, r := range p.rates {
		fmt.Fprintf(w, "%s{%s=%q,%s=\"200\"} %g\n", p.counter, p.upstream, u, p.codeKey, r[0]*el)
		fmt.Fprintf(w, "%s{%s=%q,%s=\"503\"} %g\n", p.counter, p.upstream, u, p.codeKey, r[1]*el)
	}
	fmt.Fprintf(w, "# TYPE %s histogram\n", p.histogram)
	for u, r := range p.rates {
		total := (r[0] + r[1]) * el
		fast, slow := total, 0.0
		if r[2] == 1 {
			fast, slow = 0, total
		}
		for _, b := range []struct {
			le string
			v  float64
		}{{p.le[0], fast}, {p.le[1], fast + slow}, {"+Inf", fast + slow}} {
			fmt.Fprintf(w, "%s_bucket{%s=%q,le=%q} %g\n", p.histogram, p.upstream, u, b.le, b.v)
		}
	}
}

// The router builtins select exactly the canary Service's upstream: Envoy
// clusters in Contour's and Istio's naming, Traefik services of its CRD
// and Gateway providers; look-alikes (another Service whose name starts
// the same, the same name in another namespace) must not count.
func TestRouterBuiltinQueriesSelectTheCanaryService(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Prometheus")
	}
	traefikQueries := traefik.Registration().BuiltinQueries
	for _, tc := range []struct {
		source string
		lookup func(string) (string, bool)
		series *proxySeries
	}{
		{analysis.BuiltinEnvoy, builtin(analysis.BuiltinEnvoy), &proxySeries{counter: "envoy_cluster_upstream_rq", histogram: "envoy_cluster_upstream_rq_time",
			upstream: "envoy_cluster_name", codeKey: "envoy_response_code", le: [2]string{"100", "400"},
			rates: map[string][3]float64{
				"shop/web-canary/80/da39a3ee5e":                   {45, 5, 1}, // canary (Contour): 10% errors, slow
				"outbound|80||web-canary.shop.svc.cluster.local":  {45, 5, 1}, // canary (Istio)
				"shop/web-primary/80/da39a3ee5e":                  {100, 0, 0},
				"shop/web-canary-old/80/da39a3ee5e":               {0, 50, 0},
				"outbound|80||web-canary.other.svc.cluster.local": {0, 50, 0},
			}}},
		{"traefik", func(n string) (string, bool) { q, ok := traefikQueries[n]; return q, ok }, &proxySeries{counter: "traefik_service_requests_total", histogram: "traefik_service_request_duration_seconds",
			upstream: "service", codeKey: "code", le: [2]string{"0.1", "0.4"},
			rates: map[string][3]float64{
				"shop-web-canary-80@kubernetescrd":          {45, 5, 1}, // canary (IngressRoute, TraefikService)
				"shop-web-canary-http-80@kubernetesgateway": {45, 5, 1}, // canary (Gateway API provider)
				"shop-web-primary-80@kubernetescrd":         {100, 0, 0},
				"shop-web-canary-old-80@kubernetescrd":      {0, 50, 0},
				"other-web-canary-80@kubernetescrd":         {0, 50, 0},
				"shop-web-canary-80@file":                   {0, 50, 0},
			}}},
	} {
		t.Run(tc.source, func(t *testing.T) {
			tc.series.start = time.Now()
			expectBuiltins(t, tc.source, tc.lookup, tc.series)
		})
	}
}

// builtin looks a metric up in the analysis catalog's source.
func builtin(source string) func(string) (string, bool) {
	return func(metric string) (string, bool) { return analysis.BuiltinQuery(source, metric) }
}

// expectBuiltins serves h to a real Prometheus and checks that each builtin
// query of source, rendered for the canary "web" in "shop", answers within
// the bounds: only the canary's series may count.
func expectBuiltins(t *testing.T, source string, lookup func(metric string) (string, bool), h http.Handler) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	prom := testenv.StartPrometheus(t, time.Second,
		fmt.Sprintf("- job_name: series\n  honor_labels: true\n  static_configs:\n  - targets: [%q]\n", l.Addr().String()))
	q := analysis.NewQuerier(4, nil)
	vars := analysis.Vars{Namespace: "shop", Name: "web", Target: "web", Service: "web", Interval: 10 * time.Second}
	want := map[string][2]float64{
		"request-success-rate": {89.9, 90.1}, // 90 of every 100 canary requests succeed
		"request-duration":     {390, 400},   // p99 of its 100-400ms requests, in ms
	}
	for name, bounds := range want {
		tmpl, ok := lookup(name)
		if !ok {
			t.Fatalf("%s has no builtin %s", source, name)
		}
		query, err := analysis.Render(tmpl, vars)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		testenv.Eventually(t, 30*time.Second, name, func(ctx context.Context) error {
			v, err := q.Query(ctx, analysis.Prometheus(prom.URL), analysis.Request{Query: query}, 0)
			if err != nil {
				return err
			}
			if v < bounds[0] || v > bounds[1] {
				return fmt.Errorf("%s = %v, want within %v", name, v, bounds)
			}
			return nil
		})
	}
}
