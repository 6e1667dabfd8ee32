package checks

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/engine"
)

// An Event that cannot be queued for the Canary's event webhooks is never
// asked for again: each webhook that misses it is logged, naming the
// Canary and the webhook, and counted by the Event's type.
func TestDroppedEventWebhooksAreCountedAndLogged(t *testing.T) {
	m := NewMetrics()
	if err := m.Register(prometheus.NewRegistry()); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var lines []string
	ctx := log.IntoContext(context.Background(), funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, args)
	}, funcr.Options{}))
	// Not started, so nothing drains the queue: fill it.
	r := &Runner{Metrics: m}
	r.init()
	for r.enqueue(func(context.Context) {}) {
	}
	c := &v1alpha1.Canary{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}, Spec: v1alpha1.CanarySpec{Analysis: &v1alpha1.Analysis{
		Webhooks: []v1alpha1.Webhook{
			{Name: "audit", Type: v1alpha1.WebhookEvent, URL: "http://127.0.0.1:1/audit"},
			{Name: "gate", Type: v1alpha1.WebhookConfirmRollout, URL: "http://127.0.0.1:1/gate"},
			{Name: "chat", Type: v1alpha1.WebhookEvent, URL: "http://127.0.0.1:1/chat"},
		}}}}
	r.Notify(ctx, c, engine.Event{Warning: true, Reason: "CheckFailed", Message: "error-rate: 20 is above the maximum 5"})
	r.Notify(ctx, c, engine.Event{Reason: "WeightSet", Message: "canary weight 20%"})

	for typ, want := range map[string]float64{"Warning": 2, "Normal": 2} {
		if got := testutil.ToFloat64(m.EventsDropped.WithLabelValues(typ)); got != want {
			t.Errorf("sluice_webhook_events_dropped_total{type=%q} = %v, want %v (one per event webhook)", typ, got, want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	var got []string
	for _, l := range lines {
		if strings.Contains(l, `"msg"="Event not posted to its webhook"`) {
			got = append(got, l)
		}
	}
	for _, want := range []string{
		`"canary"={"name"="web" "namespace"="shop"} "webhook"="audit" "type"="Warning" "reason"="CheckFailed"`,
		`"canary"={"name"="web" "namespace"="shop"} "webhook"="chat" "type"="Warning" "reason"="CheckFailed"`,
		`"canary"={"name"="web" "namespace"="shop"} "webhook"="audit" "type"="Normal" "reason"="WeightSet"`,
		`"canary"={"name"="web" "namespace"="shop"} "webhook"="chat" "type"="Normal" "reason"="WeightSet"`,
	} {
		found := false
		for _, l := range got {
			found = found || strings.Contains(l, want)
		}
		if !found {
			t.Errorf("no drop logged with %s; logged:\n%s", want, strings.Join(got, "\n"))
		}
	}
	if len(got) != 4 {
		t.Errorf("%d drops logged, want 4 (two events, two event webhooks):\n%s", len(got), strings.Join(got, "\n"))
	}
	if strings.Contains(fmt.Sprint(got), "gate") {
		t.Errorf("a confirm-rollout hook gets no Events, so misses none: %s", got)
	}
}
