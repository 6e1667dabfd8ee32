package chaos

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/internal/dataplane"
	"github.com/sluice-dev/sluice/internal/testenv"
)

// traffic is real traffic through a real Traefik (SLUICE_CHAOS_TRAFFIC):
// each app's IngressRoute sends its host to the weighted TraefikService
// Sluice owns, a responder answers on the Services' ClusterIPs as their
// Ready pods would (503 with none), and a load generator sends
// requestsPerApp a second to each app, all run long.
type traffic struct {
	load *dataplane.Load
	// seen is how many of the load's results earlier rounds took.
	seen int
}

const requestsPerApp = 10

func hostOf(app string) string { return app + ".chaos.test" }

func startTraffic(t *testing.T, env *testenv.Cluster, cl client.Client, ns string, apps []string) *traffic {
	t.Helper()
	tr := env.StartTraefik(t, false)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if _, err := dataplane.StartResponder(ctx, env.Config, ns); err != nil {
		t.Fatal(err)
	}
	var streams []dataplane.Stream
	for _, app := range apps {
		u := testenv.IngressRoute(ns, app, hostOf(app), map[string]any{"kind": "TraefikService", "name": app})
		if err := cl.Create(t.Context(), u); err != nil {
			t.Fatal(err)
		}
		streams = append(streams, dataplane.Stream{Name: app, Header: http.Header{"Host": {hostOf(app)}}})
	}
	for _, app := range apps {
		testenv.Eventually(t, time.Minute, "traefik serving "+app, func(ctx context.Context) error {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, tr.WebURL+"/", nil)
			req.Host = hostOf(app)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			return nil
		})
	}
	l := dataplane.StartLoad(tr.WebURL, requestsPerApp*len(apps), streams...)
	t.Cleanup(func() { l.Stop() })
	return &traffic{load: l}
}

// trafficCounts are a round's requests.
type trafficCounts struct {
	requests, failed int
	// excused are failures of apps whose canary the round turned
	// not-Ready: its own pods failing, until the share is taken away.
	excused int
	// firstFailure describes one failure, for the report.
	firstFailure string
}

// take counts the requests answered since the last call; those of apps in
// excuse count apart.
func (tf *traffic) take(excuse map[string]bool) trafficCounts {
	rs := tf.load.Results()
	rs, tf.seen = rs[tf.seen:], len(rs)
	var c trafficCounts
	for _, r := range rs {
		c.requests++
		if r.Error == "" && r.Code >= 200 && r.Code < 300 {
			continue
		}
		if excuse[r.Stream] {
			c.excused++
			continue
		}
		c.failed++
		if c.firstFailure == "" {
			c.firstFailure = fmt.Sprintf("%s at %s: %d %s", r.Stream, r.At.Format("15:04:05.000"), r.Code, r.Error)
		}
	}
	return c
}
