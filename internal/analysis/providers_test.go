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
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/analysis"
	"github.com/sluice-dev/sluice/internal/analysis/cloudwatch"
	"github.com/sluice-dev/sluice/internal/testenv"
)

// front sits before a provider (real or test server) and, on demand,
// stands for what the network and the proxies in front of a provider do:
// hang, answer something that is not the provider's answer, rate-limit,
// or refuse credentials (Prometheus and Graphite have no authentication
// of their own; they are run behind a proxy that does it).
type front struct {
	URL      string
	requests atomic.Int64
	mode     atomic.Value // "", "hang", "garbage", "ratelimit"
	auth     string       // the Authorization header the proxy requires, if any
}

func startFront(t *testing.T, target, auth string) *front {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	f := &front{auth: auth}
	f.mode.Store("")
	rp := httputil.NewSingleHostReverseProxy(u)
	// A fresh connection to the provider per request: a kept-alive one the
	// provider closes as the proxy reuses it would fail a POST (not
	// replayed) with an error of the proxy's making, not the provider's.
	rp.Transport = &http.Transport{DisableKeepAlives: true}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.URL = "http://" + l.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.requests.Add(1)
		switch f.mode.Load() {
		case "hang":
			<-r.Context().Done()
			return
		case "garbage":
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, "<html><body>502 Bad Gateway from the load balancer</body></html>")
			return
		case "ratelimit":
			w.Header().Set("Retry-After", "120")
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, "slow down")
			return
		}
		if f.auth != "" && r.Header.Get("Authorization") != f.auth {
			w.Header().Set("WWW-Authenticate", `Basic realm="metrics"`)
			http.Error(w, "401 Unauthorized: bad credentials for the metrics proxy", http.StatusUnauthorized)
			return
		}
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return f
}

// providerCase is one provider in the matrix: a provider with good
// credentials reached through a front, the same with wrong ones, and
// queries giving 99 (good), 80 (failing) and no data.
type providerCase struct {
	name string
	// real says what answers: a real server or a test server of the
	// documented shapes.
	real       string
	front      *front
	provider   analysis.Provider
	wrongCreds func(*analysis.Provider)
	// authMsg is the provider's (or its proxy's) own words for wrong
	// credentials.
	authMsg             string
	good, failing, none string
}

var (
	goodValue    = 99.0
	failingValue = 80.0
	threshold    = analysis.Check{SuccessCondition: "result >= 95"}
)

// TestProviderMatrix runs every provider through every case: a good
// value passes, a failing value fails, no data, a malformed answer, a
// timeout, wrong credentials and a rate limit each fail with the
// provider's own message, and never pass.
func TestProviderMatrix(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real metric stores")
	}
	cases := providerCases(t)
	judge := analysis.NewJudge()
	for _, pc := range cases {
		t.Run(pc.name, func(t *testing.T) {
			t.Logf("%s: %s", pc.name, pc.real)
			q := newQuerier(nil)
			query := func(t *testing.T, p analysis.Provider, query string) (float64, error) {
				t.Helper()
				ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
				defer cancel()
				// A ttl of zero: every call asks the provider.
				return q.Query(ctx, p, analysis.Request{Query: query, Window: 5 * time.Minute}, 0)
			}
			t.Run("good value", func(t *testing.T) {
				v, err := query(t, pc.provider, pc.good)
				if err != nil || v != goodValue {
					t.Fatalf("got %v, %v; want %v", v, err, goodValue)
				}
				if pass, why, err := judge.Pass(threshold, v); !pass || err != nil {
					t.Errorf("a good value failed: %s %v", why, err)
				}
			})
			t.Run("failing value", func(t *testing.T) {
				v, err := query(t, pc.provider, pc.failing)
				if err != nil || v != failingValue {
					t.Fatalf("got %v, %v; want %v", v, err, failingValue)
				}
				pass, why, err := judge.Pass(threshold, v)
				if pass || err != nil || !strings.Contains(why, "does not meet successCondition") {
					t.Errorf("a failing value: pass=%v %q %v", pass, why, err)
				}
			})
			t.Run("no data", func(t *testing.T) {
				v, err := query(t, pc.provider, pc.none)
				if !errors.Is(err, analysis.ErrNoValues) {
					t.Fatalf("got %v, %v; want the no-values error", v, err)
				}
			})
			t.Run("malformed answer", func(t *testing.T) {
				pc.front.mode.Store("garbage")
				defer pc.front.mode.Store("")
				v, err := query(t, pc.provider, pc.good)
				if err == nil || errors.Is(err, analysis.ErrNoValues) || !strings.Contains(err.Error(), "502 Bad Gateway from the load balancer") {
					t.Fatalf("got %v, %v; want an error quoting the answer", v, err)
				}
			})
			t.Run("timeout", func(t *testing.T) {
				pc.front.mode.Store("hang")
				defer pc.front.mode.Store("")
				p := pc.provider
				p.Timeout = &metav1.Duration{Duration: 300 * time.Millisecond}
				start := time.Now()
				v, err := query(t, p, pc.good)
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("got %v, %v; want a deadline error", v, err)
				}
				if el := time.Since(start); el > 10*time.Second {
					t.Errorf("answered after %s; the timeout is 300ms", el)
				}
			})
			t.Run("wrong credentials", func(t *testing.T) {
				p := pc.provider
				p.Secret = clone(p.Secret)
				pc.wrongCreds(&p)
				v, err := query(t, p, pc.good)
				if err == nil || !strings.Contains(err.Error(), pc.authMsg) {
					t.Fatalf("got %v, %v; want the provider's own message %q", v, err, pc.authMsg)
				}
				for _, s := range p.Secret {
					if len(s) >= 4 && strings.Contains(err.Error(), string(s)) {
						t.Errorf("the error shows a credential: %v", err)
					}
				}
			})
			t.Run("rate limited", func(t *testing.T) {
				pc.front.mode.Store("ratelimit")
				defer pc.front.mode.Store("")
				var clock atomic.Int64
				clock.Store(time.Now().UnixNano())
				q := newQuerier(func() time.Time { return time.Unix(0, clock.Load()) })
				r := analysis.Request{Query: pc.good, Window: 5 * time.Minute}
				before := pc.front.requests.Load()
				_, err := q.Query(t.Context(), pc.provider, r, time.Minute)
				var rl *analysis.RateLimitError
				if !errors.As(err, &rl) || !strings.Contains(err.Error(), "slow down") {
					t.Fatalf("got %v; want a rate-limit error with the provider's words", err)
				}
				// Past the round's interval but before Retry-After: the
				// provider is not asked again.
				clock.Add(int64(90 * time.Second))
				if _, err := q.Query(t.Context(), pc.provider, r, time.Minute); !errors.As(err, &rl) {
					t.Fatalf("within Retry-After: %v", err)
				}
				if n := pc.front.requests.Load() - before; n != 1 {
					t.Errorf("%d requests before Retry-After passed, want 1", n)
				}
				pc.front.mode.Store("")
				clock.Add(int64(31 * time.Second))
				if v, err := q.Query(t.Context(), pc.provider, r, time.Minute); err != nil || v != goodValue {
					t.Errorf("after Retry-After: %v, %v", v, err)
				}
			})
		})
	}
}

// newQuerier is a Querier with every provider, as the controller builds
// it.
func newQuerier(now func() time.Time) *analysis.Querier {
	q := analysis.NewQuerier(4, now)
	q.Register(v1alpha1.ProviderCloudWatch, cloudwatch.New())
	return q
}

func clone(m map[string][]byte) map[string][]byte {
	out := map[string][]byte{}
	for k, v := range m {
		out[k] = append([]byte(nil), v...)
	}

	return out
}

func secret(kv ...string) map[string][]byte {
	m := map[string][]byte{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = []byte(kv[i+1])
	}
	return m
}

func provider(typ, address string, s map[string][]byte, mutate func(*v1alpha1.MetricProvider)) analysis.Provider {
	p := analysis.Provider{MetricProvider: v1alpha1.MetricProvider{Type: typ, Address: address}, Secret: s}
	if mutate != nil {
		mutate(&p.MetricProvider)
	}
	return p
}

// providerCases starts every provider once.
func providerCases(t *testing.T) []providerCase {
	var out []providerCase
	add := func(pc providerCase) { out = append(out, pc) }

	// Prometheus, real, behind an authenticating proxy.
	exp := startExporter(t, "# TYPE quality gauge\nquality{copy=\"good\"} 99\nquality{copy=\"failing\"} 80\n")
	prom := testenv.StartPrometheus(t, time.Second, fmt.Sprintf("- job_name: app\n  static_configs:\n  - targets: [%q]\n", exp.addr))
	testenv.Eventually(t, 60*time.Second, "first scrape", func(ctx context.Context) error {
		s, err := prom.Query(ctx, `quality`)
		if err != nil || len(s) != 2 {
			return fmt.Errorf("%d series, %v", len(s), err)
		}
		return nil
	})
	f := startFront(t, prom.URL, "Bearer s3cret-token")
	add(providerCase{
		name: "prometheus", real: "Prometheus 2.42 (Debian) behind a proxy checking a bearer token", front: f,
		provider:   provider("prometheus", f.URL, secret("token", "s3cret-token"), nil),
		wrongCreds: func(p *analysis.Provider) { p.Secret["token"] = []byte("wrong-token") },
		authMsg:    "401 Unauthorized: bad credentials for the metrics proxy",
		good:       `sum(quality{copy="good"})`, failing: `sum(quality{copy="failing"})`, none: `sum(quality{copy="none"})`,
	})

	// VictoriaMetrics, real: the Prometheus API's other dialect.
	vm := testenv.StartVictoriaMetrics(t)
	ts := time.Now().Add(-10 * time.Second).UnixMilli()
	vm.Import(t, fmt.Sprintf("quality{copy=\"good\"} 99 %d\nquality{copy=\"failing\"} 80 %d\n", ts, ts))
	f = startFront(t, vm.URL, "Basic "+testenv.BasicAuth("reader", "pw-1234"))
	add(providerCase{
		name: "prometheus (VictoriaMetrics)", real: "VictoriaMetrics 1.79 (Debian) behind a proxy checking basic auth", front: f,
		provider:   provider("prometheus", f.URL, secret("username", "reader", "password", "pw-1234"), nil),
		wrongCreds: func(p *analysis.Provider) { p.Secret["password"] = []byte("nope-nope") },
		authMsg:    "401 Unauthorized: bad credentials for the metrics proxy",
		good:       `sum(last_over_time(quality{copy="good"}[5m]))`, failing: `sum(last_over_time(quality{copy="failing"}[5m]))`,
		none: `sum(last_over_time(quality{copy="none"}[5m]))`,
	})

	// A web endpoint: any JSON server is the real thing.
	web := testenv.StartJSONEndpoint(t, "Bearer web-token")
	f = startFront(t, web.URL, "")
	add(providerCase{
		name: "web", real: "an HTTP JSON endpoint (net/http)", front: f,
		provider: provider("web", f.URL, secret("token", "web-token"), func(p *v1alpha1.MetricProvider) {
			p.Web = &v1alpha1.WebProvider{JSONPath: "{.data.slo.value}"}
		}),
		wrongCreds: func(p *analysis.Provider) { p.Secret["token"] = []byte("bad-token") },
		authMsg:    `HTTP 401 from 127.0.0.1:`,
		good:       "/slo?copy=good", failing: "/slo?copy=failing", none: "/slo?copy=none",
	})

	// Datadog (v2 scalar and v1 timeseries): test servers.
	dd := testenv.StartDatadog(t, "dd-api-key", "dd-app-key", testenv.Series{"avg:quality{copy:good}": testenv.Num(99), "avg:quality{copy:failing}": testenv.Num(80), "avg:quality{copy:none}": nil})
	for _, version := range []string{"v2", "v1"} {
		f := startFront(t, dd.URL, "")
		add(providerCase{
			name: "datadog " + version, real: "a test server of Datadog's documented API", front: f,
			provider: provider("datadog", f.URL, secret("api-key", "dd-api-key", "app-key", "dd-app-key"), func(p *v1alpha1.MetricProvider) {
				p.Datadog = &v1alpha1.DatadogProvider{APIVersion: version}
			}),
			wrongCreds: func(p *analysis.Provider) { p.Secret["app-key"] = []byte("revoked-key") },
			authMsg:    `HTTP 403`,
			good:       "avg:quality{copy:good}", failing: "avg:quality{copy:failing}", none: "avg:quality{copy:none}",
		})
	}

	// New Relic NerdGraph: a test server.
	nr := testenv.StartNewRelic(t, "NRAK-good", 4242, testenv.Series{"SELECT percentile(duration, 95) FROM Transaction WHERE copy = 'good'": testenv.Num(99),
		"SELECT percentile(duration, 95) FROM Transaction WHERE copy = 'failing'": testenv.Num(80), "SELECT average(duration) FROM Transaction WHERE copy = 'none'": nil})
	f = startFront(t, nr.URL, "")
	add(providerCase{
		name: "newrelic", real: "a test server of NerdGraph's documented API", front: f,
		provider:   provider("newrelic", f.URL, secret("api-key", "NRAK-good", "account-id", "4242"), nil),
		wrongCreds: func(p *analysis.Provider) { p.Secret["api-key"] = []byte("NRAK-bad") },
		authMsg:    "UNAUTHORIZED: Invalid API key",
		good:       "SELECT percentile(duration, 95) FROM Transaction WHERE copy = 'good'",
		failing:    "SELECT percentile(duration, 95) FROM Transaction WHERE copy = 'failing'",
		none:       "SELECT average(duration) FROM Transaction WHERE copy = 'none'",
	})

	// Graphite, real, behind an authenticating proxy.
	gr := testenv.StartGraphite(t)
	now := time.Now()
	gr.Write(t, "quality.good", []testenv.GraphitePoint{{Time: now.Add(-2 * time.Minute), Value: 50}, {Time: now.Add(-time.Minute), Value: 99}})
	gr.Write(t, "quality.failing", []testenv.GraphitePoint{{Time: now.Add(-time.Minute), Value: 80}})
	f = startFront(t, gr.URL, "Basic "+testenv.BasicAuth("gr-reader", "gr-secret"))
	add(providerCase{
		name: "graphite", real: "graphite-web 1.1.8 (Debian) behind a proxy checking basic auth", front: f,
		provider:   provider("graphite", f.URL, secret("username", "gr-reader", "password", "gr-secret"), nil),
		wrongCreds: func(p *analysis.Provider) { p.Secret["password"] = []byte("not-it") },
		authMsg:    "401 Unauthorized: bad credentials for the metrics proxy",
		good:       "quality.good", failing: "quality.failing", none: "quality.none",
	})

	// InfluxDB 1.x, real, with its own authentication.
	in := testenv.StartInfluxDB(t, testenv.InfluxOptions{Auth: true})
	in.CreateDatabase(t, "metrics")
	sec := time.Now().Add(-30 * time.Second).Unix()
	in.Write(t, "metrics", fmt.Sprintf("quality,copy=good value=50 %d\nquality,copy=good value=99 %d\nquality,copy=failing value=80 %d\n", sec-10, sec, sec))
	f = startFront(t, in.URL, "")
	add(providerCase{
		name: "influxdb 1.x (InfluxQL)", real: "InfluxDB 1.6.7 (Debian) with authentication on", front: f,
		provider: provider("influxdb", f.URL, secret("username", in.Username, "password", in.Password), func(p *v1alpha1.MetricProvider) {
			p.InfluxDB = &v1alpha1.InfluxDBProvider{Database: "metrics"}
		}),
		wrongCreds: func(p *analysis.Provider) { p.Secret["password"] = []byte("wrong-password") },
		authMsg:    "authorization failed",
		good:       `SELECT last("value") FROM "quality" WHERE "copy" = 'good' AND time > now() - 5m`,
		failing:    `SELECT last("value") FROM "quality" WHERE "copy" = 'failing' AND time > now() - 5m`,
		none:       `SELECT last("value") FROM "quality" WHERE "copy" = 'none' AND time > now() - 5m`,
	})

	// InfluxDB 2.x (Flux): a test server.
	flux := func(copy string) string {
		return fmt.Sprintf(`from(bucket: "metrics") |> range(start: -5m) |> filter(fn: (r) => r.copy == %q)`, copy)
	}
	i2 := testenv.StartInfluxDB2(t, "influx-token", "acme", testenv.Series{flux("good"): testenv.Num(99), flux("failing"): testenv.Num(80), flux("none"): nil})
	f = startFront(t, i2.URL, "")
	add(providerCase{
		name: "influxdb 2.x (Flux)", real: "a test server of InfluxDB 2's documented API", front: f,
		provider: provider("influxdb", f.URL, secret("token", "influx-token"), func(p *v1alpha1.MetricProvider) {
			p.InfluxDB = &v1alpha1.InfluxDBProvider{Org: "acme"}
		}),
		wrongCreds: func(p *analysis.Provider) { p.Secret["token"] = []byte("expired-token") },
		authMsg:    "unauthorized access",
		good:       flux("good"), failing: flux("failing"), none: flux("none"),
	})

	// CloudWatch through the AWS SDK: a test server of the SDK's wire
	// protocol.
	cw := testenv.StartCloudWatch(t, "AKIDSLUICETEST", "eu-west-1", testenv.Series{"Good": testenv.Num(99), "Failing": testenv.Num(80), "None": nil})
	f = startFront(t, cw.URL, "")
	cwQuery := func(metric string) string {
		return fmt.Sprintf(`[{"Id": "e1", "Expression": "m1 * 1", "ReturnData": false},
			{"Id": "m1", "MetricStat": {"Metric": {"Namespace": "App", "MetricName": %q, "Dimensions": [{"Name": "Deployment", "Value": "web"}]}, "Period": 60, "Stat": "Average"}}]`, metric)
	}
	add(providerCase{
		name: "cloudwatch", real: "the AWS SDK for Go v2 against a test server of its wire protocol (Smithy RPC v2 CBOR)", front: f,
		provider: provider("cloudwatch", f.URL, secret("aws-access-key-id", "AKIDSLUICETEST", "aws-secret-access-key", "cw-secret-key"), func(p *v1alpha1.MetricProvider) {
			p.CloudWatch = &v1alpha1.CloudWatchProvider{Region: "eu-west-1"}
		}),
		wrongCreds: func(p *analysis.Provider) { p.Secret["aws-access-key-id"] = []byte("AKIDREVOKED") },
		authMsg:    "InvalidClientTokenId: The security token included in the request is invalid.",
		good:       cwQuery("Good"), failing: cwQuery("Failing"), none: cwQuery("None"),
	})
	return out
}
