package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/notify"
	"github.com/sluice-dev/sluice/internal/testenv"
)

// receiver is a chat service's incoming webhook: it answers from a
// script (status codes, then 200) and keeps what it was sent.
type receiver struct {
	mu       sync.Mutex
	script   []int
	bodies   []map[string]any
	attempts int
	hang     chan struct{}
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if r.hang != nil {
		select {
		case <-r.hang:
		case <-req.Context().Done():
		}
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts++
	if len(r.script) > 0 {
		code := r.script[0]
		r.script = r.script[1:]
		if code == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "0.05")
		}
		http.Error(w, fmt.Sprintf("scripted %d", code), code)
		return
	}
	b, _ := io.ReadAll(req.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		http.Error(w, "invalid_payload", http.StatusBadRequest)
		return
	}
	r.bodies = append(r.bodies, m)
	fmt.Fprint(w, "ok")
}

func (r *receiver) received() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.bodies)
}

type fixture struct {
	ns       string
	cl       client.Client
	notifier *notify.Notifier
	metrics  *notify.Metrics
}

// setup is a namespace on the local control plane with an AlertProvider
// of typ whose Secret holds url, and a running Notifier.
func setup(t *testing.T, typ, url string, spec func(*v1alpha1.AlertProviderSpec)) *fixture {
	env := testenv.Get(t)
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := env.InstallSluiceCRDs(); err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(env.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ns := env.Namespace(t)
	p := &v1alpha1.AlertProvider{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "team-chat"},
		Spec: v1alpha1.AlertProviderSpec{Type: typ, SecretRef: corev1.LocalObjectReference{Name: "chat-webhook"},
			LinkTemplate: "https://grafana.example.com/d/release?var-ns={{ namespace }}&var-canary={{ name }}"}}
	if spec != nil {
		spec(&p.Spec)
	}
	for _, o := range []client.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "chat-webhook"}, Data: map[string][]byte{"address": []byte(url)}},
		p,
	} {
		if err := cl.Create(t.Context(), o); err != nil {
			t.Fatal(err)
		}
	}
	m := notify.NewMetrics()
	n := &notify.Notifier{Reader: cl, SecretReader: cl, Metrics: m, Backoff: 10 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = n.Start(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return &fixture{ns: ns, cl: cl, notifier: n, metrics: m}
}

func canary(ns string, severity string, phase v1alpha1.CanaryPhase) *v1alpha1.Canary {
	return &v1alpha1.Canary{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"},
		Spec: v1alpha1.CanarySpec{Analysis: &v1alpha1.Analysis{Alerts: []v1alpha1.Alert{
			{Name: "on-call", Severity: severity, ProviderRef: v1alpha1.AlertProviderRef{Name: "team-chat"}}}}},
		Status: v1alpha1.CanaryStatus{Phase: phase, Reason: failReason(phase), CanaryRevision: "b1612f3c6c", CanaryWeight: 20,
			Metrics: []v1alpha1.MetricStatus{{Name: "error-rate", Value: "7.5", Message: "7.5 is above the maximum 5"}, {Name: "latency", Value: "120", Passed: true}}},
	}
}

// failReason is the reason a test's failed release carries; the events
// the tests post for it use it.
func failReason(phase v1alpha1.CanaryPhase) string {
	if phase == v1alpha1.PhaseFailed {
		return "AnalysisFailed"
	}
	return ""
}

func (f *fixture) count(typ, outcome string) float64 {
	return testutil.ToFloat64(f.metrics.Notifications.WithLabelValues(typ, "on-call", outcome))
}

// A delivery that fails is retried (a 5xx, then a 429 after its
// Retry-After) and arrives once, in Slack's format, with the failing check
// and the link; the same message again within the window is not posted;
// another is.
func TestDeliveryRetriesAndDeduplicates(t *testing.T) {
	rcv := &receiver{script: []int{http.StatusBadGateway, http.StatusTooManyRequests}}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	f := setup(t, v1alpha1.AlertSlack, srv.URL+"/services/T000/B000/XXXX", nil)
	c := canary(f.ns, "", v1alpha1.PhaseFailed)
	failed := notify.Event{Warning: true, Reason: "AnalysisFailed", Message: "2 check rounds failed (threshold 2); last: error-rate: 7.5 is above the maximum 5"}
	f.notifier.Notify(c, failed)
	testenv.Eventually(t, 30*time.Second, "the message delivered", func(context.Context) error {
		if n := f.count(v1alpha1.AlertSlack, notify.OutcomeSent); n != 1 {
			return fmt.Errorf("%v sent, %d received", n, rcv.received())
		}
		return nil
	})
	if rcv.attempts != 3 || rcv.received() != 1 {
		t.Errorf("%d attempts, %d received; want 3 attempts (502, 429, 200) and 1 message", rcv.attempts, rcv.received())
	}
	body, _ := json.Marshal(rcv.bodies[0])
	for _, want := range []string{`"blocks"`, "shop", "AnalysisFailed", "error-rate", "7.5 is above the maximum 5", "var-canary=shop"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("the Slack message lacks %q: %s", want, body)
		}
	}

	// The same event again: deduplicated. A new one: posted.
	f.notifier.Notify(c, failed)
	f.notifier.Notify(c, notify.Event{Reason: "Promoted", Message: "revision b1612f3c6c promoted"})
	testenv.Eventually(t, 30*time.Second, "the next message", func(context.Context) error {
		if f.count(v1alpha1.AlertSlack, notify.OutcomeDeduplicated) != 1 || f.count(v1alpha1.AlertSlack, notify.OutcomeSent) != 2 {
			return fmt.Errorf("deduplicated %v, sent %v", f.count(v1alpha1.AlertSlack, notify.OutcomeDeduplicated), f.count(v1alpha1.AlertSlack, notify.OutcomeSent))
		}
		return nil
	})
	if rcv.received() != 2 {
		t.Errorf("%d messages received; want the failure once and the promotion", rcv.received())
	}
}

// A destination that answers 4xx is not retried, and the failure is
// counted; an alert at severity error gets failed releases only.
func TestFinalFailuresAndSeverity(t *testing.T) {
	rcv := &receiver{script: []int{http.StatusNotFound}}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	f := setup(t, v1alpha1.AlertDiscord, srv.URL+"/api/webhooks/1/token", nil)
	f.notifier.Notify(canary(f.ns, v1alpha1.SeverityError, v1alpha1.PhaseFailed), notify.Event{Warning: true, Reason: "AnalysisFailed", Message: "rolled back"})
	testenv.Eventually(t, 30*time.Second, "the failure counted", func(context.Context) error {
		if n := f.count(v1alpha1.AlertDiscord, notify.OutcomeFailed); n != 1 {
			return fmt.Errorf("failed %v", n)
		}
		return nil
	})
	if rcv.attempts != 1 {
		t.Errorf("a 404 was tried %d times; a 4xx is final", rcv.attempts)
	}
	// Below the alert's severity: a warning of a release still running,
	// a normal event, and a warning of the decision that failed the
	// release other than its failure. Then the failure, which is posted.
	c := canary(f.ns, v1alpha1.SeverityError, v1alpha1.PhaseProgressing)
	f.notifier.Notify(c, notify.Event{Warning: true, Reason: "CheckFailed", Message: "check round 3 failed (1/2)"})
	f.notifier.Notify(c, notify.Event{Reason: "WeightSet", Message: "canary weight 20%"})
	failed := canary(f.ns, v1alpha1.SeverityError, v1alpha1.PhaseFailed)
	failed.Status.Reason = "ProgressDeadlineExceeded"
	f.notifier.Notify(failed, notify.Event{Warning: true, Reason: "CheckFailed", Message: "check round 4 failed (2/2)"})
	f.notifier.Notify(failed, notify.Event{Warning: true, Reason: "ProgressDeadlineExceeded", Message: "no progress for 10m"})
	testenv.Eventually(t, 30*time.Second, "the failed release posted", func(context.Context) error {
		if rcv.received() != 1 {
			return fmt.Errorf("%d received", rcv.received())
		}
		return nil
	})
	if body, _ := json.Marshal(rcv.bodies[0]); !strings.Contains(string(body), "ProgressDeadlineExceeded") || !strings.Contains(string(body), `"embeds"`) {
		t.Errorf("posted: %s", body)
	}
	if n := f.count(v1alpha1.AlertDiscord, notify.OutcomeSent); n != 1 {
		t.Errorf("%v sent; the two events below severity error must not be", n)
	}
}

// A destination that never answers holds no caller: Notify only queues,
// and with the queue (1000) full it drops and counts.
func TestNotifyNeverBlocks(t *testing.T) {
	rcv := &receiver{hang: make(chan struct{})}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	defer close(rcv.hang)
	f := setup(t, v1alpha1.AlertWebhook, srv.URL, nil)
	c := canary(f.ns, "", v1alpha1.PhaseProgressing)
	for i := range 3000 {
		f.notifier.Notify(c, notify.Event{Reason: "WeightSet", Message: fmt.Sprintf("event %d", i)})
	}
	testenv.Eventually(t, 30*time.Second, "events dropped when the queue is full", func(context.Context) error {
		if n := f.count("", notify.OutcomeDropped); n < 1000 {
			return fmt.Errorf("%v dropped", n)
		}
		return nil
	})
}
