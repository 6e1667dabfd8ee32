package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/dataplane"
	"github.com/sluice-dev/sluice/internal/testenv"
	"github.com/sluice-dev/sluice/internal/webhook"
)

// The Canaries' checks: a metric asked of a real Prometheus every
// checkInterval, a confirm-traffic-increase gate before each step that
// raises the weight, and a post-rollout hook, both on the test's receiver.
// checkThreshold is above the failed rounds a provider outage can cause
// (at most metricsDownMax of rounds every checkInterval), so an outage
// alone never ends a good release: the release waits for evidence
// instead, as an undisturbed one has it.
const (
	checkInterval  = time.Second
	checkThreshold = 12
	hookTimeout    = time.Second
	templateName   = "always-one"
)

// metricTemplate asks Prometheus for a constant: any answer passes, and no
// answer (the provider away) fails the round.
func metricTemplate(ns, promURL string) *v1alpha1.MetricTemplate {
	return &v1alpha1.MetricTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: templateName, Namespace: ns},
		Spec: v1alpha1.MetricTemplateSpec{
			Provider: v1alpha1.MetricProvider{Type: "prometheus", Address: promURL, Timeout: &metav1.Duration{Duration: time.Second}},
			Query:    `vector(1)`,
		},
	}
}

func analysisFor(hookURL string) *v1alpha1.Analysis {
	hook := func(typ v1alpha1.WebhookType) v1alpha1.Webhook {
		return v1alpha1.Webhook{Name: string(typ), Type: typ, URL: hookURL, Retries: ptr.To(int32(0)),
			Timeout: &metav1.Duration{Duration: hookTimeout}}
	}
	return &v1alpha1.Analysis{
		Interval:  &metav1.Duration{Duration: checkInterval},
		Threshold: ptr.To(int32(checkThreshold)),
		Metrics: []v1alpha1.MetricCheck{{Name: "always-one", TemplateRef: &v1alpha1.TemplateRef{Name: templateName},
			ThresholdRange: &v1alpha1.ThresholdRange{Min: ptr.To(1.0), Max: ptr.To(1.0)}}},
		Webhooks: []v1alpha1.Webhook{hook(v1alpha1.WebhookConfirmTrafficIncrease), hook(v1alpha1.WebhookPostRollout)},
	}
}

// provider is the real Prometheus the metric check asks. The metrics-down
// fault stops it and starts it again on the same address and data.
type provider struct {
	dir  string
	addr string

	mu sync.Mutex
	p  *dataplane.Prometheus
}

func startProvider(t *testing.T) *provider {
	t.Helper()
	p := &provider{dir: t.TempDir(), addr: testenv.FreeAddr(t)}
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.stop)
	return p
}

func (p *provider) url() string { return "http://" + p.addr }

// start starts the server (again), on the same address and data.
func (p *provider) start() error {
	// StartPrometheus bounds its own wait for the server; the server runs
	// until stop.
	srv, err := dataplane.StartPrometheus(context.Background(), testenv.PrometheusBinary(), p.dir, p.addr, 5*time.Second, "")
	if err != nil {
		return fmt.Errorf("start the metric provider: %w", err)
	}
	p.mu.Lock()
	p.p = srv
	p.mu.Unlock()
	return nil
}

func (p *provider) stop() {
	p.mu.Lock()
	srv := p.p
	p.p = nil
	p.mu.Unlock()
	if srv != nil {
		srv.Stop()
	}
}

// receiver is the webhooks' receiver. It answers 200, or while a
// webhooks-failing fault lasts 503 or nothing at all (it hangs past the
// hooks' timeout), and counts every call.
type receiver struct {
	srv *httptest.Server

	mu      sync.Mutex
	failing string // "", "5xx" or "hang"
	calls   int
	refused int
	// opened are the gate points (app, revision, step) answered 200, and
	// reasked the calls for such a point right after a 200 (a closed gate
	// is asked again by design, until it answers 200).
	opened  map[gatePoint]bool
	lastOK  map[gatePoint]bool // the point's last call was answered 200
	reasked map[string]int     // app -> calls for gates already open
	// trail: app -> the gate calls of the round, in order ("step 3 200").
	trail map[string][]string
	// posts are the post-rollout calls by app and the phase they told.
	posts map[string][]string
}

type gatePoint struct {
	app, revision string
	step          int32
}

// Failure modes of the webhooks-failing fault.
const (
	hooks5xx  = "5xx"
	hooksHang = "hang"
)

func startReceiver(t *testing.T) *receiver {
	rc := &receiver{opened: map[gatePoint]bool{}, lastOK: map[gatePoint]bool{}, reasked: map[string]int{}, posts: map[string][]string{}, trail: map[string][]string{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	var p webhook.Payload
	if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	rc.calls++
	failing := rc.failing
	point := gatePoint{app: p.Name, revision: p.Revision, step: p.Step}
	switch p.Type {
	case string(v1alpha1.WebhookConfirmTrafficIncrease):
		// Asked again after it answered 200: a gate that opened asked
		// again. After a 503 the gate is closed, and asked again by
		// design.
		if rc.opened[point] && rc.lastOK[point] {
			rc.reasked[p.Name]++
		}
		rc.lastOK[point] = failing == ""
	case string(v1alpha1.WebhookPostRollout):
		rc.posts[p.Name] = append(rc.posts[p.Name], p.Phase)
	}
	if failing != "" {
		rc.refused++
	} else if p.Type == string(v1alpha1.WebhookConfirmTrafficIncrease) {
		rc.opened[point] = true
	}
	if p.Type == string(v1alpha1.WebhookConfirmTrafficIncrease) {
		answer := "200"
		if failing != "" {
			answer = failing
		}
		rc.trail[p.Name] = append(rc.trail[p.Name], fmt.Sprintf("%s step %d weight %d: %s", time.Now().Format("15:04:05.000"), p.Step, p.Weight, answer))
	}
	rc.mu.Unlock()
	switch failing {
	case hooksHang:
		// Past the hooks' timeout: the caller gives up first.
		select {
		case <-r.Context().Done():
		case <-time.After(3 * hookTimeout):
		}
		return
	case hooks5xx:
		http.Error(w, "chaos: the receiver is failing", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// fail makes the receiver fail in mode for d, in the background.
func (rc *receiver) fail(w *watcher, mode string, d time.Duration) {
	rc.mu.Lock()
	rc.failing = mode
	rc.mu.Unlock()
	w.storm(func(ctx context.Context) {
		<-ctx.Done()
		rc.mu.Lock()
		rc.failing = ""
		rc.mu.Unlock()
	}, d)
}

// hookCounts are a round's webhook figures.
type hookCounts struct {
	calls, refused int
	reasked        map[string]int
	posts          map[string][]string
	trail          map[string][]string
}

// take returns the round's counts and starts the next round's.
func (rc *receiver) take() hookCounts {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := hookCounts{calls: rc.calls, refused: rc.refused, reasked: rc.reasked, posts: rc.posts, trail: rc.trail}
	rc.calls, rc.refused = 0, 0
	rc.reasked, rc.posts, rc.trail = map[string]int{}, map[string][]string{}, map[string][]string{}
	return out
}

// postsOf is how many post-rollout calls app had this round.
func (rc *receiver) postsOf(app string) int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.posts[app])
}

// checkHooks holds a round's hook calls to what the docs promise (docs/
// architecture.md, webhooks): a release's post-rollout hook is called once
// when it ends, telling its outcome, and a gate that opened is not asked
// again for the same point. A controller that dies may lose a call it had
// not made yet, or make again one whose decision it had not written, and an
// apiserver restart may lose the status that recorded a gate's opening:
// each such disruption in the round allows, for each release, one call
// fewer or one more.
func checkHooks(rels []release, hc hookCounts, disruptions int) (violations []string, lost, extra int) {
	for _, rel := range rels {
		want := string(v1alpha1.PhaseSucceeded)
		if rel.failed() {
			want = string(v1alpha1.PhaseFailed)
		}
		posts := hc.posts[rel.app]
		for _, ph := range posts {
			if ph != want {
				violations = append(violations, fmt.Sprintf("%s: its post-rollout hook was told %s, where an undisturbed release ends %s", rel.app, ph, want))
			}
		}
		missing, more := max(0, 1-len(posts)), max(0, len(posts)-1)+hc.reasked[rel.app]
		if missing+more > disruptions {
			trail := hc.trail[rel.app]
			if len(trail) > 8 {
				trail = append(trail[:4:4], append([]string{"..."}, trail[len(trail)-4:]...)...)
			}
			violations = append(violations, fmt.Sprintf("%s: %d post-rollout calls (want 1) and %d calls of gates already open, with %d controller deaths and apiserver restarts in the round; its gate calls: %s",
				rel.app, len(posts), hc.reasked[rel.app], disruptions, strings.Join(trail, ", ")))
		}
		lost += missing
		extra += more
	}
	return violations, lost, extra
}

// waitPosts waits (briefly: the hook is called as the release ends) for
// each release's post-rollout call; a call lost to a controller's death
// never comes, which checkHooks judges.
func waitPosts(rc *receiver, rels []release) {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		all := true
		for _, rel := range rels {
			if rc.postsOf(rel.app) == 0 {
				all = false
			}
		}
		if all {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}
