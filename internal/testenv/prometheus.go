package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/dataplane"
)

// Prometheus is a real Prometheus server (Debian's package) on loopback,
// with a query helper.
type Prometheus struct {
	*dataplane.Prometheus
}

// PrometheusBinary is the Prometheus executable the helper runs: $PROMETHEUS
// or the Debian package's /usr/bin/prometheus.
func PrometheusBinary() string {
	if p := os.Getenv("PROMETHEUS"); p != "" {
		return p
	}
	return "/usr/bin/prometheus"
}

// StartPrometheus starts Prometheus with the given scrape_configs (YAML list
// items, indented as under "scrape_configs:") and a global scrape and
// evaluation interval, waits until it is ready and stops it when the test
// ends.
func StartPrometheus(t testing.TB, scrapeInterval time.Duration, scrapeConfigs string) *Prometheus {
	t.Helper()
	p, err := dataplane.StartPrometheus(context.Background(), PrometheusBinary(), t.TempDir(), FreeAddr(t), scrapeInterval, scrapeConfigs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return &Prometheus{Prometheus: p}
}

// Sample is one series of an instant-query answer.
type Sample struct {
	Metric map[string]string
	Value  float64
}

// Query runs an instant PromQL query and returns its vector.
func (p *Prometheus) Query(ctx context.Context, promql string) ([]Sample, error) {
	u := p.URL + "/api/v1/query?query=" + url.QueryEscape(promql)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", promql, err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("query %q: decode: %w", promql, err)
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("query %q: %s", promql, body.Error)
	}
	var out []Sample
	for _, r := range body.Data.Result {
		s, _ := r.Value[1].(string)
		var v float64
		if _, err := fmt.Sscan(s, &v); err != nil {
			return nil, fmt.Errorf("query %q: value %q: %w", promql, s, err)
		}
		out = append(out, Sample{Metric: r.Metric, Value: v})
	}
	return out, nil
}

// FreeAddr returns a free 127.0.0.1:port.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// YAMLQuote quotes s for a YAML scalar.
func YAMLQuote(s string) string {
	return `"` + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `"`, `\"`) + `"`
}
