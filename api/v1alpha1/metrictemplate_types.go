package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MetricTemplateSpec is a query and the metrics provider that answers it.
type MetricTemplateSpec struct {
	// Provider answers the query.
	Provider MetricProvider `json:"provider"`
	// Query is a Go text/template rendered before each check, in the
	// provider's own language: PromQL, a Datadog metric query, NRQL, a
	// Graphite target, InfluxQL or Flux, a JSON array of CloudWatch
	// MetricDataQuery objects, or for web the path and query string sent
	// to the address. Functions: {{ namespace }}, {{ name }} (the Canary),
	// {{ target }} (the Deployment), {{ service }} (the apex Service),
	// {{ interval }} (the check's window, e.g. 1m); the Canary's
	// templateVariables are fields: {{ .myVariable }}. The query must come
	// to one value.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=8192
	Query string `json:"query"`
}

// Metric provider types.
const (
	ProviderPrometheus = "prometheus"
	ProviderWeb        = "web"
	ProviderDatadog    = "datadog"
	ProviderNewRelic   = "newrelic"
	ProviderCloudWatch = "cloudwatch"
	ProviderGraphite   = "graphite"
	ProviderInfluxDB   = "influxdb"
)

// MetricProvider is where a query is sent.
//
// +kubebuilder:validation:XValidation:rule="!has(self.insecureSkipVerify) || !self.insecureSkipVerify || (has(self.address) && self.address.startsWith('https://'))",message="spec.provider.insecureSkipVerify only applies to an https:// address"
// +kubebuilder:validation:XValidation:rule="!(self.type in ['prometheus', 'web', 'graphite', 'influxdb']) || has(self.address)",message="spec.provider.address is required for this provider type: set the server's base URL, e.g. http://prometheus.monitoring:9090"
// +kubebuilder:validation:XValidation:rule="self.type == 'web' || !has(self.web)",message="spec.provider.web is only read when spec.provider.type is web"
// +kubebuilder:validation:XValidation:rule="self.type != 'web' || has(self.web)",message="spec.provider.web is required for the web provider: set web.jsonPath to the value in the answer"
// +kubebuilder:validation:XValidation:rule="self.type == 'datadog' || !has(self.datadog)",message="spec.provider.datadog is only read when spec.provider.type is datadog"
// +kubebuilder:validation:XValidation:rule="self.type == 'newrelic' || !has(self.newRelic)",message="spec.provider.newRelic is only read when spec.provider.type is newrelic"
// +kubebuilder:validation:XValidation:rule="self.type == 'cloudwatch' || !has(self.cloudWatch)",message="spec.provider.cloudWatch is only read when spec.provider.type is cloudwatch"
// +kubebuilder:validation:XValidation:rule="self.type != 'cloudwatch' || has(self.cloudWatch)",message="spec.provider.cloudWatch is required for the cloudwatch provider: set cloudWatch.region"
// +kubebuilder:validation:XValidation:rule="self.type == 'influxdb' || !has(self.influxDB)",message="spec.provider.influxDB is only read when spec.provider.type is influxdb"
// +kubebuilder:validation:XValidation:rule="self.type != 'influxdb' || has(self.influxDB)",message="spec.provider.influxDB is required for the influxdb provider: set influxDB.database (InfluxQL, 1.x) or influxDB.org (Flux, 2.x)"
// +kubebuilder:validation:XValidation:rule="self.type != 'newrelic' || has(self.secretRef)",message="spec.provider.secretRef is required for newrelic: a Secret with keys api-key (a user key) and account-id"
// +kubebuilder:validation:XValidation:rule="self.type != 'datadog' || has(self.secretRef)",message="spec.provider.secretRef is required for datadog: a Secret with keys api-key and app-key"
type MetricProvider struct {
	// Type of the provider.
	// +kubebuilder:validation:Enum=prometheus;web;datadog;newrelic;cloudwatch;graphite;influxdb
	Type string `json:"type"`
	// Address is the provider's base URL, e.g.
	// http://prometheus.monitoring:9090. Required for prometheus, web,
	// graphite and influxdb. For datadog and newrelic it replaces the
	// site's or region's API address, for cloudwatch the regional
	// endpoint (a VPC endpoint, say).
	// +kubebuilder:validation:Pattern=`^https?://[^\s/$.?#].[^\s]*$`
	// +kubebuilder:validation:MaxLength=2048
	// +optional
	Address string `json:"address,omitempty"`
	// SecretRef names a Secret in the template's namespace holding the
	// credentials. Keys by type: prometheus, graphite, web and influxdb 1.x:
	// "token" (a bearer token; influxdb: Token) or "username" and
	// "password"; influxdb 2.x: "token"; datadog: "api-key" and "app-key";
	// newrelic: "api-key" (a user key) and "account-id"; cloudwatch:
	// "aws-access-key-id", "aws-secret-access-key" and optionally
	// "aws-session-token" (without a secretRef, the pod's own identity).
	// Secret values are never logged, nor written to Events or status.
	// +optional
	SecretRef *corev1.LocalObjectReference `json:"secretRef,omitempty"`
	// Headers are added to every request (e.g. X-Scope-OrgID).
	// +kubebuilder:validation:MaxProperties=16
	// +optional
	Headers map[string]string `json:"headers,omitempty"`
	// Timeout of one query. Default 10s.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`
	// InsecureSkipVerify skips TLS certificate verification.
	// +optional
	InsecureSkipVerify bool `json:"insecureSkipVerify,omitempty"`

	// Web configures the web provider.
	// +optional
	Web *WebProvider `json:"web,omitempty"`
	// Datadog configures the datadog provider.
	// +optional
	Datadog *DatadogProvider `json:"datadog,omitempty"`
	// NewRelic configures the newrelic provider.
	// +optional
	NewRelic *NewRelicProvider `json:"newRelic,omitempty"`
	// CloudWatch configures the cloudwatch provider.
	// +optional
	CloudWatch *CloudWatchProvider `json:"cloudWatch,omitempty"`
	// InfluxDB configures the influxdb provider.
	// +optional
	InfluxDB *InfluxDBProvider `json:"influxDB,omitempty"`
}

// WebProvider reads one number from any HTTP endpoint answering JSON. The
// rendered query is the path and query string sent to the address (the
// address is fixed, so credentials never go elsewhere).
//
// +kubebuilder:validation:XValidation:rule="!has(self.body) || self.method != 'GET'",message="spec.provider.web.body needs method POST or PUT"
type WebProvider struct {
	// Method of the request. Default GET.
	// +kubebuilder:validation:Enum=GET;POST;PUT
	// +kubebuilder:default=GET
	// +optional
	Method string `json:"method,omitempty"`
	// Body of a POST or PUT, a template rendered like the query; sent as
	// application/json unless a header says otherwise.
	// +kubebuilder:validation:MaxLength=8192
	// +optional
	Body string `json:"body,omitempty"`
	// JSONPath selects the value in the answer, in kubectl's JSONPath
	// syntax: {.data.result.value}. It must select one number (or a
	// string holding one).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	JSONPath string `json:"jsonPath"`
}

// DatadogProvider selects the Datadog API.
type DatadogProvider struct {
	// Site is the Datadog site the organisation lives on. Default
	// datadoghq.com.
	// +kubebuilder:validation:Enum=datadoghq.com;us3.datadoghq.com;us5.datadoghq.com;datadoghq.eu;ap1.datadoghq.com;ap2.datadoghq.com;ddog-gov.com
	// +optional
	Site string `json:"site,omitempty"`
	// APIVersion is v2 (POST /api/v2/query/scalar: the query reduced
	// over the window by the aggregator) or v1 (GET /api/v1/query: the
	// newest complete point). Default v2.
	// +kubebuilder:validation:Enum=v1;v2
	// +optional
	APIVersion string `json:"apiVersion,omitempty"`
	// Aggregator reduces the window to one value (v2 only): avg, min,
	// max, sum, last, mean, l2norm, area. Default avg.
	// +kubebuilder:validation:Enum=avg;min;max;sum;last;mean;l2norm;area
	// +optional
	Aggregator string `json:"aggregator,omitempty"`
}

// NewRelicProvider selects the New Relic NerdGraph endpoint.
type NewRelicProvider struct {
	// Region of the account: US or EU. Default US.
	// +kubebuilder:validation:Enum=US;EU
	// +optional
	Region string `json:"region,omitempty"`
}

// CloudWatchProvider selects the AWS region.
type CloudWatchProvider struct {
	// Region of the metrics, e.g. eu-west-1.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	Region string `json:"region"`
}

// InfluxDBProvider selects the InfluxDB API: database for 1.x (InfluxQL),
// org for 2.x (Flux).
//
// +kubebuilder:validation:XValidation:rule="has(self.database) != has(self.org)",message="spec.provider.influxDB: set exactly one of database (InfluxQL, InfluxDB 1.x) or org (Flux, InfluxDB 2.x)"
type InfluxDBProvider struct {
	// Database to query with InfluxQL (InfluxDB 1.x).
	// +kubebuilder:validation:MinLength=1
	// +optional
	Database string `json:"database,omitempty"`
	// Org to query with Flux (InfluxDB 2.x and Cloud).
	// +kubebuilder:validation:MinLength=1
	// +optional
	Org string `json:"org,omitempty"`
}

// MetricTemplate is a reusable metric query for Canary analysis.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=sluice
// +kubebuilder:printcolumn:name="Provider",type=string,JSONPath=`.spec.provider.type`
// +kubebuilder:printcolumn:name="Address",type=string,JSONPath=`.spec.provider.address`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type MetricTemplate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec MetricTemplateSpec `json:"spec"`
}

// MetricTemplateList is a list of MetricTemplates.
//
// +kubebuilder:object:root=true
type MetricTemplateList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MetricTemplate `json:"items"`
}

func init() {
	SchemeBuilder.Register(&MetricTemplate{}, &MetricTemplateList{})
}
