package controller_test

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
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
	secret := &corev1.LocalObjectReference{Name: "creds"}
	for i, p := range []v1alpha1.MetricProvider{
		{Type: "prometheus", Address: "http://prometheus.monitoring:9090"},
		{Type: "web", Address: "https://slo.internal", SecretRef: secret, Web: &v1alpha1.WebProvider{Method: "POST", Body: `{"service":"{{ target }}"}`, JSONPath: "{.value}"}},
		{Type: "datadog", SecretRef: secret, Datadog: &v1alpha1.DatadogProvider{Site: "datadoghq.eu", APIVersion: "v1"}},
		{Type: "datadog", SecretRef: secret},
		{Type: "newrelic", SecretRef: secret, NewRelic: &v1alpha1.NewRelicProvider{Region: "EU"}},
		{Type: "cloudwatch", CloudWatch: &v1alpha1.CloudWatchProvider{Region: "eu-west-1"}},
		{Type: "graphite", Address: "http://graphite.monitoring"},
		{Type: "influxdb", Address: "http://influxdb:8086", InfluxDB: &v1alpha1.InfluxDBProvider{Database: "telegraf"}},
		{Type: "influxdb", Address: "https://eu-central-1-1.aws.cloud2.influxdata.com", SecretRef: secret, InfluxDB: &v1alpha1.InfluxDBProvider{Org: "acme"}},
	} {
		ok := good()
		ok.Name = fmt.Sprintf("ok-%d", i)
		ok.Spec.Provider = p
		if err := cl.Create(t.Context(), ok); err != nil {
			t.Errorf("valid %s MetricTemplate refused: %v", p.Type, err)
		}
	}
	cases := []struct {
		name   string
		mutate func(*v1alpha1.MetricTemplate)
		want   string
	}{
		{"unknown provider", func(m *v1alpha1.MetricTemplate) { m.Spec.Provider.Type = "stackdriver" }, "spec.provider.type"},
		{"no address for graphite", func(m *v1alpha1.MetricTemplate) { m.Spec.Provider = v1alpha1.MetricProvider{Type: "graphite"} }, "spec.provider.address is required for this provider type"},
		{"web without its block", func(m *v1alpha1.MetricTemplate) { m.Spec.Provider.Type = "web" }, "spec.provider.web is required for the web provider"},
		{"web without jsonPath", func(m *v1alpha1.MetricTemplate) {
			m.Spec.Provider.Type, m.Spec.Provider.Web = "web", &v1alpha1.WebProvider{}
		}, "spec.provider.web.jsonPath"},
		{"web body on GET", func(m *v1alpha1.MetricTemplate) {
			m.Spec.Provider.Type, m.Spec.Provider.Web = "web", &v1alpha1.WebProvider{Method: "GET", Body: "{}", JSONPath: "{.value}"}
		}, "spec.provider.web.body needs method POST or PUT"},
		{"a datadog block on prometheus", func(m *v1alpha1.MetricTemplate) { m.Spec.Provider.Datadog = &v1alpha1.DatadogProvider{} }, "spec.provider.datadog is only read when spec.provider.type is datadog"},
		{"datadog without a secret", func(m *v1alpha1.MetricTemplate) { m.Spec.Provider = v1alpha1.MetricProvider{Type: "datadog"} }, "spec.provider.secretRef is required for datadog"},
		{"unknown datadog site", func(m *v1alpha1.MetricTemplate) {
			m.Spec.Provider = v1alpha1.MetricProvider{Type: "datadog", SecretRef: &corev1.LocalObjectReference{Name: "dd"}, Datadog: &v1alpha1.DatadogProvider{Site: "datadog.com"}}
		}, "spec.provider.datadog.site"},
		{"newrelic without a secret", func(m *v1alpha1.MetricTemplate) { m.Spec.Provider = v1alpha1.MetricProvider{Type: "newrelic"} }, "spec.provider.secretRef is required for newrelic"},
		{"cloudwatch without a region", func(m *v1alpha1.MetricTemplate) { m.Spec.Provider = v1alpha1.MetricProvider{Type: "cloudwatch"} }, "spec.provider.cloudWatch is required for the cloudwatch provider"},
		{"influxdb with database and org", func(m *v1alpha1.MetricTemplate) {
			m.Spec.Provider.Type, m.Spec.Provider.InfluxDB = "influxdb", &v1alpha1.InfluxDBProvider{Database: "db", Org: "acme"}
		}, "set exactly one of database"},
		{"influxdb with neither", func(m *v1alpha1.MetricTemplate) {
			m.Spec.Provider.Type, m.Spec.Provider.InfluxDB = "influxdb", &v1alpha1.InfluxDBProvider{}
		}, "set exactly one of database"},
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
