package controller_test

import (
	"fmt"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// The MetricTemplate CRD refuses what can be checked statically, naming
// the field.
func TestMetricTemplateValidation(t *testing.T) {
	_, ns, cl := setup(t)
	good := func() *v1alpha1.MetricTemplate {
		return &v1alpha1.MetricTemplate{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns},
			Spec: v1alpha1.MetricTemplateSpec{
				Provider: v1alpha1.MetricProvider{Type: "prometheus", Address: "http://prometheus.monitoring:9090"},
				Query:    `sum(rate(http_requests_total{namespace="{{ namespace }}"}[{{ interval }}]))`,
			},
		}
	}
	ok := good()
	ok.Name = "ok"
	if err := cl.Create(t.Context(), ok); err != nil {
		t.Fatalf("valid MetricTemplate refused: %v", err)
	}
	cases := []struct {
		name   string
		mutate func(*v1alpha1.MetricTemplate)
		want   string
	}{
		{"unknown provider", func(m *v1alpha1.MetricTemplate) { m.Spec.Provider.Type = "graphite" }, "spec.provider.type"},
		{"address without scheme", func(m *v1alpha1.MetricTemplate) { m.Spec.Provider.Address = "prometheus:9090" }, "spec.provider.address"},
		{"insecure on http", func(m *v1alpha1.MetricTemplate) { m.Spec.Provider.InsecureSkipVerify = true }, "insecureSkipVerify only applies to an https:// address"},
		{"empty query", func(m *v1alpha1.MetricTemplate) { m.Spec.Query = "" }, "spec.query"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := good()
			m.Name = fmt.Sprintf("bad-%d", i)
			tc.mutate(m)
			err := cl.Create(t.Context(), m)
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("want Invalid naming %q, got %v", tc.want, err)
			}
		})
	}
}
