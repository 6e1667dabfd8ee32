package analysis_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/internal/analysis"
	"github.com/sluice-dev/sluice/internal/testenv"
)

// exporter serves metrics the test controls.
type exporter struct {
	mu   sync.Mutex
	body string
	addr string
}

func startExporter(t *testing.T, body string) *exporter {
	e := &exporter{body: body}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = l.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		defer e.mu.Unlock()
		fmt.Fprint(w, e.body)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return e
}

// proxy sits in front of Prometheus and counts requests, records the
// largest number in flight, checks credentials and can be made slow.
type proxy struct {
	URL      string
	requests atomic.Int64
	inFlight atomic.Int64
	maxSeen  atomic.Int64
	delay    atomic.Int64 // nanoseconds
	lastAuth atomic.Value
	lastOrg  atomic.Value
}

func startProxy(t *testing.T, target string) *proxy {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.URL = "http://" + l.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		n := p.inFlight.Add(1)
		defer p.inFlight.Add(-1)
		for {
			m := p.maxSeen.Load()
			if n <= m || p.maxSeen.CompareAndSwap(m, n) {
				break
			}
		}
		p.lastAuth.Store(r.Header.Get("Authorization"))
		p.lastOrg.Store(r.Header.Get("X-Scope-OrgID"))
		if d := time.Duration(p.delay.Load()); d > 0 {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return p
}

const metrics = `# TYPE http_requests_total counter
http_requests_total{app="web",code="200"} 950
http_requests_total{app="web",code="500"} 50
`

func setupProm(t *testing.T) (*testenv.Prometheus, *proxy) {
	if testing.Short() {
		t.Skip("needs Prometheus")
	}
	e := startExporter(t, metrics)
	prom := testenv.StartPrometheus(t, time.Second, fmt.Sprintf("- job_name: app\n  static_configs:\n  - targets: [%q]\n", e.addr))
	px := startProxy(t, prom.URL)
	testenv.Eventually(t, 30*time.Second, "first scrape", func(ctx context.Context) error {
		s, err := prom.Query(ctx, `http_requests_total`)
		if err != nil || len(s) != 2 {
			return fmt.Errorf("%d series, %v", len(s), err)
		}
		return nil
	})
	return prom, px
}

const successRate = `100 * sum(http_requests_total{app="web",code!~"5.."}) / sum(http_requests_total{app="web"})`

func TestQueryRealPrometheus(t *testing.T) {
	_, px := setupProm(t)
	q := analysis.NewQuerier(4, nil)
	p := analysis.Prometheus(px.URL)
	p.Secret = map[string][]byte{"token": []byte("s3cret")}
	p.Headers = map[string]string{"X-Scope-OrgID": "team-a"}

	v, err := q.Query(t.Context(), p, analysis.Request{Query: successRate}, time.Minute)
	if err != nil || v != 95 {
		t.Fatalf("success rate = %v, %v; want 95", v, err)
	}
	if got := px.lastAuth.Load(); got != "Bearer s3cret" {
		t.Errorf("Authorization header %q", got)
	}
	if got := px.lastOrg.Load(); got != "team-a" {
		t.Errorf("X-Scope-OrgID header %q", got)
	}

	_, err = q.Query(t.Context(), p, analysis.Request{Query: `sum(http_requests_total{app="nothing-here"})`}, time.Minute)
	if !errors.Is(err, analysis.ErrNoValues) || !strings.Contains(err.Error(), "is the canary receiving traffic?") {
		t.Errorf("a query without series: %v, want the no-values error", err)
	}
	_, err = q.Query(t.Context(), p, analysis.Request{Query: `http_requests_total`}, time.Minute)
	if err == nil || !strings.Contains(err.Error(), "2 series") {
		t.Errorf("a two-series answer: %v", err)
	}
	basic := analysis.Prometheus(px.URL)
	basic.Secret = map[string][]byte{"username": []byte("u"), "password": []byte("p")}
	if _, err := q.Query(t.Context(), basic, analysis.Request{Query: successRate}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := px.lastAuth.Load(); got != "Basic dTpw" {
		t.Errorf("basic auth header %q", got)
	}
}

// Many canaries asking the same question within its interval cost one
// request, even when they ask at the same moment.
func TestQueryCacheAndSingleFlight(t *testing.T) {
	_, px := setupProm(t)
	now := time.Now()
	var clock atomic.Int64
	clock.Store(now.UnixNano())
	q := analysis.NewQuerier(4, func() time.Time { return time.Unix(0, clock.Load()) })
	p := analysis.Prometheus(px.URL)
	px.delay.Store(int64(200 * time.Millisecond))

	var wg sync.WaitGroup
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if v, err := q.Query(context.Background(), p, analysis.Request{Query: successRate}, time.Minute); err != nil || v != 95 {
				t.Errorf("concurrent query: %v, %v", v, err)
			}
		}()
	}
	wg.Wait()
	if n := px.requests.Load(); n != 1 {
		t.Errorf("100 identical concurrent queries sent %d requests, want 1", n)
	}
	if _, err := q.Query(t.Context(), p, analysis.Request{Query: successRate}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if n := px.requests.Load(); n != 1 {
		t.Errorf("a cached query within its interval sent a request (total %d)", n)
	}
	clock.Add(int64(61 * time.Second))
	if _, err := q.Query(t.Context(), p, analysis.Request{Query: successRate}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if n := px.requests.Load(); n != 2 {
		t.Errorf("after the interval the query must be asked again: %d requests, want 2", n)
	}
	// A round that started after the cached answer was fetched asks
	// again, within the interval all the same.
	clock.Add(int64(time.Second))
	if _, err := q.Query(t.Context(), p, analysis.Request{Query: successRate, NotBefore: time.Unix(0, clock.Load())}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if n := px.requests.Load(); n != 3 {
		t.Errorf("a round newer than the cached answer must not reuse it: %d requests, want 3", n)
	}
}

// Different queries at once never exceed the bound on requests in flight.
func TestQueryConcurrencyBound(t *testing.T) {
	_, px := setupProm(t)
	q := analysis.NewQuerier(3, nil)
	p := analysis.Prometheus(px.URL)
	px.delay.Store(int64(100 * time.Millisecond))
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			promql := fmt.Sprintf(`sum(http_requests_total) + %d`, i)
			if v, err := q.Query(context.Background(), p, analysis.Request{Query: promql}, time.Minute); err != nil || v != float64(1000+i) {
				t.Errorf("%s = %v, %v", promql, v, err)
			}
		}()
	}
	wg.Wait()
	if m := px.maxSeen.Load(); m > 3 || m < 2 {
		t.Errorf("max requests in flight %d, want at most 3 (and the bound used)", m)
	}
	if n := px.requests.Load(); n != 30 {
		t.Errorf("%d requests for 30 distinct queries", n)
	}
}

// A hanging provider gives an error within the provider's timeout, and so
// does one that is down; neither is ever a value.
func TestQueryDeadlineAndProviderDown(t *testing.T) {
	prom, px := setupProm(t)
	q := analysis.NewQuerier(4, nil)
	px.delay.Store(int64(time.Hour))
	start := time.Now()
	_, err := q.Query(t.Context(), withTimeout(analysis.Prometheus(px.URL), 300*time.Millisecond), analysis.Request{Query: successRate}, time.Minute)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hanging provider: %v, want a deadline error", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("hanging provider answered after %s; the timeout is 300ms", el)
	}

	prom.Stop()
	_, err = q.Query(t.Context(), withTimeout(analysis.Prometheus(prom.URL), 2*time.Second), analysis.Request{Query: successRate}, time.Minute)
	if err == nil || !strings.Contains(err.Error(), prom.URL) {
		t.Errorf("stopped Prometheus: %v, want an error naming its address", err)
	}
}

func withTimeout(p analysis.Provider, d time.Duration) analysis.Provider {
	p.Timeout = &metav1.Duration{Duration: d}
	return p
}
