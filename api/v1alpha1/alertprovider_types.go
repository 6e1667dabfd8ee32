package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Alert provider types.
const (
	AlertSlack      = "slack"
	AlertMSTeams    = "msteams"
	AlertDiscord    = "discord"
	AlertGoogleChat = "googlechat"
	AlertWebhook    = "webhook"
)

// AlertProviderSpec is where notifications about releases are posted.
type AlertProviderSpec struct {
	// Type of the service: slack (an incoming webhook), msteams (a Teams
	// Workflows webhook: Adaptive Cards), discord, googlechat, or webhook
	// (Sluice's own JSON to any URL).
	// +kubebuilder:validation:Enum=slack;msteams;discord;googlechat;webhook
	Type string `json:"type"`
	// SecretRef names a Secret in the provider's namespace: key "address"
	// is the webhook URL (it is a credential: it is never written to
	// status, Events or logs); key "token", if present, is sent as a
	// bearer token with every post (a webhook receiver's, or a Slack bot
	// token with the chat.postMessage URL).
	SecretRef corev1.LocalObjectReference `json:"secretRef"`
	// Channel overrides the channel (Slack legacy webhooks only).
	// +kubebuilder:validation:MaxLength=80
	// +optional
	Channel string `json:"channel,omitempty"`
	// Username overrides the sender's name (Slack legacy webhooks,
	// Discord).
	// +kubebuilder:validation:MaxLength=80
	// +optional
	Username string `json:"username,omitempty"`
	// LinkTemplate is a URL added to each message as a button or link, a
	// Go template with {{ namespace }}, {{ name }} (the Canary) and
	// {{ revision }}: e.g. a dashboard of the release.
	// +kubebuilder:validation:MaxLength=2048
	// +optional
	LinkTemplate string `json:"linkTemplate,omitempty"`
	// DedupWindow: the same message (Canary, reason and text) is posted
	// at most once per window, so a flapping check does not flood a
	// channel. Default 10m.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +optional
	DedupWindow *metav1.Duration `json:"dedupWindow,omitempty"`
	// RatePerMinute bounds the messages posted through this provider
	// (with a burst of 5); more wait their turn, and are dropped (and
	// counted) if the queue is full. Default 20.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=600
	// +optional
	RatePerMinute *int32 `json:"ratePerMinute,omitempty"`
}

// AlertProvider is a chat or webhook destination for notifications about
// Canaries; a Canary's spec.analysis.alerts name it.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=sluice
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type AlertProvider struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec AlertProviderSpec `json:"spec"`
}

// AlertProviderList is a list of AlertProviders.
//
// +kubebuilder:object:root=true
type AlertProviderList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AlertProvider `json:"items"`
}

func init() {
	SchemeBuilder.Register(&AlertProvider{}, &AlertProviderList{})
}

// Alert severities: an alert with a severity gets the events of that
// severity and above (info: every event; warn: warnings and failures;
// error: failed releases only).
const (
	SeverityInfo  = "info"
	SeverityWarn  = "warn"
	SeverityError = "error"
)

// Alert sends a Canary's events to an AlertProvider.
type Alert struct {
	// Name of the alert.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`
	// Severity is the least severity sent: info (every event), warn
	// (warnings and failures) or error (failed releases). Default info.
	// +kubebuilder:validation:Enum=info;warn;error
	// +optional
	Severity string `json:"severity,omitempty"`
	// ProviderRef names the AlertProvider (namespace default: the
	// Canary's).
	ProviderRef AlertProviderRef `json:"providerRef"`
}

// AlertProviderRef names an AlertProvider.
type AlertProviderRef struct {
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// +optional
	Namespace string `json:"namespace,omitempty"`
}
