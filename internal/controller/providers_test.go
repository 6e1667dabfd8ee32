package controller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
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
