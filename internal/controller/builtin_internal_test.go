package controller

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/analysis"
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
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: app}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	prom := testenv.StartPrometheus(t, time.Second,
		fmt.Sprintf("- job_name: app\n  honor_labels: true\n  static_configs:\n  - targets: [%q]\n", l.Addr().String()))

	q := analysis.NewQuerier(4, nil)
	vars := analysis.Vars{Namespace: "shop", Name: "web", Target: "web", Service: "web", Interval: 10 * time.Second}
	want := map[string][2]float64{
		"request-success-rate": {89.9, 90.1}, // 90 of every 100 canary requests succeed
		"request-duration":     {390, 400},   // p99 of 0.1-0.4s buckets, in ms
	}
	for name, bounds := range want {
		query, err := analysis.Render(builtinQueries[BuiltinApp][name], vars)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		testenv.Eventually(t, 30*time.Second, name, func(ctx context.Context) error {
			v, err := q.Query(ctx, analysis.Provider{Address: prom.URL}, query, 0)
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

// envoySeries serves an Envoy proxy's upstream-cluster statistics: the
// canary Service's clusters as Contour and as Istio name them, the
// primary's, and a Service whose name starts like the canary's.
type envoySeries struct {
	start time.Time
	// cluster -> (2xx per second, 5xx per second, slow: every request
	// takes 100-400ms, else under 100ms)
	clusters map[string][3]float64
}

func (e *envoySeries) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	el := time.Since(e.start).Seconds()
	fmt.Fprintln(w, "# TYPE envoy_cluster_upstream_rq counter")
	for c, r := range e.clusters {
		fmt.Fprintf(w, "envoy_cluster_upstream_rq{envoy_cluster_name=%q,envoy_response_code=\"200\"} %g\n", c, r[0]*el)
		fmt.Fprintf(w, "envoy_cluster_upstream_rq{envoy_cluster_name=%q,envoy_response_code=\"503\"} %g\n", c, r[1]*el)
	}
	fmt.Fprintln(w, "# TYPE envoy_cluster_upstream_rq_time histogram")
	for c, r := range e.clusters {
		total := (r[0] + r[1]) * el
		fast, slow := total, 0.0
		if r[2] == 1 {
			fast, slow = 0, total
		}
		for _, b := range []struct {
			le string
			v  float64
		}{{"100", fast}, {"400", fast + slow}, {"+Inf", fast + slow}} {
			fmt.Fprintf(w, "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=%q,le=%q} %g\n", c, b.le, b.v)
		}
	}
}

// The Envoy builtins select exactly the canary Service's upstream
// clusters, in Contour's and in Istio's naming.
func TestEnvoyBuiltinQueriesSelectTheCanaryService(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Prometheus")
	}
	proxy := &envoySeries{start: time.Now(), clusters: map[string][3]float64{
		"shop/web-canary/80/da39a3ee5e":                   {45, 5, 1}, // canary (Contour): 10% errors, slow
		"outbound|80||web-canary.shop.svc.cluster.local":  {45, 5, 1}, // canary (Istio)
		"shop/web-primary/80/da39a3ee5e":                  {100, 0, 0},
		"shop/web-canary-old/80/da39a3ee5e":               {0, 50, 0}, // another Service
		"outbound|80||web-canary.other.svc.cluster.local": {0, 50, 0}, // same name, other namespace
	}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: proxy}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	prom := testenv.StartPrometheus(t, time.Second,
		fmt.Sprintf("- job_name: envoy\n  static_configs:\n  - targets: [%q]\n", l.Addr().String()))

	q := analysis.NewQuerier(4, nil)
	vars := analysis.Vars{Namespace: "shop", Name: "web", Target: "web", Service: "web", Interval: 10 * time.Second}
	want := map[string][2]float64{
		"request-success-rate": {89.9, 90.1},
		"request-duration":     {390, 400},
	}
	for name, bounds := range want {
		query, err := analysis.Render(builtinQueries[BuiltinEnvoy][name], vars)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		testenv.Eventually(t, 30*time.Second, name, func(ctx context.Context) error {
			v, err := q.Query(ctx, analysis.Provider{Address: prom.URL}, query, 0)
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
