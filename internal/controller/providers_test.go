package controller_test

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

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/testenv"
)

// A provider other than Prometheus, through the real controller: the
// credentials come from the template's Secret; a release judged healthy
// promotes; a revoked key fails its rounds with the provider's own message
// and rolls back; no credential appears in the status or in an Event.
// Datadog is a test server of its documented API (nothing real can run
// here).
func TestDatadogTemplateThroughTheController(t *testing.T) {
	_, ns, cl := setup(t)
	const apiKey, appKey = "dd-api-7f3a9c1e", "dd-app-51b2e8d4"
	dd := testenv.StartDatadog(t, apiKey, appKey, testenv.Series{
		"avg:app.errors{canary:healthy}": testenv.Num(1),
		"avg:app.errors{canary:revoked}": testenv.Num(1),
	})
	secret := func(name, app string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Data: map[string][]byte{"api-key": []byte(apiKey), "app-key": []byte(app)}}
	}
	template := func(name, secretName string) *v1alpha1.MetricTemplate {
		return &v1alpha1.MetricTemplate{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: v1alpha1.MetricTemplateSpec{
				Provider: v1alpha1.MetricProvider{Type: v1alpha1.ProviderDatadog, Address: dd.URL,
					SecretRef: &corev1.LocalObjectReference{Name: secretName}, Timeout: &metav1.Duration{Duration: 2 * time.Second}},
				Query: `avg:app.errors{canary:{{ name }}}`,
			},
		}
	}
	const revokedKey = "dd-app-REVOKED-0000"
	create(t, cl, secret("dd-creds", appKey), secret("dd-revoked", revokedKey),
		template("errors", "dd-creds"), template("errors-revoked", "dd-revoked"))
	judged := func(name, tmpl string) *v1alpha1.Canary {
		c := canary(ns, name, weightStep(20), pauseStep(2*time.Second), weightStep(60))
		c.Spec.Analysis = &v1alpha1.Analysis{
			Interval:  &metav1.Duration{Duration: 2 * time.Second},
			Threshold: ptr.To(int32(2)),
			Metrics: []v1alpha1.MetricCheck{{
				Name: "errors", TemplateRef: &v1alpha1.TemplateRef{Name: tmpl}, ThresholdRange: &v1alpha1.ThresholdRange{Max: ptr.To(5.0)},
			}},
		}
		return c
	}
	create(t, cl, app(ns, "healthy", "example.com/healthy:1", 1), judged("healthy", "errors"),
		app(ns, "revoked", "example.com/revoked:1", 1), judged("revoked", "errors-revoked"))
	for _, name := range []string{"healthy", "revoked"} {
		waitPhase(t, cl, ns, name, v1alpha1.PhaseInitialized, 60*time.Second)
		setImage(t, cl, ns, name, "example.com/"+name+":2")
	}

	c := waitPhase(t, cl, ns, "healthy", v1alpha1.PhaseSucceeded, 90*time.Second)
	if len(c.Status.Metrics) != 1 || !c.Status.Metrics[0].Passed || c.Status.Metrics[0].Value != "1" {
		t.Errorf("healthy release: metrics %+v", c.Status.Metrics)
	}

	c = waitPhase(t, cl, ns, "revoked", v1alpha1.PhaseFailed, 90*time.Second)
	if c.Status.Reason != v1alpha1.ReasonAnalysisFailed || !strings.Contains(c.Status.Message, `{"errors":["Forbidden"]}`) {
		t.Errorf("revoked key: reason %s, message %q; want AnalysisFailed with Datadog's own answer", c.Status.Reason, c.Status.Message)
	}
	expectShare(t, cl, ns, "revoked", 0)

	// No credential anywhere a user (or a log shipper) reads.
	for _, name := range []string{"healthy", "revoked"} {
		c, err := getCanary(t.Context(), cl, ns, name)
		if err != nil {
			t.Fatal(err)
		}
		status, _ := json.Marshal(c.Status)
		for _, s := range []string{apiKey, appKey, revokedKey} {
			if strings.Contains(string(status), s) {
				t.Errorf("the status of %s shows a credential: %s", name, status)
			}
		}
	}
	testenv.Eventually(t, 10*time.Second, "events of the failed release", func(ctx context.Context) error {
		var list corev1.EventList
		if err := cl.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return err
		}
		failed := false
		for _, e := range list.Items {
			for _, s := range []string{apiKey, appKey, revokedKey} {
				if strings.Contains(e.Message, s) {
					t.Fatalf("event %s shows a credential: %s", e.Reason, e.Message)
				}
			}
			failed = failed || (e.InvolvedObject.Name == "revoked" && strings.Contains(e.Message, "Forbidden"))
		}
		if !failed {
			return fmt.Errorf("no event of revoked names Datadog's answer")
		}
		return nil
	})
}

// A Canary's alerts through the real controller: an alert at severity
// error gets the failed release, once, in Slack's format with the failing
// check, and nothing of the release's normal steps; the webhook URL (a
// credential) appears in no status and no Event.
func TestAlertOfAFailedRelease(t *testing.T) {
	_, ns, cl := setup(t)
	dd := testenv.StartDatadog(t, "k1-api-0000", "k1-app-0000", testenv.Series{"avg:app.errors{canary:noisy}": testenv.Num(40)})
	var mu sync.Mutex
	var posts []string
	slack := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		posts = append(posts, string(b))
		mu.Unlock()
		fmt.Fprint(w, "ok")
	}))
	defer slack.Close()
	hook := slack.URL + "/services/T0001/B0001/secret-path-4f2a"
	c := canary(ns, "noisy", weightStep(20), pauseStep(time.Hour))
	c.Spec.Analysis = &v1alpha1.Analysis{
		Interval: &metav1.Duration{Duration: 2 * time.Second}, Threshold: ptr.To(int32(2)),
		Metrics: []v1alpha1.MetricCheck{{Name: "errors", TemplateRef: &v1alpha1.TemplateRef{Name: "errors"}, ThresholdRange: &v1alpha1.ThresholdRange{Max: ptr.To(5.0)}}},
		Alerts:  []v1alpha1.Alert{{Name: "on-call", Severity: v1alpha1.SeverityError, ProviderRef: v1alpha1.AlertProviderRef{Name: "chat"}}},
	}
	create(t, cl,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "dd"}, Data: map[string][]byte{"api-key": []byte("k1-api-0000"), "app-key": []byte("k1-app-0000")}},
		&v1alpha1.MetricTemplate{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "errors"}, Spec: v1alpha1.MetricTemplateSpec{
			Provider: v1alpha1.MetricProvider{Type: v1alpha1.ProviderDatadog, Address: dd.URL, SecretRef: &corev1.LocalObjectReference{Name: "dd"}},
			Query:    `avg:app.errors{canary:{{ name }}}`}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "chat-webhook"}, Data: map[string][]byte{"address": []byte(hook)}},
		&v1alpha1.AlertProvider{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "chat"}, Spec: v1alpha1.AlertProviderSpec{
			Type: v1alpha1.AlertSlack, SecretRef: corev1.LocalObjectReference{Name: "chat-webhook"}}},
		app(ns, "noisy", "example.com/noisy:1", 1), c)
	waitPhase(t, cl, ns, "noisy", v1alpha1.PhaseInitialized, 60*time.Second)
	setImage(t, cl, ns, "noisy", "example.com/noisy:2")
	waitPhase(t, cl, ns, "noisy", v1alpha1.PhaseFailed, 90*time.Second)
	testenv.Eventually(t, 30*time.Second, "the alert posted", func(context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		if len(posts) == 0 {
			return fmt.Errorf("nothing posted")
		}
		return nil
	})
	mu.Lock()
	got := append([]string(nil), posts...)
	mu.Unlock()
	for _, p := range got {
		if !strings.Contains(p, `"blocks"`) || !strings.Contains(p, "Failed") {
			t.Errorf("a post that is not the failed release in Slack's format: %s", p)
		}
	}
	if len(got) != 1 || !strings.Contains(got[0], "(AnalysisFailed)") || !strings.Contains(got[0], "40 is above the maximum 5") {
		t.Errorf("want one alert, the failure (AnalysisFailed) with the failing check; got %d: %s", len(got), strings.Join(got, "\n"))
	}
	cur, err := getCanary(t.Context(), cl, ns, "noisy")
	if err != nil {
		t.Fatal(err)
	}
	status, _ := json.Marshal(cur.Status)
	if strings.Contains(string(status), "secret-path-4f2a") {
		t.Errorf("the status shows the webhook URL: %s", status)
	}
	var list corev1.EventList
	if err := cl.List(t.Context(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, e := range list.Items {
		if strings.Contains(e.Message, "secret-path-4f2a") {
			t.Errorf("event %s shows the webhook URL: %s", e.Reason, e.Message)
		}
	}
}
