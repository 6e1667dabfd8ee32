package cluster_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/testenv"
)

func TestPrometheusHelperScrapesAnExporter(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Prometheus")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "# TYPE sluice_test_requests_total counter\n"+
			"sluice_test_requests_total{code=\"200\"} 42\n"+
			"sluice_test_requests_total{code=\"500\"} 3\n")
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })

	p := testenv.StartPrometheus(t, time.Second, fmt.Sprintf(
		"- job_name: exporter\n  static_configs:\n  - targets: [%s]\n", testenv.YAMLQuote(l.Addr().String())))

	testenv.Eventually(t, 30*time.Second, "PromQL answers from the scraped exporter", func(ctx context.Context) error {
		got, err := p.Query(ctx, `sum(sluice_test_requests_total{code!="200"}) / sum(sluice_test_requests_total)`)
		if err != nil {
			return err
		}
		if len(got) != 1 {
			return fmt.Errorf("%d series, want 1", len(got))
		}
		if want := 3.0 / 45.0; got[0].Value < want-1e-9 || got[0].Value > want+1e-9 {
			return fmt.Errorf("error ratio %v, want %v", got[0].Value, want)
		}
		return nil
	})
}
