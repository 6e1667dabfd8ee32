package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// CanaryRevisionSpec is what one revision of a Canary's target is: the
// expected state the primary must reach when this revision is promoted,
// and the template to restore it from.
type CanaryRevisionSpec struct {
	// Canary is the Canary's name.
	Canary string `json:"canary"`
	// Revision is the hash of the target's pod template (and the data of
	// the ConfigMaps and Secrets it references).
	Revision string `json:"revision"`
	// Number orders a Canary's revisions: 1 for its first, then up.
	Number int64 `json:"number"`
	// Images is the containers' images, comma-separated (for display).
	// +optional
	Images string `json:"images,omitempty"`
	// Containers are each container's image and resources, as the primary
	// must run them.
	// +optional
	Containers []ContainerRecord `json:"containers,omitempty"`
	// Replicas is the number of replicas the primary runs at this revision.
	Replicas int32 `json:"replicas"`
	// Config lists the ConfigMaps and Secrets the template references,
	// each with the hash of its data at this revision. The primary reads
	// Sluice's copy of each (named after the primary and this hash), so
	// restoring this revision brings back exactly this data. Records
	// written before Sluice made copies have none: their primary reads
	// the user's objects.
	// +listType=atomic
	// +optional
	Config []ConfigRecord `json:"config,omitempty"`
	// Template is the target's pod template at this revision (a
	// PodTemplateSpec), from which the primary is restored and to which
	// `kubectl sluice undo` returns the target.
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Type=object
	Template runtime.RawExtension `json:"template"`
}

// ContainerRecord is one container's expected state.
type ContainerRecord struct {
	// Name of the container.
	Name string `json:"name"`
	// Image the container runs.
	Image string `json:"image"`
	// Resources the container requests and is limited to.
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`
}

// ConfigRecord is a ConfigMap or Secret a revision's template references,
// and the hash of its data at that revision (never the data).
type ConfigRecord struct {
	// Kind is ConfigMap or Secret.
	// +kubebuilder:validation:Enum=ConfigMap;Secret
	Kind string `json:"kind"`
	// Name is the object's name, as the template references it.
	Name string `json:"name"`
	// DataHash is the hash of its data (keys and values).
	DataHash string `json:"dataHash"`
}

// Outcomes of a revision.
const (
	OutcomeProgressing = "Progressing"
	OutcomeSucceeded   = "Succeeded"
	OutcomeFailed      = "Failed"
	// OutcomeSuperseded: a newer revision replaced it before it ended.
	OutcomeSuperseded = "Superseded"
)

// CanaryRevisionStatus is what became of the revision.
type CanaryRevisionStatus struct {
	// Outcome: Progressing, Succeeded, Failed or Superseded.
	// +optional
	Outcome string `json:"outcome,omitempty"`
	// Reason of the release's end: the Canary's status.reason at the
	// time, or Superseded.
	// +optional
	Reason string `json:"reason,omitempty"`
	// Message of the release's end: the Canary's status.message at the
	// time.
	// +optional
	Message string `json:"message,omitempty"`
	// StartTime is when the revision's release started (or the primary was
	// created from it).
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// EndTime is when it was promoted or rolled back.
	// +optional
	EndTime *metav1.Time `json:"endTime,omitempty"`
	// FailedChecks is the number of failed check rounds of its release.
	// +optional
	FailedChecks int32 `json:"failedChecks,omitempty"`
	// CheckRounds is not recorded yet (always 0).
	// +optional
	CheckRounds int64 `json:"checkRounds,omitempty"`
	// Metrics are the last round's results.
	// +optional
	Metrics []MetricStatus `json:"metrics,omitempty"`
}

// CanaryRevision records one revision a Canary released, and what became
// of it. Sluice creates one per revision, owned by the Canary, and keeps
// the Canary's spec.revisionHistoryLimit newest.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=sluice,shortName=crev
// +kubebuilder:printcolumn:name="Canary",type=string,JSONPath=`.spec.canary`
// +kubebuilder:printcolumn:name="Number",type=integer,JSONPath=`.spec.number`
// +kubebuilder:printcolumn:name="Revision",type=string,JSONPath=`.spec.revision`
// +kubebuilder:printcolumn:name="Outcome",type=string,JSONPath=`.status.outcome`
// +kubebuilder:printcolumn:name="Images",type=string,JSONPath=`.spec.images`
// +kubebuilder:printcolumn:name="Started",type=date,JSONPath=`.status.startTime`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.reason`
type CanaryRevision struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   CanaryRevisionSpec   `json:"spec"`
	Status CanaryRevisionStatus `json:"status,omitempty"`
}

// CanaryRevisionList is a list of CanaryRevisions.
//
// +kubebuilder:object:root=true
type CanaryRevisionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []CanaryRevision `json:"items"`
}

func init() {
	SchemeBuilder.Register(&CanaryRevision{}, &CanaryRevisionList{})
}
