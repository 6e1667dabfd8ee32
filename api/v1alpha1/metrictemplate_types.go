package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MetricTemplateSpec is a query and the metrics provider that answers it.
type MetricTemplateSpec struct {
	// Provider answers the query.
	Provider MetricProvider `json:"provider"`
	// Query is a Go text/template rendered before each check. Functions:
	// {{ namespace }}, {{ name }} (the Canary), {{ target }} (the
	// Deployment), {{ service }} (the apex Service), {{ interval }} (the
	// check's window, e.g. 1m); the Canary's templateVariables are fields:
	// {{ .myVariable }}. The query must return one value (a scalar, or a
	// vector with one series).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=8192
	Query string `json:"query"`
}

// MetricProvider is where a query is sent.
//
// +kubebuilder:validation:XValidation:rule="!has(self.insecureSkipVerify) || !self.insecureSkipVerify || self.address.startsWith('https://')",message="spec.provider.insecureSkipVerify only applies to an https:// address"
type MetricProvider struct {
	// Type of the provider.
	// +kubebuilder:validation:Enum=prometheus
	Type string `json:"type"`
	// Address is the provider's base URL, e.g.
	// http://prometheus.monitoring:9090.
	// +kubebuilder:validation:Pattern=`^https?://[^\s/$.?#].[^\s]*$`
	// +kubebuilder:validation:MaxLength=2048
	Address string `json:"address"`
	// SecretRef names a Secret in the template's namespace holding the
	// credentials: key "token" (sent as a bearer token), or keys
	// "username" and "password" (basic auth).
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
